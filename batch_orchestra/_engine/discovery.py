"""Discovery apart, and the operator's retry and skip of one page: pure bookkeeping.

A mixin of ``Scheduler`` (``_scheduler.py``), kept apart so that both read in one sitting. No
Temporal imports.

**Discovery apart.** A processor with a ``next_page`` method finds its page's successors in a
step of their own (the ``discover_page`` activity) that runs alongside the page's processing.
A page gets a ``Discovery`` when its first attempt starts (not when it is enqueued: discovery
must not run ahead of processing, or a chain would hold the whole data set as pending pages),
and keeps it until ``next_page`` has answered. Discovery is retried on its own, by the
workflow, with a backoff of 1 s doubling to 60 s and no limit: it only reads, and a chain whose
discovery gave up would silently end. Each failure is kept (its error counts in ``errors``),
so one that keeps failing is visible. A discovery outlives its page: an at-most-once page that
fails, or a page an operator skips, still hands its chain on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .budgets import text_size

if TYPE_CHECKING:
    from .._errors_table import ErrorTable
    from .._types import ProcessorSettings
    from .scheduler import EnqueueResult, PageState

__all__ = [
    "DISCOVERY_INITIAL_INTERVAL",
    "DISCOVERY_MAX_INTERVAL",
    "MAX_RUNNING_DISCOVERIES",
    "Discovery",
    "DiscoveryBook",
]

DISCOVERY_INITIAL_INTERVAL = 1.0
"""Seconds before a failed discovery's first retry; doubled after each failure."""
DISCOVERY_MAX_INTERVAL = 60.0
"""The longest wait between two attempts at a discovery."""
MAX_RUNNING_DISCOVERIES = 50
"""The most discoveries that run at once (with ``MAX_RUNNING_PAGES`` page attempts, the run
stays under Temporal's 2,000 pending activities)."""


@dataclass
class Discovery:
    """A page whose successors ``next_page`` has yet to find."""

    page_num: int
    cursor: str
    size: int
    chain: int
    attempts: int = 0
    """Attempts started (the running one included)."""
    failures: int = 0
    ready_at: float | None = None
    """When it may run again after a failure (None: now)."""
    error: int = -1
    """Its last error, an index into the batch's ``ErrorTable``."""
    failed_at: float | None = None


