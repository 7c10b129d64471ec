"""New pages into the batch: the first pages, a page's successors, and the loop check. Pure.

A part of ``Scheduler`` (``scheduler.py``). A page's successors come from the page itself (an
enqueue) or from its discovery apart (``next_page``); either way once per page. A cursor equal to
an unfinished page's or to one of the last ``RECENT_CURSOR_WINDOW`` enqueued is ignored: a
processor that loops would otherwise never end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .discovery import DiscoveryBook
from .failures import FailedPages
from .pages import PageState, PageTable, RecentCursors
from .queue import RunQueue

__all__ = ["EnqueueResult", "Intake"]


@dataclass
class EnqueueResult:
    """What became of an enqueue: the page numbers added and the cursors ignored (and why)."""

    added: list[int] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


class Intake:
    """Numbers new pages, holds them and puts them in line."""

    def __init__(
        self,
        table: PageTable,
        recent: RecentCursors,
        queue: RunQueue,
        book: DiscoveryBook,
        failures: FailedPages,
    ) -> None:
        self._table, self._recent, self._queue = table, recent, queue
        self._book, self._failures = book, failures
        self.next_page_num = 0

    def enqueue(self, parent: int | None, pages: list[tuple[str, int]]) -> EnqueueResult:
        """Add pages discovered by ``parent`` (None for the first pages, one chain each).

        A parent that already enqueued its successors, or that is no longer in flight, is a
        re-delivery: its pages are ignored. A cursor equal to an unfinished page's or to one of
        the last RECENT_CURSOR_WINDOW enqueued is ignored (a looping processor); the check is
        exact, so it never drops a new cursor.
        """
        result = EnqueueResult()
        parent_cursor, chain = None, None
        if parent is not None:
            state = self._table.pages.get(parent)
            if state is None or state.successor_enqueued:
                result.ignored = [(c, "its page already enqueued its successors") for c, _ in pages]
                return result
            if parent in self._book.discovering:
                why = "its page's successors are found by next_page"
                result.ignored = [(c, why) for c, _ in pages]
                return result
            state.successor_enqueued = True
            parent_cursor, chain = state.cursor, state.chain
        self._add(pages, parent_cursor, chain, result)
        return result

    def discovered(self, page_num: int, pages: list[tuple[str, int]]) -> EnqueueResult:
        """``next_page`` answered for ``page_num``: its successors join the batch."""
        result = EnqueueResult()
        d = self._book.answered(page_num)
        if d is None:
            return result
        page = self._table.pages.get(page_num)
        if page is None and self._table.exact:
            # It failed for good while its discovery ran: a redrive must not find them again.
            page = self._failures.find(page_num)
        if page is not None:
            page.successor_enqueued = True
        self._add(pages, d.cursor, d.chain, result)
        self._table.close_chain(d.chain)
        return result

    def _add(
        self,
        pages: list[tuple[str, int]],
        parent_cursor: str | None,
        chain: int | None,
        result: EnqueueResult,
    ) -> None:
        for cursor, size in pages:
            if cursor == parent_cursor or cursor in self._recent or self._table.is_live(cursor):
                result.ignored.append((cursor, "it equals a cursor enqueued recently"))
                continue
            num = self.next_page_num
            self.next_page_num += 1
            self._table.hold(PageState(num, cursor, size, chain=num if chain is None else chain))
            self._queue.add(num)
            self._recent.remember(cursor)
            result.added.append(num)
