"""Page attempts: which start now, and what each one's outcome does to its page. Pure.

A part of ``Scheduler`` (``scheduler.py``) over the parts an outcome changes: a completed page
leaves the page table; a failed one waits for a retry (``retries.py``) or joins the failed list
(``failures.py``); an attempt that never started goes first in line again, uncounted; and every
counted outcome feeds the failure policy's window (``policy.py``) and the no-progress watch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .budgets import text_size
from .discovery import DiscoveryBook
from .errors_table import ErrorTable
from .failures import FailedPages
from .no_progress import NoProgressWatch
from .pages import PageState, PageTable
from .parallelism import Parallelism
from .policy import PolicyWindow
from .queue import RunQueue
from .retries import Outcome, Retries
from .throughput import Throughput

__all__ = ["HANDOVER_TIMEOUT_MESSAGE", "Attempt", "Attempts"]

HANDOVER_TIMEOUT_MESSAGE = (
    "the attempt was running or waiting for a worker at a hand-over and never reported its "
    "outcome: its worker may have died, or no worker slot took it before its run closed "
    "(parallelism above the workers' activity slots); it may not have run"
)
"""The error of a handed-over attempt that did not report by its deadline."""


@dataclass
class Attempt:
    """An attempt at a page that the workflow should start now."""

    page_num: int
    cursor: str
    size: int
    attempt: int
    successor_enqueued: bool


class Attempts:
    """Starts attempts at ready pages and books their outcomes."""

    def __init__(
        self,
        table: PageTable,
        queue: RunQueue,
        retries: Retries,
        failures: FailedPages,
        outcomes: PolicyWindow,
        throughput: Throughput,
        parallelism: Parallelism,
        book: DiscoveryBook,
        errors: ErrorTable,
    ) -> None:
        self._table, self._queue, self._retries = table, queue, retries
        self._failures, self._outcomes, self._throughput = failures, outcomes, throughput
        self._parallelism, self._book, self._errors = parallelism, book, errors
        self.watch = NoProgressWatch()  # identical failures in a row, stalls

    @property
    def holding_new_pages(self) -> bool:
        """Whether new pages are held back: pages are failing and the held pages are too many."""
        return self._table.over_budget and bool(self._retries.waiting)

    @property
    def hold_reason(self) -> str | None:
        """Why fewer pages start than the cap allows, if they do (None while paused)."""
        if self._parallelism.paused:
            return None
        if self.holding_new_pages:
            table = self._table
            return (
                f"{len(table.pages):,} unfinished pages ({table.held_bytes // 1024:,} KB) are as "
                "many as the batch keeps while pages fail: new pages wait until retrying and "
                "stuck pages finish (fix the cause, or skip them)"
            )
        return self._parallelism.over_limit_reason

    def take(
        self,
        limit: int | None,
        max_bytes: int | None,
        per_attempt: int,
        extra_bytes: Callable[[int], int] | None,
    ) -> tuple[list[Attempt], bool]:
        """Attempts to start now, and whether ``max_bytes`` of inputs stopped them."""
        queue, pages = self._queue, self._table.pages
        free = self._parallelism.effective - len(queue.running)
        if limit is not None:
            free = min(free, limit)
        out: list[Attempt] = []
        skipped: list[int] = []
        holding = self.holding_new_pages
        spent = 0
        limited = False
        while free > 0 and queue.ready:
            num = queue.ready.popleft()
            state = pages[num]
            if state.never_ran and holding:
                skipped.append(num)
                continue
            if max_bytes is not None:
                spent += per_attempt + text_size(state.cursor)
                if extra_bytes is not None:
                    spent += extra_bytes(num)
                if spent > max_bytes and out:
                    queue.ready.appendleft(num)
                    limited = True
                    break
            queue.start(state)
            self._book.want(state)
            out.append(
                Attempt(num, state.cursor, state.size, state.attempts, state.successor_enqueued)
            )
            free -= 1
        queue.ready.extendleft(reversed(skipped))
        self._parallelism.note_running(len(queue.running))
        return out, limited

    def is_current(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt of ``page_num`` (else its news is stale)."""
        state = self._table.pages.get(page_num)
        return page_num in self._queue.running and state is not None and state.attempts == attempt

    def _ended(self, page_num: int) -> PageState | None:
        """``page_num``'s attempt is over; the page, if it is still held."""
        self._queue.running.discard(page_num)
        self._retries.handed_over.discard(page_num)
        return self._table.pages.get(page_num)

    def complete(self, page_num: int, items: int, now: float) -> None:
        """An attempt at ``page_num`` succeeded."""
        state = self._ended(page_num)
        if state is None:
            return
        self._errors.release(state.error)
        self._table.release(state)
        self._outcomes.record(False)
        self.watch.completed()
        self._throughput.completed(items, self._parallelism.running_time(now))

    def fail(
        self,
        page_num: int,
        error_type: str,
        message: str,
        *,
        non_retryable: bool,
        did_not_run: bool,
        worker_lost: bool,
        now: float,
    ) -> Outcome:
        """An attempt at ``page_num`` failed; what becomes of the page (``Scheduler.fail``)."""
        state = self._ended(page_num)
        if state is None:
            return Outcome.STALE
        state.report_deadline = None
        self._errors.release(state.error)
        state.error = self._errors.acquire(error_type, message)
        state.failed_at = now
        if did_not_run:
            self._retries.after_no_work(state, now)
            return Outcome.NOT_RUN
        if not worker_lost:
            self._outcomes.record(True)
            self.watch.failed(error_type, message)
        outcome = self._retries.after_failure(
            state, error_type, non_retryable=non_retryable, now=now
        )
        if outcome is Outcome.FAILED:
            self._table.release(state)
            state.stuck = False
            self._failures.add(state)
        return outcome

    def not_started(self, page_num: int, attempt: int) -> bool:
        """No worker took the attempt in time: first in line again, uncounted; False if stale."""
        if not self.is_current(page_num, attempt):
            return False
        self._take_back(self._table.pages[page_num])
        return True

    def _take_back(self, page: PageState) -> None:
        """An attempt that never started: the page is ready again, first in line, uncounted."""
        self._ended(page.page_num)
        page.unrun += 1
        page.confirm_by = page.report_deadline = None
        self._queue.put_first(page, taken_back=True)

    def confirm_started(self, page_num: int, attempt: int) -> bool:
        """A handed-over attempt says it had started: it must report by its deadline."""
        if not self.is_current(page_num, attempt):
            return False
        self._table.pages[page_num].confirm_by = None
        return True

    def release_due(self, now: float) -> int:
        """Release what is due by ``now``; returns how many pages (``Scheduler.release_due``)."""
        # A handed-over attempt that never said it started by then never did: Temporal drops
        # the activity tasks of a closed run that no worker had taken. It runs again, uncounted.
        unstarted = self._retries.unconfirmed(now)
        for n in unstarted:
            self._take_back(self._table.pages[n])
        overdue = self._retries.overdue(now)
        for n in overdue:
            self.fail(
                n,
                "Timeout",
                HANDOVER_TIMEOUT_MESSAGE,
                non_retryable=False,
                did_not_run=False,
                worker_lost=False,
                now=now,
            )
        due = self._retries.take_due(now)
        for p in due:
            self._queue.put_first(p)
        discoveries = self._book.release_due(now) if self._book.discovery_waiting else 0
        return len(due) + len(overdue) + len(unstarted) + discoveries

    def redrive(self, *, from_ledger: bool) -> list[int]:
        """Queue failed pages again with fresh budgets (``Scheduler.redrive_failed``)."""
        pages = self._failures.redrive(from_ledger=from_ledger)
        for page in pages:
            self._requeue(page)
        return [page.page_num for page in pages]

    def readd(self, page: PageState) -> bool:
        """A redriven page read back whole from the ledger; False if it is already held."""
        self._failures.read_back()
        if page.page_num in self._table.pages:
            return False
        self._requeue(page)
        return True

    def _requeue(self, page: PageState) -> None:
        page.error, page.failed_at, page.ready_at, page.stuck = -1, None, None, False
        page.unrun = page.attempts  # a fresh retry budget
        page.report_deadline = page.confirm_by = None
        page.recorded, page.cursor_length = False, -1
        self._table.hold(page)
        self._queue.add(page.page_num)
