"""Admission: which attempts and discoveries start now, within the caps and budgets.

A workflow task starts at most ``STARTS_PER_TASK`` attempts and ``START_BYTES_PER_TASK`` of their
inputs (with the payload budgets, cursors and checkpoints count); flow control's cap (ramp-up,
adaptive parallelism, health) and rate limits bound them further. Admission also says whether
flow control, not a lack of pages or slots, is what holds pages back (``throttle``) and when it may
let more start (``flow_wake``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .budgets import START_BYTES_PER_TASK, text_size
from .discovery import MAX_RUNNING_DISCOVERIES
from .events import Starts
from .flow import rates_text
from .lifecycle import Lifecycle

if TYPE_CHECKING:
    from .handover import Handover
    from .run_state import RunState

__all__ = ["STARTS_PER_TASK", "Admission"]

STARTS_PER_TASK = 500
"""The most attempts one workflow task starts (and ``START_BYTES_PER_TASK`` of their inputs);
more wait a moment for the next task."""


class Admission:
    """Decides what starts in each workflow task."""

    def __init__(self, engine: RunState, handover: Handover) -> None:
        self._engine, self._handover = engine, handover
        self.throttle: str | None = None
        """What holds pages back now, if flow control does (progress shows it)."""
        self.flow_wake: float | None = None
        """When flow control may let more pages start (the shell's timer wakes the batch)."""

    def take(self, now: float) -> Starts:
        """The attempts and discoveries to start now (this workflow task's share).

        Also says whether flow control (not a lack of pages or slots) holds pages back, and when
        it may let more start (``throttle``, ``flow_wake``).
        """
        e = self._engine
        if e.state is not Lifecycle.RUNNING:
            return Starts(attempts=[], discoveries=[], more=False)
        inp, sched, flow, handover = e.inp, e.sched, e.flow, self._handover
        per_attempt = 600 + len(inp.args or "") + len(inp.batch_id) + len(inp.processor_name())
        budget = min(STARTS_PER_TASK, max(1, START_BYTES_PER_TASK // per_attempt))
        # With the payload budgets, each attempt's cursor counts too (16 KB cursors would
        # otherwise make one task's completion 8 MB).
        limit = budget
        if inp.pages_per_run is not None and not handover.put_off:
            limit = min(limit, max(0, inp.pages_per_run - handover.started_this_run))
        cap, cap_reason = flow.cap(sched.max_parallelism, now)
        sched.set_flow_cap(cap)
        per_page = self._items_per_page()
        allowance = flow.allowance(now, per_page)
        if allowance is not None:
            limit = min(limit, allowance)
        item_room = self._item_room()
        by_items = False
        if item_room is not None:  # each running page reserves room for its size
            fit = item_room // max(1, inp.page_size)
            by_items = fit < limit
            limit = min(limit, fit)
        budgets = e.patches.budgets
        if budgets:
            attempts = sched.take_runnable(
                limit, START_BYTES_PER_TASK, per_attempt, e.checkpoints.size_of
            )
        else:
            attempts = sched.take_runnable(limit)
        limited = sched.bytes_limited
        flow.started([a.page_num for a in attempts], now, per_page)
        handover.started_this_run += len(attempts)
        if budgets:
            spent = sum(
                per_attempt + text_size(a.cursor) + e.checkpoints.size_of(a.page_num)
                for a in attempts
            )
            discoveries, more_discoveries = self._take_discoveries(
                budget - len(attempts), max(0, START_BYTES_PER_TASK - spent), per_attempt
            )
        else:
            discoveries, more_discoveries = self._take_discoveries(budget - len(attempts))
        waiting = bool(sched.ready) and not sched.paused
        room = len(sched.running) < sched.effective_parallelism
        by_rate = waiting and room and allowance is not None and len(attempts) == allowance
        by_cap = waiting and not room and sched.flow_cap is not None
        self.throttle = self._rate_reason() if by_rate else cap_reason if by_cap else None
        if by_items and waiting and room and not attempts and e.items is not None:
            self.throttle = (
                f"open items: {len(e.items.open)} of max_open_items {e.items.max_open}, and "
                "running pages hold room for theirs"
            )
        if by_rate or by_cap:
            self.flow_wake = flow.wake_at(now, per_page, by_rate=by_rate, by_cap=by_cap)
        more = more_discoveries or (
            (len(attempts) == budget or limited)
            and bool(sched.ready)
            and len(sched.running) < sched.effective_parallelism
        )
        return Starts(attempts=attempts, discoveries=discoveries, more=more)

    def _take_discoveries(
        self, budget: int, max_bytes: int | None = None, per_item: int = 0
    ) -> tuple[list[Any], bool]:
        """The discoveries that may start now, at most ``budget``; and whether more would have.

        ``budget`` is what is left of this workflow task's budget: each discovery carries the
        batch's args.
        """
        sched = self._engine.sched
        if not sched.discovery_ready:
            return [], False
        budget = max(0, budget)
        taken = sched.take_discoveries(budget, max_bytes, per_item)
        more = (
            (len(taken) == budget or sched.bytes_limited)
            and bool(sched.discovery_ready)
            and not sched.paused
            and (len(sched.discovery_running) < MAX_RUNNING_DISCOVERIES)
        )
        return taken, more

    def _item_room(self) -> int | None:
        """How many more items running pages may reserve now (None: no cap on items)."""
        e = self._engine
        if e.items is None:
            return None
        if self._handover.put_off:
            return 0  # let open items close until the hand-over fits (nothing wedges)
        sched = e.sched
        reserved = sum(sched.pages[n].size for n in sched.running if n in sched.pages)
        return e.items.room(reserved)

    def _items_per_page(self) -> float:
        """Items one page is expected to hold.

        The average of the completed pages' reports, or the page size until pages report.
        """
        sched = self._engine.sched
        if sched.num_completed and sched.num_completed_items:
            return max(1.0, sched.num_completed_items / sched.num_completed)
        return float(self._engine.inp.page_size)

    def _rate_reason(self) -> str:
        s = self._engine.flow.state
        return "rate limit: " + rates_text(s.max_pages_per_second, s.max_items_per_second)
