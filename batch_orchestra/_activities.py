"""The activities: describe a batch's processor, run one page attempt, run a tracker."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
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
    successors: list[BatchPage] | None = None
    """Successors the page enqueued but that were not sent on their own (see PageResult)."""


@dataclass
class PageResult:
    """What a page attempt reports back."""

    items: int = 0
    successors: list[BatchPage] | None = None
    """Successors the page enqueued just before it finished: they travel with the result
    instead of in an enqueue message of their own (see ``_PageEnqueue``)."""


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

    enqueues = _PageEnqueue(info.workflow_id or "", inp.page_num, inp.processor)

    extra: dict[str, Any] = {"batch_id": inp.batch_id, "page_num": inp.page_num}
    context = BatchProcessorContext(
        page=inp.page,
        page_num=inp.page_num,
        attempt=inp.attempt,
        args=inp.args,
        batch_id=inp.batch_id,
        successor_enqueued=inp.successor_enqueued,
        enqueue=enqueues,
        logger=_ContextLogger(_page_logger, extra),
    )
    try:
        try:
            returned, successors = await _run_attempt(cls, context, enqueues)
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
    result = PageResult(items=items + context._items, successors=successors)
    await _report(inp, info, PageOutcome(
        inp.page_num, inp.attempt, items=result.items, successors=successors))
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
MAX_UPDATES_IN_FLIGHT = 3
"""Enqueue updates one process keeps in flight per batch. Enqueues made while that many are in
flight wait and go together in the next one (Temporal refuses more than 10 in-flight updates
per workflow by default, and every update costs a workflow task)."""


class _EnqueueSender:
    """Sends one batch's enqueues from this process: at once while fewer than
    ``MAX_UPDATES_IN_FLIGHT`` updates are in flight, otherwise coalesced into the next update.
    At low load every enqueue goes alone and at once; under load, several pages' enqueues share
    an update and its workflow task."""

    def __init__(self, handle: WorkflowHandle[Any, Any]) -> None:
        self._handle = handle
        self._queue: list[tuple[EnqueueRequest, asyncio.Future[None]]] = []
        self._in_flight = 0

    def submit(self, request: EnqueueRequest) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((request, done))
        if self._in_flight < MAX_UPDATES_IN_FLIGHT:
            self._send_queued()
        return done

    def _send_queued(self) -> None:
        batch, self._queue = self._queue, []
        self._in_flight += 1
        asyncio.ensure_future(self._send(batch))

    async def _send(self, batch: list[tuple[EnqueueRequest, asyncio.Future[None]]]) -> None:
        try:
            await _deliver(self._handle, [request for request, _ in batch])
        except BaseException as err:
            for _, done in batch:
                if not done.done():
                    done.set_exception(err)
        else:
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
        finally:
            self._in_flight -= 1
            if self._queue:
                self._send_queued()
            elif not self._in_flight and _senders.get(self._handle.id) is self:
                del _senders[self._handle.id]


_senders: dict[str, _EnqueueSender] = {}


async def _send_enqueue(handle: WorkflowHandle[Any, Any], request: EnqueueRequest) -> None:
    """Hand a page's successors to its batch; returns once the workflow has them."""
    sender = _senders.get(handle.id)
    if sender is None:
        sender = _senders[handle.id] = _EnqueueSender(handle)
    await sender.submit(request)


async def _deliver(handle: WorkflowHandle[Any, Any], requests: list[EnqueueRequest]) -> None:
    """Hand successors over by update (its workflow task is dispatched at once, so the hop is
    short) or, when the server refuses updates (Temporal caps them per workflow: 10 in flight,
    a few thousand per run) or a run closes under one, by signal. The workflow ignores a second
    enqueue from the same page, so a fallback after an update that did land is harmless."""
    from ._workflow import BatchOrchestrator

    now, wid = time.monotonic(), handle.id
    if not _ENQUEUE_BY_SIGNAL and now >= _prefer_signal_until.get(wid, 0.0):
        try:
            if len(requests) == 1:
                await handle.execute_update(
                    BatchOrchestrator.enqueue, requests[0],
                    id=f"enqueue-{requests[0].parent_page_num}",
                )
            else:
                await handle.execute_update(
                    BatchOrchestrator.enqueue_many, requests,
                    id=f"enqueue-{requests[0].parent_page_num}-{uuid.uuid4().hex[:12]}",
                )
            return
        except Exception as err:  # refused or aborted: the signal below is always accepted
            if len(_prefer_signal_until) > 1000:
                _prefer_signal_until.clear()
            _prefer_signal_until[wid] = now + _PREFER_SIGNAL_SECONDS
            activity.logger.debug("enqueue update refused (%s); using a signal", err)
    for request in requests:
        await handle.signal(BatchOrchestrator.enqueue_pages, request)


