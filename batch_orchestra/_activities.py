"""The activities: describe a batch, run one page attempt, call a tracker, notifier or health check.

They are methods of ``BatchActivities``, which the plugin creates once per worker with the
worker's ``EnqueueTransport``: no state lives in module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import numbers
import time
from collections.abc import Callable, Coroutine, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from ._checkpoint import with_checkpoint
from ._enqueue import EnqueueTransport, PageEnqueue
from ._errors_table import MAX_ERROR_MESSAGE
from ._exceptions import (
    INVALID_ARGS_ERROR_TYPE,
    INVALID_INPUT_ERROR_TYPE,
    PROCESSOR_DEFINITION_ERROR_TYPE,
    PROCESSOR_USAGE_ERROR_TYPE,
    UNKNOWN_HEALTH_CHECK_ERROR_TYPE,
    UNKNOWN_NOTIFIER_ERROR_TYPE,
    UNKNOWN_PROCESSOR_ERROR_TYPE,
    UNKNOWN_TRACKER_ERROR_TYPE,
    WORKER_SHUTDOWN_ERROR_TYPE,
    InvalidArgsError,
    InvalidBatchInputError,
    ProcessorDefinitionError,
    ProcessorUsageError,
    UnknownBatchNotifierError,
    UnknownBatchTrackerError,
    UnknownHealthCheckError,
    UnknownPageProcessorError,
)
from ._health import Health, HealthCheckContext, get_health_check
from ._ledger import ReadLedgerInput, ReadLedgerResult
from ._ledger_reader import read_chunk
from ._messages import (
    CHECK_HEALTH,
    DESCRIBE_BATCH,
    DISCOVER_PAGE,
    LIFECYCLE_QUERY,
    NOTIFY,
    PAGE_FINISHED_SIGNAL,
    PAGE_RUNNING_SIGNAL,
    PROCESS_PAGE,
    READ_LEDGER,
    RECORD_FAILURES,
    REDUCE_RESULTS,
    RUN_TRACKER,
    DescribeBatchInput,
    DiscoverPageInput,
    DiscoverPageResult,
    HealthCheckInput,
    NotifyInput,
    PageOutcome,
    PageResult,
    ProcessPageInput,
    ReduceInput,
    TrackerInput,
)
from ._notifier import BatchNotifierContext, get_batch_notifier
from ._processor import (
    MAX_PAGES_PER_ENQUEUE,
    BatchPage,
    BatchProcessorContext,
    get_page_processor,
    has_reduce,
    processor_settings,
)
from ._resources import WorkerResources
from ._tracker import BatchTrackerContext, get_batch_tracker
from ._typed import check_args
from ._types import MAX_PAGE_VALUE_BYTES, MAX_RESULT_BYTES, ProcessorSettings

__all__ = ["BatchActivities"]

T = TypeVar("T")
_page_logger = logging.getLogger("batch_orchestra.page")
_tracker_logger = logging.getLogger("batch_orchestra.tracker")
_REPORT_TIMEOUT = 10.0


class _ContextLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the batch's fields to every record, as ``extra`` and as a readable suffix."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        fields = ", ".join(f"{k}={v!r}" for k, v in (self.extra or {}).items())
        return f"{msg} ({fields})", kwargs


_BATCH_CLOSED_ERROR_TYPE = "BatchClosed"
"""The error type of an attempt stopped because its batch was cancelled or has ended."""


def _as_application_error(err: Exception, kind: str, retryable: bool = False) -> ApplicationError:
    return ApplicationError(str(err), type=kind, non_retryable=not retryable)


class BatchActivities:
    """The batch's activities, bound to one worker's transport."""

    def __init__(
        self, transport: EnqueueTransport, resources: WorkerResources | None = None
    ) -> None:
        self._transport = transport
        self._resources = resources or WorkerResources()
        self._warned_unawaited: set[str] = set()

    def all(self) -> list[Any]:
        """Every activity, for the worker."""
        return [
            self.describe_batch,
            self.process_page,
            self.run_batch_tracker,
            self.notify,
            self.check_health,
            self.reduce_results,
            self.discover_page,
            self.record_failures,
            self.read_ledger,
        ]

    @activity.defn(name=RECORD_FAILURES)
    async def record_failures(self, record: Any) -> None:
        """Nothing: a failure-ledger record is this activity's input, which Temporal keeps.

        (``_ledger.py``; the input is left undecoded, as the activity does not read it.)
        """

    @activity.defn(name=READ_LEDGER)
    async def read_ledger(self, inp: ReadLedgerInput) -> ReadLedgerResult:
        """Read a chunk of a batch's failure ledger from its history (for a redrive)."""
        return await read_chunk(activity.client(), inp)

    @activity.defn(name=DESCRIBE_BATCH)
    async def describe_batch(self, inp: DescribeBatchInput) -> ProcessorSettings:
        """Read the processor's retry settings; check the args, tracker and notifier.

        The settings are recorded in history. Args that do not fit the processor's
        ``args_type`` fail the batch here, before any page runs.
        """
        try:
            cls = get_page_processor(inp.processor)
            settings = processor_settings(cls)
        except UnknownPageProcessorError as err:
            raise _as_application_error(err, UNKNOWN_PROCESSOR_ERROR_TYPE) from None
        except ProcessorDefinitionError as err:
            raise _as_application_error(err, PROCESSOR_DEFINITION_ERROR_TYPE) from None
        args_type = getattr(cls, "args_type", None)
        if args_type is not None and inp.args is not None:
            try:
                check_args(args_type, inp.args, inp.processor)
            except InvalidArgsError as err:
                raise _as_application_error(err, INVALID_ARGS_ERROR_TYPE) from None
        try:
            if inp.tracker is not None:
                get_batch_tracker(inp.tracker)
        except UnknownBatchTrackerError as err:
            raise _as_application_error(err, UNKNOWN_TRACKER_ERROR_TYPE) from None
        try:
            if inp.notifier is not None:
                get_batch_notifier(inp.notifier)
        except UnknownBatchNotifierError as err:
            raise _as_application_error(err, UNKNOWN_NOTIFIER_ERROR_TYPE) from None
        try:
            if inp.health_check is not None:
                get_health_check(inp.health_check)
        except UnknownHealthCheckError as err:
            raise _as_application_error(err, UNKNOWN_HEALTH_CHECK_ERROR_TYPE) from None
        return settings

    @activity.defn(name=PROCESS_PAGE)
    async def process_page(self, inp: ProcessPageInput) -> PageResult:
        """Run one attempt of the processor on one page; its enqueue becomes an update."""
        info = activity.info()
        try:
            cls = get_page_processor(inp.processor)
        except UnknownPageProcessorError as err:
            # Retryable, and the workflow knows the attempt did no work: another worker, or
            # the next deploy, may know the processor (a rolling deploy).
            raise _as_application_error(err, UNKNOWN_PROCESSOR_ERROR_TYPE, True) from None
        enqueue = PageEnqueue(
            self._transport,
            info.workflow_id or "",
            inp.page_num,
            inp.processor,
            inp.execution,
            inp.attempt,
        )
        extra: dict[str, Any] = {"batch_id": inp.batch_id, "page_num": inp.page_num}
        context = BatchProcessorContext(
            page=inp.page,
            page_num=inp.page_num,
            attempt=inp.attempt,
            args=inp.args,
            batch_id=inp.batch_id,
            enqueue=enqueue,
            logger=_ContextLogger(_page_logger, extra),
            successor_enqueued=inp.successor_enqueued or inp.discovered_apart,
            discovered_apart=inp.discovered_apart,
            args_type=getattr(cls, "args_type", None),
            window=inp.window,
            resources=self._resources,
            checkpoint=inp.checkpoint,
        )
        heartbeat = _start_heartbeats(info, context._checkpoint_details)
        began = time.monotonic()
        try:
            try:
                keys = _item_keys(inp) if inp.run_items else None
                returned, successors = await self._run_attempt(cls, context, enqueue, keys)
            except (ProcessorUsageError, InvalidBatchInputError) as err:
                kind = (
                    PROCESSOR_USAGE_ERROR_TYPE
                    if isinstance(err, ProcessorUsageError)
                    else INVALID_INPUT_ERROR_TYPE
                )
                raise ApplicationError(str(err), type=kind, non_retryable=True) from err
        except BaseException as err:
            # Also CancelledError (worker shutdown, batch cancelled): a run that took over the
            # attempt must hear how it ended; a batch that was cancelled or ended need not.
            checkpoint = context._checkpoint_text
            if not (isinstance(err, ApplicationError) and err.type == _BATCH_CLOSED_ERROR_TYPE):
                outcome = _outcome_of_error(inp, err)
                outcome.checkpoint = checkpoint
                await asyncio.shield(_report(inp, info, outcome))
            carried = with_checkpoint(err, checkpoint)  # the next attempt resumes after it
            if carried is not err:
                raise carried from carried.__cause__
            raise
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
        seconds = time.monotonic() - began
        value = None
        if has_reduce(cls):  # run returned the page's value, not its item count
            value = _page_value(returned, inp.processor)
            items = context._items
        elif context._cp_iterating:  # context.items counted each item once, across attempts
            items = context._items
        else:
            items = _item_count(returned, context, inp.processor) + context._items
        num_failed, failed = context._num_failures, context._failures or None
        await _report(
            inp,
            info,
            PageOutcome(
                inp.page_num,
                inp.attempt,
                items=items,
                successors=successors,
                execution=inp.execution,
                seconds=seconds,
                value=value,
                num_failed_items=num_failed,
                failed_items=failed,
            ),
        )
        return PageResult(
            items=items,
            successors=successors,
            seconds=seconds,
            value=value,
            num_failed_items=num_failed,
            failed_items=failed,
        )

    async def _run_attempt(
        self,
        cls: type[Any],
        context: BatchProcessorContext,
        enqueue: PageEnqueue,
        keys: list[str] | None = None,
    ) -> tuple[Any, list[BatchPage] | None]:
        """Run the processor, then see its enqueue through.

        The successor must be handed over before the attempt ends, failed or not (an at-most-once
        page that fails is never retried, so its chain would end there).
        """
        processor = cls()
        sync = not inspect.iscoroutinefunction(processor.run)

        async def run() -> Any:
            if keys is not None:
                return await processor.run_items(context, keys)
            if sync:
                returned = await asyncio.to_thread(processor.run, context)
                if inspect.isawaitable(returned):  # run returned an awaitable after all
                    returned = await returned
                return returned
            return await processor.run(context)

        try:
            running = PageOutcome(context.page_num, context.attempt, execution=enqueue.execution)
            returned = await _through_handovers(asyncio.ensure_future(run()), running)
        except BaseException:
            await enqueue.page_failed()
            raise
        called = context._called
        if (
            called is not None
            and not called.awaited
            and not sync
            and (called.delivered is not None and cls.__name__ not in self._warned_unawaited)
        ):
            self._warned_unawaited.add(cls.__name__)
            context.logger.warning(
                "%s.run called context.enqueue_next_page(...) without await; the page was "
                "enqueued anyway, but await it so the request goes out before the page's work",
                cls.__name__,
            )
        return returned, await enqueue.page_finished()

    @activity.defn(name=DISCOVER_PAGE)
    async def discover_page(self, inp: DiscoverPageInput) -> DiscoverPageResult:
        """Find a page's successors with the processor's ``next_page``.

        Retried by the workflow, so every failure shows in the batch's progress.
        """
        try:
            cls = get_page_processor(inp.processor)
        except UnknownPageProcessorError as err:
            raise _as_application_error(err, UNKNOWN_PROCESSOR_ERROR_TYPE, True) from None
        processor = cls()
        next_page = getattr(processor, "next_page", None)
        if not callable(next_page):
            raise ApplicationError(
                f"page processor {inp.processor} has no next_page method on this worker, but "
                "the batch was started with one; deploy a version that has it",
                type=PROCESSOR_DEFINITION_ERROR_TYPE,
            )

        def refuse(pages: list[BatchPage]) -> asyncio.Future[None]:
            raise ProcessorUsageError(
                f"{inp.processor}.next_page called enqueue_next_page(s); return the successor "
                "page(s) from next_page instead"
            )

        context = BatchProcessorContext(
            page=inp.page,
            page_num=inp.page_num,
            attempt=inp.attempt,
            args=inp.args,
            batch_id=inp.batch_id,
            successor_enqueued=False,
            enqueue=refuse,
            window=inp.window,
            logger=_ContextLogger(
                _page_logger, {"batch_id": inp.batch_id, "page_num": inp.page_num}
            ),
            args_type=getattr(cls, "args_type", None),
            resources=self._resources,
        )
        heartbeat = _start_heartbeats(activity.info())
        try:
            if inspect.iscoroutinefunction(next_page):
                found = await next_page(context)
            else:
                found = await asyncio.to_thread(next_page, context)
                if inspect.isawaitable(found):
                    found = await found
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
        return DiscoverPageResult(_successors(found, inp.processor))

    @activity.defn(name=RUN_TRACKER)
    async def run_batch_tracker(self, inp: TrackerInput) -> None:
        """Call a registered tracker with the batch's progress."""
        try:
            fn = get_batch_tracker(inp.name)
        except UnknownBatchTrackerError as err:
            raise _as_application_error(err, UNKNOWN_TRACKER_ERROR_TYPE, True) from None
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

    @activity.defn(name=REDUCE_RESULTS)
    async def reduce_results(self, inp: ReduceInput) -> Any:
        """Fold pages' values into the batch result with the processor's ``reduce``."""
        try:
            cls = get_page_processor(inp.processor)
        except UnknownPageProcessorError as err:
            raise _as_application_error(err, UNKNOWN_PROCESSOR_ERROR_TYPE, True) from None
        proc = cls()
        acc = inp.result
        if not inp.started:
            initial = getattr(proc, "initial_result", None)
            acc = initial() if callable(initial) else None
            if inspect.isawaitable(acc):
                acc = await acc
        reduce: Any = getattr(proc, "reduce", None)
        if not callable(reduce):
            raise ApplicationError(
                f"{inp.processor} has no reduce method on this worker", non_retryable=True
            )
        for value in inp.values:
            acc = reduce(acc, value)
            if inspect.isawaitable(acc):
                acc = await acc
        size = _json_size(acc)
        if size is None or size > MAX_RESULT_BYTES:
            what = "is not JSON-friendly" if size is None else f"is {size:,} bytes as JSON"
            raise ApplicationError(
                f"{inp.processor}.reduce returned a result that {what} ({_short(acc)}); a batch "
                f"result may hold at most {MAX_RESULT_BYTES:,} bytes of JSON: keep counts, "
                "sums or a bounded sample, not every value",
                type=PROCESSOR_USAGE_ERROR_TYPE,
                non_retryable=True,
            )
        return acc

    @activity.defn(name=CHECK_HEALTH)
    async def check_health(self, inp: HealthCheckInput) -> Health:
        """Call a registered health check; anything but a ``Health`` verdict is an error."""
        try:
            fn = get_health_check(inp.name)
        except UnknownHealthCheckError as err:
            raise _as_application_error(err, UNKNOWN_HEALTH_CHECK_ERROR_TYPE, True) from None
        logger = _ContextLogger(_tracker_logger, {"batch_id": inp.batch_id})
        verdict = await fn(
            HealthCheckContext(
                progress=inp.progress,
                batch_id=inp.batch_id,
                args=inp.args,
                logger=logger,
            )
        )
        if not isinstance(verdict, Health) or verdict.state not in ("healthy", "slow_down", "stop"):
            raise ApplicationError(
                f"health check {inp.name!r} returned {verdict!r}; return Health.healthy(), "
                "Health.slow_down(reason) or Health.stop(reason)",
                type=PROCESSOR_USAGE_ERROR_TYPE,
                non_retryable=True,
            )
        return verdict

    @activity.defn(name=NOTIFY)
    async def notify(self, inp: NotifyInput) -> None:
        """Call a registered notifier about one event of a batch."""
        try:
            fn = get_batch_notifier(inp.name)
        except UnknownBatchNotifierError as err:
            raise _as_application_error(err, UNKNOWN_NOTIFIER_ERROR_TYPE, True) from None
        logger = _ContextLogger(_tracker_logger, {"batch_id": inp.batch_id})
        await fn(
            BatchNotifierContext(
                event=inp.event,
                reason=inp.reason,
                failed_pages=inp.failed_pages,
                progress=inp.progress,
                batch_id=inp.batch_id,
                workflow_id=inp.workflow_id,
                args=inp.args,
                logger=logger,
                failed_items=inp.failed_items,
            )
        )


