"""A batch's parallelism: its cap, flow control's cap, and pauses. Pure.

``Parallelism`` says how many attempts may run now (``effective``): none while paused, else the
cap an operator set (at most ``MAX_RUNNING_PAGES``), lowered by flow control's cap when it has
one. It keeps the cap to go back to after a pause and the paused time, so that the batch's
running time (for its rates) leaves pauses out.
"""

from __future__ import annotations

__all__ = ["MAX_RUNNING_PAGES", "Parallelism"]

MAX_RUNNING_PAGES = 1_900
"""The most attempts that run at once, whatever ``max_parallelism`` says: Temporal fails every
workflow task of a run with more than 2,000 pending activities (its default limit), and the
batch keeps a few for its tracker and notifier."""


class Parallelism:
    """The caps on running attempts, and the pause state."""

    def __init__(self, max_parallelism: int, start_time: float) -> None:
        self.max_parallelism = max_parallelism
        self.previous_parallelism = max_parallelism
        self.paused = max_parallelism == 0
        self.pause_reason: str | None = "started with max_parallelism=0" if self.paused else None
        self.paused_by_zero = self.paused  # a pause that a non-zero parallelism lifts
        self.start_time = start_time
        self.paused_seconds = 0.0
        self.paused_since: float | None = start_time if self.paused else None
        self.flow_cap: int | None = None  # flow control's cap now (set by the workflow)
        self.max_parallelism_achieved = 0

    @property
    def effective(self) -> int:
        """How many attempts may run now."""
        if self.paused:
            return 0
        n = min(self.max_parallelism, MAX_RUNNING_PAGES)
        return n if self.flow_cap is None else min(n, self.flow_cap)

    @property
    def over_limit_reason(self) -> str | None:
        """Why fewer attempts run than ``max_parallelism`` says, when it is over the limit."""
        if self.max_parallelism > MAX_RUNNING_PAGES:
            return (
                f"max_parallelism {self.max_parallelism:,} is above the {MAX_RUNNING_PAGES:,} "
                "attempts a batch runs at once (Temporal's pending-activity limit)"
            )
        return None

    def pause(self, reason: str, now: float, *, by_zero: bool = False) -> bool:
        """Pause; False if it already was."""
        if self.paused:
            return False
        self.paused, self.pause_reason, self.paused_since = True, reason, now
        self.paused_by_zero = by_zero
        return True

    def resume(self, now: float) -> bool:
        """Resume at the cap; False if it was not paused."""
        if not self.paused:
            return False
        if self.paused_since is not None:
            self.paused_seconds += max(0.0, now - self.paused_since)
        self.paused, self.pause_reason, self.paused_since = False, None, None
        self.paused_by_zero = False
        return True

    def change_cap(self, n: int) -> None:
        """A new (non-zero) cap; the old one is kept to go back to."""
        if n != self.max_parallelism:
            self.previous_parallelism = self.max_parallelism
            self.max_parallelism = n

    def note_running(self, n: int) -> None:
        """``n`` attempts run now (for the most ever run at once)."""
        if n > self.max_parallelism_achieved:
            self.max_parallelism_achieved = n

    def running_time(self, now: float) -> float:
        """Seconds the batch has spent unpaused since it started."""
        paused = self.paused_seconds
        if self.paused_since is not None:
            paused += max(0.0, now - self.paused_since)
        return max(0.0, now - self.start_time - paused)
