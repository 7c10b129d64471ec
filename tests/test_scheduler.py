"""Unit tests of the pure bookkeeping (no Temporal)."""

from __future__ import annotations

import json

from batch_orchestra._scheduler import RECENT_CURSOR_WINDOW, Scheduler
from batch_orchestra._types import ProcessorSettings


def settings(**kw: object) -> ProcessorSettings:
    base: dict[str, object] = dict(
        name="P", at_most_once=False, maximum_attempts=3, initial_interval_seconds=1.0,
        backoff_coefficient=2.0, maximum_interval_seconds=10.0, non_retryable_error_types=["Fatal"],
        use_extended_retries=True, extended_retry_interval_seconds=60.0,
    )
    base.update(kw)
    return ProcessorSettings(**base)  # type: ignore[arg-type]


def test_parallelism_cap_and_order() -> None:
    s = Scheduler(settings(), 2, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1), ("c", 1)])
    first = s.take_runnable()
    assert [a.page_num for a in first] == [0, 1]
    assert s.take_runnable() == []
    s.complete(0, 5, 1.0)
    assert [a.page_num for a in s.take_runnable()] == [2]
    assert s.max_parallelism_achieved == 2 and s.num_completed_items == 5


def test_successors_enqueued_once_per_page() -> None:
    s = Scheduler(settings(), 5, 0.0)
    s.enqueue(None, [("0", 1)])
    s.take_runnable()
    assert s.enqueue(0, [("1", 1)]).added == [1]
    again = s.enqueue(0, [("1b", 1)])
    assert again.added == [] and "already enqueued" in again.ignored[0][1]
    s.complete(0, 0, 0.0)
    assert s.enqueue(0, [("1c", 1)]).added == [], "a finished parent's late signal is ignored"


def test_retry_then_stuck_then_recovered() -> None:
    s = Scheduler(settings(), 5, 0.0)
    s.enqueue(None, [("0", 1)])
    for attempt, outcome in [(1, "retry"), (2, "retry"), (3, "stuck")]:
        [att] = s.take_runnable()
        assert att.attempt == attempt
        assert s.fail(0, "ValueError", "x", False, 100.0) == outcome
        if outcome == "retry":
            assert s.next_due() == 100.0 + 2.0 ** (attempt - 1)
            assert s.take_runnable() == [], "a page waiting for its retry holds no slot"
            s.release_due(1000.0)
    p = s.progress(100.0)
    assert p.num_stuck_pages == 1 and p.stuck_pages[0].next_retry_at is not None
    assert s.next_due() == 160.0
    assert s.release_due(159.0) == 0 and s.release_due(160.0) == 1
    [att] = s.take_runnable()
    assert att.attempt == 4
    assert s.fail(0, "ValueError", "x", False, 170.0) == "stuck"
    s.release_due(230.0)
    s.take_runnable()
    s.complete(0, 1, 231.0)
    assert s.is_finished and s.num_failed == 0


def test_permanent_failures() -> None:
    s = Scheduler(settings(), 5, 0.0)
    s.enqueue(None, [("0", 1), ("1", 1)])
    s.take_runnable()
    assert s.fail(0, "Fatal", "listed type", False, 1.0) == "failed"
    assert s.fail(1, "Other", "flagged", True, 1.0) == "failed"
    p = s.progress(1.0)
    assert p.num_failed_pages == 2 and p.is_finished
    assert [f.cursor_str for f in p.failed_pages] == ["0", "1"]
    nx = Scheduler(settings(use_extended_retries=False, maximum_attempts=1), 1, 0.0)
    nx.enqueue(None, [("0", 1)])
    nx.take_runnable()
    assert nx.fail(0, "E", "m", False, 0.0) == "failed"


def test_at_most_once_never_retries() -> None:
    s = Scheduler(settings(at_most_once=True, maximum_attempts=1, use_extended_retries=False), 1, 0)
    s.enqueue(None, [("0", 1)])
    s.take_runnable()
    assert s.fail(0, "Timeout", "", False, 0.0) == "failed"


