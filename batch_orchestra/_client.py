"""BatchOrchestratorClient and BatchOrchestratorHandle: start and steer batches."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from ._exceptions import InvalidBatchInputError
from ._messages import BATCH_WORKFLOW_TYPE, PROGRESS_QUERY, SET_RATE_LIMIT_UPDATE
from ._processor import PageProcessor, _is_registered
from ._types import (
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    check_rate,
    input_to_wire,
    validate_input,
)

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
        """The batch's progress now. A finished batch answers with its result, so no worker
        is needed once it has completed.

        Args:
            rpc_timeout: give up after this long (a running batch needs a worker to answer).
        """
        latest = self._latest()
        try:
            progress: BatchOrchestratorProgress = await latest.query(
                PROGRESS_QUERY, result_type=BatchOrchestratorProgress, rpc_timeout=rpc_timeout
            )
            return progress
        except RPCError:
            desc = await latest.describe()
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                return await self.result()
            raise

    async def watch(self, interval: timedelta = timedelta(seconds=1)) -> AsyncIterator[
        BatchOrchestratorProgress
    ]:
        """Yield the progress every ``interval`` until the batch finishes (the last value is the
        result). Query errors while a run hands over to the next are retried."""
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

    async def pause(
        self, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Set parallelism to 0: running pages finish, no new page starts."""
        return await self._update("pause", self._by, rpc_timeout=rpc_timeout)

    async def resume(
        self, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Resume a paused batch at its parallelism cap (ramping up again if it has a
        ``ramp_up``)."""
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
        self, *, max_pages_per_second: float | None | _Unset = _UNSET,
        max_items_per_second: float | None | _Unset = _UNSET,
        rpc_timeout: timedelta | None = None,
    ) -> BatchOrchestratorProgress:
        """Set the batch's rate limits while it runs; None lifts a limit, and a limit left out
        stays as it is. Applies across all chains and workers from now on.

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

    @property
    def _by(self) -> str:
        """Who asks, as control changes record it: the client's identity."""
        return self._client.identity


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
        """Validate ``input`` and start a batch; extra keyword arguments go to
        ``Client.start_workflow``.

        Raises:
            InvalidBatchInputError: a field of ``input`` cannot work; the message names it.
        """
        proc = input.page_processor
        if inspect.isclass(proc) and not (issubclass(proc, PageProcessor) and _is_registered(proc)):
            raise InvalidBatchInputError(
                f"page_processor {proc!r} is not a registered page processor; decorate it "
                "with @page_processor, or pass the registered name"
            )
        validate_input(input)
        handle: WorkflowHandle[Any, Any] = await self._client.start_workflow(
            BATCH_WORKFLOW_TYPE, input_to_wire(input), id=id, task_queue=task_queue,
            result_type=BatchOrchestratorProgress, **kwargs,
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