_DEFER_GRACE_SECONDS = 0.002
"""A held enqueue goes out on its own if its page is still running this long after it."""
_quick_pages: dict[str, float] = {}
"""Per processor, a moving average of "the page finished within the grace after enqueueing".
Above one half, this process holds enqueues back (see ``_PageEnqueue``)."""
_QUICK_WEIGHT = 0.125


def _learn_quickness(processor: str, quick: bool) -> None:
    q = _quick_pages.get(processor, 0.0)
    _quick_pages[processor] = q + _QUICK_WEIGHT * ((1.0 if quick else 0.0) - q)


class _PageEnqueue:
    """One attempt's enqueue (a page enqueues once per run): sent at once, or, while this
    process finds the processor's pages quick, held back for a moment. A page that finishes
    right after it enqueues (little or no work of its own) hands its successors over in its
    result, one message instead of two, which is most of such a page's cost; if the page is
    still running after the grace, the enqueue goes out on its own, as usual."""

    def __init__(self, workflow_id: str, page_num: int, processor: str) -> None:
        self._workflow_id, self._page_num, self._processor = workflow_id, page_num, processor
        self._request: EnqueueRequest | None = None
        self._handle: WorkflowHandle[Any, Any] | None = None
        self._enqueued_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._send: asyncio.Future[None] | None = None

    async def __call__(self, pages: list[BatchPage]) -> None:
        self._request = EnqueueRequest(self._page_num, pages)
        self._handle = activity.client().get_workflow_handle(self._workflow_id)
        self._enqueued_at = time.monotonic()
        if _quick_pages.get(self._processor, 0.0) >= 0.5:
            self._timer = asyncio.get_running_loop().call_later(
                _DEFER_GRACE_SECONDS, self._send_now
            )
            return
        self._send_now()
        # The page goes on with its items while the enqueue is in flight; one turn of the
        # event loop puts the request on the wire even if the page then blocks the loop.
        await asyncio.sleep(0)

    def _send_now(self) -> None:
        assert self._request is not None and self._handle is not None
        self._timer = None
        self._send = asyncio.ensure_future(_send_enqueue(self._handle, self._request))

    def _take_held(self) -> bool:
        """Stop the grace timer; whether an enqueue was still held."""
        if self._timer is None:
            return False
        self._timer.cancel()
        self._timer = None
        return True

    async def page_failed(self) -> None:
        """Send a held enqueue now and wait for it (an enqueue's error gives way to the page's)."""
        if self._take_held():
            self._send_now()
        if self._send is not None:
            await asyncio.gather(self._send, return_exceptions=True)

    async def page_finished(self) -> list[BatchPage] | None:
        """Learn how quick the page was; return the successors to carry in the result, if the
        enqueue was still held, else wait for it to be delivered."""
        if self._request is None:
            return None
        _learn_quickness(
            self._processor, time.monotonic() - self._enqueued_at < _DEFER_GRACE_SECONDS
        )
        if self._take_held():
            return self._request.pages
        if self._send is not None:
            await self._send
        return None


async def _run_attempt(
    cls: type[PageProcessor], context: BatchProcessorContext, enqueues: _PageEnqueue
) -> tuple[Any, list[BatchPage] | None]:
    """Run the processor, then see its enqueue through: the successor must be handed over
    before the attempt ends, failed or not (an at-most-once page that fails is never retried,
    so its chain would end there). Returns what ``run`` returned and the successors to carry
    in the result."""
    try:
        returned = await cls().run(context)
    except BaseException:
        await enqueues.page_failed()
        raise
    return returned, await enqueues.page_finished()


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
