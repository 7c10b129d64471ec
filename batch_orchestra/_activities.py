"""The activities: describe a batch's processor, run one page attempt, run a tracker."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from ._exceptions import (
    INVALID_INPUT_ERROR_TYPE,
    PROCESSOR_DEFINITION_ERROR_TYPE,
    PROCESSOR_USAGE_ERROR_TYPE,
    UNKNOWN_PROCESSOR_ERROR_TYPE,
    UNKNOWN_TRACKER_ERROR_TYPE,
    InvalidBatchInputError,
    ProcessorDefinitionError,
    ProcessorUsageError,
    UnknownBatchTrackerError,
    UnknownPageProcessorError,
)
from ._processor import (
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    get_page_processor,
    processor_settings,
)
from ._tracker import BatchTrackerContext, get_batch_tracker
from ._types import BatchOrchestratorProgress, ProcessorSettings

__all__ = [
    "DescribeBatchInput",
    "EnqueueRequest",
    "PageOutcome",
    "PageResult",
    "ProcessPageInput",
    "TrackerInput",
    "describe_batch",
    "process_page",
    "run_batch_tracker",
]

_page_logger = logging.getLogger("batch_orchestra.page")
_ENQUEUE_BY_SIGNAL = os.environ.get("BATCH_ORCHESTRA_ENQUEUE_BY_SIGNAL") == "1"  # for benchmarks
_tracker_logger = logging.getLogger("batch_orchestra.tracker")


class _ContextLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the batch's fields to every record, as ``extra`` and as a readable suffix."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        fields = ", ".join(f"{k}={v!r}" for k, v in (self.extra or {}).items())
        return f"{msg} ({fields})", kwargs


@dataclass
class DescribeBatchInput:
    """What ``describe_batch`` checks: the processor and, optionally, the tracker."""

    processor: str
    tracker: str | None = None


@dataclass
class ProcessPageInput:
    """One attempt at one page."""

    processor: str
    page: BatchPage
    page_num: int
    attempt: int
    args: str | None
    batch_id: str
    successor_enqueued: bool
    report_after_seconds: float | None = None
    """An attempt that has run this long also reports its outcome to the batch by signal, in
    case the run that started it has handed over in the meantime."""


@dataclass
class PageOutcome:
    """How an attempt ended, reported by signal to whichever run the batch is in now."""

    page_num: int
    attempt: int
    items: int = 0
    error_type: str | None = None
    error_message: str = ""
    non_retryable: bool = False


@dataclass
class PageResult:
    """What a page attempt reports back."""

    items: int = 0


@dataclass
class EnqueueRequest:
    """The signal a page sends to hand its successor page(s) to the orchestrator."""

    parent_page_num: int
    pages: list[BatchPage] = field(default_factory=list)


@dataclass
class TrackerInput:
    """One call of a batch tracker."""

    name: str
    args: str | None
    batch_id: str
    progress: BatchOrchestratorProgress
    is_final: bool = False


@activity.defn(name="batch_orchestra.describe_batch")
async def describe_batch(inp: DescribeBatchInput) -> ProcessorSettings:
    """Read the processor's retry settings (recorded in history) and check the tracker exists."""
    try:
        settings = processor_settings(get_page_processor(inp.processor))
    except UnknownPageProcessorError as err:
        raise ApplicationError(
            str(err), type=UNKNOWN_PROCESSOR_ERROR_TYPE, non_retryable=True
        ) from None
    except ProcessorDefinitionError as err:
        raise ApplicationError(
            str(err), type=PROCESSOR_DEFINITION_ERROR_TYPE, non_retryable=True
        ) from None
    if inp.tracker is not None:
        try:
            get_batch_tracker(inp.tracker)
        except UnknownBatchTrackerError as err:
            raise ApplicationError(
                str(err), type=UNKNOWN_TRACKER_ERROR_TYPE, non_retryable=True
            ) from None
    return settings


@activity.defn(name="batch_orchestra.process_page")
async def process_page(inp: ProcessPageInput) -> PageResult:
    """Run one attempt of the processor on one page; its enqueues become updates."""
    info = activity.info()
    try:
        cls = get_page_processor(inp.processor)
    except UnknownPageProcessorError as err:
        # Retryable: another worker, or the next deploy, may know the processor.
        raise ApplicationError(str(err), type=UNKNOWN_PROCESSOR_ERROR_TYPE) from None

    sends: list[asyncio.Future[Any]] = []

    async def enqueue(pages: list[BatchPage]) -> None:
        handle = activity.client().get_workflow_handle(info.workflow_id or "")
        request = EnqueueRequest(inp.page_num, pages)
        # The page goes on with its items while the enqueue is in flight; one turn of the
        # event loop puts the request on the wire even if the page then blocks the loop.
        sends.append(asyncio.ensure_future(_send_enqueue(handle, request)))
        await asyncio.sleep(0)

    extra: dict[str, Any] = {"batch_id": inp.batch_id, "page_num": inp.page_num}
    context = BatchProcessorContext(
        page=inp.page,
        page_num=inp.page_num,
        attempt=inp.attempt,
        args=inp.args,
        batch_id=inp.batch_id,
        successor_enqueued=inp.successor_enqueued,
        enqueue=enqueue,
        logger=_ContextLogger(_page_logger, extra),
    )
    try:
        try:
            returned = await _run_attempt(cls, context, sends)
        except (ProcessorUsageError, InvalidBatchInputError) as err:
            kind = (
                PROCESSOR_USAGE_ERROR_TYPE
                if isinstance(err, ProcessorUsageError)
                else INVALID_INPUT_ERROR_TYPE
            )
            raise ApplicationError(str(err), type=kind, non_retryable=True) from err
    except Exception as err:
        await _report(inp, info, _outcome_of_error(inp, err))
        raise
    items = returned if isinstance(returned, int) and not isinstance(returned, bool) else 0
    result = PageResult(items=items + context._items)
    await _report(inp, info, PageOutcome(inp.page_num, inp.attempt, items=result.items))
    return result


