"""BatchOrchestratorClient and BatchOrchestratorHandle: start and steer batches."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryRejectedError,
)
from temporalio.common import QueryRejectCondition, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ._exceptions import BatchOrchestraError, InvalidBatchInputError
from ._ledger import LedgerItem, LedgerPage
from ._ledger_reader import collect_failures
from ._messages import (
    BATCH_WORKFLOW_TYPE,
    FAILURE_DETAILS_QUERY,
    PROGRESS_QUERY,
    REDRIVE_UPDATE,
    RETRY_PAGE_UPDATE,
    SET_RATE_LIMIT_UPDATE,
    SKIP_PAGE_UPDATE,
    FailureDetails,
    FailureDetailsRequest,
)
from ._processor import PageProcessor, _is_registered, find_page_processor
from ._typed import check_args
from ._types import (
    BatchFailures,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    ItemFailure,
    PageFailure,
    RedrivePage,
    RedriveSource,
    check_rate,
    input_from_wire,
    input_to_wire,
    validate_input,
)

if TYPE_CHECKING:
    from ._series_client import SeriesHandle
    from ._series_types import SeriesSpec

__all__ = ["BatchOrchestratorClient", "BatchOrchestratorHandle"]


class _Unset:
    """The default of a ``set_rate_limit`` argument: leave that limit as it is."""

    def __repr__(self) -> str:
        return "<unchanged>"


_UNSET = _Unset()


class BatchOrchestratorHandle:
    """A running or finished batch, followed across its continue-as-new runs."""

    def __init__(self, workflow_handle: WorkflowHandle[Any, Any], client: Client) -> None:
        self._handle = workflow_handle
        self._client = client

    @property
    def id(self) -> str:
        """The batch's workflow ID."""
        return self._handle.id

    @property
    def workflow_handle(self) -> WorkflowHandle[Any, Any]:
        """The underlying Temporal workflow handle (first run of the batch)."""
        return self._handle

    def _latest(self) -> WorkflowHandle[Any, Any]:
        # Queries and updates go to the batch's current run, whichever run this handle saw.
        return self._client.get_workflow_handle(self._handle.id)

    async def get_progress(
        self, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """The batch's progress now.

        A finished batch answers with its result, so no worker is needed once it has completed.

        Args:
            rpc_timeout: give up after this long (a running batch needs a worker to answer).
        """
        latest = self._latest()
        try:
            try:
                # A closed batch is refused at once instead of waiting for a worker to answer.
                progress: BatchOrchestratorProgress = await latest.query(
                    PROGRESS_QUERY,
                    result_type=BatchOrchestratorProgress,
                    rpc_timeout=rpc_timeout,
                    reject_condition=QueryRejectCondition.NOT_OPEN,
                )
            except WorkflowQueryRejectedError as err:
                if err.status == WorkflowExecutionStatus.COMPLETED:
                    return await self.result()
                # cancelled, failed or terminated: its last state, as a worker replays it
                progress = await latest.query(
                    PROGRESS_QUERY, result_type=BatchOrchestratorProgress, rpc_timeout=rpc_timeout
                )
            return progress
        except RPCError:
            desc = await latest.describe()
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                return await self.result()
            raise

    async def watch(
        self, interval: timedelta = timedelta(seconds=1)
    ) -> AsyncIterator[BatchOrchestratorProgress]:
        """Yield the progress every ``interval`` until the batch finishes.

        The last value is the result. Query errors while a run hands over to the next are retried.
        """
        done = asyncio.ensure_future(self.result())
        try:
            while not done.done():
                try:
                    yield await self.get_progress(rpc_timeout=interval * 5)
                except RPCError:
                    pass
                await asyncio.wait([done], timeout=interval.total_seconds())
            yield done.result()
        finally:
            done.cancel()

    async def result(self) -> BatchOrchestratorProgress:
        """Wait for the batch to finish, following continue-as-new, and return its progress."""
        result = await self._handle.result(follow_runs=True)
        if isinstance(result, BatchOrchestratorProgress):
            return result
        return await self.get_progress()

    async def _update(
        self, name: str, *args: Any, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        progress: BatchOrchestratorProgress = await self._latest().execute_update(
            name, args=args, result_type=BatchOrchestratorProgress, rpc_timeout=rpc_timeout
        )
        return progress

    async def pause(self, *, rpc_timeout: timedelta | None = None) -> BatchOrchestratorProgress:
        """Set parallelism to 0: running pages finish, no new page starts."""
        return await self._update("pause", self._by, rpc_timeout=rpc_timeout)

    async def resume(self, *, rpc_timeout: timedelta | None = None) -> BatchOrchestratorProgress:
        """Resume a paused batch at its parallelism cap (ramping up again if it has ``ramp_up``)."""
        return await self._update("resume", self._by, rpc_timeout=rpc_timeout)

    async def set_max_parallelism(
        self, n: int, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Set the parallelism cap (0 pauses), remembering the old value."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidBatchInputError(f"max_parallelism must be an int >= 0, got {n!r}")
        return await self._update("set_max_parallelism", n, self._by, rpc_timeout=rpc_timeout)

    async def restore_max_parallelism(
        self, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Return to the parallelism cap before the last ``set_max_parallelism``."""
        return await self._update("restore_max_parallelism", self._by, rpc_timeout=rpc_timeout)

    async def set_rate_limit(
        self,
        *,
        max_pages_per_second: float | None | _Unset = _UNSET,
        max_items_per_second: float | None | _Unset = _UNSET,
        rpc_timeout: timedelta | None = None,
    ) -> BatchOrchestratorProgress:
        """Set the batch's rate limits while it runs.

        None lifts a limit, and a limit left out stays as it is. Applies across all chains and
        workers from now on.

        Raises:
            InvalidBatchInputError: a limit is not None or a positive number.
        """
        limits: dict[str, float | None] = {}
        for key, value in (
            ("max_pages_per_second", max_pages_per_second),
            ("max_items_per_second", max_items_per_second),
        ):
            if not isinstance(value, _Unset):
                check_rate(value, key)
                limits[key] = None if value is None else float(value)
        return await self._update(SET_RATE_LIMIT_UPDATE, limits, self._by, rpc_timeout=rpc_timeout)

    async def retry_page(
        self, page_num: int, *, reason: str | None = None, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Start a pending, retrying or stuck page now, first in line.

        It does not wait for its next scheduled retry; the attempt counts as usual. ``reason``, if
        given, is logged with who asked.

        Raises:
            InvalidBatchInputError: ``page_num`` is not an int >= 0.
            temporalio.client.WorkflowUpdateFailedError: the batch refused: the page is
                running, finished, failed for good or unknown (the cause says which).
        """
        _check_page_num(page_num)
        return await self._update(
            RETRY_PAGE_UPDATE, page_num, reason, self._by, rpc_timeout=rpc_timeout
        )

    async def skip_page(
        self, page_num: int, reason: str, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Let a pending, retrying or stuck page go without processing it.

        It counts in ``num_skipped_pages``, not as failed. Its chain goes on if its successors were
        enqueued, or if its processor finds them apart (``next_page``, then run for it now).
        ``reason`` is logged with who asked.

        Raises:
            InvalidBatchInputError: ``page_num`` is not an int >= 0, or ``reason`` is empty.
            temporalio.client.WorkflowUpdateFailedError: the batch refused: the page is
                running, finished, failed for good or unknown (the cause says which).
        """
        _check_page_num(page_num)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidBatchInputError(
                f"skip_page needs a reason (it is logged with who asked), got {reason!r}"
            )
        return await self._update(
            SKIP_PAGE_UPDATE, page_num, reason, self._by, rpc_timeout=rpc_timeout
        )

    async def redrive(self, *, rpc_timeout: timedelta | None = None) -> BatchOrchestratorProgress:
        """Queue every failed page of this running (or paused) batch again.

        Each gets a fresh retry budget and keeps its page number; ``num_failed_pages`` goes to
        0. The batch reads them back from its failure ledger a chunk at a time (meanwhile they
        count as pending). A paused batch stays paused: ``resume()`` runs them. A finished batch
        is redriven by ``BatchOrchestratorClient.redrive`` (a new batch).

        Raises:
            temporalio.client.WorkflowUpdateFailedError: the batch is not running.
        """
        return await self._update(REDRIVE_UPDATE, self._by, rpc_timeout=rpc_timeout)

    async def failures(
        self, *, all: bool = False, rpc_timeout: timedelta | None = None
    ) -> BatchFailures:
        """The batch's failed, stuck and retrying pages and failed items, with whole cursors.

        Without ``all``: those progress lists (the most recent 100 of each), whole. With it:
        every one (failed pages and items are read from the batch's failure ledger in its
        history; stuck and retrying pages from the batch, a page of them at a time). A running
        batch needs a worker to answer; a finished one does not.

        Args:
            all: list every failure, not only the most recent 100 of each kind.
            rpc_timeout: how long a worker gets to answer each query.
        """
        latest = self._latest()
        desc = await latest.describe()
        progress = await self.get_progress(rpc_timeout=rpc_timeout)
        info = desc.raw_description.workflow_execution_info
        execution = info.first_run_id or desc.run_id
        out = BatchFailures(
            num_failed_pages=progress.num_failed_pages,
            num_stuck_pages=progress.num_stuck_pages,
            num_retrying_pages=progress.num_retrying_pages,
            num_failed_items=progress.num_failed_items,
            progress=progress,
        )
        running = desc.status == WorkflowExecutionStatus.RUNNING
        out.stuck_pages = await self._held("stuck", progress.stuck_pages, all, running, rpc_timeout)
        out.retrying_pages = await self._held(
            "retrying", progress.retrying_pages, all, running, rpc_timeout
        )
        out.failing_discoveries = await self._held(
            "discovering", progress.failing_discoveries, all, running, rpc_timeout
        )
        # What the batch has not written to its ledger yet: asked before the ledger is read, so
        # that a failure written in between is in one or the other.
        unwritten = FailureDetails()
        if running:
            unwritten = await self._details("failed", None, rpc_timeout)
            unwritten.items = (await self._details("items", None, rpc_timeout)).items
        keep = None if all else 100
        pages: dict[int, PageFailure] = {}
        items: dict[tuple[int, str], ItemFailure] = {}
        if progress.num_ledger_records:
            found = await collect_failures(
                self._client,
                self.id,
                execution,
                desc.run_id or "",
                progress.num_runs,
                keep=keep,
            )
            out.unavailable_runs = found.unavailable_runs
            for e in found.pages:
                pages[e.page_num] = _ledger_page(e)
            for i in found.items:
                items[(i.page_num, i.key)] = _ledger_item(i)
        for f in progress.failed_pages:  # from a version without the ledger: whole already
            if f.cursor_is_whole and f.page_num not in pages and not progress.num_ledger_records:
                pages[f.page_num] = f
        for f in unwritten.pages:
            pages.pop(f.page_num, None)
            pages[f.page_num] = f
        if not progress.num_ledger_records:
            for item in progress.failed_items:
                items.setdefault((item.page_num, item.key), item)
        for item in unwritten.items:
            items.pop((item.page_num, item.key), None)
            items[(item.page_num, item.key)] = item
        out.failed_pages = list(pages.values())[-keep:] if keep else list(pages.values())
        out.failed_items = list(items.values())[-keep:] if keep else list(items.values())
        out.complete = (
            out.unavailable_runs == 0
            and len(out.failed_pages) == out.num_failed_pages
            and len(out.stuck_pages) == out.num_stuck_pages
            and len(out.retrying_pages) == out.num_retrying_pages
            and len(out.failed_items) == out.num_failed_items
            and all_whole(out)
        )
        return out

    async def _details(
        self, kind: str, page_nums: list[int] | None, rpc_timeout: timedelta | None
    ) -> FailureDetails:
        """Every page the ``failure_details`` query has of ``kind``, a page of answers at a time."""
        out = FailureDetails()
        after = -1
        while True:
            answer: FailureDetails = await self._latest().query(
                FAILURE_DETAILS_QUERY,
                FailureDetailsRequest(kind, page_nums, after),
                result_type=FailureDetails,
                rpc_timeout=rpc_timeout,
            )
            out.pages.extend(answer.pages)
            out.items.extend(answer.items)
            if answer.next_after is None:
                return out
            after = answer.next_after

    async def _held(
        self,
        kind: str,
        listed: list[PageFailure],
        all: bool,
        running: bool,
        rpc_timeout: timedelta | None,
    ) -> list[PageFailure]:
        """Held pages of ``kind`` with whole cursors: those listed, or (``all``) every one."""
        if not running:
            return listed
        if all:
            return (await self._details(kind, None, rpc_timeout)).pages
        partial = [f.page_num for f in listed if not f.cursor_is_whole]
        if not partial:
            return listed
        whole = {f.page_num: f for f in (await self._details(kind, partial, rpc_timeout)).pages}
        return [whole.get(f.page_num, f) for f in listed]

    @property
    def _by(self) -> str:
        """Who asks, as control changes record it: the client's identity."""
        return self._client.identity


def _first_run_id(desc: Any) -> str:
    """The first run ID of the batch execution ``desc`` (a description) is a run of."""
    info = desc.raw_description.workflow_execution_info
    return str(info.first_run_id or desc.run_id)


def all_whole(f: BatchFailures) -> bool:
    """Whether every cursor and key listed in ``f`` is whole (none a preview)."""
    pages = f.failed_pages + f.stuck_pages + f.retrying_pages + f.failing_discoveries
    return all(p.cursor_is_whole for p in pages) and all(
        i.key_length <= len(i.key) for i in f.failed_items
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _ledger_page(e: LedgerPage) -> PageFailure:
    return PageFailure(
        page_num=e.page_num,
        cursor_str=e.cursor,
        cursor_length=len(e.cursor),
        attempts=e.attempts,
        error_type=e.error_type,
        error_message=e.error_message,
        failed_at=_dt(e.failed_at),
        size=e.size,
        successor_enqueued=e.successor_enqueued,
    )


def _ledger_item(e: LedgerItem) -> ItemFailure:
    return ItemFailure(
        key=e.key,
        page_num=e.page_num,
        error_type=e.error_type,
        error_message=e.error_message,
        failed_at=_dt(e.failed_at),
        key_length=len(e.key),
    )


def _check_page_num(page_num: int) -> None:
    if isinstance(page_num, bool) or not isinstance(page_num, int) or page_num < 0:
        raise InvalidBatchInputError(f"page_num must be an int >= 0, got {page_num!r}")


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
        from ._series_create import create_series

        return await create_series(
            self._client, spec, id=id, task_queue=task_queue, confirm_timeout=confirm_timeout
        )

    def get_series(self, name: str) -> SeriesHandle:
        """A handle to an existing series (nothing is checked until it is used)."""
        from ._series_client import SeriesHandle

        return SeriesHandle(self._client, name)

    async def list_series(self) -> list[str]:
        """The names of the series in the namespace, sorted."""
        from ._series_client import list_series

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
