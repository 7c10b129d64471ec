"""What a page processor's ``run`` gets: ``BatchProcessorContext``, and what an attempt did.

The activities read an attempt's outcome through ``attempt_report`` (never the context's
private fields).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._engine.budgets import (
    MAX_ENQUEUE_BYTES,
    MAX_ITEM_DETAILS_BYTES,
    MAX_ITEM_KEY,
    MAX_ITEM_MESSAGE,
    enqueue_size,
    text_size,
)
from .._exceptions import InvalidBatchInputError, ProcessorUsageError
from .._model import BatchWindow, ItemFailure
from .._model.typed import TypedContextMixin
from .checkpoint import CheckpointMixin
from .items import ItemStarter, ItemStarts
from .page import BatchPage
from .resources import WorkerResources

__all__ = [
    "MAX_ITEM_FAILURES_PER_PAGE",
    "MAX_PAGES_PER_ENQUEUE",
    "AttemptReport",
    "BatchProcessorContext",
    "EnqueuedPages",
    "attempt_report",
    "heartbeat_details",
]


MAX_PAGES_PER_ENQUEUE = 1_000
"""The most successor pages one ``enqueue_next_pages`` call may hand over."""


MAX_ITEM_FAILURES_PER_PAGE = 1_000
"""The most item failures one page reports in detail; past it they are only counted."""


class EnqueuedPages:
    """What ``enqueue_next_page(s)`` returns.

    The enqueue has already taken effect when the call returns; awaiting this gives the event loop
    one turn to put it on the wire before your code goes on (so ``await`` it in an
    ``async def run``). The attempt does not end before the orchestrator has the pages, awaited or
    not; a delivery error fails the attempt then.
    """

    def __init__(self, delivered: asyncio.Future[None] | None) -> None:
        self.delivered = delivered
        """Resolves once the orchestrator has the pages (None: nothing was sent)."""
        self.awaited = False

    def __await__(self) -> Generator[Any, None, None]:
        self.awaited = True
        yield from asyncio.sleep(0).__await__()


class BatchProcessorContext(TypedContextMixin, CheckpointMixin):
    """What a page processor's ``run`` gets.

    The page, the batch's args and the means to enqueue the next page.
    """

    def __init__(
        self,
        *,
        page: BatchPage,
        page_num: int,
        attempt: int,
        args: str | None,
        batch_id: str,
        successor_enqueued: bool,
        enqueue: Callable[[list[BatchPage]], asyncio.Future[None]],
        logger: logging.LoggerAdapter[logging.Logger],
        discovered_apart: bool = False,
        args_type: type[Any] | None = None,
        window: BatchWindow | None = None,
        resources: WorkerResources | None = None,
        checkpoint: str | None = None,
        items: ItemStarter | None = None,
    ) -> None:
        self._page = page
        self._item_starter = items
        self._resources = resources
        self._args_type = args_type
        self._window = window
        self._discovered_apart = discovered_apart
        self._page_num = page_num
        self._attempt = attempt
        self._args = args
        self._batch_id = batch_id
        self._enqueued = successor_enqueued
        self._called: EnqueuedPages | None = None
        self._enqueue = enqueue
        self._logger = logger
        self._items = 0
        self._failures: list[ItemFailure] = []
        self._num_failures = 0
        self._failures_bytes = 0
        self._failures_lock = threading.Lock()  # a plain `def run` records from its thread
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._init_checkpoint(checkpoint)

    @property
    def page(self) -> BatchPage:
        """The page to process."""
        return self._page

    @property
    def window(self) -> BatchWindow | None:
        """The slice of the data this batch covers, when a series started it (else None).

        ``window.low`` / ``window.high`` bound it: ``(low, high]`` for a watermark, ``[low,
        high)`` for a time window (docs/series.md). ``SqlSource`` applies it by itself.
        """
        return self._window

    def resource(self, name: str) -> Any:
        """The worker-wide resource declared as ``name``.

        Resources are declared on the worker's plugin (``BatchOrchestraPlugin(resources=...)``),
        created once when the worker starts, shared by all the pages it runs (and their
        threads) and closed when it shuts down.

        Raises:
            ProcessorUsageError: no resource of that name is declared on this worker.
        """
        if self._resources is None:
            raise ProcessorUsageError(
                f"no worker resource named {name!r}: this context has no worker resources; "
                f"declare it with BatchOrchestraPlugin(resources={{{name!r}: factory}})"
            )
        return self._resources.get(name)

    @property
    def page_num(self) -> int:
        """The page's number in the batch; the first page is 0."""
        return self._page_num

    @property
    def attempt(self) -> int:
        """1 for the first attempt at this page, 2 for its first retry, and so on."""
        return self._attempt

    @property
    def batch_id(self) -> str:
        """The batch's ``batch_id`` ("" when none was given)."""
        return self._batch_id

    def has_batch_id(self) -> bool:
        """Whether the batch was started with a non-empty ``batch_id``."""
        return bool(self._batch_id)

    @property
    def args_str(self) -> str:
        """The ``args`` string the batch was started with.

        Raises:
            ProcessorUsageError: the batch was started without args.
        """
        if self._args is None:
            raise ProcessorUsageError(
                "context.args_str was read but the batch was started with args=None; "
                "pass args=... in BatchOrchestratorInput, or check has_args() first"
            )
        return self._args

    def has_args(self) -> bool:
        """Whether the batch was started with args."""
        return self._args is not None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``batch_id`` and ``page_num`` as extra fields."""
        return self._logger

    def add_completed_items(self, count: int) -> None:
        """Report ``count`` more items processed by this page.

        An alternative to returning a count from ``run``.
        """
        self._items += count

    def record_failure(self, item_key: object, error: BaseException | str) -> None:
        """Record that one item of this page failed, and go on with the others.

        The page still succeeds. Usable from ``async def run`` and from a plain ``def run`` (no
        ``await``).

        The failures travel with the page's result and count only once the page completes: the
        failures recorded by an attempt that then fails (and is retried) are not counted, only
        those of the attempt that completes. A page reports at most
        ``MAX_ITEM_FAILURES_PER_PAGE`` (1,000) in detail, and at most 256 KB of them (key
        truncated to 1,000 characters, message to 500); the rest are counted only. They show in
        progress (``num_failed_items``, ``failed_items``) and go to the batch's notifier, if any
        (event "items_failed").

        Args:
            item_key: the item's key (anything; stored as ``str(item_key)``).
            error: the exception the item raised, or a message.
        """
        self.record_failures([(item_key, error)])

    def record_failures(self, failures: Iterable[tuple[object, BaseException | str]]) -> None:
        """Record several failed items at once: ``[(item_key, error), ...]``.

        See ``record_failure``.
        """
        now = datetime.now(timezone.utc)
        with self._failures_lock:
            for key, error in failures:
                self._num_failures += 1
                if len(self._failures) >= MAX_ITEM_FAILURES_PER_PAGE:
                    continue
                if isinstance(error, BaseException):
                    kind, message = type(error).__name__, str(error)
                else:
                    kind, message = "Error", str(error)
                text = str(key)[:MAX_ITEM_KEY]
                kind, message = kind[:MAX_ITEM_MESSAGE], message[:MAX_ITEM_MESSAGE]
                # The page's result carries them: bounded in bytes too (keys may be long).
                size = text_size(text) + text_size(kind) + text_size(message) + 120
                if self._failures_bytes + size > MAX_ITEM_DETAILS_BYTES:
                    continue
                self._failures_bytes += size
                self._failures.append(
                    ItemFailure(
                        key=text,
                        page_num=self._page_num,
                        error_type=kind,
                        error_message=message,
                        failed_at=now,
                        key_length=len(text),
                    )
                )

    @property
    def num_recorded_failures(self) -> int:
        """Items this attempt has recorded as failed so far."""
        return self._num_failures

    async def start_items(
        self,
        items: Iterable[Any],
        *,
        workflow: Any,
        key: Callable[[Any], object] | str,
        args: Callable[[Any], Any] | None = None,
        task_queue: str | None = None,
    ) -> ItemStarts:
        """Start a workflow per item instead of processing the items here.

        Each item's workflow ID is the batch's prefix and ``key`` (a callable, or the name of a
        field or attribute; 1 to 64 characters), so a retried page attaches to the workflows
        its earlier attempt started instead of starting them twice, and a closed one is not run
        again. The batch counts them open until each closes (``max_open_items`` caps them; its
        workflow tells the batch when decorated with ``reports_to_batch``, else the batch's
        check finds it). ``args(item)`` is the workflow's argument (default: the item itself);
        ``task_queue`` defaults to this worker's.

        Raises:
            ProcessorUsageError: the batch has no ``max_open_items``, a key is empty or too
                long, or the page would start more items than its size.
        """
        if self._item_starter is None:
            raise ProcessorUsageError(
                "start_items needs a batch started with max_open_items (the cap on open item "
                "workflows): pass BatchOrchestratorInput(max_open_items=...)"
            )
        return await self._item_starter.start(
            items, workflow=workflow, key=key, args=args, task_queue=task_queue
        )

    def enqueue_next_page(self, page: BatchPage) -> EnqueuedPages:
        """Hand the next page of this chain to the orchestrator. At most once per ``run``.

        The enqueue takes effect when this is called; ``await`` it (``await
        context.enqueue_next_page(...)``) to wait until the orchestrator has the page. From a
        plain ``def run`` (which runs in a worker thread) just call it.

        Raises:
            ProcessorUsageError: called a second time in the same run.
        """
        return self.enqueue_next_pages([page])

    def enqueue_next_pages(self, pages: Sequence[BatchPage]) -> EnqueuedPages:
        """Hand several successor pages (lookahead) to the orchestrator in one call.

        One call of this or ``enqueue_next_page`` per run. A retried attempt whose earlier
        attempt already enqueued its successors does nothing here.

        Raises:
            ProcessorUsageError: called a second time in the same run.
            InvalidBatchInputError: an element is not a ``BatchPage``, there are more than
                ``MAX_PAGES_PER_ENQUEUE``, or their cursors hold more than ``MAX_ENQUEUE_BYTES``
                as sent.
        """
        if self._called is not None:
            raise ProcessorUsageError(
                f"page {self._page_num} called enqueue_next_page(s) a second time; a page "
                "enqueues its successors once, in one call (use enqueue_next_pages for several)"
            )
        pages = list(pages)
        for p in pages:
            if not isinstance(p, BatchPage):
                raise InvalidBatchInputError(
                    f"enqueue_next_page(s) takes BatchPage objects, got {p!r}; "
                    "wrap the cursor: BatchPage(next_cursor, page.size)"
                )
        if len(pages) > MAX_PAGES_PER_ENQUEUE:
            raise InvalidBatchInputError(
                f"page {self._page_num} enqueued {len(pages):,} pages in one call; at most "
                f"{MAX_PAGES_PER_ENQUEUE:,} (enqueue fewer, and let the last one look further)"
            )
        size = enqueue_size(pages)
        if size > MAX_ENQUEUE_BYTES:
            raise InvalidBatchInputError(
                f"page {self._page_num} enqueued {len(pages):,} pages holding {size:,} bytes of "
                f"cursors in one call; at most {MAX_ENQUEUE_BYTES:,} bytes (one message carries "
                "them, and Temporal refuses a message over 2 MB): enqueue fewer pages or keep "
                "less in their cursors"
            )
        if self._discovered_apart and pages:
            self._logger.warning(
                "page %d's run enqueued %d page(s); ignored: this processor has next_page, so "
                "the batch finds successors with it (remove the enqueue from run)",
                self._page_num,
                len(pages),
            )
            self._called = EnqueuedPages(None)
            return self._called
        if self._enqueued or not pages:
            self._called = EnqueuedPages(None)
            return self._called
        if threading.get_ident() == self._loop_thread:
            delivered = self._enqueue(pages)
        else:  # a plain `def run` in a worker thread: hand the pages to the event loop
            future = asyncio.run_coroutine_threadsafe(self._submit(pages), self._loop)
            delivered = asyncio.wrap_future(future.result(), loop=self._loop)
        self._enqueued = True
        self._called = EnqueuedPages(delivered)
        return self._called

    async def _submit(self, pages: list[BatchPage]) -> asyncio.Future[None]:
        return self._enqueue(pages)

    @property
    def enqueued_successor(self) -> bool:
        """Whether this page's successors have been enqueued (by this or an earlier attempt)."""
        return self._enqueued


