"""The page-processor API from the seed: what a user writes."""

from __future__ import annotations

import abc
import asyncio
import enum
import inspect
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, TypeAlias, TypeVar

from temporalio.common import RetryPolicy

from ._budgets import (
    MAX_ENQUEUE_BYTES,
    MAX_ITEM_DETAILS_BYTES,
    MAX_ITEM_KEY,
    MAX_ITEM_MESSAGE,
    enqueue_size,
    text_size,
)
from ._checkpoint import CheckpointMixin
from ._exceptions import (
    InvalidBatchInputError,
    ProcessorDefinitionError,
    ProcessorUsageError,
    UnknownPageProcessorError,
)
from ._resources import WorkerResources
from ._typed import TypedContextMixin, TypedPageMixin, is_model
from ._types import (
    BatchWindow,
    ItemFailure,
    ProcessorSettings,
    check_cursor,
)

__all__ = [
    "MAX_ITEM_FAILURES_PER_PAGE",
    "MAX_PAGES_PER_ENQUEUE",
    "BatchPage",
    "EnqueuedPages",
    "BatchProcessorContext",
    "find_page_processor",
    "PageProcessor",
    "RetryMode",
    "get_page_processor",
    "page_processor",
    "registered_page_processors",
]

_logger = logging.getLogger("batch_orchestra")


class RetryMode(enum.Enum):
    """How a page processor wants failed pages handled."""

    EXECUTE_AT_LEAST_ONCE = "EXECUTE_AT_LEAST_ONCE"
    """Failed pages are retried (initial retries, then extended retries); make run() idempotent."""
    EXECUTE_AT_MOST_ONCE = "EXECUTE_AT_MOST_ONCE"
    """Each page gets exactly one attempt; a failure marks the page failed."""


@dataclass(frozen=True)
class BatchPage(TypedPageMixin):
    """A page to process: an opaque cursor and how many items to fetch from it.

    Args are positional as in the seed: ``BatchPage(next_cursor, page.size)``.
    """

    cursor_str: str
    """Where the page starts, serialized by the processor (JSON is a good choice)."""
    size: int
    """How many items the page holds at most."""

    def __post_init__(self) -> None:
        check_cursor(self.cursor_str, "BatchPage.cursor_str")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise InvalidBatchInputError(f"BatchPage.size must be an int >= 1, got {self.size!r}")


_RetryModeAlias = RetryMode

_DEFAULT_AT_LEAST_ONCE_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=100),
    maximum_attempts=10,
)


class PageProcessor(abc.ABC):
    """Processes one page of a batch.

    Subclass it, implement ``run`` and ``retry_mode``, and register the class with
    ``@page_processor``.

    A new instance is created for every page attempt, so instances may keep per-page state.

    **A batch result (optional).** Define ``reduce(self, acc, value)`` (and optionally
    ``initial_result(self)``, default None) and ``run``'s return value becomes the page's
    *value* instead of its item count (report items with ``context.add_completed_items``): the
    batch folds every completed page's value into one result, exactly once per page (a retried
    page's value is folded once), carried across continue-as-new and returned as
    ``progress.result``. Values and results must be JSON-friendly and small (a page's value at
    most 16 KB, the result at most 256 KB): counts per category, sums, min/max, a bounded
    sample. ``reduce`` runs in an activity, in batches of values, and may be sync or async.

    Optionally, define ``next_page(self, context)`` (``async def`` or plain ``def``) returning
    the page's successor(s) (a ``BatchPage``, a list of them, or None at the end of the chain),
    e.g. from a keys-only query. The batch then finds successors in a step of their own,
    retried on its own, alongside ``run``: a page whose processing fails never holds back the
    pages after it, and ``run`` does not enqueue (docs/recovery.md).
    """

    # An alias of the module-level enum, so the seed's `PageProcessor.RetryMode` works both at
    # runtime and as a type annotation.
    RetryMode: TypeAlias = _RetryModeAlias

    args_type: ClassVar[type[Any] | None] = None
    """Optional: the dataclass or pydantic model the batch's args parse into. When set, the
    args are checked once when the batch starts (a mismatch fails it at once with
    ``InvalidArgsError`` naming the field), and ``context.args()`` parses into it."""

    @abc.abstractmethod
    async def run(self, context: BatchProcessorContext) -> int | None:
        """Process ``context.page``.

        Fetch the page, call ``await context.enqueue_next_page(...)`` with the next cursor as
        early as possible (that is what lets the next page run in parallel), then process the
        items. Return the number of items processed (optional; used for progress).

        ``run`` may also be a plain ``def`` (for synchronous database drivers): it then runs in
        a worker thread, and ``context.enqueue_next_page(...)`` is called without ``await``.
        """

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int | None:
        """Optional: process these items by key; return the number of items processed.

        ``BatchOrchestratorClient.redrive_items`` runs recorded failed items through it.
        ``context.page.cursor_str`` is the keys as a JSON list; there is no next page to enqueue.

        Raises:
            ProcessorUsageError: the processor does not implement it (the default).
        """
        raise ProcessorUsageError(
            f"{type(self).__name__} does not implement run_items(context, keys); define "
            "`async def run_items(self, context, keys)` to redrive items by key"
        )

    @property
    @abc.abstractmethod
    def retry_mode(self) -> RetryMode:
        """Whether failed pages are retried (at least once) or never (at most once)."""

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        """Retries right after a failure.

        Default: 10 attempts, 1 s doubling up to 100 s; one attempt for at-most-once processors.
        """
        if self.retry_mode is RetryMode.EXECUTE_AT_MOST_ONCE:
            return RetryPolicy(maximum_attempts=1)
        return _DEFAULT_AT_LEAST_ONCE_POLICY

    @property
    def use_extended_retries(self) -> bool:
        """Whether a page out of initial retries becomes *stuck* (True) or fails (False).

        A stuck page is retried every ``extended_retry_interval_seconds``. Default: True for
        at-least-once processors, False for at-most-once ones.
        """
        return self.retry_mode is RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def extended_retry_interval_seconds(self) -> int:
        """Seconds between two extended retries of a stuck page. Default: 300."""
        return 300


