"""Whether a batch is getting anywhere: the streak of identical failures, and stalls. Pure.

``Scheduler`` (``_scheduler.py``) keeps one ``NoProgressWatch`` and feeds it every counted page
attempt (an attempt lost with its worker, or one that no worker knew the processor for, is not
counted: it says nothing about the pages). Two things are read from it:

* **No page has completed** since the batch started (or was last resumed) and the last attempts
  all failed with the same error: a mistake in the processor, its args or its setup, not an
  outage. The failure policy pauses such a batch after ``no_progress_attempts`` attempts,
  within the first page's initial retries, and progress says so from the second one.
* **A stall**: nothing can run but retries of failing pages (nothing running, ready or being
  discovered) while the same error repeats. Such a batch is not paused (its stuck pages keep
  their extended retries), but the notifier is told once per stall ("stalled") and progress
  says so, until a page completes or the batch is resumed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from .errors_table import MAX_ERROR_MESSAGE

if TYPE_CHECKING:
    from .._model import FailurePolicy
    from .discovery import Discovery
    from .pages import PageState

__all__ = [
    "MAX_NO_PROGRESS_TEXT",
    "NO_PROGRESS_SHOWN_FROM",
    "Batch",
    "NoProgressRules",
    "NoProgressWatch",
]

NO_PROGRESS_SHOWN_FROM = 2
"""Progress says "no progress" once this many attempts in a row failed with the same error."""
MAX_NO_PROGRESS_TEXT = 500
"""Characters of ``progress.no_progress`` kept."""
_ERROR_SHOWN = 200  # characters of the repeated error's message in a reason


@dataclass
class NoProgressWatch:
    """The streak of identical failures since the last completion, and the stall, if any."""

    streak: int = 0
    """Counted page attempts in a row, since the last completion, that failed with the same
    error (``error_type``, ``error_message``)."""
    error_type: str = ""
    error_message: str = ""
    progressed: bool = False
    """A page has completed since the batch started or was last resumed."""
    resumed: bool = False
    """The batch has been resumed at least once (for the wording)."""
    stalled_since: float | None = None
    """When the current stall began (None: no stall)."""

    def failed(self, error_type: str, message: str) -> None:
        """A counted page attempt failed with this error."""
        message = message[:MAX_ERROR_MESSAGE]
        if self.streak and (error_type, message) == (self.error_type, self.error_message):
            self.streak += 1
        else:
            self.streak, self.error_type, self.error_message = 1, error_type, message

    def completed(self) -> None:
        """A page completed: the batch progresses, and any stall is over."""
        self.streak, self.progressed, self.stalled_since = 0, True, None

    def resumed_now(self) -> None:
        """The batch was resumed: judged afresh from here."""
        self.streak, self.progressed, self.resumed, self.stalled_since = 0, False, True, None

    @property
    def error(self) -> str:
        """The repeated error, shortened for a reason text."""
        return f"{self.error_type}: {self.error_message[:_ERROR_SHOWN]}"

    def attempts_text(self) -> str:
        """How the streak reads in a reason: "the last 3 page attempts failed with E: m"."""
        what = "page attempt" if self.streak == 1 else f"{self.streak} page attempts"
        return f"the last {what} failed with {self.error}"

    def to_state(self) -> list[Any]:
        """A compact form for the continue-as-new hand-over."""
        return [
            self.streak,
            self.error_type,
            self.error_message,
            int(self.progressed),
            int(self.resumed),
            self.stalled_since,
        ]

    @classmethod
    def from_state(cls, state: list[Any], num_completed: int) -> NoProgressWatch:
        """Rebuild from ``to_state``; an empty state (an older hand-over) is a fresh watch.

        A batch handed over by an older version that had completed pages counts as
        progressing.
        """
        if len(state) < 6:
            return cls(progressed=num_completed > 0)
        streak, error_type, message, progressed, resumed, since = state[:6]
        return cls(
            streak=int(streak),
            error_type=str(error_type),
            error_message=str(message),
            progressed=bool(progressed),
            resumed=bool(resumed),
            stalled_since=None if since is None else float(since),
        )


def _clock(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, tz=timezone.utc):%H:%M:%S} UTC"


class Batch(Protocol):
    """What the no-progress rules read of a batch's scheduler."""

    @property
    def watch(self) -> NoProgressWatch: ...
    @property
    def policy(self) -> FailurePolicy: ...
    @property
    def paused(self) -> bool: ...
    @property
    def pages(self) -> dict[int, PageState]: ...
    @property
    def ready(self) -> deque[int]: ...
    @property
    def running(self) -> set[int]: ...
    @property
    def waiting(self) -> set[int]: ...
    @property
    def discovering(self) -> dict[int, Discovery]: ...
    @property
    def discovery_ready(self) -> deque[int]: ...
    @property
    def discovery_running(self) -> set[int]: ...


