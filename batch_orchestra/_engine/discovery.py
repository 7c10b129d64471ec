"""Discovery apart: the pages whose successors ``next_page`` finds in a step of their own. Pure.

A part of ``Scheduler`` (``scheduler.py``); the operator's retry and skip of one page are in
``actions.py``.

**Discovery apart.** A processor with a ``next_page`` method finds its page's successors in a
step of their own (the ``discover_page`` activity) that runs alongside the page's processing.
A page gets a ``Discovery`` when its first attempt starts (not when it is enqueued: discovery
must not run ahead of processing, or a chain would hold the whole data set as pending pages),
and keeps it until ``next_page`` has answered. Discovery is retried on its own, by the
workflow, with a backoff of 1 s doubling to 60 s and no limit: it only reads, and a chain whose
discovery gave up would silently end. Each failure is kept (its error counts in ``errors``),
so one that keeps failing is visible. A discovery outlives its page: an at-most-once page that
fails, or a page an operator skips, still hands its chain on (a discovery keeps its chain open).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .._model import ProcessorSettings
from .budgets import text_size
from .errors_table import ErrorTable
from .pages import PageState, PageTable

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
    """The discoveries apart of one batch: ready, running, and waiting for their retry."""

    def __init__(self, settings: ProcessorSettings, table: PageTable, errors: ErrorTable) -> None:
        self.settings = settings
        self._table = table
        self._errors = errors
        self.discovering: dict[int, Discovery] = {}
        self.discovery_ready: deque[int] = deque()
        self.discovery_running: set[int] = set()
        self.discovery_waiting: set[int] = set()

    def want(self, page: PageState) -> bool:
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
        self._table.open_chain(page.chain)
        self.discovery_ready.append(num)
        return True

    def take(
        self, limit: int, max_bytes: int | None, per_item: int, *, paused: bool
    ) -> tuple[list[Discovery], bool]:
        """Discoveries to start now (none while ``paused``), and whether bytes limited them.

        ``max_bytes``: at most about this many bytes of inputs, each ``per_item`` plus its
        cursor (at least one).
        """
        out: list[Discovery] = []
        free = min(limit, MAX_RUNNING_DISCOVERIES - len(self.discovery_running))
        spent = 0
        while free > 0 and self.discovery_ready and not paused:
            if max_bytes is not None:
                spent += per_item + text_size(self.discovering[self.discovery_ready[0]].cursor)
                if out and spent > max_bytes:
                    return out, True
            d = self.discovering[self.discovery_ready.popleft()]
            d.attempts += 1
            self.discovery_running.add(d.page_num)
            out.append(d)
            free -= 1
        return out, False

    def is_current(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt at ``page_num``'s discovery."""
        d = self.discovering.get(page_num)
        return d is not None and page_num in self.discovery_running and d.attempts == attempt

    def answered(self, page_num: int) -> Discovery | None:
        """``next_page`` answered for ``page_num``: its discovery ends (None if it had none).

        Its chain stays open until the caller has added the successors and closes it.
        """
        d = self.discovering.pop(page_num, None)
        if d is None:
            return None
        self.discovery_running.discard(page_num)
        self.discovery_waiting.discard(page_num)
        self._errors.release(d.error)
        return d

    def failed(self, page_num: int, error_type: str, message: str, now: float) -> float:
        """An attempt at ``page_num``'s discovery failed.

        Returns the seconds until it is retried (-1.0 if stale).
        """
        d = self.discovering.get(page_num)
        if d is None or page_num not in self.discovery_running:
            return -1.0
        self.discovery_running.discard(page_num)
        d.failures += 1
        self._errors.release(d.error)
        d.error = self._errors.acquire(error_type, f"discovery (next_page) failed: {message}")
        d.failed_at = now
        delay = min(
            DISCOVERY_MAX_INTERVAL, DISCOVERY_INITIAL_INTERVAL * 2.0 ** min(d.failures - 1, 16)
        )
        d.ready_at = now + delay
        self.discovery_waiting.add(page_num)
        return delay

    def not_run(self, page_num: int) -> None:
        """A discovery's attempt ended without an answer that counts (its run was cancelled).

        It is ready again.
        """
        if page_num in self.discovery_running:
            self.discovery_running.discard(page_num)
            self.discovery_ready.appendleft(page_num)

    def due_times(self) -> list[float]:
        """When each discovery waiting for its retry comes due."""
        return [self.discovering[n].ready_at or 0.0 for n in self.discovery_waiting]

    def release_due(self, now: float) -> int:
        """The discoveries whose retry is due by ``now`` are ready again; how many."""
        due = sorted(
            n for n in self.discovery_waiting if (self.discovering[n].ready_at or 0.0) <= now
        )
        for n in due:
            self.discovery_waiting.discard(n)
            self.discovering[n].ready_at = None
            self.discovery_ready.append(n)
        return len(due)

    @property
    def failing(self) -> list[Discovery]:
        """Discoveries that failed at least once and have not succeeded since."""
        return [d for d in self.discovering.values() if d.failures]

    def state(self) -> list[Discovery]:
        """The discoveries in page order, for a hand-over."""
        return sorted(self.discovering.values(), key=lambda d: d.page_num)

    def restore(self, discoveries: list[Discovery]) -> None:
        """The discoveries a hand-over carried (their errors are the caller's to count).

        One running at the hand-over is found again now (it only reads); one waiting for its
        retry keeps its time.
        """
        for d in discoveries:
            self.discovering[d.page_num] = d
            self._table.open_chain(d.chain)
            if d.ready_at is not None:
                self.discovery_waiting.add(d.page_num)
            else:
                self.discovery_ready.append(d.page_num)
