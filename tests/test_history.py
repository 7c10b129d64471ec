"""The batch's history of throughput samples (pure): resolution by age, a bounded size for any
batch length, rates from cumulative counts, and the hand-over's and progress's budgets."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from batch_orchestra._engine.budgets import (
    HISTORY_BYTES,
    HISTORY_PROGRESS_BYTES,
    PROGRESS_BYTES,
    wire_size,
)
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_to_state,
)
from batch_orchestra._engine.history import HISTORY_SAMPLE_BYTES, MAX_SAMPLES, History, HistoryState
from batch_orchestra._engine.progress import _rough_size, build_progress, guard_progress
from batch_orchestra._engine.scheduler import Scheduler
from tests.test_budgets import longest_history, worst_progress
from tests.test_scheduler import settings

T0 = 1_800_000_000.0  # a workflow time, seconds since the epoch
HOUR, DAY = 3_600.0, 86_400.0


def run(seconds: float, *, rate: float = 10.0, fine: float = 2 * DAY) -> History:
    """A batch sampled every minute for ``seconds``, completing ``rate`` items/s (every hour
    before its last ``fine`` seconds: merged to an hour or coarser anyway)."""
    h = History()
    t = 0.0
    while t <= seconds:
        items = int(rate * t)
        h.record(T0 + t, pages=items // 10, items=items, running=4, cap=4, effective=4)
        t += 60.0 if t >= seconds - fine else 3_600.0
    return h


def ages(h: History) -> list[float]:
    now = h.rows[-1][0]
    return [now - r[0] for r in h.rows]


def test_the_last_hour_is_kept_a_sample_a_minute_the_day_every_10_minutes_then_hourly() -> None:
    h = run(3 * DAY, fine=3 * DAY)
    a = ages(h)
    hour = [x for x in a if x <= HOUR]
    day = [x for x in a if HOUR < x <= DAY]
    older = [x for x in a if x > DAY]
    assert 59 <= len(hour) <= 61
    assert 135 <= len(day) <= 140
    assert 46 <= len(older) <= 49
    gaps = [b - c for b, c in zip(a, a[1:], strict=False)]  # oldest first: ages fall
    assert max(gaps[-55:]) == 60  # a minute apart in the last hour
    assert max(gaps) <= HOUR + 600


@pytest.mark.parametrize("days", [7, 30, 365])
def test_any_batch_length_keeps_a_bounded_history_under_its_budget(days: int) -> None:
    h = run(days * DAY, rate=1e6)  # big counts: long numbers
    assert len(h.rows) <= MAX_SAMPLES
    if days == 7:
        assert len(h.rows) >= 340  # a week still at full resolution (an hour apart)
        assert max(b[0] - a[0] for a, b in zip(h.rows, h.rows[1:], strict=False)) < 2 * HOUR
    state = wire_size(h.state())
    samples = wire_size(h.samples())
    assert state <= HISTORY_BYTES, state
    assert samples <= HISTORY_PROGRESS_BYTES, samples
    assert max(wire_size(s) for s in h.samples()) <= HISTORY_SAMPLE_BYTES
    print(f"\n{days} days: {len(h.rows)} samples, state {state:,} B, progress {samples:,} B")


def test_rates_are_averages_between_samples_and_merging_keeps_them_exact() -> None:
    h = History()
    h.record(T0, pages=0, items=0, running=0, cap=4, effective=4)
    h.record(T0 + 60, pages=6, items=60, running=4, cap=4, effective=4)
    h.record(T0 + 120, pages=18, items=180, running=2, cap=2, effective=2)
    first, a, b = h.samples()
    assert first.items_per_second == 0.0 and first.completed_items == 0
    assert a.items_per_second == 1.0 and a.pages_per_second == 0.1
    assert b.items_per_second == 2.0 and b.completed_items == 180 and b.completed_pages == 18
    assert b.num_processing_pages == 2 and b.max_parallelism == 2
    # A day on, they are one 10-minute sample: its rate the average over its whole span.
    h.record(T0 + DAY, pages=18, items=180, running=0, cap=4, effective=4)
    merged = [s for s in h.samples() if s.t < T0 + DAY]
    assert len(merged) == 1 and merged[0].t == T0 + 120
    assert merged[0].items_per_second == 1.5 and merged[0].completed_items == 180
    assert merged[0].num_processing_pages == 3.0  # the time-weighted mean of 4 and 2
    assert h.samples()[-1].items_per_second == 0.0  # nothing done since


def test_a_sample_is_taken_only_once_its_time_has_come_or_at_the_end() -> None:
    @dataclass
    class Sched:
        num_completed: int = 0
        num_completed_items: int = 0
        running: set[int] = field(default_factory=set)
        max_parallelism: int = 3
        effective_parallelism: int = 2

    h, s = History(), Sched()
    assert h.observe(T0, s)
    assert not h.observe(T0 + 30, s)
    assert h.observe(T0 + 61, s)
    assert h.observe(T0 + 62, s, force=True)  # the end: merged into the last minute's
    assert len(h.rows) == 2 and h.rows[-1][0] == T0 + 62
    assert h.samples()[-1].effective_parallelism == 2
    assert not h.observe(T0 + 121, s) and h.observe(T0 + 122, s)
    assert h.observe(T0 + 123.5, s, force=True, interval=1.0) and h.next_at == T0 + 124.5


def test_the_history_crosses_a_hand_over_and_an_old_hand_over_starts_it_over() -> None:
    h = run(2 * HOUR)
    sched = Scheduler(settings(), 4, T0)
    cont = BatchContinuation(
        settings=sched.settings, scheduler=scheduler_to_state(sched, None), history=h.state()
    )
    wire = continuation_to_wire(cont)
    back = continuation_from_wire(wire)
    assert History(back.history).samples() == h.samples()
    del wire["history"]  # a hand-over from a version without it
    old = continuation_from_wire(wire)
    assert old.history is None and History(old.history).samples() == []


def test_the_worst_progress_with_the_longest_history_stays_within_its_budget() -> None:
    _, p = worst_progress()
    p.history = longest_history().samples()
    assert wire_size(p.history) > 60 * 1024  # the history is at its longest
    size = guard_progress(p)
    assert size == wire_size(p) <= PROGRESS_BYTES
    assert len(p.history) > 340  # never trimmed


def test_the_cheap_bound_counts_the_history() -> None:
    s = Scheduler(settings(), 4, T0)
    p = build_progress(s, T0 + 1)
    p.history = longest_history().samples()
    assert wire_size(p) <= _rough_size(p)


def test_a_state_from_the_wire_goes_on() -> None:
    h = run(HOUR)
    again = History(HistoryState(base=h.base, rows=h.rows, next_at=h.next_at))
    again.record(T0 + HOUR + 60, pages=3_700, items=37_000, running=1, cap=4, effective=4)
    assert len(again.rows) == len(h.rows) + 1 or len(again.rows) == len(h.rows)
    assert again.samples()[-1].completed_items == 37_000
