"""When a run hands over to the next (continue-as-new), and what it carries.

A run hands over after ``pages_per_run`` attempts, ``UPDATES_PER_RUN`` enqueue updates or
``HISTORY_EVENTS_PER_RUN`` / ``HISTORY_BYTES_PER_RUN`` of history. Its state must fit the next
run's input (Temporal refuses one over 2 MB, which would fail every workflow task): while the
estimate (``held_bytes``) or the measured input is too big, the hand-over is put off and pages run
on, releasing their cursors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .budgets import HANDOVER_BYTES
from .continuation import BatchContinuation, continuation_to_wire, scheduler_to_state
from .lifecycle import Lifecycle

if TYPE_CHECKING:
    from .failure_ledger import FailureLedger
    from .run_state import RunState

__all__ = [
    "HANDOVER_STATE_BYTES",
    "HISTORY_BYTES_PER_RUN",
    "HISTORY_EVENTS_PER_RUN",
    "MAX_HANDOVER_BYTES",
    "UPDATES_PER_RUN",
    "Handover",
]

HISTORY_EVENTS_PER_RUN = 10_000
"""A run continues as new at this many history events (Temporal's hard limit is 51,200)."""
HISTORY_BYTES_PER_RUN = 8 * 1024 * 1024
"""... or at this much history (Temporal's hard limit is 50 MB)."""
UPDATES_PER_RUN = 1_500
"""A run continues as new after accepting this many enqueue updates (Temporal refuses more than
2,000 per run by default; pages fall back to signals, but updates make shorter hops)."""
MAX_HANDOVER_BYTES = HANDOVER_BYTES
"""A hand-over is put off while the state it would carry is bigger than this (Temporal refuses a
continue-as-new input over 2 MB, which would fail every workflow task)."""
HANDOVER_STATE_BYTES = 96 * 1024
"""What a hand-over carries besides held pages, the input and the result, as estimated before it
is measured (recent cursors, errors, failed-page previews, item failures, the change log, the
history of samples)."""
HANDOVER_REPORT_GRACE_SECONDS = 10.0
"""How long past ``page_timeout`` a run waits for an attempt handed over while running to
report, before counting it as timed out."""
HANDOVER_CONFIRM_GRACE_SECONDS = 15.0
"""How long past ``heartbeat_timeout`` an attempt handed over at a hand-over has to say it had
started before the next run counts it as never started."""


class Handover:
    """This run's count towards a hand-over, and the measuring of what it would carry."""

    def __init__(self, engine: RunState, failures: FailureLedger) -> None:
        self._engine, self._failures = engine, failures
        self.started_this_run = 0
        """Page attempts this run started."""
        self.updates_this_run = 0
        """Enqueue updates this run accepted."""
        self.put_off = False
        """The hand-over is due but put off: the state is too big to carry."""
        self.drain_timed_out = False
        """Handing over, the run waited ``handover_wait`` for running pages: it goes now."""
        self.input_bytes = 0
        """The batch's input as every hand-over carries it (with the payload budgets)."""
        self._correction = 0

    def held_bytes(self) -> int:
        """About what the next run's input would carry.

        Held pages' cursors and values waiting for ``reduce`` (the page table is compressed);
        with the payload budgets, also the input, the result, the rest of the state and what the
        last measurement found the estimate to miss. The hand-over itself is measured (``fits``).
        """
        e = self._engine
        held = e.sched.held_bytes + e.results.unreduced_bytes + e.checkpoints.held_bytes
        if e.items is not None:
            held += e.items.held_bytes
        if not e.patches.budgets:
            return held
        return (
            held
            + self.input_bytes
            + e.results.result_bytes
            + HANDOVER_STATE_BYTES
            + self._correction
        )

    def too_big_to_carry(self) -> bool:
        return self.held_bytes() > MAX_HANDOVER_BYTES

    def too_big(self, size: int) -> None:
        """The next run's input, measured, is ``size`` bytes: too big. The run goes on.

        Pages run and release their cursors; the hand-over is tried again once the estimate,
        corrected by what this measurement found, fits.
        """
        self._correction += max(0, size - self.held_bytes()) + 64 * 1024
        sched = self._engine.sched
        sched.clear_handover_deadlines()  # still running here: no hand-over deadline after all
        self._engine.state = Lifecycle.RUNNING
        self.put_off = True
        self.drain_timed_out = False
        self._engine.log.warning(
            "hand-over put off: the next run's input would be %d KB (at most %d KB); pages run "
            "on until it fits",
            size // 1024,
            MAX_HANDOVER_BYTES // 1024,
        )

    def continuation(
        self, carried_input: dict[str, Any], now: float, heartbeat_seconds: float | None
    ) -> dict[str, Any]:
        """The next run's input: the batch's input and the state it carries over."""
        e = self._engine
        assert e.settings is not None
        nxt = dict(carried_input)
        # Attempts still running report by signal; past this they count as timed out.
        deadline = now + e.inp.page_timeout.total_seconds() + HANDOVER_REPORT_GRACE_SECONDS
        # An attempt that had started heartbeats into this closed run and says so by signal
        # within (the SDK sends a heartbeat at most every 0.8 heartbeat timeout); one that does
        # not never started, since Temporal drops the tasks of a closed run.
        # At-most-once pages are never run again on that guess (a late start would run them
        # twice): theirs count as timed out at the report deadline, visibly.
        confirm_by = (
            now + heartbeat_seconds + HANDOVER_CONFIRM_GRACE_SECONDS
            if heartbeat_seconds is not None and not e.settings.at_most_once
            else None
        )
        results = e.results
        nxt["continuation"] = continuation_to_wire(
            BatchContinuation(
                settings=e.settings,
                scheduler=scheduler_to_state(e.sched, deadline, confirm_by),
                tracker_next=e.tracker_next,
                flow=e.flow.state,
                result=results.result,
                result_started=results.started,
                unreduced=list(results.unreduced),
                hook_errors=e.hook_errors.records(),
                ledger=self._failures.book.state(self._failures.feeds),
                run_items=e.run_items,
                history=e.history.state(),
                checkpoints=e.checkpoints.state(e.sched.pages),
                items=e.items.state() if e.items is not None else None,
            )
        )
        return nxt

    def should_hand_over(self, history_events: int, history_bytes: int) -> bool:
        """Whether this run has done enough to continue as new."""
        per_run = self._engine.inp.pages_per_run
        if per_run is not None and self.started_this_run >= per_run:
            return True
        # Temporal's own suggestion comes at a few thousand events. Every hand-over costs a
        # drain of the running pages, so runs go on to a budget well inside the hard limits;
        # the workflow's state is small, so a longer history only costs replay time after a
        # cache eviction.
        return (
            self.updates_this_run >= UPDATES_PER_RUN
            or history_events >= HISTORY_EVENTS_PER_RUN
            or history_bytes >= HISTORY_BYTES_PER_RUN
        )

    @staticmethod
    def carried_input(raw: dict[str, Any]) -> dict[str, Any]:
        """The batch's input as every hand-over carries it.

        What the first run consumed (first cursors, redrive pages, item keys, the redrive source)
        is dropped.
        """
        nxt = {k: v for k, v in raw.items() if k != "continuation"}
        nxt["first_cursor_str"], nxt["first_cursor_strs"] = "", None
        for key in ("redrive_pages", "item_keys", "redrive_source"):
            if key in nxt:
                nxt[key] = None
        return nxt
