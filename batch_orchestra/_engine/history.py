"""The batch's own history of throughput samples, bounded for any batch length (pure).

The workflow takes a sample when its main loop wakes past the next sample time (no timer: a
timer would be a command, and recorded histories must replay as they were), and one at the end.
A sample keeps the cumulative counts and the gauges at its time; its rates are computed from the
counts of the sample before, so merging neighbours keeps every rate an exact average over its
span. Older samples are merged into coarser ones by age (one per ``SAMPLE_SECONDS`` for the last
60 intervals, one per 10 for the last 1,440, one per 60 before; past ``MAX_SAMPLES`` the oldest
tier gets coarser still), so a week-long batch keeps 342 and any batch at most ``MAX_SAMPLES``.

The state travels in every hand-over (``HistoryState``, rows of numbers: at most
``HISTORY_BYTES``); progress shows it as ``HistorySample`` objects.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from .._model import HistorySample
from .budgets import HISTORY_BYTES

__all__ = [
    "HISTORY_BYTES",
    "HISTORY_SAMPLE_BYTES",
    "MAX_SAMPLES",
    "SAMPLE_SECONDS",
    "History",
    "HistoryState",
]

SAMPLE_SECONDS = 60.0
"""About how often a running batch takes a sample (tests make it shorter; every tier scales
with it)."""
MAX_SAMPLES = 360
"""The most samples kept (a week takes 342 at the tiers' resolutions)."""
HISTORY_SAMPLE_BYTES = 260
"""The most one ``HistorySample`` takes on the wire (field names included)."""
_TIERS = ((60, 1), (1_440, 10))
"""(age, resolution) in sampling intervals: one per interval for the last hour, one per 10 for
the last day; older samples one per 60 intervals (an hour), or coarser past ``MAX_SAMPLES``."""
_OLD = 60

# A row: [t, completed pages, completed items, running, cap, effective cap]
_T, _PAGES, _ITEMS, _RUNNING, _CAP, _EFFECTIVE = range(6)


class Counts(Protocol):
    """What a sample reads (the scheduler's counts and gauges)."""

    @property
    def num_completed(self) -> int: ...
    @property
    def num_completed_items(self) -> int: ...
    @property
    def running(self) -> Collection[int]: ...
    @property
    def max_parallelism(self) -> int: ...
    @property
    def effective_parallelism(self) -> int: ...


@dataclass(kw_only=True)
class HistoryState:
    """The history as a hand-over carries it."""

    base: list[float] = field(default_factory=list)
    """``[t, completed pages, completed items]`` before the first row (empty: no sample yet)."""
    rows: list[list[float]] = field(default_factory=list)
    """``[t, completed pages, completed items, running, cap, effective cap]``, oldest first."""
    next_at: float = 0.0
    """When the next sample is due (workflow time, seconds since the epoch)."""
    coarse: int = 0
    """Times the oldest tier's resolution has been doubled to stay within ``MAX_SAMPLES``."""


def _round(x: float, digits: int = 3) -> float:
    return float(round(x, digits))


def _rate(x: float) -> float:
    """A rate with 4 significant digits (enough for a chart, short on the wire)."""
    return float(f"{x:.4g}") if x else 0.0


class History:
    """Samples of a batch's throughput, merged by age to a bounded count."""

    def __init__(self, state: HistoryState | None = None) -> None:
        """Start empty, or go on from the state a hand-over carried."""
        st = state or HistoryState()
        self.base = list(st.base)
        self.rows = [list(r) for r in st.rows]
        self.next_at = st.next_at
        self.coarse = st.coarse

    def observe(
        self, now: float, s: Counts, *, force: bool = False, interval: float | None = None
    ) -> bool:
        """Take a sample of ``s`` if one is due (or ``force``); whether one was taken."""
        step = SAMPLE_SECONDS if interval is None else interval
        if not force and now < self.next_at:
            return False
        self.record(
            now,
            pages=s.num_completed,
            items=s.num_completed_items,
            running=len(s.running),
            cap=s.max_parallelism,
            effective=s.effective_parallelism,
            interval=step,
        )
        return True

    def record(
        self,
        now: float,
        *,
        pages: int,
        items: int,
        running: float,
        cap: float,
        effective: float,
        interval: float | None = None,
    ) -> None:
        """Add a sample at ``now`` and merge older ones to their resolution."""
        step = SAMPLE_SECONDS if interval is None else interval
        now = _round(now)
        if not self.base:
            self.base = [now, float(pages), float(items)]
        if self.rows and now < self.rows[-1][_T]:
            now = self.rows[-1][_T]  # time never goes back; keep the rows ordered
        self.rows.append([now, pages, items, running, cap, effective])
        self.next_at = now + step
        self.compact(now, step)

    def compact(self, now: float, interval: float | None = None) -> None:
        """Merge samples sharing a bucket of their age's resolution; keep at most MAX_SAMPLES."""
        step = SAMPLE_SECONDS if interval is None else interval
        rows = self.rows
        while True:
            rows = self._merged(rows, now, step, _OLD << self.coarse)
            if len(rows) <= MAX_SAMPLES or self.coarse >= 40:
                break
            self.coarse += 1
        while len(rows) > MAX_SAMPLES:  # only if the tiers alone cannot fit (never in practice)
            rows = [self._merge(rows[0], rows[1], self.base[_T])] + rows[2:]
        self.rows = rows

    def _merged(
        self, rows: list[list[float]], now: float, step: float, old: int
    ) -> list[list[float]]:
        out: list[list[float]] = []
        (age1, tier1), (age2, tier2) = _TIERS
        since1, since2 = now - age1 * step, now - age2 * step
        res1, res2, res_old = tier1 * step, tier2 * step, old * step
        for row in rows:
            t = row[_T]
            res = res1 if t >= since1 else res2 if t >= since2 else res_old
            if out and math.floor(out[-1][_T] / res) == math.floor(t / res):
                before = out[-2][_T] if len(out) > 1 else self.base[_T]
                out[-1] = self._merge(out[-1], row, before)
            else:
                out.append(row)
        return out

    @staticmethod
    def _merge(a: list[float], b: list[float], before: float) -> list[float]:
        """``a`` and the next sample ``b`` as one at ``b``'s time (gauges weighted by span)."""
        wa, wb = max(0.0, a[_T] - before), max(0.0, b[_T] - a[_T])
        total = wa + wb

        def mean(i: int) -> float:
            if total <= 0:
                return _round(b[i], 2)
            return _round((a[i] * wa + b[i] * wb) / total, 2)

        return [
            b[_T],
            b[_PAGES],
            b[_ITEMS],
            mean(_RUNNING),
            mean(_CAP),
            mean(_EFFECTIVE),
        ]

    def samples(self) -> list[HistorySample]:
        """The samples as progress shows them, with each one's rates since the one before."""
        out: list[HistorySample] = []
        prev = self.base
        for row in self.rows:
            span = row[_T] - prev[_T]
            pages_rate = (row[_PAGES] - prev[_PAGES]) / span if span > 0 else 0.0
            items_rate = (row[_ITEMS] - prev[_ITEMS]) / span if span > 0 else 0.0
            out.append(
                HistorySample(
                    t=row[_T],
                    items_per_second=_rate(max(0.0, items_rate)),
                    pages_per_second=_rate(max(0.0, pages_rate)),
                    num_processing_pages=float(row[_RUNNING]),
                    max_parallelism=float(row[_CAP]),
                    effective_parallelism=float(row[_EFFECTIVE]),
                    completed_pages=int(row[_PAGES]),
                    completed_items=int(row[_ITEMS]),
                )
            )
            prev = row
        return out

    def state(self) -> HistoryState:
        """The state for the next run."""
        return HistoryState(
            base=list(self.base),
            rows=[list(r) for r in self.rows],
            next_at=self.next_at,
            coarse=self.coarse,
        )
