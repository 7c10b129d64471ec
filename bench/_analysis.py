"""Utilisation, hand-over and latency figures from a ``BatchHistory``."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any

from bench._history import BatchHistory


class Occupancy:
    """The number of occupied slots over time, as a step function, with exact integrals."""

    def __init__(self, intervals: list[tuple[float, float]]) -> None:
        deltas: dict[float, int] = {}
        for a, b in intervals:
            deltas[a] = deltas.get(a, 0) + 1
            deltas[b] = deltas.get(b, 0) - 1
        self.times = sorted(deltas)
        self.levels: list[int] = []  # level on [times[i], times[i+1])
        self.cum: list[float] = [0.0]  # integral from times[0] to times[i]
        level = 0
        for i, t in enumerate(self.times):
            level += deltas[t]
            self.levels.append(level)
            if i + 1 < len(self.times):
                self.cum.append(self.cum[-1] + level * (self.times[i + 1] - t))

    def _upto(self, t: float) -> float:
        if not self.times or t <= self.times[0]:
            return 0.0
        i = bisect.bisect_right(self.times, t) - 1
        if i >= len(self.cum):
            return self.cum[-1]
        return self.cum[i] + self.levels[i] * (t - self.times[i])

    def integral(self, a: float, b: float) -> float:
        """Slot-seconds occupied in [a, b]."""
        return self._upto(b) - self._upto(a) if b > a else 0.0

    def level_at(self, t: float) -> int:
        i = bisect.bisect_right(self.times, t) - 1
        return self.levels[i] if i >= 0 else 0


def _merge(windows: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        a, b = max(a, lo), min(b, hi)
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


@dataclass
class HandOver:
    """One hand-over between run k and run k+1 (times relative to the batch's first page)."""

    after_run: int
    continued_as_new_at: float
    drain_s: float | None
    """Last page started in run k -> the ContinuedAsNew event: nothing new starts meanwhile."""
    restart_s: float | None
    """ContinuedAsNew event -> first page started in run k+1."""
    stall_s: float | None
    """Last start in run k -> first start in run k+1 (drain + restart)."""
    running_at_last_start: int | None
    utilisation_in_window: float
    next_run_first_task_backoff_s: float = 0.0
    """Part of ``restart_s`` the server imposed (ContinueAsNewMinInterval on short runs)."""
    deficit_slot_s: float | None = None
    """Slot-seconds left idle during the stall beyond what the steady state leaves idle."""
    lost_s: float | None = None
    """The deficit as seconds of steady-state batch time: what this hand-over cost."""


@dataclass
class Analysis:
    span_s: float
    """First page scheduled -> last page closed."""
    pages: int
    pages_per_s_span: float
    utilisation: float
    """Mean occupied slots / max_parallelism over the span."""
    utilisation_near_handovers: float | None
    """The same, within +-window of each ContinuedAsNew event."""
    utilisation_elsewhere: float | None
    utilisation_steady: float | None
    """Utilisation outside the stalls (last start of a run -> first start of the next): the
    reference for what hand-overs cost."""
    pages_per_s_near_handovers: float | None
    pages_per_s_elsewhere: float | None
    handover_cost: float | None
    """Share of throughput hand-overs cost: the seconds they lost (``lost_s`` summed) over
    the span. The batch would have run 1 / (1 - cost) times faster with free hand-overs."""
    handover_cost_by_utilisation: float | None
    """A cruder estimate from the windows: 1 - utilisation / utilisation_elsewhere."""
    mean_lost_s_per_handover: float | None
    pages_lost_per_handover: float | None
    """Mean deficit / mean slot time per page (Little's law): pages not done per hand-over."""
    mean_drain_s: float | None
    mean_restart_s: float | None
    mean_stall_s: float | None
    handovers_delayed_by_server: int
    """Hand-overs whose next run's first workflow task the server delayed (run < 1 s)."""
    mean_schedule_to_start_s: float | None
    """Dispatch latency: ActivityTaskScheduled -> ActivityTaskStarted."""
    mean_start_to_close_s: float | None
    """Execution as the server sees it: ActivityTaskStarted -> ActivityTaskCompleted."""
    mean_slot_s: float | None
    """Scheduled -> closed: how long one page holds a slot."""
    window_s: float
    handovers: list[HandOver] = field(default_factory=list)
    profile: list[tuple[float, float]] = field(default_factory=list)
    """Mean utilisation in bins around the ContinuedAsNew events: (bin start offset s, util)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyse(
    hist: BatchHistory, parallelism: int, window: float, profile_bins: int = 20
) -> Analysis:
    slots = [s for s in hist.slots if s.closed is not None]
    if not slots or parallelism <= 0:
        raise ValueError("no closed activity in the history")
    t0 = min(s.scheduled for s in slots)
    t1 = max(s.closed for s in slots if s.closed is not None)
    span = max(t1 - t0, 1e-9)
    occ = Occupancy([(s.scheduled, s.closed) for s in slots if s.closed is not None])
    closes = sorted(s.closed for s in slots if s.closed is not None)
    util = occ.integral(t0, t1) / (parallelism * span)

    def completions(a: float, b: float) -> int:
        return bisect.bisect_right(closes, b) - bisect.bisect_right(closes, a)

    cans = [r.ended for r in hist.runs[:-1]]
    wins = _merge([(t - window, t + window) for t in cans], t0, t1)
    win_len = sum(b - a for a, b in wins)
    rest_len = span - win_len
    win_occ = sum(occ.integral(a, b) for a, b in wins)
    win_done = sum(completions(a, b) for a, b in wins)
    u_win = win_occ / (parallelism * win_len) if win_len > 0 else None
    u_rest = (occ.integral(t0, t1) - win_occ) / (parallelism * rest_len) if rest_len > 0 else None
    rate_all = len(slots) / span
    rate_win = win_done / win_len if win_len > 0 else None
    rate_rest = (len(slots) - win_done) / rest_len if rest_len > 0 else None
    cost_u = 1 - util / u_rest if cans and u_rest else None
    mean_slot = _mean([s.closed - s.scheduled for s in slots if s.closed is not None])

    # Steady state: everything outside the stalls (last start of a run -> first start of the
    # next), where no page may start because of a hand-over.
    stall_list: list[tuple[float, float]] = []
    for k, r in enumerate(hist.runs[:-1]):
        first_next = hist.runs[k + 1].first_scheduled
        if r.last_scheduled is not None and first_next is not None:
            stall_list.append((r.last_scheduled, first_next))
    stalls = _merge(stall_list, t0, t1)
    stall_len = sum(b - a for a, b in stalls)
    steady_len = span - stall_len
    u_steady = (
        (occ.integral(t0, t1) - sum(occ.integral(a, b) for a, b in stalls))
        / (parallelism * steady_len)
        if steady_len > 0
        else None
    )

    handovers: list[HandOver] = []
    for k, run in enumerate(hist.runs[:-1]):
        nxt = hist.runs[k + 1]
        last, first = run.last_scheduled, nxt.first_scheduled
        a, b = max(run.ended - window, t0), min(run.ended + window, t1)
        deficit = lost_s = None
        if last is not None and first is not None and u_steady:
            # During the stall no page may start; compare its occupancy with the steady state.
            deficit = max(0.0, u_steady * parallelism * (first - last) - occ.integral(last, first))
            lost_s = deficit / (u_steady * parallelism)
        handovers.append(
            HandOver(
                after_run=k,
                continued_as_new_at=run.ended - t0,
                drain_s=run.ended - last if last is not None else None,
                restart_s=first - run.ended if first is not None else None,
                stall_s=first - last if first is not None and last is not None else None,
                running_at_last_start=occ.level_at(last) if last is not None else None,
                utilisation_in_window=occ.integral(a, b) / (parallelism * (b - a))
                if b > a
                else 0.0,
                next_run_first_task_backoff_s=nxt.first_task_backoff_s,
                deficit_slot_s=deficit,
                lost_s=lost_s,
            )
        )
    lost_each = [h.lost_s for h in handovers if h.lost_s is not None]
    deficits = [h.deficit_slot_s for h in handovers if h.deficit_slot_s is not None]
    cost = sum(lost_each) / span if lost_each else None
    mean_deficit = _mean(deficits)
    pages_lost = mean_deficit / mean_slot if mean_deficit is not None and mean_slot else None

    profile: list[tuple[float, float]] = []
    if cans:
        # From before the longest drain began to 2 windows after the hand-over.
        drains = [h.drain_s for h in handovers if h.drain_s is not None]
        lo = -max(2 * window, (max(drains) if drains else 0.0) + window)
        hi = 2 * window
        profile_bin = max(0.05, round((hi - lo) / profile_bins / 0.05) * 0.05)
        nbins = int((hi - lo) / profile_bin + 0.5)
        for i in range(nbins):
            off = hi - (nbins - i) * profile_bin
            vals = [
                occ.integral(t + off, t + off + profile_bin) / (parallelism * profile_bin)
                for t in cans
                if t + off >= t0 and t + off + profile_bin <= t1
            ]
            if vals:
                profile.append((round(off, 3), sum(vals) / len(vals)))

    started = [s for s in slots if s.started is not None]
    return Analysis(
        span_s=span,
        pages=len(slots),
        pages_per_s_span=rate_all,
        utilisation=util,
        utilisation_near_handovers=u_win,
        utilisation_elsewhere=u_rest,
        utilisation_steady=u_steady,
        pages_per_s_near_handovers=rate_win,
        pages_per_s_elsewhere=rate_rest,
        handover_cost=cost,
        handover_cost_by_utilisation=cost_u,
        mean_lost_s_per_handover=_mean(lost_each),
        pages_lost_per_handover=pages_lost,
        mean_drain_s=_mean([h.drain_s for h in handovers if h.drain_s is not None]),
        mean_restart_s=_mean([h.restart_s for h in handovers if h.restart_s is not None]),
        mean_stall_s=_mean([h.stall_s for h in handovers if h.stall_s is not None]),
        handovers_delayed_by_server=sum(
            1 for h in handovers if h.next_run_first_task_backoff_s > 0
        ),
        mean_schedule_to_start_s=_mean(
            [s.started - s.scheduled for s in started if s.started is not None]
        ),
        mean_start_to_close_s=_mean(
            [s.closed - s.started for s in started if s.closed and s.started is not None]
        ),
        mean_slot_s=mean_slot,
        window_s=window,
        handovers=handovers,
        profile=profile,
    )