class NoProgressRules:
    """The scheduler's no-progress part: its pause rule, stalls and progress text."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch

    def pause_reason(self) -> str | None:
        """Why the failure policy should pause the batch for lack of progress, if it should.

        No page has completed since the batch started (or was last resumed), pages are left,
        and the last ``no_progress_attempts`` counted attempts all failed with the same error.
        """
        n, w = self._batch.policy.no_progress_attempts, self._batch.watch
        if (
            n is None
            or w.progressed
            or w.streak < n
            or not (self._batch.pages or self._batch.discovering)
        ):
            return None
        since = "since the batch was resumed" if w.resumed else "yet"
        return (
            f"no progress: no page has completed {since} and {w.attempts_text()} (the failure "
            f"policy's no_progress_attempts={n}); fix the cause (the processor, its args or "
            "what it calls), deploy the workers if the fix is in code, then resume the batch"
        )

    def _only_retries_can_run(self) -> bool:
        return not (
            self._batch.paused
            or self._batch.running
            or self._batch.ready
            or self._batch.discovery_running
            or self._batch.discovery_ready
            or not self._batch.waiting
        )

    def check_stall(self, now: float) -> str | None:
        """Open a stall if one has just begun; its text then (once per stall), else None.

        A stall: nothing can run but retries of failing pages, while the same error repeats,
        in a batch the failure policy will not pause for lack of progress (it has progressed
        since its start or last resume, or ``no_progress_attempts`` is off). It lasts until a
        page completes or the batch is resumed.
        """
        w = self._batch.watch
        if (
            w.stalled_since is not None
            or w.streak < NO_PROGRESS_SHOWN_FROM
            or not self._only_retries_can_run()
            or (self._batch.policy.no_progress_attempts is not None and not w.progressed)
        ):
            return None
        w.stalled_since = now
        return self.text(now)

    def text(self, now: float) -> str | None:
        """What ``progress.no_progress`` says now (None while the batch gets somewhere)."""
        w = self._batch.watch
        if not (self._batch.pages or self._batch.discovering):
            return None
        if not w.progressed and w.streak >= NO_PROGRESS_SHOWN_FROM:
            since = "since the batch was resumed" if w.resumed else "yet"
            text = f"no page has completed {since}; {w.attempts_text()}"
            n = self._batch.policy.no_progress_attempts
            if n is not None and not self._batch.paused:
                text += f" (the batch pauses itself after {n} such attempts)"
        elif w.stalled_since is not None:
            held = [self._batch.pages[num] for num in self._batch.waiting]
            stuck = sum(1 for p in held if p.stuck)
            due = min((p.ready_at for p in held if p.ready_at is not None), default=None)
            nxt = f", next retry at {_clock(due)}" if due is not None else ""
            text = (
                f"since {_clock(w.stalled_since)} only retries of failing pages can run "
                f"({len(held) - stuck} retrying, {stuck} stuck{nxt}); {w.attempts_text()}"
            )
        else:
            return None
        return f"no progress: {text}"[:MAX_NO_PROGRESS_TEXT]