class DiscoveryBook:
    """The discovery and operator-action half of ``Scheduler`` (see the module docstring)."""

    settings: ProcessorSettings
    pages: dict[int, PageState]
    ready: deque[int]
    running: set[int]
    waiting: set[int]
    chains: dict[int, int]
    errors: ErrorTable
    failed: deque[PageState]
    paused: bool
    bytes_limited: bool
    exact: bool
    _fresh: int

    discovering: dict[int, Discovery]
    discovery_ready: deque[int]
    discovery_running: set[int]
    discovery_waiting: set[int]
    num_skipped: int

    def _init_discovery(self) -> None:
        self.discovering = {}
        self.discovery_ready = deque()
        self.discovery_running = set()
        self.discovery_waiting = set()
        self.num_skipped = 0

    def _release(self, page: PageState) -> None:
        raise NotImplementedError

    def _add_pages(
        self,
        pages: list[tuple[str, int]],
        parent_cursor: str | None,
        chain: int | None,
        result: EnqueueResult,
    ) -> None:
        raise NotImplementedError

    # -- discovery apart ---------------------------------------------------------------------

    def want_discovery(self, page: PageState) -> bool:
        """Give ``page`` a discovery if it needs one; True if it got one.

        It needs one if its processor discovers apart and its successors are not known yet (nor
        being found).
        """
        num = page.page_num
        if (
            not self.settings.discovers_apart
            or page.successor_enqueued
            or (num in self.discovering)
        ):
            return False
        self.discovering[num] = Discovery(num, page.cursor, page.size, page.chain)
        self.chains[page.chain] = self.chains.get(page.chain, 0) + 1  # its chain stays open
        self.discovery_ready.append(num)
        return True

    def take_discoveries(
        self,
        limit: int = MAX_RUNNING_DISCOVERIES,
        max_bytes: int | None = None,
        per_item: int = 0,
    ) -> list[Discovery]:
        """Discoveries to start now (none while paused).

        ``max_bytes``: at most about this many bytes of inputs, each ``per_item`` plus its
        cursor (at least one).
        """
        out: list[Discovery] = []
        free = min(limit, MAX_RUNNING_DISCOVERIES - len(self.discovery_running))
        spent = 0
        self.bytes_limited = False
        while free > 0 and self.discovery_ready and not self.paused:
            if max_bytes is not None:
                spent += per_item + text_size(self.discovering[self.discovery_ready[0]].cursor)
                if out and spent > max_bytes:
                    self.bytes_limited = True
                    break
            d = self.discovering[self.discovery_ready.popleft()]
            d.attempts += 1
            self.discovery_running.add(d.page_num)
            out.append(d)
            free -= 1
        return out

    def is_current_discovery(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt at ``page_num``'s discovery."""
        d = self.discovering.get(page_num)
        return d is not None and page_num in self.discovery_running and d.attempts == attempt

    def discovered(self, page_num: int, pages: list[tuple[str, int]]) -> EnqueueResult:
        """``next_page`` answered for ``page_num``: its successors join the batch."""
        from .scheduler import EnqueueResult

        result = EnqueueResult()
        d = self.discovering.pop(page_num, None)
        if d is None:
            return result
        self.discovery_running.discard(page_num)
        self.discovery_waiting.discard(page_num)
        self.errors.release(d.error)
        page = self.pages.get(page_num)
        if page is None and self.exact:
            # It failed for good while its discovery ran: a redrive must not find them again.
            page = next((p for p in self.failed if p.page_num == page_num), None)
        if page is not None:
            page.successor_enqueued = True
        self._add_pages(pages, d.cursor, d.chain, result)
        left = self.chains.get(d.chain, 1) - 1
        if left > 0:
            self.chains[d.chain] = left
        else:
            self.chains.pop(d.chain, None)
        return result

    def discovery_failed(self, page_num: int, error_type: str, message: str, now: float) -> float:
        """An attempt at ``page_num``'s discovery failed.

        Returns the seconds until it is retried (-1.0 if stale).
        """
        d = self.discovering.get(page_num)
        if d is None or page_num not in self.discovery_running:
            return -1.0
        self.discovery_running.discard(page_num)
        d.failures += 1
        self.errors.release(d.error)
        d.error = self.errors.acquire(error_type, f"discovery (next_page) failed: {message}")
        d.failed_at = now
        delay = min(
            DISCOVERY_MAX_INTERVAL, DISCOVERY_INITIAL_INTERVAL * 2.0 ** min(d.failures - 1, 16)
        )
        d.ready_at = now + delay
        self.discovery_waiting.add(page_num)
        return delay

    def discovery_not_run(self, page_num: int) -> None:
        """A discovery's attempt ended without an answer that counts (its run was cancelled).

        It is ready again.
        """
        if page_num in self.discovery_running:
            self.discovery_running.discard(page_num)
            self.discovery_ready.appendleft(page_num)

    def _discovery_due(self) -> list[float]:
        return [self.discovering[n].ready_at or 0.0 for n in self.discovery_waiting]

    def _release_due_discoveries(self, now: float) -> int:
        due = sorted(
            n for n in self.discovery_waiting if (self.discovering[n].ready_at or 0.0) <= now
        )
        for n in due:
            self.discovery_waiting.discard(n)
            self.discovering[n].ready_at = None
            self.discovery_ready.append(n)
        return len(due)

    @property
    def failing_discoveries(self) -> list[Discovery]:
        """Discoveries that failed at least once and have not succeeded since."""
        return [d for d in self.discovering.values() if d.failures]

    # -- operator actions --------------------------------------------------------------------

    def page_status(self, page_num: int) -> str:
        """What ``page_num`` is now.

        One of "running", "pending", "retrying", "stuck", "failed" (one of the listed failed pages),
        or "unknown" (finished, or never discovered).
        """
        page = self.pages.get(page_num)
        if page is None:
            if any(p.page_num == page_num for p in self.failed):
                return "failed"
            return "unknown"
        if page_num in self.running:
            return "running"
        if page_num in self.waiting:
            return "stuck" if page.stuck else "retrying"
        return "pending"

    def refuse_page_action(self, page_num: int, action: str) -> str | None:
        """Why ``action`` ("retry" or "skip") cannot be done to ``page_num`` now, or None."""
        if isinstance(page_num, bool) or not isinstance(page_num, int) or page_num < 0:
            return f"page_num must be an int >= 0, got {page_num!r}"
        status = self.page_status(page_num)
        if status == "running":
            return (
                f"page {page_num} is running (attempt {self.pages[page_num].attempts}); {action} "
                "it once the attempt has ended, if it fails"
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
        page = self.pages[page_num]
        if status in ("retrying", "stuck"):
            self.waiting.discard(page_num)
            page.ready_at = None
            if self.exact and page.attempts == page.unrun:
                self._fresh += 1  # its attempts did no work: a new page again
        elif page_num in self.ready:
            self.ready.remove(page_num)
        self.ready.appendleft(page_num)
        return status

    def skip(self, page_num: int) -> tuple[str, bool]:
        """Count a pending, retrying or stuck page as skipped and let it go.

        Returns what it was, and whether its chain goes on (its successors are known, or are being
        found apart).
        """
        status = self.page_status(page_num)
        page = self.pages[page_num]
        if status in ("retrying", "stuck"):
            self.waiting.discard(page_num)
        elif page_num in self.ready:
            self.ready.remove(page_num)
            if page.attempts == page.unrun:
                self._fresh -= 1
        self.want_discovery(page)
        chain_goes_on = page.successor_enqueued or page_num in self.discovering
        self.errors.release(page.error)
        self._release(page)
        self.num_skipped += 1
        return status, chain_goes_on
