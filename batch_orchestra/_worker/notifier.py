"""Batch notifiers: user functions told when a batch pauses itself, stalls, pages fail, or it ends.

Each event is one activity call, tried three times; an event whose tries all fail is not
delivered, and shows in the batch's ``progress.hook_errors`` (docs/failures.md, "The notifier").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._exceptions import UNKNOWN_NOTIFIER_ERROR_TYPE, UnknownBatchNotifierError
from .._model import BatchOrchestratorProgress, ItemFailure, PageFailure
from .call_context import CallContext
from .registry import Registry, check_async_function

__all__ = [
    "NOTIFIERS",
    "BatchNotifierContext",
    "batch_notifier",
    "registered_batch_notifiers",
]


class BatchNotifierContext(CallContext):
    """What a notifier gets: what happened, to which batch, and the batch's progress."""

    _CONFIG = "BatchNotifierConfig"

    def __init__(
        self,
        *,
        event: str,
        reason: str | None,
        failed_pages: list[PageFailure],
        progress: BatchOrchestratorProgress,
        batch_id: str,
        workflow_id: str,
        args: str | None,
        logger: logging.LoggerAdapter[logging.Logger],
        failed_items: list[ItemFailure] | None = None,
    ) -> None:
        super().__init__(progress=progress, batch_id=batch_id, args=args, logger=logger)
        self._event, self._reason, self._failed = event, reason, failed_pages
        self._failed_items = failed_items or []
        self._workflow_id = workflow_id

    @property
    def event(self) -> str:
        """What happened: "paused", "stalled", "pages_failed", "items_failed" or "finished".

        "paused": the batch paused itself (failure policy, canary; ``reason``); "stalled":
        only retries of failing pages can run while the same error repeats (``reason``; once
        per stall, the batch is not paused); "pages_failed": pages failed for good
        (``failed_pages``); "items_failed": pages recorded failed items (``failed_items``);
        "finished": the batch ended.
        """
        return self._event

    @property
    def reason(self) -> str | None:
        """Why the batch paused itself (for "paused"), or how it stalled (for "stalled")."""
        return self._reason

    @property
    def failed_pages(self) -> list[PageFailure]:
        """Pages that failed for good since the last call (for "pages_failed").

        Each page is delivered at least once.
        """
        return self._failed

    @property
    def failed_items(self) -> list[ItemFailure]:
        """Items recorded as failed since the last call (for "items_failed"), oldest first.

        Delivered at least once while the notifier works: a notifier call that fails is
        retried (three attempts), so the same items may arrive twice; store them keyed by
        (``workflow_id``, ``page_num``, ``key``) to keep each once. A call whose three attempts
        fail is not delivered (the items stay counted in progress, and ``hook_errors`` names
        the event), and if the notifier falls behind by more than 10,000 items the oldest
        waiting ones are dropped from delivery (counted, with a warning in the workflow's log).
        """
        return self._failed_items

    @property
    def workflow_id(self) -> str:
        """The batch's workflow ID (what ``get_handle`` and the CLI take)."""
        return self._workflow_id


NotifierFn = Callable[[BatchNotifierContext], Awaitable[None]]
_F = TypeVar("_F", bound=NotifierFn)
NOTIFIERS: Registry[NotifierFn] = Registry(
    kind="batch notifier",
    decorator="@batch_notifier",
    what="function",
    missing=UnknownBatchNotifierError,
    error_type=UNKNOWN_NOTIFIER_ERROR_TYPE,
    check=check_async_function("batch notifier"),
)
"""Every batch notifier registered in this process (by ``@batch_notifier``)."""


def batch_notifier(fn: _F) -> _F:
    """Decorator: register ``async def notifier(context: BatchNotifierContext)`` by its name.

    Raises:
        ProcessorDefinitionError: ``fn`` is not an ``async def`` function.
    """
    NOTIFIERS.register(fn)
    return fn


def registered_batch_notifiers() -> list[str]:
    """The names of every registered notifier, sorted."""
    return NOTIFIERS.names()