_P = TypeVar("_P", bound=type[PageProcessor])
_registry: dict[str, type[PageProcessor]] = {}


def page_processor(cls: _P) -> _P:
    """Class decorator: register a ``PageProcessor`` subclass under its class name.

    Raises:
        ProcessorDefinitionError: ``cls`` is not a ``PageProcessor`` subclass, leaves
            ``run``/``retry_mode`` abstract, or has retry settings that contradict each other.
    """
    if not (inspect.isclass(cls) and issubclass(cls, PageProcessor)):
        raise ProcessorDefinitionError(
            f"@page_processor decorates PageProcessor subclasses, got {cls!r}; "
            "declare it as `class MyProcessor(PageProcessor): ...`"
        )
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ProcessorDefinitionError(
            f"page processor {cls.__name__} must define {', '.join(missing)}"
        )
    processor_settings(cls)  # fail at import time, not in the middle of a batch
    if _registry.get(cls.__name__, cls) is not cls:
        _logger.debug("page processor %s re-registered", cls.__name__)
    _registry[cls.__name__] = cls
    return cls


def registered_page_processors() -> list[str]:
    """The names of every registered page processor, sorted."""
    return sorted(_registry)


def find_page_processor(name: str) -> type[PageProcessor] | None:
    """The processor class registered under ``name`` in this process, or None."""
    return _registry.get(name)


def get_page_processor(name: str) -> type[PageProcessor]:
    """The processor class registered under ``name``.

    Raises:
        UnknownPageProcessorError: nothing is registered under that name.
    """
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(registered_page_processors()) or "none"
        raise UnknownPageProcessorError(
            f"no page processor named {name!r} is registered on this worker "
            f"(registered: {known}); import the module that defines it in the worker "
            "and decorate the class with @page_processor"
        ) from None


def processor_settings(cls: type[PageProcessor]) -> ProcessorSettings:
    """Read what steers orchestration from a processor class, validating it."""
    try:
        proc = cls()
    except TypeError as err:
        raise ProcessorDefinitionError(
            f"page processor {cls.__name__} must be constructible without arguments: {err}"
        ) from err
    mode = proc.retry_mode
    if not isinstance(mode, RetryMode):
        raise ProcessorDefinitionError(
            f"{cls.__name__}.retry_mode must be a PageProcessor.RetryMode, got {mode!r}"
        )
    policy = proc.initial_retry_policy
    if not isinstance(policy, RetryPolicy):
        raise ProcessorDefinitionError(
            f"{cls.__name__}.initial_retry_policy must be a temporalio.common.RetryPolicy, "
            f"got {policy!r}"
        )
    extended = bool(proc.use_extended_retries)
    interval = proc.extended_retry_interval_seconds
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ProcessorDefinitionError(
            f"{cls.__name__}.extended_retry_interval_seconds must be a positive number, "
            f"got {interval!r}"
        )
    if mode is RetryMode.EXECUTE_AT_MOST_ONCE:
        if policy.maximum_attempts != 1:
            raise ProcessorDefinitionError(
                f"{cls.__name__} is EXECUTE_AT_MOST_ONCE but its initial_retry_policy allows "
                f"maximum_attempts={policy.maximum_attempts}; at-most-once pages get one "
                "attempt: use RetryPolicy(maximum_attempts=1) or EXECUTE_AT_LEAST_ONCE"
            )
        if extended:
            raise ProcessorDefinitionError(
                f"{cls.__name__} is EXECUTE_AT_MOST_ONCE but use_extended_retries is True; "
                "at-most-once pages are never retried: return False or use EXECUTE_AT_LEAST_ONCE"
            )
    args_type = getattr(cls, "args_type", None)
    if args_type is not None and not is_model(args_type):
        raise ProcessorDefinitionError(
            f"{cls.__name__}.args_type must be a dataclass or pydantic model class (or None), "
            f"got {args_type!r}"
        )
    next_page = getattr(cls, "next_page", None)
    if next_page is not None and not callable(next_page):
        raise ProcessorDefinitionError(
            f"{cls.__name__}.next_page must be a method (async def next_page(self, context)), "
            f"got {next_page!r}"
        )
    return ProcessorSettings(
        name=cls.__name__,
        at_most_once=mode is RetryMode.EXECUTE_AT_MOST_ONCE,
        maximum_attempts=policy.maximum_attempts,
        initial_interval_seconds=policy.initial_interval.total_seconds(),
        backoff_coefficient=policy.backoff_coefficient,
        maximum_interval_seconds=(
            policy.maximum_interval.total_seconds()
            if policy.maximum_interval is not None
            else 100 * policy.initial_interval.total_seconds()
        ),
        non_retryable_error_types=list(policy.non_retryable_error_types or []),
        use_extended_retries=extended,
        extended_retry_interval_seconds=float(interval),
        has_reduce=has_reduce(cls),
        discovers_apart=next_page is not None,
    )


def has_reduce(cls: type[Any]) -> bool:
    """Whether a processor class folds its pages' values into a batch result."""
    return callable(getattr(cls, "reduce", None))


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
    ) -> None:
        self._page = page
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


def _is_registered(cls: Any) -> bool:
    return inspect.isclass(cls) and _registry.get(getattr(cls, "__name__", "")) is cls
