"""The page activities: run one attempt of a processor on a page; find a page's successors."""

from __future__ import annotations

import asyncio
import inspect
import json
import numbers
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .._engine.budgets import MAX_PAGE_VALUE_BYTES
from .._engine.errors_table import MAX_ERROR_MESSAGE
from .._exceptions import (
    INVALID_INPUT_ERROR_TYPE,
    PROCESSOR_DEFINITION_ERROR_TYPE,
    PROCESSOR_USAGE_ERROR_TYPE,
    InvalidBatchInputError,
    ProcessorUsageError,
)
from .._model.messages import (
    DISCOVER_PAGE,
    PROCESS_PAGE,
    DiscoverPageInput,
    DiscoverPageResult,
    PageOutcome,
    PageResult,
    ProcessPageInput,
)
from .catalog import WorkerCatalog
from .checkpoint import with_checkpoint
from .context import (
    MAX_PAGES_PER_ENQUEUE,
    BatchProcessorContext,
    attempt_report,
    heartbeat_details,
)
from .enqueue import EnqueueTransport, PageEnqueue
from .failures import BATCH_CLOSED_ERROR_TYPE, application_error, look_up, raised_as
from .handover import report_outcome, start_heartbeats, through_handovers
from .item_follower import ItemFollower
from .items import ItemStarter
from .page import BatchPage
from .processor import has_reduce
from .resources import WorkerResources
from .user_code import ContextLogger, call_user, over_budget, page_logger, short

__all__ = ["PageActivities"]


