"""A page attempt that outlives its run: hand-overs, shutdowns, heartbeats, late reports.

A batch continues as new while pages run; their attempts go on and tell the next run how they
ended, by signal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from .._exceptions import WORKER_SHUTDOWN_ERROR_TYPE
from .._model.messages import (
    LIFECYCLE_QUERY,
    PAGE_FINISHED_SIGNAL,
    PAGE_RUNNING_SIGNAL,
    PageOutcome,
    ProcessPageInput,
)
from .failures import BATCH_CLOSED_ERROR_TYPE

__all__ = ["report_outcome", "start_heartbeats", "through_handovers"]

T = TypeVar("T")
_REPORT_TIMEOUT = 10.0


async def through_handovers(work: asyncio.Future[Any], running: PageOutcome) -> Any:
    """Await the page's work, through hand-overs of its run.

    Once its run has handed over, the attempt's heartbeats find no workflow run and Temporal cancels
    it ("not found"): the page goes on and reports its outcome to the next run by signal. It stops
    when the batch itself was cancelled or ended, and on worker shutdown (then as a retryable error:
    it may have done part of its work). An attempt that went on past a hand-over has had its one
    cancellation, so the worker's shutdown does not cancel it again: it stops as soon as its worker
    begins shutting down (else the shutdown would wait for the page's whole work).
    """
    said_running = False
    shutdown: asyncio.Future[None] | None = None
    try:
        while True:
            try:
                if shutdown is None:
                    return await asyncio.shield(work)
                await asyncio.wait({work, shutdown}, return_when=asyncio.FIRST_COMPLETED)
                if work.done():
                    return work.result()
                await _stop_for_shutdown(work)
            except asyncio.CancelledError:
                _uncancel()
                if work.done():  # finished as the cancellation came: its outcome stands
                    return work.result()
                details = activity.cancellation_details()
                if details is not None and details.worker_shutdown:
                    await _stop_for_shutdown(work)
                if not await _uncancellable(_batch_goes_on(running.execution)):
                    work.cancel()
                    # Nobody waits for this outcome any more. A benign error ends the attempt
                    # with a debug line; a bare CancelledError here made the SDK log a traceback
                    # per page.
                    raise ApplicationError(
                        "the batch was cancelled or ended while the page ran",
                        type=BATCH_CLOSED_ERROR_TYPE,
                        category=ApplicationErrorCategory.BENIGN,
                    ) from None
                if not said_running:
                    said_running = True
                    await _uncancellable(_say_running(running))
                if shutdown is None:
                    shutdown = asyncio.ensure_future(activity.wait_for_worker_shutdown())
    finally:
        if shutdown is not None:
            shutdown.cancel()


async def _stop_for_shutdown(work: asyncio.Future[Any]) -> NoReturn:
    """Stop the page's work: its worker shuts down (a retryable error)."""
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    raise ApplicationError(
        "the worker shut down while the page ran", type=WORKER_SHUTDOWN_ERROR_TYPE
    ) from None


def _uncancel() -> None:
    """Forget a cancellation this task has handled (so later waits are not cut short)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        while task.cancelling():
            task.uncancel()


async def _uncancellable(aw: Coroutine[Any, Any, T]) -> T:
    """Await ``aw`` to its end even if this task is cancelled again meanwhile."""
    fut = asyncio.ensure_future(aw)
    while True:
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            _uncancel()
            if fut.done():
                return fut.result()


async def _say_running(running: PageOutcome) -> None:
    """Tell the batch's current run that this attempt, handed over, had started and runs."""
    info = activity.info()
    handle = activity.client().get_workflow_handle(info.workflow_id or "")
    try:
        await asyncio.wait_for(handle.signal(PAGE_RUNNING_SIGNAL, running), _REPORT_TIMEOUT)
    except Exception as err:
        activity.logger.warning("could not say page %d runs: %s", running.page_num, err)


async def _batch_goes_on(execution: str) -> bool:
    """Whether the batch of this attempt is still running (a hand-over, not a cancellation).

    ``execution`` is the first run ID of the attempt's batch: another batch started since under
    the same workflow ID (its own first run) is not this batch going on.
    """
    info = activity.info()
    handle = activity.client().get_workflow_handle(info.workflow_id or "")
    try:
        desc = await asyncio.wait_for(handle.describe(), _REPORT_TIMEOUT)
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return False
        first_run_id = desc.raw_description.workflow_execution_info.first_run_id
        if execution and first_run_id and first_run_id != execution:
            return False
        state = await handle.query(LIFECYCLE_QUERY, rpc_timeout=timedelta(seconds=_REPORT_TIMEOUT))
        return bool(state != "cancelled")
    except Exception as err:  # cannot tell: finishing the page loses nothing
        activity.logger.warning(
            "could not check whether the batch goes on (%s); the page goes on", err
        )
        return True


HEARTBEAT_SHARE = 0.6
"""The library heartbeats a page every this share of its heartbeat timeout, the first one after
as long (18 s of the default 30 s): a dead worker's page is retried after the timeout all the
same, and a page costs one heartbeat action per 18-24 s it runs (the SDK sends at most one per
0.8 timeout) instead of one more at its start."""


def start_heartbeats(
    info: activity.Info, details: Callable[[], list[Any]] | None = None
) -> asyncio.Task[None] | None:
    """Heartbeat while the page runs.

    A dead worker's page is then retried after the heartbeat timeout (not ``page_timeout``), and a
    cancelled batch's cancellation reaches the page.
    """
    timeout = info.heartbeat_timeout
    if not timeout:
        return None
    interval = max(0.5, HEARTBEAT_SHARE * timeout.total_seconds())

    async def beat() -> None:
        # Not at once: Temporal times a heartbeat timeout from the attempt's start, so a first
        # heartbeat at 0 s finds a dead worker no sooner, and it is a billable action on every
        # page. A page shorter than ``interval`` sends none.
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*(details() if details is not None else ()))

    return asyncio.ensure_future(beat())


async def report_outcome(inp: ProcessPageInput, info: activity.Info, outcome: PageOutcome) -> None:
    """Report a long attempt's outcome by signal.

    The run that started it may have handed over to a new run, which then learns the outcome from
    this (the result itself goes to the run that scheduled the attempt, and is dropped if that run
    has closed).
    """
    if inp.report_after_seconds is None:
        return
    scheduled = info.current_attempt_scheduled_time
    elapsed = (datetime.now(timezone.utc) - scheduled).total_seconds()
    if elapsed < inp.report_after_seconds:
        return
    handle = activity.client().get_workflow_handle(info.workflow_id or "")
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await asyncio.wait_for(handle.signal(PAGE_FINISHED_SIGNAL, outcome), _REPORT_TIMEOUT)
        except Exception as err:  # the batch may have ended; the result path still stands
            activity.logger.warning(
                "could not report page %d's outcome: %s", inp.page_num, err or type(err).__name__
            )
