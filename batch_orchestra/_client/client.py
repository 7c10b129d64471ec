"""BatchOrchestratorClient: start batches, redrive them, and reach series."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._exceptions import BatchOrchestraError, InvalidBatchInputError
from .._model import (
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    RedrivePage,
    RedriveSource,
    input_from_wire,
    input_to_wire,
    validate_input,
)
from .._model.messages import BATCH_WORKFLOW_TYPE
from .._model.typed import check_args
from .._worker.processor import PageProcessor, find_page_processor
from .._worker.processor import is_registered as _is_registered
from .handle import BatchOrchestratorHandle

if TYPE_CHECKING:
    from .._series.types import SeriesSpec
    from .series import SeriesHandle

__all__ = ["BatchOrchestratorClient"]


def _first_run_id(desc: Any) -> str:
    """The first run ID of the batch execution ``desc`` (a description) is a run of."""
    info = desc.raw_description.workflow_execution_info
    return str(info.first_run_id or desc.run_id)


class BatchOrchestratorClient:
    """Starts batches and finds running ones."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        """The Temporal client."""
        return self._client

    async def start(
        self, input: BatchOrchestratorInput, *, id: str, task_queue: str, **kwargs: Any
    ) -> BatchOrchestratorHandle:
        """Validate ``input`` and start a batch.

        Extra keyword arguments go to ``Client.start_workflow``.

        When the processor class is known here (given as the class, or registered in this
        process) and declares ``args_type``, the args are checked against it before anything
        starts; otherwise the worker checks them when the batch starts.

        Raises:
            InvalidBatchInputError: a field of ``input`` cannot work; the message names it.
            InvalidArgsError: the args do not fit the processor's ``args_type``.
        """
        proc = input.page_processor
        if inspect.isclass(proc) and not (issubclass(proc, PageProcessor) and _is_registered(proc)):
            raise InvalidBatchInputError(
                f"page_processor {proc!r} is not a registered page processor; decorate it "
                "with @page_processor, or pass the registered name"
            )
        validate_input(input)
        cls = proc if inspect.isclass(proc) else find_page_processor(input.processor_name())
        args_type = getattr(cls, "args_type", None)
        if args_type is not None and input.args is not None:
            check_args(args_type, input.args, input.processor_name())
        handle: WorkflowHandle[Any, Any] = await self._client.start_workflow(
            BATCH_WORKFLOW_TYPE,
            input_to_wire(input),
            id=id,
            task_queue=task_queue,
            result_type=BatchOrchestratorProgress,
            **kwargs,
        )
        return BatchOrchestratorHandle(handle, self._client)

    def get_handle(self, workflow_id: str, *, run_id: str | None = None) -> BatchOrchestratorHandle:
        """A handle to an existing batch."""
        return BatchOrchestratorHandle(
            self._client.get_workflow_handle(
                workflow_id, run_id=run_id, result_type=BatchOrchestratorProgress
            ),
            self._client,
        )

    async def redrive(
        self,
        workflow_id: str,
        *,
        id: str | None = None,
        task_queue: str | None = None,
        **kwargs: Any,
    ) -> BatchOrchestratorHandle:
        """Run every failed page of a batch again.

        A running (or paused) batch queues them again itself (``handle.redrive()``), and the
        handle to it is returned. A finished batch gets a NEW batch (ID ``id``, default
        ``<workflow_id>-redrive-<n>``) with the same input, linked to it by ``redrive_of``, that
        reads the old batch's failed pages from its failure ledger as it goes (its input names
        the old batch rather than carrying the cursors). A redriven page that had already
        enqueued its successor before it failed does not enqueue it again (its chain went on in
        the old batch); the others continue their chains.

        Args:
            workflow_id: the batch to redrive.
            id: the new batch's workflow ID (finished batches only).
            task_queue: the new batch's task queue (default: the old batch's).
            **kwargs: passed to ``Client.start_workflow`` for the new batch.

        Raises:
            InvalidBatchInputError: the batch ended without a result (failed, cancelled,
                terminated), or it has no failed page to redrive.
            BatchOrchestraError: another redrive started the default ID first (``id`` not
                given): that batch runs these pages.
        """
        handle = self.get_handle(workflow_id)
        desc = await self._client.get_workflow_handle(workflow_id).describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            await handle.redrive()
            return handle
        if desc.status != WorkflowExecutionStatus.COMPLETED:
            status = desc.status.name if desc.status else "UNKNOWN"
            raise InvalidBatchInputError(
                f"batch {workflow_id!r} is {status}, without a result to read its failed pages "
                "from; only a running or completed batch can be redriven"
            )
        old = await handle.result()
        if not old.num_failed_pages:
            raise InvalidBatchInputError(f"batch {workflow_id!r} has no failed page to redrive")
        inp = await self._first_input(workflow_id)
        inp.first_cursor_str, inp.first_cursor_strs, inp.item_keys = "", None, None
        inp.redrive_of, inp.redrive_pages, inp.redrive_source = workflow_id, None, None
        if old.num_ledger_records:
            inp.redrive_source = RedriveSource(
                workflow_id=workflow_id,
                first_run_id=_first_run_id(desc),
                from_record=old.ledger_redrive_record,
            )
        else:  # finished on a version without the ledger: its result lists whole cursors
            inp.redrive_pages = [
                RedrivePage(
                    cursor_str=f.cursor_str,
                    size=f.size or inp.page_size,
                    successor_enqueued=f.successor_enqueued,
                )
                for f in old.failed_pages
                if f.cursor_is_whole
            ]
            if not inp.redrive_pages:
                raise InvalidBatchInputError(
                    f"batch {workflow_id!r} has no failed page listed to redrive "
                    f"(num_failed_pages={old.num_failed_pages})"
                )
        inp.total_items = None  # the old estimate would make percent done and ETA wrong
        return await self._start_derived(
            inp, workflow_id, "redrive", id, task_queue or desc.task_queue, kwargs
        )

    async def redrive_items(
        self,
        workflow_id: str,
        keys: list[str] | None = None,
        *,
        id: str | None = None,
        task_queue: str | None = None,
        **kwargs: Any,
    ) -> BatchOrchestratorHandle:
        """Run failed items again by key, in a NEW batch.

        The new batch (ID ``id``, default ``<workflow_id>-items-<n>``) has the old batch's input;
        its pages hand up to ``page_size`` keys each to the processor's
        ``run_items(context, keys)``.

        Args:
            workflow_id: the batch whose items to run again (running or finished).
            keys: the item keys; default: every failed item of the batch, which the new batch
                reads from the old one's failure ledger as it goes (for a batch still running,
                those recorded so far).
            id: the new batch's workflow ID.
            task_queue: the new batch's task queue (default: the old batch's).
            **kwargs: passed to ``Client.start_workflow``.

        Raises:
            InvalidBatchInputError: there is no key to run, or too many for one batch.
            BatchOrchestraError: another redrive started the default ID first (``id`` not
                given): that batch runs these items.
        """
        desc = await self._client.get_workflow_handle(workflow_id).describe()
        source = None
        if keys is None:
            progress = await self.get_handle(workflow_id).get_progress()
            if progress.num_ledger_records and progress.num_failed_items:
                running = desc.status == WorkflowExecutionStatus.RUNNING
                source = RedriveSource(
                    workflow_id=workflow_id,
                    first_run_id=_first_run_id(desc),
                    items=True,
                    to_record=progress.num_ledger_records if running else None,
                )
                keys = []
            else:  # a version without the ledger: the listed keys
                keys = [f.key for f in progress.failed_items]
        keys = list(dict.fromkeys(keys))
        if not keys and source is None:
            raise InvalidBatchInputError(
                f"batch {workflow_id!r} lists no failed item to run again; pass keys=[...]"
            )
        inp = await self._first_input(workflow_id)
        inp.first_cursor_str, inp.first_cursor_strs, inp.redrive_pages = "", None, None
        inp.redrive_of, inp.item_keys, inp.redrive_source = workflow_id, keys or None, source
        inp.total_items = len(keys) if keys else None
        return await self._start_derived(
            inp, workflow_id, "items", id, task_queue or desc.task_queue, kwargs
        )

    async def _start_derived(
        self,
        inp: BatchOrchestratorInput,
        workflow_id: str,
        kind: str,
        id: str | None,
        task_queue: str,
        kwargs: dict[str, Any],
    ) -> BatchOrchestratorHandle:
        """Start a redrive batch under ``id`` or the first free ``<workflow_id>-<kind>-<n>``."""
        if id is not None:
            return await self.start(inp, id=id, task_queue=task_queue, **kwargs)
        new_id = await self._free_redrive_id(workflow_id, kind)
        # The ID was free when described; another redrive may have taken it since. Never
        # share it: not with a running batch, and not with one that has already finished
        # (Temporal's default would start a second execution under the same ID).
        kwargs.setdefault("id_conflict_policy", WorkflowIDConflictPolicy.FAIL)
        kwargs.setdefault("id_reuse_policy", WorkflowIDReusePolicy.REJECT_DUPLICATE)
        try:
            return await self.start(inp, id=new_id, task_queue=task_queue, **kwargs)
        except WorkflowAlreadyStartedError as err:
            raise BatchOrchestraError(
                f"batch {new_id!r} was started by another redrive of {workflow_id!r} at the "
                f"same time; it runs the same pages or items: follow it with "
                f"get_handle({new_id!r}), or pass id=... to start one of your own"
            ) from err

    async def create_series(
        self,
        spec: SeriesSpec,
        *,
        id: str,
        task_queue: str,
        confirm_timeout: timedelta | None = timedelta(seconds=30),
    ) -> SeriesHandle:
        """Create a series: a batch that runs on a schedule, each run over what is new.

        Everything is checked before anything lasting is created: the spec here (the batch
        template, the interval, the time zone, the window), the cron expression and time zone by
        Temporal (the schedule is created paused), then the processor, its ``window_end`` and the
        notifier by a worker on ``task_queue``; only then does the schedule start ticking. If a
        check fails, what was created is removed again and the error says what to fix.

        Args:
            spec: what runs, when, and over which window.
            id: the series' name: the ID of its Temporal Schedule and of its state workflow, and
                the prefix of every run's and batch's workflow ID.
            task_queue: where its runs and batches run (workers with ``BatchOrchestraPlugin``).
            confirm_timeout: how long to wait for a worker to check the series (None: do not
                wait; a failing check then shows when a worker starts).

        Raises:
            InvalidBatchInputError: the spec cannot work, Temporal refused the schedule, a
                worker refused the processor, or a series of that name exists.
            BatchOrchestraError: no worker checked the series within ``confirm_timeout``.
        """
        from .series_create import create_series

        return await create_series(
            self._client, spec, id=id, task_queue=task_queue, confirm_timeout=confirm_timeout
        )

    def get_series(self, name: str) -> SeriesHandle:
        """A handle to an existing series (nothing is checked until it is used)."""
        from .series import SeriesHandle

        return SeriesHandle(self._client, name)

    async def list_series(self) -> list[str]:
        """The names of the series in the namespace, sorted."""
        from .series import list_series

        return await list_series(self._client)

    async def _first_input(self, workflow_id: str) -> BatchOrchestratorInput:
        """The input a batch was started with.

        Read from its last run's first event, without the state carried across continue-as-new.
        """
        wf = self._client.get_workflow_handle(workflow_id)
        async for event in wf.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            (raw,) = await self._client.data_converter.decode(payloads, [dict])
            return input_from_wire(raw, strict=False)
        raise InvalidBatchInputError(f"batch {workflow_id!r} has no history to read its input")

    async def _free_redrive_id(self, workflow_id: str, kind: str = "redrive") -> str:
        for n in range(1, 1000):
            candidate = f"{workflow_id}-{kind}-{n}"
            try:
                await self._client.get_workflow_handle(candidate).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return candidate
                raise
        raise InvalidBatchInputError(
            f"batch {workflow_id!r} was redriven 999 times; pass id=... for the next redrive"
        )