async def _through_handovers(work: asyncio.Future[Any], running: PageOutcome) -> Any:
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
                        type=_BATCH_CLOSED_ERROR_TYPE,
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


def _json_size(value: Any) -> int | None:
    try:
        return len(json.dumps(value, separators=(",", ":"), default=_no_default))
    except (TypeError, ValueError):
        return None


def _no_default(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _page_value(returned: Any, processor: str) -> Any:
    """A page's value for ``reduce``: JSON-friendly and at most ``MAX_PAGE_VALUE_BYTES``."""
    size = _json_size(returned)
    if size is None or size > MAX_PAGE_VALUE_BYTES:
        what = "is not JSON-friendly" if size is None else f"is {size:,} bytes as JSON"
        raise ApplicationError(
            f"{processor}.run returned a page value that {what} ({_short(returned)}); with "
            f"reduce, run returns a JSON-friendly value of at most {MAX_PAGE_VALUE_BYTES:,} "
            "bytes (counts, sums, a few keys)",
            type=PROCESSOR_USAGE_ERROR_TYPE,
            non_retryable=True,
        )
    return returned


def _successors(found: Any, processor: str) -> list[BatchPage]:
    """What ``next_page`` returned, as a list of pages (None: none; the chain ends)."""
    if found is None:
        return []
    pages = [found] if isinstance(found, BatchPage) else found
    if not isinstance(pages, (list, tuple)) or not all(isinstance(p, BatchPage) for p in pages):
        raise ApplicationError(
            f"{processor}.next_page returned {found!r}; return a BatchPage, a list of "
            "BatchPage, or None at the end of the chain",
            type=PROCESSOR_USAGE_ERROR_TYPE,
        )
    if len(pages) > MAX_PAGES_PER_ENQUEUE:
        raise ApplicationError(
            f"{processor}.next_page returned {len(pages):,} pages; at most "
            f"{MAX_PAGES_PER_ENQUEUE:,} (return fewer, and let the last one look further)",
            type=PROCESSOR_USAGE_ERROR_TYPE,
        )
    return list(pages)


def _item_keys(inp: ProcessPageInput) -> list[str]:
    """The keys of a page of a batch of item keys (its cursor is a JSON list of them)."""
    try:
        keys = json.loads(inp.page.cursor_str)
    except ValueError:
        keys = None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidBatchInputError(
            f"page {inp.page_num} of a batch of item keys has cursor {inp.page.cursor_str!r:.80}, "
            "not a JSON list of keys"
        )
    return keys


def _item_count(returned: Any, context: BatchProcessorContext, processor: str) -> int:
    """What ``run`` returned as an item count.

    An int (numpy's too) or a whole float; None is 0; anything else is 0 with a warning.
    """
    if returned is None or isinstance(returned, bool):
        return 0
    if isinstance(returned, numbers.Integral):
        return int(returned)
    if isinstance(returned, numbers.Real) and float(returned).is_integer():
        return int(float(returned))
    context.logger.warning(
        "%s.run returned %r (%s); return the number of items processed (an int) or None",
        processor,
        returned,
        type(returned).__name__,
    )
    return 0


def _start_heartbeats(
    info: activity.Info, details: Callable[[], list[Any]] | None = None
) -> asyncio.Task[None] | None:
    """Heartbeat while the page runs.

    A dead worker's page is then retried after the heartbeat timeout (not ``page_timeout``), and a
    cancelled batch's cancellation reaches the page.
    """
    timeout = info.heartbeat_timeout
    if not timeout:
        return None
    interval = max(0.5, timeout.total_seconds() / 3)

    async def beat() -> None:
        while True:
            activity.heartbeat(*(details() if details is not None else ()))
            await asyncio.sleep(interval)

    return asyncio.ensure_future(beat())


def _outcome_of_error(inp: ProcessPageInput, err: BaseException) -> PageOutcome:
    if isinstance(err, ApplicationError):
        kind, non_retryable, message = err.type or "Error", err.non_retryable, err.message
    elif isinstance(err, asyncio.CancelledError):
        kind, non_retryable, message = "Cancelled", False, "the attempt was cancelled"
    else:
        kind, non_retryable, message = type(err).__name__, False, str(err)
    return PageOutcome(
        inp.page_num,
        inp.attempt,
        0,
        kind,
        message[:MAX_ERROR_MESSAGE],
        non_retryable,
        execution=inp.execution,
    )


async def _report(inp: ProcessPageInput, info: activity.Info, outcome: PageOutcome) -> None:
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