def test_looping_cursors_are_caught_but_new_ones_never_dropped() -> None:
    s = Scheduler(settings(), 1000, 0.0)
    s.enqueue(None, [("0", 1)])
    s.take_runnable()
    assert s.enqueue(0, [("0", 1)]).added == [], "its own cursor"
    s.complete(0, 0, 0.0)
    # 10,000 distinct cursors in one long chain: every one is added
    parent = None
    added = 0
    for i in range(1, 10_001):
        if parent is not None:
            s.take_runnable()
        res = s.enqueue(parent, [(f"c{i}", 1)])
        added += len(res.added)
        if parent is not None:
            s.complete(parent, 0, 0.0)
        parent = res.added[0] if res.added else parent
    assert added == 10_000
    s.take_runnable()
    assert s.enqueue(parent, [(f"c{10_000 - 5}", 1)]).added == [], "a short cycle"


def test_handover_state_is_bounded_and_round_trips() -> None:
    s = Scheduler(settings(), 4, 0.0)
    s.enqueue(None, [("0", 1)])
    sizes = []
    for i in range(5_000):
        [att] = s.take_runnable()
        s.enqueue(att.page_num, [(f"{i + 1:06d}", 1)])
        s.complete(att.page_num, 1, float(i))
        if i % 500 == 499:
            sizes.append(len(json.dumps(s.to_dict())))
    assert max(sizes) - min(sizes) <= 16, sizes  # only the digits of counters and times vary
    t = Scheduler.from_dict(settings(), json.loads(json.dumps(s.to_dict())))
    assert (t.num_completed, t.next_page_num, t.num_runs) == (5_000, 5_001, 2)
    assert len(t._recent) == RECENT_CURSOR_WINDOW
    assert [a.page_num for a in t.take_runnable()] == [5_000]
    assert t.progress(5_000.0).pages_per_second > 0


def test_pause_restore_and_eta() -> None:
    s = Scheduler(settings(), 3, 0.0)
    assert s.set_parallelism(0) == 3
    s.enqueue(None, [("0", 1)])
    assert s.take_runnable() == []
    assert s.progress(0.0).is_paused
    assert s.restore_parallelism() == 3
    [att] = s.take_runnable()
    s.enqueue(att.page_num, [("1", 1)])
    s.complete(att.page_num, 10, 10.0)
    [att] = s.take_runnable()
    s.complete(att.page_num, 10, 20.0)
    p = s.progress(20.0, total_items=100)
    assert p.percent_complete == 20.0
    assert p.items_per_second == 1.0  # 10 items from t=10 to t=20
    assert p.eta_seconds == 80.0


def test_pages_running_at_a_handover_report_or_time_out() -> None:
    s = Scheduler(settings(), 4, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1)])
    [a, b] = s.take_runnable()
    t = Scheduler.from_dict(settings(), json.loads(json.dumps(s.to_dict(report_deadline=50.0))))
    assert t.running == {0, 1} and sorted(t.handed_over) == [0, 1]
    t.set_parallelism(2)
    t.enqueue(None, [("c", 1)])
    assert t.take_runnable() == [], "handed-over pages still hold their slots"
    t.set_parallelism(4)
    assert t.is_current(0, a.attempt) and not t.is_current(0, a.attempt + 1)
    t.complete(0, 3, 10.0)  # page 0 reported by signal
    assert t.handed_over == [1] and t.next_due() == 50.0
    assert t.release_due(49.0) == 0
    assert t.release_due(50.0) == 1  # page 1 never reported: a timeout, retried
    p = t.progress(50.0)
    assert p.num_completed_pages == 1 and p.num_processing_pages == 0
    t.release_due(1000.0)
    retry = next(x for x in t.take_runnable() if x.page_num == 1)
    assert retry.attempt == 2
    assert not t.is_current(1, b.attempt), "the lost attempt's late report is stale"
