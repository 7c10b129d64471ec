"""The page table: the unfinished pages a batch holds, their chains and their cursors. Pure.

``PageTable`` keeps every held page by number, and three counts that follow from them and are
kept up to date as pages come and go (``hold``, ``release``): the unfinished pages of each chain
(a chain stays open while a page of it, or a discovery apart, is unfinished), how many held pages
have each cursor (a looping processor's cursor is caught), and the bytes the pages hold.
``RecentCursors`` remembers the last cursors enqueued, finished or not.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

from .budgets import text_size

__all__ = [
    "MAX_HELD_BYTES",
    "PAGE_OVERHEAD_BYTES",
    "RECENT_CURSOR_WINDOW",
    "PageState",
    "PageTable",
    "RecentCursors",
]

RECENT_CURSOR_WINDOW = 64
"""How many recently enqueued cursors are remembered (besides those of every unfinished page)
to catch a processor that loops."""
MAX_HELD_BYTES = 1_000_000
"""Budget for the unfinished pages a batch holds (cursor bytes plus a fixed overhead each):
while pages are failing and the held pages pass it, no new page starts (retries go on), so the
state carried across continue-as-new stays far below Temporal's 2 MB payload limit."""
PAGE_OVERHEAD_BYTES = 48
"""The estimated cost of one held page besides its cursor."""


@dataclass
class PageState:
    """One page the batch has discovered and not yet finished."""

    page_num: int
    cursor: str
    size: int
    chain: int = 0
    attempts: int = 0
    unrun: int = 0  # attempts that did no work (not counted against the retry policy)
    successor_enqueued: bool = False
    stuck: bool = False
    ready_at: float | None = None
    error: int = -1  # index into the batch's ErrorTable
    failed_at: float | None = None
    report_deadline: float | None = None  # running at a hand-over: must report by then
    confirm_by: float | None = None  # handed over: must say it started by then, or never did
    # A failed page whose entry is in the failure ledger keeps only a preview of its cursor.
    recorded: bool = False
    cursor_length: int = -1  # the whole cursor's length when ``cursor`` is a preview

    @property
    def held_bytes(self) -> int:
        """This page's share of the held-state budget, by its cursor's length.

        What a run begun before ``Scheduler.exact`` counts (which counts the cursor as JSON).
        """
        return len(self.cursor) + PAGE_OVERHEAD_BYTES

    @property
    def full_length(self) -> int:
        """The length of the page's whole cursor."""
        return self.cursor_length if self.cursor_length >= 0 else len(self.cursor)

    @property
    def never_ran(self) -> bool:
        """None of its attempts did any work: it counts as a new page."""
        return self.attempts == self.unrun


class PageTable:
    """The held pages by number, with their chains', cursors' and bytes' counts."""

    def __init__(self) -> None:
        self.pages: dict[int, PageState] = {}
        self.chains: dict[int, int] = {}  # chain -> unfinished pages (and discoveries apart)
        self.held_bytes = 0
        # cursor -> how many held pages have it (a redriven page may share its cursor with a
        # page enqueued after it failed)
        self._live: dict[str, int] = {}
        self.exact = True
        """See ``Scheduler.exact``: cursors cost their JSON size, and shared cursors count."""

    def cost(self, page: PageState) -> int:
        """A held page's share of ``held_bytes``.

        Its cursor as JSON (escapes included) and an overhead; its length in a run begun before
        ``exact``.
        """
        if self.exact:
            return text_size(page.cursor) + PAGE_OVERHEAD_BYTES
        return page.held_bytes

    def hold(self, page: PageState) -> None:
        """Hold ``page`` (new, queued again, or carried over from the last run)."""
        self.pages[page.page_num] = page
        self._live[page.cursor] = self._live.get(page.cursor, 0) + 1
        self.held_bytes += self.cost(page)
        self.open_chain(page.chain)

    def release(self, page: PageState) -> None:
        """Let go of a held page (completed, failed for good, or skipped)."""
        del self.pages[page.page_num]
        live = self._live.get(page.cursor, 1) - 1
        if live > 0 and self.exact:
            self._live[page.cursor] = live
        else:
            self._live.pop(page.cursor, None)
        self.held_bytes -= self.cost(page)
        self.close_chain(page.chain)

    def open_chain(self, chain: int) -> None:
        """One more unfinished page (or discovery apart) of ``chain``."""
        self.chains[chain] = self.chains.get(chain, 0) + 1

    def close_chain(self, chain: int) -> None:
        """One fewer: the chain ends when none is left."""
        left = self.chains.get(chain, 1) - 1
        if left > 0:
            self.chains[chain] = left
        else:
            self.chains.pop(chain, None)

    def is_live(self, cursor: str) -> bool:
        """Whether a held page has ``cursor``."""
        return cursor in self._live

    def live_cursors(self) -> dict[str, int]:
        """Each held cursor and how many held pages have it (a copy)."""
        return dict(self._live)

    @property
    def over_budget(self) -> bool:
        """Whether the held pages hold more than ``MAX_HELD_BYTES``."""
        return self.held_bytes > MAX_HELD_BYTES

    def state(self) -> list[PageState]:
        """The held pages in page order, for a hand-over."""
        return sorted(self.pages.values(), key=lambda p: p.page_num)

    def restore(self, pages: list[PageState]) -> None:
        """Hold the pages a hand-over carried (``exact`` set first)."""
        for page in pages:
            self.hold(page)


def _recent_key(cursor: str) -> str:
    """How the recent-cursor window keeps a cursor: itself if short, else a digest.

    The window travels across continue-as-new, and 64 cursors of 16 KB would be a megabyte.
    """
    if len(cursor) <= 64:
        return cursor
    return "#" + hashlib.blake2b(cursor.encode(), digest_size=12).hexdigest()


class RecentCursors:
    """The last ``RECENT_CURSOR_WINDOW`` cursors enqueued (a long one as a digest)."""

    def __init__(self) -> None:
        self._keys: deque[str] = deque()
        self._count: dict[str, int] = {}

    def __contains__(self, cursor: object) -> bool:
        return isinstance(cursor, str) and _recent_key(cursor) in self._count

    def remember(self, cursor: str) -> None:
        """``cursor`` was enqueued; the oldest one past the window is forgotten."""
        cursor = _recent_key(cursor)
        self._keys.append(cursor)
        self._count[cursor] = self._count.get(cursor, 0) + 1
        if len(self._keys) > RECENT_CURSOR_WINDOW:
            old = self._keys.popleft()
            left = self._count[old] - 1
            if left:
                self._count[old] = left
            else:
                del self._count[old]

    def state(self) -> list[str]:
        """The window as a hand-over carries it, oldest first."""
        return list(self._keys)

    def restore(self, keys: list[str]) -> None:
        """Remember the window a hand-over carried."""
        for key in keys:
            self.remember(key)
