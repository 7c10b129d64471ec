"""An operator's retry and skip of one page: what a page is now, and acting on it. Pure.

A part of ``Scheduler`` (``scheduler.py``), over the parts it changes: the page table, the line,
the retries, the failed list and the discoveries apart (a skipped page still hands its chain on).
"""

from __future__ import annotations

from .discovery import DiscoveryBook
from .errors_table import ErrorTable
from .failures import FailedPages
from .pages import PageTable
from .queue import RunQueue
from .retries import Retries

__all__ = ["PageActions"]


class PageActions:
    """``retry_now`` and ``skip`` of one page, with the count of skipped pages."""

    def __init__(
        self,
        table: PageTable,
        queue: RunQueue,
        retries: Retries,
        failures: FailedPages,
        book: DiscoveryBook,
        errors: ErrorTable,
    ) -> None:
        self._table, self._queue, self._retries = table, queue, retries
        self._failures, self._book, self._errors = failures, book, errors
        self.num_skipped = 0

    def page_status(self, page_num: int) -> str:
        """What ``page_num`` is now.

        One of "running", "pending", "retrying", "stuck", "failed" (one of the listed failed pages),
        or "unknown" (finished, or never discovered).
        """
        page = self._table.pages.get(page_num)
        if page is None:
            if self._failures.find(page_num) is not None:
                return "failed"
            return "unknown"
        if page_num in self._queue.running:
            return "running"
        if page_num in self._retries.waiting:
            return "stuck" if page.stuck else "retrying"
        return "pending"

    def refuse(self, page_num: int, action: str) -> str | None:
        """Why ``action`` ("retry" or "skip") cannot be done to ``page_num`` now, or None."""
        if isinstance(page_num, bool) or not isinstance(page_num, int) or page_num < 0:
            return f"page_num must be an int >= 0, got {page_num!r}"
        status = self.page_status(page_num)
        if status == "running":
            return (
                f"page {page_num} is running (attempt {self._table.pages[page_num].attempts}); "
                f"{action} it once the attempt has ended, if it fails"
            )
        if status == "failed":
            return f"page {page_num} has failed for good and is no longer held by the batch"
        if status == "unknown":
            return (
                f"page {page_num} is not pending, retrying or stuck in this batch (it has "
                "completed or been skipped, failed for good, or was never discovered)"
            )
        return None

    def retry_now(self, page_num: int) -> str:
        """Start a pending, retrying or stuck page first, without waiting for its next retry.

        Returns what it was ("pending", "retrying", "stuck").
        """
        status = self.page_status(page_num)
        page = self._table.pages[page_num]
        if status in ("retrying", "stuck"):
            self._retries.stop_waiting(page)
            self._queue.put_first(page)
        else:
            self._queue.move_first(page_num)
        return status

    def skip(self, page_num: int) -> tuple[str, bool]:
        """Count a pending, retrying or stuck page as skipped and let it go.

        Returns what it was, and whether its chain goes on (its successors are known, or are being
        found apart).
        """
        status = self.page_status(page_num)
        page = self._table.pages[page_num]
        if status in ("retrying", "stuck"):
            self._retries.waiting.discard(page_num)
        else:
            self._queue.drop(page)
        self._book.want(page)
        chain_goes_on = page.successor_enqueued or page_num in self._book.discovering
        self._errors.release(page.error)
        self._table.release(page)
        self.num_skipped += 1
        return status, chain_goes_on
