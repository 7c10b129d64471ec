"""Pages that failed for good, and items recorded as failed: bounded lists, exact counts. Pure.

Every failed page is in the batch's failure ledger (``_ledger.py``); ``FailedPages`` keeps the
most recent for progress and for a redrive of the pages still in memory, within a count and a
byte budget (a hand-over carries the list). ``ItemFailures`` keeps the most recent item failures
that completed pages recorded, with previews of long keys.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import Any

from .._model import ItemFailure
from .budgets import (
    CURSOR_PREVIEW_CHARS,
    KEY_PREVIEW_CHARS,
    MAX_ITEM_MESSAGE,
    clip,
    preview,
    text_size,
)
from .errors_table import MAX_ERROR_TYPE, ErrorTable
from .pages import PageState

__all__ = [
    "FAILED_LIST_BYTES",
    "FAILURE_LIST_LIMIT",
    "ITEM_FAILURE_LIST_LIMIT",
    "FailedPages",
    "ItemFailures",
]

FAILURE_LIST_LIMIT = 100
"""How many failed, stuck and retrying pages progress shows in detail; counts stay exact (every
failed page is in the batch's failure ledger, ``_ledger.py``)."""
ITEM_FAILURE_LIST_LIMIT = 100
"""How many recorded item failures progress shows in detail; the count stays exact."""
FAILED_LIST_BYTES = 256 * 1024
"""The most bytes of cursors (as JSON) the listed failed pages hold: a page not yet in a failure
ledger keeps its whole cursor, and a hand-over carries the list."""


class FailedPages:
    """The most recent pages that failed for good, and the counts of failed and redriven ones."""

    def __init__(self, errors: ErrorTable) -> None:
        self._errors = errors
        self.failed: deque[PageState] = deque()
        self.num_failed = 0
        self.num_redriven = 0
        self.feed_pending = 0  # failed pages queued again, still to be read from the ledger
        self.exact = True
        """See ``Scheduler.exact``: the list is bounded in bytes too."""

    def add(self, page: PageState) -> None:
        """``page`` failed for good (its error stays referenced while it is listed)."""
        self.num_failed += 1
        self.failed.append(page)
        while len(self.failed) > FAILURE_LIST_LIMIT or (
            self.exact and len(self.failed) > 1 and self._bytes() > FAILED_LIST_BYTES
        ):
            self._errors.release(self.failed.popleft().error)

    def _bytes(self) -> int:
        return sum(text_size(p.cursor) for p in self.failed)

    def find(self, page_num: int) -> PageState | None:
        """The listed failed page ``page_num``, if it is listed."""
        return next((p for p in self.failed if p.page_num == page_num), None)

    @property
    def latest(self) -> PageState | None:
        """The page that failed last, if any is listed."""
        return self.failed[-1] if self.failed else None

    def redrive(self, *, from_ledger: bool) -> list[PageState]:
        """Empty the list for a redrive; the pages kept whole, to be queued again now.

        The others (recorded in the ledger with a preview of their cursor) come back from the
        ledger; with ``from_ledger`` every failed page is redriven and those not queued now count
        as pending (``feed_pending``) until they are read back (``read_back``).
        """
        redriven: list[PageState] = []
        while self.failed:
            page = self.failed.popleft()
            self._errors.release(page.error)
            if not page.recorded:
                redriven.append(page)
        total = self.num_failed if from_ledger else len(redriven)
        self.num_failed -= total
        self.feed_pending += total - len(redriven)
        self.num_redriven += total
        return redriven

    def read_back(self) -> None:
        """A redriven page was read back from the ledger."""
        if self.feed_pending > 0:
            self.feed_pending -= 1

    def count_unread_as_failed(self) -> int:
        """The redriven pages the ledger could not give back fail again; returns how many."""
        lost, self.feed_pending = self.feed_pending, 0
        self.num_failed += lost
        return lost

    def state(self) -> list[PageState]:
        """The listed pages, oldest first, for a hand-over."""
        return list(self.failed)

    def restore(self, pages: list[PageState]) -> None:
        """The list a hand-over carried."""
        self.failed.extend(pages)


def keep_preview(page: PageState) -> None:
    """A failed page's entry is in the failure ledger: keep only a preview of its cursor."""
    page.cursor_length = len(page.cursor)
    page.cursor = preview(page.cursor, CURSOR_PREVIEW_CHARS)
    page.recorded = True


class ItemFailures:
    """The count of items recorded as failed, and the most recent of them."""

    def __init__(self) -> None:
        self.num_failed_items = 0
        self.failed_items: deque[ItemFailure] = deque(maxlen=ITEM_FAILURE_LIST_LIMIT)

    def record(self, count: int, details: list[ItemFailure] | None) -> None:
        """A completed page recorded ``count`` failed items (``details``: the first of them)."""
        self.num_failed_items += max(0, count)
        for item in (details or [])[-ITEM_FAILURE_LIST_LIMIT:]:
            self.failed_items.append(
                ItemFailure(
                    key=preview(item.key, KEY_PREVIEW_CHARS),
                    page_num=item.page_num,
                    error_type=clip(item.error_type, MAX_ERROR_TYPE),
                    error_message=clip(item.error_message, MAX_ITEM_MESSAGE),
                    failed_at=item.failed_at,
                    key_length=len(item.key),
                )
            )

    @property
    def latest(self) -> ItemFailure | None:
        """The item failure recorded last, if any."""
        return self.failed_items[-1] if self.failed_items else None

    def state(self) -> list[list[Any]]:
        """``[key, page_num, error_type, message, failed_at, key_length]`` each, oldest first."""
        return [
            [
                f.key,
                f.page_num,
                f.error_type,
                f.error_message,
                f.failed_at.timestamp(),
                f.key_length,
            ]
            for f in self.failed_items
        ]

    def restore(self, num_failed_items: int, rows: list[list[Any]]) -> None:
        """What a hand-over carried (rows without ``key_length`` from before it was kept)."""
        self.num_failed_items = num_failed_items
        self.failed_items.extend(
            ItemFailure(
                key=str(key),
                page_num=int(num),
                error_type=str(kind),
                error_message=str(msg),
                failed_at=datetime.fromtimestamp(float(at), tz=timezone.utc),
                key_length=int(rest[0]) if rest else len(str(key)),
            )
            for key, num, kind, msg, at, *rest in rows
        )
