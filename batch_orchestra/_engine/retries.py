"""Retries and due times: what becomes of a page after a failed attempt, and when it runs again.

``Retries`` keeps the held pages waiting for their next retry (initial retries back off as the
processor's settings say; a page whose initial retries are exhausted is stuck and waits for its
next extended retry) and the attempts the last run handed over while they were running, each
with a deadline to report by (and, for one that had not said it started, a time to say so by).
Pure; it changes only the pages' retry and deadline fields and its own two sets.
"""

from __future__ import annotations

import enum

from .._model import ProcessorSettings
from .pages import PageState, PageTable

__all__ = ["Outcome", "Retries"]


class Outcome(enum.Enum):
    """What becomes of a page after a failed attempt."""

    RETRY = "retry"
    """It waits for its next initial retry."""
    STUCK = "stuck"
    """Its initial retries are exhausted: it waits for its next extended retry."""
    FAILED = "failed"
    """It will not be retried again."""
    NOT_RUN = "not_run"
    """The attempt did no work (no worker knew the processor): retried, attempt not counted."""
    STALE = "stale"
    """The report was about an attempt that is not the page's running one: ignored."""


class Retries:
    """Pages waiting for a retry, and attempts handed over by the last run."""

    def __init__(self, settings: ProcessorSettings, table: PageTable) -> None:
        self.settings = settings
        self._table = table
        self.waiting: set[int] = set()
        self.handed_over: set[int] = set()

    def after_failure(
        self, page: PageState, error_type: str, *, non_retryable: bool, now: float
    ) -> Outcome:
        """A counted attempt at ``page`` failed: it waits for a retry, or FAILED (left as it is)."""
        s = self.settings
        counted = page.attempts - page.unrun
        permanent = non_retryable or s.at_most_once or error_type in s.non_retryable_error_types
        exhausted = page.stuck or (0 < s.maximum_attempts <= counted)
        if permanent or (exhausted and not s.use_extended_retries):
            return Outcome.FAILED
        self.waiting.add(page.page_num)
        if exhausted:
            page.stuck = True
            page.ready_at = now + s.extended_retry_interval_seconds
            return Outcome.STUCK
        page.ready_at = now + s.retry_delay(counted)
        return Outcome.RETRY

    def after_no_work(self, page: PageState, now: float) -> None:
        """An attempt at ``page`` did no work: it runs again soon, the attempt uncounted."""
        page.unrun += 1
        page.ready_at = now + min(self.settings.maximum_interval_seconds, 10.0 * min(page.unrun, 6))
        self.waiting.add(page.page_num)

    def due_times(self) -> list[float]:
        """When each waiting retry, and each handed-over attempt's deadline, comes due."""
        pages = self._table.pages
        due = [pages[n].ready_at or 0.0 for n in self.waiting]
        for n in self.handed_over:
            p = pages[n]
            due += [d for d in (p.report_deadline, p.confirm_by) if d]
        return due

    def take_due(self, now: float) -> list[PageState]:
        """The waiting pages whose retry is due by ``now``, latest first; they wait no more."""
        pages = self._table.pages
        due = sorted(
            (pages[n] for n in self.waiting if (pages[n].ready_at or 0.0) <= now),
            key=lambda p: (p.ready_at, p.page_num),
            reverse=True,
        )
        for p in due:
            p.ready_at = None
            self.waiting.discard(p.page_num)
        return due

    def stop_waiting(self, page: PageState) -> None:
        """``page`` no longer waits for its retry (an operator retries or skips it)."""
        self.waiting.discard(page.page_num)
        page.ready_at = None

    # -- hand-overs --------------------------------------------------------------------------

    def hand_over(
        self, running: set[int], report_deadline: float | None, confirm_by: float | None
    ) -> None:
        """The ``running`` pages' attempts go on into the next run, with these deadlines.

        A page handed over before keeps its later deadline and its time to confirm by.
        """
        pages = self._table.pages
        for n in running:
            state = pages[n]
            state.report_deadline = max(state.report_deadline or 0.0, report_deadline or 0.0)
            if confirm_by is not None and n not in self.handed_over:
                state.confirm_by = confirm_by

    def clear_handover_deadlines(self, running: set[int]) -> None:
        """A hand-over put off: the attempts running in this run lose the deadlines it set.

        Those handed over by the last run keep theirs.
        """
        pages = self._table.pages
        for n in running:
            if n not in self.handed_over:
                pages[n].report_deadline = pages[n].confirm_by = None

    def unconfirmed(self, now: float) -> list[int]:
        """Handed-over attempts that have not said they started by their time: they never did."""
        pages = self._table.pages
        return [
            n
            for n in self.handed_over
            if pages[n].confirm_by is not None and (pages[n].confirm_by or 0.0) <= now
        ]

    def overdue(self, now: float) -> list[int]:
        """Handed-over attempts that have not reported by their deadline."""
        pages = self._table.pages
        return [n for n in self.handed_over if (pages[n].report_deadline or 0.0) <= now]

    def restore(self, running: set[int]) -> None:
        """After a hand-over: ``running`` attempts were handed over; retries keep their times."""
        self.handed_over = set(running)
        self.waiting = {n for n, p in self._table.pages.items() if p.ready_at is not None}
