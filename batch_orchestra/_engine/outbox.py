"""What waits to be handed to the batch's notifier: events, failed pages, failed items.

Bounded: past ``FAILED_OUTBOX_LIMIT`` pages (or ``NOTIFY_OUTBOX_BYTES`` with the payload budgets)
and ``ITEMS_OUTBOX_LIMIT`` items, the oldest waiting are not delivered (they stay in the failure
ledger and in progress). One notifier call at a time takes what ``take`` gives it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._model import ItemFailure, PageFailure
from .budgets import NOTIFY_CHUNK_BYTES, NOTIFY_OUTBOX_BYTES, wire_size

__all__ = [
    "FAILED_OUTBOX_LIMIT",
    "ITEMS_OUTBOX_LIMIT",
    "ITEMS_OUTBOX_PATCH",
    "ITEMS_PER_NOTICE",
    "Notice",
    "NotifierOutbox",
    "notice_chunk",
]

FAILED_OUTBOX_LIMIT = 1_000
"""Failed pages waiting to be handed to the notifier; past it, the oldest are only counted."""
ITEMS_OUTBOX_LIMIT = 10_000
"""Item failures waiting for the notifier; past it, the oldest are dropped from delivery."""
ITEMS_OUTBOX_PATCH = "batch-orchestra-items-outbox-bound"
"""The patch under which the item failures past ``ITEMS_OUTBOX_LIMIT`` are really dropped."""
ITEMS_PER_NOTICE = 500
"""The most item failures one notifier call carries (a call's input stays well under 2 MB)."""


@dataclass(kw_only=True)
class Notice:
    """One notifier call's event."""

    event: str
    reason: str | None = None
    pages: list[PageFailure] = field(default_factory=list)
    items: list[ItemFailure] = field(default_factory=list)


class NotifierOutbox:
    """Events, failed pages and failed items waiting for the notifier, oldest first."""

    def __init__(self, patched: Callable[[str], bool]) -> None:
        self._patched = patched
        self.notices: deque[tuple[str, str | None, list[PageFailure]]] = deque()
        self.failed: deque[PageFailure] = deque()
        self.failed_bytes = 0
        self.items: deque[ItemFailure] = deque()
        self.calling = False
        """A notifier call is in flight."""

    @property
    def has_work(self) -> bool:
        return bool(self.notices or self.failed or self.items)

    def event(self, event: str, reason: str | None) -> None:
        self.notices.append((event, reason, []))

    def failed_page(self, page: PageFailure, *, budgets: bool) -> int:
        """Queue a page that failed for good; how many of the oldest waiting were dropped."""
        if not budgets:
            if len(self.failed) >= FAILED_OUTBOX_LIMIT:
                self.failed.popleft()
            self.failed.append(page)
            return 0
        if len(self.failed) >= FAILED_OUTBOX_LIMIT:
            self.failed_bytes -= wire_size(self.failed.popleft())
        self.failed.append(page)
        self.failed_bytes += wire_size(page)
        dropped = 0
        while self.failed_bytes > NOTIFY_OUTBOX_BYTES and len(self.failed) > 1:
            self.failed_bytes -= wire_size(self.failed.popleft())
            dropped += 1
        return dropped

    def item_failures(self, items: list[ItemFailure]) -> int:
        """Queue item failures; how many of the oldest waiting are past the bound."""
        dropped = max(0, len(self.items) + len(items) - ITEMS_OUTBOX_LIMIT)
        self.items.extend(items)
        # Before this patch the oldest were only said to be dropped: the outbox grew without
        # bound (runs begun then replay so).
        if dropped and self._patched(ITEMS_OUTBOX_PATCH):
            for _ in range(dropped):
                self.items.popleft()
        return dropped

    def take(self, *, budgets: bool) -> Notice:
        """The next call's event: item failures alone, else failed pages first, else an event.

        With the payload budgets a call carries at most ``NOTIFY_CHUNK_BYTES``.
        """
        if self.items and not self.failed and not self.notices:
            limit = NOTIFY_CHUNK_BYTES if budgets else None
            items = notice_chunk(self.items, ITEMS_PER_NOTICE, limit)
            return Notice(event="items_failed", items=items)
        if self.failed:
            if budgets:
                failed = notice_chunk(self.failed, len(self.failed))
                self.failed_bytes = max(0, self.failed_bytes - sum(wire_size(f) for f in failed))
            else:
                failed = list(self.failed)
                self.failed.clear()
            self.notices.appendleft(("pages_failed", None, failed))
        event, reason, pages = self.notices.popleft()
        return Notice(event=event, reason=reason, pages=pages)


def notice_chunk(
    queue: deque[Any], count: int, max_bytes: int | None = NOTIFY_CHUNK_BYTES
) -> list[Any]:
    """Take up to ``count`` entries off the front of ``queue``.

    At most ``max_bytes`` of them as sent (at least one).
    """
    out: list[Any] = []
    size = 0
    while queue and len(out) < count:
        if max_bytes is not None:
            cost = wire_size(queue[0])
            if out and size + cost > max_bytes:
                break
            size += cost
        out.append(queue.popleft())
    return out
