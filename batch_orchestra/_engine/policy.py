"""The failure policy's window of recent page attempts and its thresholds. Pure.

The scheduler feeds ``PolicyWindow`` every counted page attempt (an attempt lost with its worker,
or one that did no work, says nothing about the pages) and asks it, after each failure, whether
one of the policy's thresholds is passed, reading the failed and stuck pages and the item
failures from the parts that keep them; pausing is the scheduler's (``Scheduler.check_policy``).
"""

from __future__ import annotations

from collections import deque

from .._model import FailurePolicy
from .errors_table import ErrorTable
from .failures import FailedPages, ItemFailures
from .pages import PageTable
from .retries import Retries

__all__ = ["PolicyWindow"]


class PolicyWindow:
    """The outcomes of the last ``policy.window`` counted page attempts, and what they say."""

    def __init__(
        self,
        policy: FailurePolicy,
        table: PageTable,
        retries: Retries,
        failures: FailedPages,
        items: ItemFailures,
        errors: ErrorTable,
    ) -> None:
        self.policy = policy
        self._table, self._retries, self._failures = table, retries, failures
        self._items, self._errors = items, errors
        self.recent_outcomes: deque[bool] = deque()  # True: a failed attempt
        self.recent_failures = 0

    def record(self, failed: bool) -> None:
        """A counted attempt ended (``failed``: it failed)."""
        self.recent_outcomes.append(failed)
        self.recent_failures += failed
        while len(self.recent_outcomes) > self.policy.window:
            self.recent_failures -= self.recent_outcomes.popleft()

    def reset(self) -> None:
        """The batch was resumed: the policy judges afresh."""
        self.recent_outcomes.clear()
        self.recent_failures = 0

    def reason(self) -> str | None:
        """Why the batch should pause now, if one of the policy's thresholds is passed."""
        p = self.policy
        n = len(self.recent_outcomes)
        reason = None
        if (
            p.max_failure_rate is not None
            and n >= p.min_attempts
            and (self.recent_failures > p.max_failure_rate * n)
        ):
            reason = (
                f"{self.recent_failures} of the last {n} page attempts failed (more than "
                f"{p.max_failure_rate:.0%}, the failure policy's max_failure_rate)"
            )
        # counted only when the policy has a count: failures are on the workflow's hot path
        num_stuck = 0
        if reason is None and p.max_failed_pages is not None:
            pages = self._table.pages
            num_stuck = sum(1 for n_ in self._retries.waiting if pages[n_].stuck)
        num_failed, num_failed_items = self._failures.num_failed, self._items.num_failed_items
        if (
            reason is None
            and p.max_failed_pages is not None
            and (num_failed + num_stuck > p.max_failed_pages)
        ):
            reason = (
                f"{num_failed} failed and {num_stuck} stuck pages (more than "
                f"{p.max_failed_pages}, the failure policy's max_failed_pages)"
            )
        if (
            reason is None
            and p.max_failed_items is not None
            and (num_failed_items > p.max_failed_items)
        ):
            reason = (
                f"{num_failed_items} items recorded as failed (more than "
                f"{p.max_failed_items}, the failure policy's max_failed_items)"
            )
            latest_item = self._items.latest
            if latest_item is not None:
                reason += f"; latest: {latest_item.error_type}: {latest_item.error_message[:200]}"
            return reason
        if reason is None:
            return None
        error = self._latest_error()
        if error:
            reason += f"; latest error: {error}"
        return reason

    def _latest_error(self) -> str:
        pages = self._table.pages
        latest = max(
            (pages[n] for n in self._retries.waiting),
            key=lambda p: p.failed_at or 0.0,
            default=None,
        )
        latest = latest or self._failures.latest
        if latest is None:
            return ""
        error_type, message = self._errors.get(latest.error)
        return f"{error_type}: {message[:200]}"

    def state(self) -> str:
        """The window as a hand-over carries it: "1" for a failed attempt, "0" for a success."""
        return "".join("1" if f else "0" for f in self.recent_outcomes)

    def restore(self, text: str) -> None:
        """The window a hand-over carried."""
        for ch in text:
            self.record(ch == "1")
