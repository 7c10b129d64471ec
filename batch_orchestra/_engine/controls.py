"""Operators' controls of a running batch: pause, resume, parallelism, rate limits, one page.

Each applies to the engine's scheduler and flow control, and is logged with who asked and kept
in progress (``changes``). The ``refuse_*`` methods say why a control cannot apply now (the
shell's validators reject the update with that text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flow import rates_text
from .lifecycle import Lifecycle

if TYPE_CHECKING:
    from .failure_ledger import FailureLedger
    from .run_state import RunState

__all__ = ["Controls"]


class Controls:
    """The operator's actions on one run of a batch."""

    def __init__(self, engine: RunState, failures: FailureLedger) -> None:
        self._engine, self._failures = engine, failures

    def _resumed(self, was_paused: bool, now: float) -> None:
        if was_paused and not self._engine.sched.paused:
            self._engine.flow.start(now)  # ramp up again

    def pause(self, by: str | None, now: float) -> None:
        if self._engine.sched.pause("paused by an operator", now):
            self._engine.changed("paused", by, now)

    def resume(self, by: str | None, now: float) -> None:
        sched = self._engine.sched
        if sched.resume(now):
            self._resumed(True, now)
            self._engine.changed(f"resumed at max_parallelism {sched.max_parallelism}", by, now)

    def refuse_resume(self) -> str | None:
        e = self._engine
        if e.started and e.sched.paused and e.sched.max_parallelism == 0:
            return (
                "the batch was started with max_parallelism=0 and has no parallelism to resume "
                "to; use set_max_parallelism(n)"
            )
        return None

    def set_parallelism(self, n: int, by: str | None, now: float) -> None:
        sched = self._engine.sched
        was_paused = sched.paused
        old = sched.set_parallelism(n, now)
        self._resumed(was_paused, now)
        self._engine.changed(f"max_parallelism {old} -> {n}", by, now)

    def set_rates(self, limits: dict[str, float | None], by: str | None, now: float) -> None:
        flow = self._engine.flow
        s = flow.state
        pages = limits.get("max_pages_per_second", s.max_pages_per_second)
        items = limits.get("max_items_per_second", s.max_items_per_second)
        old = (s.max_pages_per_second, s.max_items_per_second)
        flow.set_rates(pages, items, now)
        self._engine.changed(
            f"rate limit {rates_text(*old)} -> {rates_text(pages, items)}", by, now
        )

    def refuse_redrive(self) -> str | None:
        state = self._engine.state
        if state in (Lifecycle.STARTING, Lifecycle.RUNNING, Lifecycle.HANDING_OVER):
            return None
        return (
            f"the batch is {state.value}: only a running batch takes a redrive; redrive "
            "a finished batch with BatchOrchestratorClient.redrive (it starts a new batch)"
        )

    def redrive(self, workflow_id: str, by: str | None, now: float) -> None:
        """Queue every failed page again (those in the ledger as they are read back)."""
        n, from_ledger = self._failures.redrive(workflow_id)
        if n:
            later = (
                f", {from_ledger} of them as they are read from its ledger" if from_ledger else ""
            )
            self._engine.changed(f"redrive: {n} failed page(s) queued again{later}", by, now)

    def refuse_page_action(self, page_num: int, action: str) -> str | None:
        """Why ``action`` ("retry", "skip") cannot be done to ``page_num`` now, or None."""
        e = self._engine
        if not e.started:
            return (
                "the batch has not started yet (its processor's settings are being read); "
                "try again in a moment"
            )
        if e.state in (Lifecycle.FINISHED, Lifecycle.CANCELLED):
            return f"the batch is {e.state.value}; there is no page to {action}"
        return e.sched.refuse_page_action(page_num, action)

    def retry_page(self, page_num: int, reason: str | None, by: str | None, now: float) -> None:
        """Start a pending, retrying or stuck page now, first in line."""
        sched = self._engine.sched
        self._engine.woken = True
        was = sched.retry_now(page_num)
        note = "; the batch is paused: it starts when the batch resumes" if sched.paused else ""
        why = f": {reason}" if reason else ""
        self._engine.changed(f"page {page_num} retried now (it was {was}){why}{note}", by, now)

    def skip_page(self, page_num: int, reason: str, by: str | None, now: float) -> None:
        """Let a pending, retrying or stuck page go without processing it."""
        sched = self._engine.sched
        self._engine.woken = True
        was, goes_on = sched.skip(page_num)
        note = (
            ""
            if goes_on
            else (
                "; its chain ends here (its successors were never enqueued, and the processor has "
                "no next_page to find them)"
            )
        )
        self._engine.changed(f"page {page_num} skipped (it was {was}): {reason}{note}", by, now)