@dataclass(frozen=True, kw_only=True)
class AttemptReport:
    """What one attempt of ``run`` told its context, as the page activity reports it."""

    items: int
    """Items reported with ``add_completed_items`` (and by ``context.items``, with resumes)."""
    counted_by_items: bool
    """Whether ``context.items``/``process_items`` counted each item (then ``run``'s returned
    count is not added)."""
    num_failed_items: int
    """Items recorded as failed (all of them, also past the detailed ones)."""
    failed_items: list[ItemFailure]
    """The failed items recorded in detail (bounded)."""
    enqueue: EnqueuedPages | None
    """What the attempt's ``enqueue_next_page(s)`` call returned (None: it made none)."""
    checkpoint: str | None
    """The attempt's latest checkpoint (None: none)."""


def attempt_report(context: BatchProcessorContext) -> AttemptReport:
    """What the attempt has told ``context`` so far."""
    with context._failures_lock:
        failed = list(context._failures)
        num_failed = context._num_failures
    return AttemptReport(
        items=context._items,
        counted_by_items=context._cp_iterating,
        num_failed_items=num_failed,
        failed_items=failed,
        enqueue=context._called,
        checkpoint=context._checkpoint_text,
    )


def heartbeat_details(context: BatchProcessorContext) -> list[Any]:
    """What the attempt's heartbeats carry: its latest checkpoint (empty before the first)."""
    return context._checkpoint_details()
