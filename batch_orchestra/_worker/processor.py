"""The page-processor API from the seed: ``PageProcessor`` and ``@page_processor``."""

from __future__ import annotations

import abc
import enum
import inspect
from datetime import timedelta
from typing import Any, ClassVar, TypeAlias, TypeVar

from temporalio.common import RetryPolicy

from .._exceptions import (
    UNKNOWN_PROCESSOR_ERROR_TYPE,
    ProcessorDefinitionError,
    ProcessorUsageError,
    UnknownPageProcessorError,
)
from .._model import ProcessorSettings
from .._model.typed import is_model
from .context import BatchProcessorContext
from .registry import Registry

__all__ = [
    "PROCESSORS",
    "PageProcessor",
    "RetryMode",
    "find_page_processor",
    "get_page_processor",
    "has_reduce",
    "is_registered",
    "page_processor",
    "processor_settings",
    "registered_page_processors",
]


class RetryMode(enum.Enum):
    """How a page processor wants failed pages handled."""

    EXECUTE_AT_LEAST_ONCE = "EXECUTE_AT_LEAST_ONCE"
    """Failed pages are retried (initial retries, then extended retries); make run() idempotent."""
    EXECUTE_AT_MOST_ONCE = "EXECUTE_AT_MOST_ONCE"
    """Each page gets exactly one attempt; a failure marks the page failed."""


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
    ``@page_processor`` (or give it to a worker's ``BatchOrchestraPlugin(processors=[...])``).

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


def _check_processor(cls: Any, how: str) -> type[PageProcessor]:
    """A class fit to register: a ``PageProcessor`` subclass with consistent settings."""
    if not (inspect.isclass(cls) and issubclass(cls, PageProcessor)):
        raise ProcessorDefinitionError(
            f"{how} PageProcessor subclasses, got {cls!r}; "
            "declare it as `class MyProcessor(PageProcessor): ...`"
        )
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ProcessorDefinitionError(
            f"page processor {cls.__name__} must define {', '.join(missing)}"
        )
    processor_settings(cls)  # fail at import time, not in the middle of a batch
    return cls


PROCESSORS: Registry[type[PageProcessor]] = Registry(
    kind="page processor",
    decorator="@page_processor",
    what="class",
    missing=UnknownPageProcessorError,
    error_type=UNKNOWN_PROCESSOR_ERROR_TYPE,
    check=_check_processor,
)
"""Every page processor registered in this process (by ``@page_processor``)."""

_P = TypeVar("_P", bound=type[PageProcessor])


def page_processor(cls: _P) -> _P:
    """Class decorator: register a ``PageProcessor`` subclass under its class name.

    Raises:
        ProcessorDefinitionError: ``cls`` is not a ``PageProcessor`` subclass, leaves
            ``run``/``retry_mode`` abstract, or has retry settings that contradict each other.
    """
    PROCESSORS.register(cls)
    return cls


def registered_page_processors() -> list[str]:
    """The names of every registered page processor, sorted."""
    return PROCESSORS.names()


def find_page_processor(name: str) -> type[PageProcessor] | None:
    """The processor class registered under ``name`` in this process, or None."""
    return PROCESSORS.find(name)


def get_page_processor(name: str) -> type[PageProcessor]:
    """The processor class registered under ``name``.

    Raises:
        UnknownPageProcessorError: nothing is registered under that name.
    """
    return PROCESSORS.get(name)


def is_registered(cls: Any) -> bool:
    """Whether ``cls`` is the class ``@page_processor`` registered under its name."""
    return inspect.isclass(cls) and PROCESSORS.holds(cls)
