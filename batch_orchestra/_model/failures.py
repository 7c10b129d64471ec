"""The failed pages, failed items and error counts a batch's progress lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ErrorCount",
    "ItemFailure",
    "PageFailure",
]


@dataclass(kw_only=True)
class PageFailure:
    """A stuck or failed page, as shown in progress."""

    page_num: int
    """The page's number in the batch."""
    cursor_str: str
    """The page's cursor. In progress lists, a cursor longer than 200 characters is shown as
    its first 200 and "…" (``cursor_length`` has its length): ``handle.failures()`` and
    ``batch-orchestra failures ID --json`` list whole cursors."""
    attempts: int
    """Attempts made so far."""
    error_type: str
    """The last error's type (exception class name, or "Timeout")."""
    error_message: str
    """The last error's message, truncated."""
    failed_at: datetime
    """When the last attempt failed."""
    next_retry_at: datetime | None = None
    """For a stuck or retrying page: when its next retry is due."""
    size: int = 0
    """The page's size (0 when unknown: recorded by an older version)."""
    successor_enqueued: bool = False
    """Whether the page had already enqueued its successor(s): a redrive of it must not
    enqueue them again."""
    cursor_length: int = 0
    """The cursor's length in characters (``cursor_str`` is whole when it has this many; 0 from
    versions before it was kept)."""

    @property
    def cursor_is_whole(self) -> bool:
        """Whether ``cursor_str`` is the whole cursor rather than a preview of a long one."""
        return self.cursor_length <= len(self.cursor_str)


@dataclass(kw_only=True)
class ItemFailure:
    """One item a page recorded as failed (``context.record_failure``) and went on without."""

    key: str
    """The item's key, as the processor gave it (truncated to 1,000 characters). In
    ``progress.failed_items`` a key longer than 200 characters is shown as its first 200 and
    "…" (``key_length`` has its length); ``handle.failures()`` lists whole keys."""
    page_num: int
    """The page that recorded it."""
    error_type: str
    """The exception's class name, or "Error" for a message given as a string."""
    error_message: str
    """The error's message (truncated to 500 characters)."""
    failed_at: datetime
    """When the page recorded it."""
    key_length: int = 0
    """The key's length in characters (``key`` is whole when it has this many; 0 when unknown)."""


@dataclass(kw_only=True)
class ErrorCount:
    """One distinct error of a batch's held pages, with how many pages last failed with it."""

    error_type: str
    """The error's type (exception class name, or "Timeout")."""
    error_message: str
    """Its message, truncated."""
    pages: int
    """Pages (retrying, stuck or among the listed failed) whose last error this is."""
