"""BatchOrchestratorHandle: follow one batch, read its progress and steer it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryRejectedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError

from .._exceptions import InvalidBatchInputError
from .._model import BatchFailures, BatchOrchestratorProgress, check_rate
from .._model.messages import (
    PAUSE_UPDATE,
    PROGRESS_QUERY,
    REDRIVE_UPDATE,
    RESTORE_MAX_PARALLELISM_UPDATE,
    RESUME_UPDATE,
    RETRY_PAGE_UPDATE,
    SET_MAX_PARALLELISM_UPDATE,
    SET_RATE_LIMIT_UPDATE,
    SKIP_PAGE_UPDATE,
)
from .._result_wait import wait_for_result
from .failures import read_failures

__all__ = ["BatchOrchestratorHandle"]


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
        result = await wait_for_result(self._handle, follow_runs=True)
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
        return await self._update(PAUSE_UPDATE, self._by, rpc_timeout=rpc_timeout)

    async def resume(self, *, rpc_timeout: timedelta | None = None) -> BatchOrchestratorProgress:
        """Resume a paused batch at its parallelism cap (ramping up again if it has ``ramp_up``)."""
        return await self._update(RESUME_UPDATE, self._by, rpc_timeout=rpc_timeout)

    async def set_max_parallelism(
        self, n: int, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Set the parallelism cap (0 pauses), remembering the old value."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidBatchInputError(f"max_parallelism must be an int >= 0, got {n!r}")
        return await self._update(SET_MAX_PARALLELISM_UPDATE, n, self._by, rpc_timeout=rpc_timeout)

    async def restore_max_parallelism(
        self, *, rpc_timeout: timedelta | None = None
    ) -> BatchOrchestratorProgress:
        """Return to the parallelism cap before the last ``set_max_parallelism``."""
        return await self._update(RESTORE_MAX_PARALLELISM_UPDATE, self._by, rpc_timeout=rpc_timeout)

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
        progress = functools.partial(self.get_progress, rpc_timeout=rpc_timeout)
        return await read_failures(
            self._client, self.id, progress, all=all, rpc_timeout=rpc_timeout
        )

    @property
    def _by(self) -> str:
        """Who asks, as control changes record it: the client's identity."""
        return self._client.identity


def _check_page_num(page_num: int) -> None:
    if isinstance(page_num, bool) or not isinstance(page_num, int) or page_num < 0:
        raise InvalidBatchInputError(f"page_num must be an int >= 0, got {page_num!r}")
