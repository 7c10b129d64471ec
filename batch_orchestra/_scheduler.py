"""Pure bookkeeping of a batch's pages and parallelism. No Temporal imports.

The workflow is a thin shell around ``Scheduler``: it feeds it events (pages enqueued, attempts
finished, time passing, control operations) and starts the attempts it hands out. Everything
here is bounded by max_parallelism + pending + stuck pages + fixed-size windows, never by the
number of pages processed, and round-trips through ``to_dict``/``from_dict`` for continue-as-new.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ._types import BatchOrchestratorProgress, PageFailure, ProcessorSettings

__all__ = ["Attempt", "EnqueueResult", "PageState", "Scheduler"]

RECENT_CURSOR_WINDOW = 64
"""How many recently enqueued cursors are remembered (besides those of every unfinished page)
to catch a processor that loops."""
FAILURE_LIST_LIMIT = 100
"""How many failed (and listed stuck) pages progress shows in detail; counts stay exact."""
MAX_ERROR_MESSAGE = 500
RATE_WINDOW_SECONDS = 60.0
"""Rates in progress are measured over about this long."""


@dataclass
class PageState:
    """One page the batch has discovered and not yet finished."""

    page_num: int
    cursor: str
    size: int
    attempts: int = 0
    successor_enqueued: bool = False
    stuck: bool = False
    ready_at: float | None = None
    error_type: str = ""
    error_message: str = ""
    failed_at: float | None = None
    report_deadline: float | None = None  # running at a hand-over: must report by then

    def to_list(self) -> list[Any]:
        return [self.page_num, self.cursor, self.size, self.attempts, self.successor_enqueued,
                self.stuck, self.ready_at, self.error_type, self.error_message, self.failed_at,
                self.report_deadline]

    @classmethod
    def from_list(cls, v: list[Any]) -> PageState:
        return cls(*v)

    def failure(self) -> PageFailure:
        return PageFailure(
            page_num=self.page_num, cursor_str=self.cursor, attempts=self.attempts,
            error_type=self.error_type, error_message=self.error_message,
            failed_at=_dt(self.failed_at or 0.0),
            next_retry_at=_dt(self.ready_at) if self.stuck and self.ready_at else None,
        )


@dataclass
class Attempt:
    """An attempt at a page that the workflow should start now."""

    page_num: int
    cursor: str
    size: int
    attempt: int
    successor_enqueued: bool


@dataclass
class EnqueueResult:
    """What became of an enqueue: the page numbers added and the cursors ignored (and why)."""

    added: list[int]
    ignored: list[tuple[str, str]]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class Scheduler:
    """Pending, running, waiting (retry backoff), stuck and failed pages of one batch."""

    def __init__(
        self, settings: ProcessorSettings, max_parallelism: int, start_time: float
    ) -> None:
        self.settings = settings
        self.max_parallelism = max_parallelism
        self.previous_parallelism = max_parallelism
        self.start_time = start_time
        self.next_page_num = 0
        self.num_completed = 0
        self.num_completed_items = 0
        self.num_failed = 0
        self.max_parallelism_achieved = 0
        self.num_runs = 1
        self.pages: dict[int, PageState] = {}
        self.ready: deque[int] = deque()
        self.running: set[int] = set()
        self.waiting: set[int] = set()
        self._handed_over: set[int] = set()
        self.failed: deque[PageState] = deque(maxlen=FAILURE_LIST_LIMIT)
        self._recent: deque[str] = deque()
        self._live_cursors: dict[str, int] = {}  # cursor -> page_num of unfinished pages
        # (time, completed pages, completed items), at most one a second over the rate window
        self._samples: deque[tuple[float, int, int]] = deque([(start_time, 0, 0)])
        self._recent_count: dict[str, int] = {}

    def enqueue(self, parent: int | None, pages: list[tuple[str, int]]) -> EnqueueResult:
        """Add pages discovered by ``parent`` (None for the first pages).

        A parent that already enqueued its successors, or that is no longer in flight, is a
        re-delivery: its pages are ignored. A cursor equal to an unfinished page's or to one of
        the last RECENT_CURSOR_WINDOW enqueued is ignored (a looping processor); the check is
        exact, so it never drops a new cursor.
        """
        result = EnqueueResult([], [])
        parent_cursor = None
        if parent is not None:
            state = self.pages.get(parent)
            if state is None or state.successor_enqueued:
                result.ignored = [(c, "its page already enqueued its successors") for c, _ in pages]
                return result
            state.successor_enqueued = True
            parent_cursor = state.cursor
        for cursor, size in pages:
            if cursor == parent_cursor or cursor in self._recent_count or (
                cursor in self._live_cursors
            ):
                result.ignored.append((cursor, "it equals a cursor enqueued recently"))
                continue
            num = self.next_page_num
            self.next_page_num += 1
            self.pages[num] = PageState(num, cursor, size)
            self._live_cursors[cursor] = num
            self.ready.append(num)
            self._remember(cursor)
            result.added.append(num)
        return result

    def _remember(self, cursor: str) -> None:
        self._recent.append(cursor)
        self._recent_count[cursor] = self._recent_count.get(cursor, 0) + 1
        if len(self._recent) > RECENT_CURSOR_WINDOW:
            old = self._recent.popleft()
            left = self._recent_count[old] - 1
            if left:
                self._recent_count[old] = left
            else:
                del self._recent_count[old]

    def take_runnable(self, limit: int | None = None) -> list[Attempt]:
        """Attempts to start now: as many ready pages as the parallelism cap allows."""
        free = self.max_parallelism - len(self.running)
        if limit is not None:
            free = min(free, limit)
        out: list[Attempt] = []
        while free > 0 and self.ready:
            num = self.ready.popleft()
            state = self.pages[num]
            state.attempts += 1
            self.running.add(num)
            out.append(Attempt(num, state.cursor, state.size, state.attempts,
                               state.successor_enqueued))
            free -= 1
        if len(self.running) > self.max_parallelism_achieved:
            self.max_parallelism_achieved = len(self.running)
        return out

    def is_current(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt of ``page_num`` (else its outcome is stale:
        already reported the other way, or superseded by a retry)."""
        state = self.pages.get(page_num)
        return page_num in self.running and state is not None and state.attempts == attempt

    def complete(self, page_num: int, items: int, now: float) -> None:
        """An attempt at ``page_num`` succeeded."""
        self.running.discard(page_num)
        self._handed_over.discard(page_num)
        state = self.pages.pop(page_num, None)
        if state is not None:
            state.report_deadline = None
            self._live_cursors.pop(state.cursor, None)
            self.num_completed += 1
            self.num_completed_items += max(0, items)
            if now - self._samples[-1][0] >= 1.0:
                self._samples.append((now, self.num_completed, self.num_completed_items))
                while now - self._samples[0][0] > RATE_WINDOW_SECONDS:
                    self._samples.popleft()

    def rates(self, now: float) -> tuple[float, float]:
        """Pages and items completed per second over the rate window."""
        t0, pages0, items0 = self._samples[0]
        elapsed = now - t0
        if elapsed <= 0:
            return 0.0, 0.0
        pages = (self.num_completed - pages0) / elapsed
        return pages, (self.num_completed_items - items0) / elapsed

    def fail(
        self, page_num: int, error_type: str, message: str, non_retryable: bool, now: float
    ) -> str:
        """An attempt at ``page_num`` failed. Returns what happens next: "retry", "stuck" or
        "failed"."""
        self.running.discard(page_num)
        self._handed_over.discard(page_num)
        state = self.pages.get(page_num)
        if state is None:
            return "failed"
        s = self.settings
        state.report_deadline = None
        state.error_type = error_type
        state.error_message = message[:MAX_ERROR_MESSAGE]
        state.failed_at = now
        permanent = non_retryable or s.at_most_once or error_type in s.non_retryable_error_types
        exhausted = state.stuck or (0 < s.maximum_attempts <= state.attempts)
        if permanent or (exhausted and not s.use_extended_retries):
            del self.pages[page_num]
            self._live_cursors.pop(state.cursor, None)
            self.num_failed += 1
            state.stuck = False
            self.failed.append(state)
            return "failed"
        self.waiting.add(page_num)
        if exhausted:
            state.stuck = True
            state.ready_at = now + s.extended_retry_interval_seconds
            return "stuck"
        state.ready_at = now + s.retry_delay(state.attempts)
        return "retry"

    def next_due(self) -> float | None:
        """When the earliest waiting retry, or the deadline of a page handed over while
        running, is due, if any."""
        due = [self.pages[n].ready_at or 0.0 for n in self.waiting]
        due += [d for d in (self.pages[n].report_deadline for n in self._handed_over) if d]
        return min(due) if due else None

    @property
    def has_due(self) -> bool:
        """Whether anything will come due (cheap: checked on every workflow activation)."""
        return bool(self.waiting or self._handed_over)

    def release_due(self, now: float) -> int:
        """Make every retry due by ``now`` ready to run (ahead of new pages), and fail the
        attempts handed over while running that never reported; returns how many pages."""
        overdue = [n for n in self._handed_over if (self.pages[n].report_deadline or 0.0) <= now]
        for n in overdue:
            self.fail(n, "Timeout", "the attempt was running at a hand-over and never reported "
                      "its outcome (its worker may have died)", False, now)
        due = sorted(
            (self.pages[n] for n in self.waiting if (self.pages[n].ready_at or 0.0) <= now),
            key=lambda p: (p.ready_at, p.page_num), reverse=True,
        )
        for p in due:
            p.ready_at = None
            self.waiting.discard(p.page_num)
            self.ready.appendleft(p.page_num)
        return len(due) + len(overdue)

    @property
    def handed_over(self) -> list[int]:
        """Running pages whose attempt was started by an earlier run (they leave the set when
        they complete or fail)."""
        return sorted(self._handed_over)

    def set_parallelism(self, n: int) -> int:
        """Set the cap, remembering the old one; returns the old one."""
        old = self.max_parallelism
        if n != old:
            self.previous_parallelism = old
            self.max_parallelism = n
        return old

    def restore_parallelism(self) -> int:
        """Return to the cap before the last change; returns the new cap."""
        self.set_parallelism(self.previous_parallelism)
        return self.max_parallelism

    @property
    def is_finished(self) -> bool:
        """No page is pending, waiting, running or stuck."""
        return not self.pages

    def progress(self, now: float, total_items: int | None = None) -> BatchOrchestratorProgress:
        """A snapshot for queries, trackers and the result."""
        pages_rate, items_rate = self.rates(now)
        percent = eta = None
        if total_items is not None:
            done = self.num_completed_items
            percent = min(100.0, 100.0 * done / total_items) if total_items else 100.0
            if items_rate > 0:
                eta = max(0.0, (total_items - done) / items_rate)
        stuck = [p for p in self.pages.values() if p.stuck]
        idle_stuck = sum(1 for n in self.waiting if self.pages[n].stuck)
        recent_stuck = sorted(stuck, key=lambda p: p.failed_at or 0.0)[-FAILURE_LIST_LIMIT:]
        return BatchOrchestratorProgress(
            num_completed_pages=self.num_completed,
            num_processing_pages=len(self.running),
            num_pending_pages=len(self.pages) - len(self.running) - idle_stuck,
            num_stuck_pages=len(stuck),
            num_failed_pages=self.num_failed,
            num_completed_items=self.num_completed_items,
            num_open_chains=sum(1 for p in self.pages.values() if not p.successor_enqueued),
            is_finished=self.is_finished,
            is_paused=self.max_parallelism == 0,
            max_parallelism=self.max_parallelism,
            max_parallelism_achieved=self.max_parallelism_achieved,
            start_time=_dt(self.start_time),
            num_runs=self.num_runs,
            total_items=total_items,
            pages_per_second=pages_rate,
            items_per_second=items_rate,
            percent_complete=percent,
            eta_seconds=eta,
            stuck_pages=[p.failure() for p in recent_stuck],
            failed_pages=[p.failure() for p in self.failed],
        )

    def to_dict(self, report_deadline: float | None = None) -> dict[str, Any]:
        """The state to carry into the next run. Pages still running are handed over: their
        attempts report to the next run by ``report_deadline``, or count as timed out."""
        if self.running and report_deadline is None:
            raise RuntimeError(f"pages running at a hand-over need a deadline: {self.running}")
        for n in self.running:
            state = self.pages[n]
            state.report_deadline = max(state.report_deadline or 0.0, report_deadline or 0.0)
        return {
            "running": sorted(self.running),
            "max_parallelism": self.max_parallelism,
            "previous_parallelism": self.previous_parallelism,
            "start_time": self.start_time,
            "next_page_num": self.next_page_num,
            "num_completed": self.num_completed,
            "num_completed_items": self.num_completed_items,
            "num_failed": self.num_failed,
            "max_parallelism_achieved": self.max_parallelism_achieved,
            "num_runs": self.num_runs,
            "ready": list(self.ready),
            "pages": [p.to_list() for p in self.pages.values()],
            "failed": [p.to_list() for p in self.failed],
            "recent": list(self._recent),
            # the oldest and newest rate samples are enough to keep rates going; a constant size
            "samples": [list(x) for x in list(self._samples)[:1] + list(self._samples)[1:][-1:]],
        }

    @classmethod
    def from_dict(cls, settings: ProcessorSettings, d: dict[str, Any]) -> Scheduler:
        """Rebuild a scheduler from ``to_dict`` output (the next run)."""
        s = cls(settings, d["max_parallelism"], d["start_time"])
        s.previous_parallelism = d["previous_parallelism"]
        s.next_page_num = d["next_page_num"]
        s.num_completed = d["num_completed"]
        s.num_completed_items = d["num_completed_items"]
        s.num_failed = d["num_failed"]
        s.max_parallelism_achieved = d["max_parallelism_achieved"]
        s.num_runs = d["num_runs"] + 1
        s.pages = {v[0]: PageState.from_list(v) for v in d["pages"]}
        s.ready = deque(d["ready"])
        s.running = set(d.get("running", []))
        s._handed_over = set(s.running)
        s.waiting = {n for n, p in s.pages.items() if p.ready_at is not None}
        s._live_cursors = {p.cursor: n for n, p in s.pages.items()}
        s.failed = deque((PageState.from_list(v) for v in d["failed"]), maxlen=FAILURE_LIST_LIMIT)
        for c in d["recent"]:
            s._remember(c)
        s._samples = deque((t, p, i) for t, p, i in d.get("samples") or [(s.start_time, 0, 0)])
        return s