class PageActivities:
    """``process_page`` and ``discover_page``, bound to one worker's transport and resources."""

    def __init__(
        self, transport: EnqueueTransport, resources: WorkerResources, catalog: WorkerCatalog
    ) -> None:
        self._transport, self._resources, self._catalog = transport, resources, catalog
        self._warned_unawaited: set[str] = set()
        self._follower = ItemFollower() if transport.settings.follow_items else None
        """Follows the item workflows this worker's pages start (``item_follower``)."""

    async def stop_following(self) -> None:
        """The worker stops: stop following its items (the batches' checks find them)."""
        if self._follower is not None:
            await self._follower.close()

    def all(self) -> list[Any]:
        """Both activities, for the worker."""
        return [self.process_page, self.discover_page]

    def _context(
        self,
        inp: ProcessPageInput | DiscoverPageInput,
        cls: type[Any],
        **fields: Any,
    ) -> BatchProcessorContext:
        """The context of a processor's call on ``inp``'s page."""
        return BatchProcessorContext(
            page=inp.page,
            page_num=inp.page_num,
            attempt=inp.attempt,
            args=inp.args,
            batch_id=inp.batch_id,
            window=inp.window,
            logger=ContextLogger(page_logger, {"batch_id": inp.batch_id, "page_num": inp.page_num}),
            args_type=getattr(cls, "args_type", None),
            resources=self._resources,
            **fields,
        )

    @activity.defn(name=PROCESS_PAGE)
    async def process_page(self, inp: ProcessPageInput) -> PageResult:
        """Run one attempt of the processor on one page; its enqueue becomes an update."""
        info = activity.info()
        # Retryable, and the workflow knows the attempt did no work: another worker, or the
        # next deploy, may know the processor (a rolling deploy).
        cls = look_up(self._catalog.processors, inp.processor, retryable=True)
        self._transport.paths.started(info.workflow_id or "", inp.page.cursor_str)
        enqueue = PageEnqueue(
            self._transport,
            info.workflow_id or "",
            inp.page_num,
            inp.processor,
            inp.execution,
            inp.attempt,
        )
        starter = (
            ItemStarter(
                info.workflow_id or "",
                inp.execution,
                inp.item_prefix,
                inp.page.size,
                rerun_failed=inp.run_items,
                follower=self._follower,
            )
            if inp.item_prefix
            else None
        )
        context = self._context(
            inp,
            cls,
            items=starter,
            enqueue=enqueue,
            successor_enqueued=inp.successor_enqueued or inp.discovered_apart,
            discovered_apart=inp.discovered_apart,
            checkpoint=inp.checkpoint,
        )
        heartbeat = start_heartbeats(info, lambda: heartbeat_details(context))
        began = time.monotonic()
        try:
            with raised_as(
                (ProcessorUsageError, PROCESSOR_USAGE_ERROR_TYPE),
                (InvalidBatchInputError, INVALID_INPUT_ERROR_TYPE),
                keep_cause=True,
            ):
                keys = _item_keys(inp) if inp.run_items else None
                returned, successors = await self._run_attempt(cls, context, enqueue, keys)
        except BaseException as err:
            # Also CancelledError (worker shutdown, batch cancelled): a run that took over the
            # attempt must hear how it ended; a batch that was cancelled or ended need not.
            checkpoint = attempt_report(context).checkpoint
            if not (isinstance(err, ApplicationError) and err.type == BATCH_CLOSED_ERROR_TYPE):
                outcome = _outcome_of_error(inp, err)
                outcome.checkpoint = checkpoint
                await asyncio.shield(report_outcome(inp, info, outcome))
            carried = with_checkpoint(err, checkpoint)  # the next attempt resumes after it
            if carried is not err:
                raise carried from carried.__cause__
            raise
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
        seconds = time.monotonic() - began
        report = attempt_report(context)
        value = None
        if has_reduce(cls):  # run returned the page's value, not its item count
            value = _page_value(returned, inp.processor)
            items = report.items
        elif report.counted_by_items:  # context.items counted each item once, across attempts
            items = report.items
        else:
            items = _item_count(returned, context, inp.processor) + report.items
        num_failed, failed = report.num_failed_items, report.failed_items or None
        opened = list(starter.opened) if starter is not None and starter.opened else None
        await report_outcome(
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
                opened_items=opened,
            ),
        )
        return PageResult(
            items=items,
            successors=successors,
            seconds=seconds,
            value=value,
            num_failed_items=num_failed,
            failed_items=failed,
            opened_items=opened,
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

        async def run() -> Any:
            if keys is not None:
                return await processor.run_items(context, keys)
            return await call_user(processor.run, context)

        try:
            running = PageOutcome(context.page_num, context.attempt, execution=enqueue.execution)
            returned = await through_handovers(asyncio.ensure_future(run()), running)
        except BaseException:
            await enqueue.page_failed()
            raise
        called = attempt_report(context).enqueue
        if (
            called is not None
            and not called.awaited
            and inspect.iscoroutinefunction(processor.run)
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
        cls = look_up(self._catalog.processors, inp.processor, retryable=True)
        next_page = getattr(cls(), "next_page", None)
        if not callable(next_page):
            raise application_error(
                f"page processor {inp.processor} has no next_page method on this worker, but "
                "the batch was started with one; deploy a version that has it",
                PROCESSOR_DEFINITION_ERROR_TYPE,
                retryable=True,
            )

        def refuse(pages: list[BatchPage]) -> asyncio.Future[None]:
            raise ProcessorUsageError(
                f"{inp.processor}.next_page called enqueue_next_page(s); return the successor "
                "page(s) from next_page instead"
            )

        context = self._context(inp, cls, successor_enqueued=False, enqueue=refuse)
        heartbeat = start_heartbeats(activity.info())
        try:
            found = await call_user(next_page, context)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
        return DiscoverPageResult(_successors(found, inp.processor))


def _page_value(returned: Any, processor: str) -> Any:
    """A page's value for ``reduce``: JSON-friendly and at most ``MAX_PAGE_VALUE_BYTES``."""
    what = over_budget(returned, MAX_PAGE_VALUE_BYTES)
    if what is not None:
        raise application_error(
            f"{processor}.run returned a page value that {what} ({short(returned)}); with "
            f"reduce, run returns a JSON-friendly value of at most {MAX_PAGE_VALUE_BYTES:,} "
            "bytes (counts, sums, a few keys)",
            PROCESSOR_USAGE_ERROR_TYPE,
        )
    return returned


def _successors(found: Any, processor: str) -> list[BatchPage]:
    """What ``next_page`` returned, as a list of pages (None: none; the chain ends)."""
    if found is None:
        return []
    pages = [found] if isinstance(found, BatchPage) else found
    if not isinstance(pages, (list, tuple)) or not all(isinstance(p, BatchPage) for p in pages):
        raise application_error(
            f"{processor}.next_page returned {found!r}; return a BatchPage, a list of "
            "BatchPage, or None at the end of the chain",
            PROCESSOR_USAGE_ERROR_TYPE,
            retryable=True,
        )
    if len(pages) > MAX_PAGES_PER_ENQUEUE:
        raise application_error(
            f"{processor}.next_page returned {len(pages):,} pages; at most "
            f"{MAX_PAGES_PER_ENQUEUE:,} (return fewer, and let the last one look further)",
            PROCESSOR_USAGE_ERROR_TYPE,
            retryable=True,
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
