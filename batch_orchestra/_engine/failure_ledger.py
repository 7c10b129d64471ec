"""The failure ledger's rules: what is recorded, what a redrive queues, what a read brings in.

A page that fails for good, and an item a page records as failed, go into the ledger book
(``_ledger.py``); the shell writes its records (a no-op activity each, whose input Temporal keeps)
and the batch keeps only a preview. ``redrive`` on a running batch writes a marker record, counts
every failed page as pending and reads them back from its own ledger, a chunk at a time, keeping
their page numbers; a redrive batch (``redrive_source``) reads another batch's ledger the same
way.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .._model import ItemFailure
from .budgets import LEDGER_READ_BYTES, MAX_ITEM_KEY, MAX_ITEM_MESSAGE, clip
from .errors_table import MAX_ERROR_TYPE
from .ledger import LedgerBook, LedgerFeed, LedgerItem, LedgerPage, ReadLedgerResult
from .lifecycle import Lifecycle
from .pages import MAX_HELD_BYTES
from .scheduler import PageState

if TYPE_CHECKING:
    from .run_state import RunState

__all__ = ["ITEM_PAGE_BYTES", "FailureLedger", "item_pages"]

ITEM_PAGE_BYTES = 12_000
"""The most bytes of keys one page of a batch of item keys holds (a cursor holds 16 KB)."""


def item_pages(keys: list[str], page_size: int) -> list[str]:
    """Cursors of pages of up to ``page_size`` keys and ``ITEM_PAGE_BYTES``: JSON lists of keys."""
    chunks: list[list[str]] = [[]]
    size = 2
    for key in dict.fromkeys(keys):  # each key once, in order
        cost = len(json.dumps(key)) + 1
        if len(chunks[-1]) >= page_size or (chunks[-1] and size + cost > ITEM_PAGE_BYTES):
            chunks.append([])
            size = 2
        chunks[-1].append(key)
        size += cost
    return [json.dumps(c) for c in chunks if c]


class FailureLedger:
    """The ledger book, the ledgers being read into the batch, and the rules about both."""

    def __init__(self, engine: RunState) -> None:
        self._engine = engine
        cont = engine.cont
        ledger = cont.ledger if cont is not None else None
        self.book = LedgerBook(engine.identity.execution, ledger)
        self.feeds: list[LedgerFeed] = list(ledger.feeds) if ledger is not None else []
        self.reading = False
        """A read of a ledger is in flight (or waits to be tried again)."""
        self.records_in_flight = 0

    # -- recording -----------------------------------------------------------------------------

    def record_page(self, page: PageState, now: float) -> None:
        """A page failed for good: its entry goes into the ledger, the batch keeps a preview."""
        engine = self._engine
        if not engine.patches.budgets:
            return
        sched = engine.sched
        error_type, message = sched.errors.get(page.error)
        entry = LedgerPage(
            page_num=page.page_num,
            cursor=page.cursor,
            size=page.size,
            attempts=page.attempts,
            successor_enqueued=page.successor_enqueued,
            error_type=error_type,
            error_message=message,
            failed_at=page.failed_at or now,
            chain=page.chain,
        )
        self.book.add_page(entry, now)
        sched.keep_preview(page)

    def record_items(self, items: list[ItemFailure], now: float) -> None:
        if not self._engine.patches.budgets:
            return
        for item in items:
            self.book.add_item(
                LedgerItem(
                    page_num=item.page_num,
                    key=item.key,
                    error_type=item.error_type,
                    error_message=item.error_message,
                    failed_at=item.failed_at.timestamp(),
                ),
                now,
            )

    @staticmethod
    def clean_items(items: list[ItemFailure] | None) -> list[ItemFailure]:
        """Item failures as reported, cut to the sizes the library keeps.

        A worker of another version, or another client, may send anything.
        """
        out = []
        for item in items or []:
            key = str(item.key)[:MAX_ITEM_KEY]
            out.append(
                ItemFailure(
                    key=key,
                    page_num=item.page_num,
                    error_type=clip(str(item.error_type), MAX_ERROR_TYPE),
                    error_message=clip(str(item.error_message), MAX_ITEM_MESSAGE),
                    failed_at=item.failed_at,
                    key_length=len(key),
                )
            )
        return out

    # -- a batch's first pages -----------------------------------------------------------------

    def enqueue_redrive_pages(self) -> list[str]:
        """A redrive batch starts with the failed pages of the batch it redrives.

        Those that had enqueued their successors keep that mark, so they do not enqueue them again.
        """
        sched = self._engine.sched
        pages = self._engine.inp.redrive_pages or []
        added = sched.enqueue(None, [(p.cursor_str, p.size) for p in pages]).added
        by_cursor = {p.cursor_str: p for p in pages}
        for num in added:
            sched.mark_successor_enqueued(
                num, by_cursor[sched.pages[num].cursor].successor_enqueued
            )
        return [p.cursor_str for p in pages]

    def enqueue_item_pages(self, keys: list[str]) -> list[str]:
        """Pages of up to ``page_size`` keys, none with a successor (a batch of item keys)."""
        sched, size = self._engine.sched, self._engine.inp.page_size
        cursors = item_pages(keys, size)
        for num in sched.enqueue(None, [(c, size) for c in cursors]).added:
            sched.mark_successor_enqueued(num)
        return cursors

    def start_feed(self) -> None:
        """A redrive batch (``redrive_source``): its pages come from another batch's ledger."""
        engine = self._engine
        src = engine.inp.redrive_source
        if src is None:
            return
        self.feeds.append(
            LedgerFeed(
                workflow_id=src.workflow_id,
                execution=src.first_run_id,
                items=src.items,
                from_record=src.from_record,
                to_record=src.to_record,
            )
        )
        engine.run_items = engine.run_items or src.items
        if engine.started:
            engine.sched.set_feeding(True)

    # -- redrive of a running batch ------------------------------------------------------------

    def redrive(self, workflow_id: str) -> tuple[int, int]:
        """Queue every failed page again; (how many, how many of them come from the ledger)."""
        engine = self._engine
        sched = engine.sched
        before = sched.num_failed
        pending = sched.feed_pending
        sched.redrive_failed(from_ledger=engine.patches.budgets)
        from_ledger = sched.feed_pending - pending
        if from_ledger:
            marker = self.book.marker()
            feed = self.feeds[-1] if self.feeds and self.feeds[-1].own else None
            if feed is not None:
                feed.to_record = marker.seq  # one read goes on past the earlier marker
            else:
                self.feeds.append(
                    LedgerFeed(
                        workflow_id=workflow_id,
                        execution=engine.identity.execution,
                        own=True,
                        from_record=0,
                        to_record=marker.seq,
                        position=self.book.base_position,
                    )
                )
            sched.set_feeding(True)
        return before - sched.num_failed, from_ledger

    # -- reading a ledger into the batch -------------------------------------------------------

    def wanted(self) -> bool:
        """Whether to read the next chunk of a ledger now.

        When the batch holds few ready pages and few bytes, and (for its own ledger) the marker
        record it reads up to has been written.
        """
        engine = self._engine
        if not self.feeds or self.reading or not engine.started:
            return False
        if engine.state is not Lifecycle.RUNNING:
            return False
        sched = engine.sched
        feed = self.feeds[0]
        if feed.own and feed.to_record is not None and self.book.written <= feed.to_record:
            return False
        low_water = max(1, min(sched.effective_parallelism, 1_000))
        return len(sched.ready) <= low_water and (
            sched.held_bytes + LEDGER_READ_BYTES <= MAX_HELD_BYTES
        )

    def read_failed(self, feed: LedgerFeed, cause: str, now: float) -> None:
        """A read of ``feed`` failed after its retries: it is tried again in a minute."""
        self._engine.log.error(
            "reading the failure ledger of %s failed: %s; trying again in %s",
            feed.workflow_id,
            cause,
            "0:01:00",
        )
        self._engine.changed(
            f"reading the failure ledger of {feed.workflow_id} failed ({cause}); trying "
            "again in a minute",
            None,
            now,
        )
        self.reading = True  # holds the reads until the pause is over

    def apply_read(self, feed: LedgerFeed, result: ReadLedgerResult, now: float) -> None:
        """A chunk of a ledger was read: queue its pages (or pages of its items' keys)."""
        engine = self._engine
        sched, page_size = engine.sched, engine.inp.page_size
        if feed.own:
            for e in result.pages:
                sched.readd(
                    PageState(
                        e.page_num,
                        e.cursor,
                        e.size,
                        chain=e.chain,
                        attempts=e.attempts,
                        successor_enqueued=e.successor_enqueued,
                    )
                )
        elif feed.items:
            cursors = item_pages([i.key for i in result.items], page_size)
            for num in sched.enqueue(None, [(c, page_size) for c in cursors]).added:
                sched.mark_successor_enqueued(num)
        elif result.pages:
            added = sched.enqueue(None, [(e.cursor, e.size or page_size) for e in result.pages])
            marks = {e.cursor: e.successor_enqueued for e in result.pages}
            for num in added.added:
                sched.mark_successor_enqueued(num, marks.get(sched.pages[num].cursor, False))
        feed.position = result.position
        if result.unavailable_runs:
            feed.unavailable_runs += result.unavailable_runs
            engine.changed(
                f"{result.unavailable_runs} run(s) of {feed.workflow_id} are gone (past the "
                "namespace's retention period): the failures they recorded cannot be read",
                None,
                now,
            )
        if not result.done:
            return
        self.feeds.remove(feed)
        sched.set_feeding(bool(self.feeds))
        if feed.own:
            self.book.base_position = result.position
            if not any(f.own for f in self.feeds) and sched.feed_pending:
                lost = sched.count_unread_as_failed()
                engine.changed(
                    f"redrive: {lost} failed page(s) could not be read back from the "
                    "ledger (their runs are gone past the retention period); they stay "
                    "counted as failed",
                    None,
                    now,
                )