def _outcome_of_error(inp: ProcessPageInput, err: BaseException) -> PageOutcome:
    if isinstance(err, ApplicationError):
        kind, non_retryable = err.type or "Error", err.non_retryable
        message = err.message
    else:
        kind, non_retryable, message = type(err).__name__, False, str(err)
    return PageOutcome(inp.page_num, inp.attempt, 0, kind, message[:2000], non_retryable)


async def _report(inp: ProcessPageInput, info: activity.Info, outcome: PageOutcome) -> None:
    """Report a long attempt's outcome by signal: the run that started it may have handed
    over to a new run, which then learns the outcome from this (the result itself goes to the
    run that scheduled the attempt, and is dropped if that run has closed)."""
    if inp.report_after_seconds is None:
        return
    scheduled = info.current_attempt_scheduled_time
    elapsed = (datetime.now(timezone.utc) - scheduled).total_seconds()
    if elapsed < inp.report_after_seconds:
        return
    from ._workflow import BatchOrchestrator

    handle = activity.client().get_workflow_handle(info.workflow_id or "")
    try:
        await handle.signal(BatchOrchestrator.page_finished, outcome)
    except Exception as err:  # the batch may have ended; the result path still stands
        activity.logger.warning("could not report page %d's outcome: %s", inp.page_num, err)


_prefer_signal_until: dict[str, float] = {}
"""Batches (workflow IDs) whose enqueue updates were refused lately: use signals for a while."""
_PREFER_SIGNAL_SECONDS = 30.0
_updates_in_flight: dict[str, int] = {}
"""Enqueue updates this process has in flight, per batch."""
MAX_UPDATES_IN_FLIGHT = 4
"""Past this many in-flight enqueue updates per batch from one process, enqueues go by signal
(Temporal refuses more than 10 in-flight updates per workflow by default)."""


async def _send_enqueue(handle: WorkflowHandle[Any, Any], request: EnqueueRequest) -> None:
    """Hand successors over by update (its workflow task is dispatched at once, so the hop is
    short) or, when the server refuses updates (Temporal caps them per workflow: 10 in flight,
    a few thousand per run) or a run closes under one, by signal. The workflow ignores a second
    enqueue from the same page, so a fallback after an update that did land is harmless."""
    from ._workflow import BatchOrchestrator

    now, wid = time.monotonic(), handle.id
    if (
        not _ENQUEUE_BY_SIGNAL
        and now >= _prefer_signal_until.get(wid, 0.0)
        and _updates_in_flight.get(wid, 0) < MAX_UPDATES_IN_FLIGHT
    ):
        _updates_in_flight[wid] = _updates_in_flight.get(wid, 0) + 1
        try:
            await handle.execute_update(
                BatchOrchestrator.enqueue, request, id=f"enqueue-{request.parent_page_num}"
            )
            return
        except Exception as err:  # refused or aborted: the signal below is always accepted
            if len(_prefer_signal_until) > 1000:
                _prefer_signal_until.clear()
            _prefer_signal_until[wid] = now + _PREFER_SIGNAL_SECONDS
            activity.logger.debug("enqueue update refused (%s); using a signal", err)
        finally:
            left = _updates_in_flight[wid] - 1
            if left:
                _updates_in_flight[wid] = left
            else:
                del _updates_in_flight[wid]
    await handle.signal(BatchOrchestrator.enqueue_pages, request)


async def _run_attempt(
    cls: type[PageProcessor], context: BatchProcessorContext, sends: list[asyncio.Future[Any]]
) -> Any:
    """Run the processor, then wait for its in-flight enqueues: the successor must be handed
    over before the attempt ends, failed or not (an at-most-once page that fails is never
    retried, so its chain would end there). The page's own error wins over an enqueue's."""
    try:
        returned = await cls().run(context)
    except BaseException:
        await asyncio.gather(*sends, return_exceptions=True)
        raise
    for send in sends:
        await send
    return returned


@activity.defn(name="batch_orchestra.run_batch_tracker")
async def run_batch_tracker(inp: TrackerInput) -> None:
    """Call a registered tracker with the batch's progress."""
    try:
        fn = get_batch_tracker(inp.name)
    except UnknownBatchTrackerError as err:
        raise ApplicationError(str(err), type=UNKNOWN_TRACKER_ERROR_TYPE) from None
    logger = _ContextLogger(_tracker_logger, {"batch_id": inp.batch_id})
    await fn(
        BatchTrackerContext(
            progress=inp.progress,
            batch_id=inp.batch_id,
            args=inp.args,
            is_final=inp.is_final,
            logger=logger,
        )
    )
