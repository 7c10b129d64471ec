"""Unit tests of the pure bookkeeping (no Temporal)."""

from __future__ import annotations

import json

from batch_orchestra._engine import pages
from batch_orchestra._engine.continuation import (
    SchedulerState,
    scheduler_from_state,
    scheduler_to_state,
)
from batch_orchestra._engine.pages import RECENT_CURSOR_WINDOW
from batch_orchestra._engine.progress import build_progress
from batch_orchestra._engine.scheduler import Outcome, Scheduler
from batch_orchestra._model import FailurePolicy, ProcessorSettings
from batch_orchestra._model.codec import from_wire, to_wire


def settings(**kw: object) -> ProcessorSettings:
    base: dict[str, object] = dict(
        name="P",
        at_most_once=False,
        maximum_attempts=3,
        initial_interval_seconds=1.0,
        backoff_coefficient=2.0,
        maximum_interval_seconds=10.0,
        non_retryable_error_types=["Fatal"],
        use_extended_retries=True,
        extended_retry_interval_seconds=60.0,
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
    for attempt, outcome in [(1, Outcome.RETRY), (2, Outcome.RETRY), (3, Outcome.STUCK)]:
        [att] = s.take_runnable()
        assert att.attempt == attempt
        assert s.fail(0, "ValueError", "x", non_retryable=False, now=100.0) == outcome
        if outcome == Outcome.RETRY:
            assert s.next_due() == 100.0 + 2.0 ** (attempt - 1)
            assert s.take_runnable() == [], "a page waiting for its retry holds no slot"
            s.release_due(1000.0)
    p = build_progress(s, 100.0)
    assert p.num_stuck_pages == 1 and p.stuck_pages[0].next_retry_at is not None
    assert s.next_due() == 160.0
    assert s.release_due(159.0) == 0 and s.release_due(160.0) == 1
    [att] = s.take_runnable()
    assert att.attempt == 4
    assert s.fail(0, "ValueError", "x", non_retryable=False, now=170.0) == Outcome.STUCK
    s.release_due(230.0)
    s.take_runnable()
    s.complete(0, 1, 231.0)
    assert s.is_finished and s.num_failed == 0


def test_permanent_failures() -> None:
    s = Scheduler(settings(), 5, 0.0)
    s.enqueue(None, [("0", 1), ("1", 1)])
    s.take_runnable()
    assert s.fail(0, "Fatal", "listed type", non_retryable=False, now=1.0) == Outcome.FAILED
    assert s.fail(1, "Other", "flagged", non_retryable=True, now=1.0) == Outcome.FAILED
    p = build_progress(s, 1.0)
    assert p.num_failed_pages == 2 and p.is_finished
    assert [f.cursor_str for f in p.failed_pages] == ["0", "1"]
    nx = Scheduler(settings(use_extended_retries=False, maximum_attempts=1), 1, 0.0)
    nx.enqueue(None, [("0", 1)])
    nx.take_runnable()
    assert nx.fail(0, "E", "m", non_retryable=False, now=0.0) == Outcome.FAILED


def test_at_most_once_never_retries() -> None:
    s = Scheduler(settings(at_most_once=True, maximum_attempts=1, use_extended_retries=False), 1, 0)
    s.enqueue(None, [("0", 1)])
    s.take_runnable()
    assert s.fail(0, "Timeout", "", non_retryable=False, now=0.0) == Outcome.FAILED


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


def roundtrip(s: Scheduler, deadline: float | None = None) -> Scheduler:
    wire = json.loads(json.dumps(to_wire(scheduler_to_state(s, deadline))))
    return scheduler_from_state(s.settings, s.policy, from_wire(SchedulerState, wire))


def state_size(s: Scheduler) -> int:
    return len(json.dumps(to_wire(scheduler_to_state(s, None))))


def test_handover_state_is_bounded_and_round_trips() -> None:
    s = Scheduler(settings(), 4, 0.0)
    s.enqueue(None, [("0", 1)])
    sizes = []
    for i in range(5_000):
        [att] = s.take_runnable()
        s.enqueue(att.page_num, [(f"{i + 1:06d}", 1)])
        s.complete(att.page_num, 1, float(i))
        if i % 500 == 499:
            sizes.append(state_size(s))
    assert max(sizes) - min(sizes) <= 40, sizes  # only the digits of counters and times vary
    t = roundtrip(s)
    assert (t.num_completed, t.next_page_num, t.num_runs) == (5_000, 5_001, 2)
    assert len(t.recent.state()) == RECENT_CURSOR_WINDOW
    assert [a.page_num for a in t.take_runnable()] == [5_000]
    assert build_progress(t, 5_000.0).pages_per_second > 0


def test_pause_restore_and_eta() -> None:
    s = Scheduler(settings(), 3, 0.0)
    assert s.set_parallelism(0, 0.0) == 3
    s.enqueue(None, [("0", 1)])
    assert s.take_runnable() == []
    assert build_progress(s, 0.0).is_paused
    s.set_parallelism(3, 0.0)  # a non-zero parallelism lifts a pause made by 0
    [att] = s.take_runnable()
    s.enqueue(att.page_num, [("1", 1)])
    s.complete(att.page_num, 10, 10.0)
    [att] = s.take_runnable()
    s.complete(att.page_num, 10, 20.0)
    p = build_progress(s, 20.0, total_items=100)
    assert p.percent_complete == 20.0
    assert p.items_per_second == 1.0  # 10 items from t=10 to t=20
    assert p.eta_seconds == 80.0


def test_pages_running_at_a_handover_report_or_time_out() -> None:
    s = Scheduler(settings(), 4, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1)])
    [a, b] = s.take_runnable()
    t = roundtrip(s, 50.0)
    assert t.running == {0, 1} and sorted(t.handed_over) == [0, 1]
    t.set_parallelism(2, 0.0)
    t.enqueue(None, [("c", 1)])
    assert t.take_runnable() == [], "handed-over pages still hold their slots"
    t.set_parallelism(4, 0.0)
    assert t.is_current(0, a.attempt) and not t.is_current(0, a.attempt + 1)
    t.complete(0, 3, 10.0)  # page 0 reported by signal
    assert t.handed_over == {1} and t.next_due() == 50.0
    assert t.release_due(49.0) == 0
    assert t.release_due(50.0) == 1  # page 1 never reported: a timeout, retried
    p = build_progress(t, 50.0)
    assert p.num_completed_pages == 1 and p.num_processing_pages == 0
    t.release_due(1000.0)
    retry = next(x for x in t.take_runnable() if x.page_num == 1)
    assert retry.attempt == 2
    assert not t.is_current(1, b.attempt), "the lost attempt's late report is stale"


def outage(n: int, policy: FailurePolicy | None = None) -> Scheduler:
    """n pages that each enqueue their successor, then fail until they are stuck."""
    s = Scheduler(settings(maximum_attempts=1), 50, 0.0, policy)
    s.enqueue(None, [(f"{0:08d}", 100)])
    budget, pages.MAX_HELD_BYTES = pages.MAX_HELD_BYTES, 10**9  # no backpressure
    try:
        _fail_all(s, n)
    finally:
        pages.MAX_HELD_BYTES = budget
    return s


def _fail_all(s: Scheduler, n: int) -> None:
    t = 0.0
    for i in range(n):
        [att] = s.take_runnable(1)
        s.enqueue(att.page_num, [(f"{(i + 1) * 100:08d}", 100)])
        t += 0.05
        assert (
            s.fail(
                att.page_num,
                "OperationalError",
                "could not connect to server: "
                "Connection refused\n\tIs the server running on host db:5432?",
                non_retryable=False,
                now=t,
            )
            is Outcome.STUCK
        )


def test_an_outage_keeps_the_handover_state_small() -> None:
    """100,000 stuck pages (a long outage, no failure policy) hand over in well under 256 KB:
    errors are kept once, and the page table is compressed."""
    s = outage(100_000)
    p = build_progress(s, 10_000.0)
    assert p.num_stuck_pages == 100_000 and p.num_pending_pages == 1
    assert len(p.stuck_pages) == 100 and len(p.errors) == 1 and p.errors[0].pages == 100_000
    size = state_size(s)
    assert size < 256 * 1024, size
    t = roundtrip(s)
    assert build_progress(t, 10_000.0).num_stuck_pages == 100_000
    assert t.errors.get(t.pages[5].error)[0] == "OperationalError"


def test_failing_pages_past_the_budget_hold_new_pages_back() -> None:
    s = outage(100)
    budget, pages.MAX_HELD_BYTES = pages.MAX_HELD_BYTES, s.held_bytes - 1
    try:
        assert s.holding_new_pages and s.hold_reason and "new pages wait" in s.hold_reason
        assert s.take_runnable() == [], "the fresh page must wait"
        s.release_due(1e9)
        retries = s.take_runnable()
        assert retries and all(a.attempt == 2 for a in retries), "retries still run"
    finally:
        pages.MAX_HELD_BYTES = budget


def test_the_default_policy_pauses_an_outage_but_not_one_bad_page() -> None:
    # the rate rule on its own (the no-progress rule would pause this batch sooner)
    s = outage(19, FailurePolicy(no_progress_attempts=None))
    assert not s.paused and s.check_policy(1.0) is None, "fewer than min_attempts"
    [att] = s.take_runnable(1)
    s.enqueue(att.page_num, [("next", 100)])
    s.fail(att.page_num, "OperationalError", "down", non_retryable=False, now=2.0)
    reason = s.check_policy(2.0)
    assert reason and "20 of the last 20 page attempts failed" in reason and "down" in reason
    assert s.paused and s.take_runnable() == [] and build_progress(s, 2.0).pause_reason == reason
    s.resume(3.0)
    assert not s.paused and s.take_runnable(), "resume judges afresh"
    # a small batch with one bad page (after one good one): never paused, the page ends stuck
    b = Scheduler(settings(maximum_attempts=30), 5, 0.0, FailurePolicy())
    b.enqueue(None, [("good", 1), ("bad", 1)])
    b.take_runnable(1)
    b.complete(0, 1, 0.0)
    for i in range(40):
        b.release_due(1e9)
        [att] = b.take_runnable()
        b.fail(att.page_num, "E", "m", non_retryable=False, now=float(i))
        assert b.check_policy(float(i)) is None, "no new page to protect: never paused"


def test_retry_delay_never_overflows() -> None:
    st = settings(maximum_attempts=0, backoff_coefficient=2.0, maximum_interval_seconds=100.0)
    assert st.retry_delay(1) == 1.0 and st.retry_delay(8) == 100.0
    assert st.retry_delay(1_025) == 100.0 and st.retry_delay(10**6) == 100.0
    assert settings(backoff_coefficient=3.5).retry_delay(5_000) == 10.0


def test_progress_adds_up_and_chains_are_chains() -> None:
    s = Scheduler(settings(maximum_attempts=1), 10, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1)])  # two chains
    a, b = s.take_runnable()
    s.enqueue(a.page_num, [("a1", 1), ("a2", 1), ("a3", 1)])  # lookahead: still one chain
    s.fail(b.page_num, "E", "m", non_retryable=False, now=1.0)  # chain b's only page: stuck
    s.release_due(1e9)
    running = s.take_runnable()  # the stuck page's extended retry runs too
    assert any(x.page_num == b.page_num for x in running)
    p = build_progress(s, 2.0)
    assert p.num_open_chains == 2 and p.num_stuck_pages == 0, "a running stuck page is processing"
    total = (
        p.num_completed_pages
        + p.num_processing_pages
        + p.num_pending_pages
        + p.num_stuck_pages
        + p.num_failed_pages
    )
    assert total == p.num_discovered_pages == 5
    s.complete(b.page_num, 1, 3.0)
    assert build_progress(s, 3.0).num_open_chains == 1


def test_an_attempt_that_did_no_work_is_retried_even_at_most_once() -> None:
    s = Scheduler(
        settings(at_most_once=True, maximum_attempts=1, use_extended_retries=False), 2, 0.0
    )
    s.enqueue(None, [("0", 1)])
    [att] = s.take_runnable()
    assert (
        s.fail(
            0,
            "BatchOrchestraUnknownPageProcessor",
            "stale worker",
            non_retryable=False,
            did_not_run=True,
            now=1.0,
        )
        is Outcome.NOT_RUN
    )
    s.release_due(1e9)
    [retry] = s.take_runnable()
    assert retry.attempt == 2
    s.complete(0, 1, 2.0)
    assert s.num_failed == 0 and s.is_finished


def test_parallelism_stays_inside_temporals_pending_activity_limit() -> None:
    s = Scheduler(settings(), 3_000, 0.0)
    s.enqueue(None, [(str(i), 1) for i in range(2_500)])
    assert len(s.take_runnable()) == 1_900
    p = build_progress(s, 0.0)
    assert p.effective_parallelism == 1_900 and "pending-activity limit" in (p.hold_reason or "")


def test_first_release_continuation_is_read() -> None:
    """A batch handed over by the first release continues on this code."""
    from pathlib import Path

    from batch_orchestra._engine.continuation import continuation_from_wire

    path = Path(__file__).parent / "histories" / "v0.1.0" / "chains_retry_handover-0.json"
    history = json.loads(path.read_text())
    event = next(
        e for e in history["events"] if "workflowExecutionContinuedAsNewEventAttributes" in e
    )
    import base64

    payload = event["workflowExecutionContinuedAsNewEventAttributes"]["input"]["payloads"][0]
    raw = json.loads(base64.b64decode(payload["data"]))
    cont = continuation_from_wire(raw["continuation"])
    assert cont.version == 1 and cont.settings.name == "Scripted"
    t = scheduler_from_state(cont.settings, FailurePolicy.disabled(), cont.scheduler)
    assert t.next_page_num == raw["continuation"]["scheduler"]["next_page_num"]
    assert len(t.pages) == len(raw["continuation"]["scheduler"]["pages"])


def test_lost_workers_do_not_count_against_the_failure_policy() -> None:
    s = Scheduler(settings(maximum_attempts=5), 50, 0.0, FailurePolicy())
    s.enqueue(None, [(str(i), 1) for i in range(60)])
    for att in s.take_runnable():
        s.fail(
            att.page_num,
            "Timeout",
            "the page's worker stopped heartbeating",
            non_retryable=False,
            worker_lost=True,
            now=1.0,
        )
    assert s.check_policy(1.0) is None and not s.paused
    assert build_progress(s, 1.0).num_retrying_pages == 50


def test_the_recent_cursor_window_stays_small_with_long_cursors() -> None:
    """It once carried 64 whole cursors across continue-as-new: a megabyte at 16 KB each."""
    s = Scheduler(settings(), 5, 0.0)
    cursors = [f"{i:03d}" + "x" * 16_000 for i in range(100)]
    for c in cursors:
        assert s.enqueue(None, [(c, 1)]).added
    while s.pages:
        for att in s.take_runnable():
            s.complete(att.page_num, 1, 1.0)
    state = scheduler_to_state(s, None)
    assert len(json.dumps(state.recent)) < 3_000
    again = scheduler_from_state(settings(), FailurePolicy.disabled(), state)
    assert again.enqueue(None, [(cursors[-1], 1)]).ignored  # a loop is still caught


def test_a_retry_due_while_paused_stays_listed_with_its_error() -> None:
    """A paused batch's failing page whose retry came due waits in line for the resume: it is
    still shown retrying (or stuck) with its error, not as a plain pending page that nothing
    can find (``failures`` and ``status`` read these lists)."""
    s = Scheduler(settings(), 5, 0.0)
    s.enqueue(None, [("0", 1), ("1", 1)])
    s.take_runnable()
    assert s.fail(0, "OperationalError", "no such table", non_retryable=False, now=1.0) == (
        Outcome.RETRY
    )
    s.complete(1, 1, 1.0)
    s.pause("no progress", 1.5)
    assert s.release_due(100.0) == 1  # the retry is due; paused, nothing starts
    assert s.take_runnable() == []
    p = build_progress(s, 100.0)
    assert p.num_retrying_pages == 1 and p.num_pending_pages == 1  # pending counts retrying
    [r] = p.retrying_pages
    assert (r.page_num, r.error_type, r.error_message) == (0, "OperationalError", "no such table")
    s.resume(101.0)
    [att] = s.take_runnable()
    assert att.page_num == 0 and att.attempt == 2
    assert build_progress(s, 101.0).num_retrying_pages == 0


def test_a_batch_far_below_its_cap_with_nothing_pending_is_told_it_is_discovery_bound() -> None:
    from batch_orchestra._engine.progress import discovery_bound
    from batch_orchestra._model import BatchOrchestratorProgress

    def p(**kw: object) -> BatchOrchestratorProgress:
        base: dict[str, object] = dict(
            max_parallelism=100,
            effective_parallelism=100,
            num_processing_pages=12,
            num_open_chains=2,
            num_completed_pages=50,
        )
        base.update(kw)
        return BatchOrchestratorProgress(**base)  # type: ignore[arg-type]

    hint = discovery_bound(p(), 0.05)
    assert hint is not None and hint.startswith(
        "discovery-bound: 12 of 100 running, nothing pending"
    )
    assert "2 open chains" in hint and "0.05 s" in hint and "docs/tuning.md" in hint
    for quiet in (
        dict(num_pending_pages=1),  # pages wait: the cap, not discovery, holds them
        dict(num_processing_pages=60),
        dict(is_paused=True),
        dict(throttle_reason="rate limit: 8 pages/s"),
        dict(hold_reason="held"),
        dict(num_open_chains=0),  # the last pages: nothing more to find
        dict(num_completed_pages=3),  # every batch starts below its cap
        dict(is_finished=True),
        dict(max_parallelism=3, effective_parallelism=3),
    ):
        assert discovery_bound(p(**quiet), 0.05) is None, quiet
    # the cap flow control sets now is the one to fill
    hint = discovery_bound(p(effective_parallelism=20, num_processing_pages=8), None)
    assert hint is not None and "8 of 20 running" in hint and " s or more" not in hint
    assert discovery_bound(p(effective_parallelism=20), None) is None  # 12 of 20


def test_a_put_off_hand_over_leaves_no_deadline_on_this_run_s_attempts() -> None:
    """A hand-over that does not fit is put off: the attempts of this run run on with no
    deadline (they would otherwise time out here), while one handed over by the last run keeps
    the deadline it must report by."""
    s = Scheduler(settings(), 4, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1)])
    [a, _] = s.take_runnable()
    t = roundtrip(s, deadline=100.0)  # both handed over to this run
    t.complete(a.page_num, 1, 1.0)
    t.enqueue(None, [("c", 1)])
    [c] = t.take_runnable()
    t.hand_over(200.0, 150.0)  # the next hand-over is built, then found too big
    t.clear_handover_deadlines()
    assert t.pages[c.page_num].report_deadline is None and t.pages[c.page_num].confirm_by is None
    assert t.pages[1].report_deadline == 200.0, "the handed-over attempt keeps its deadline"
    assert t.next_due() == 200.0
    t.release_due(1_000.0)
    assert t.is_current(c.page_num, c.attempt), "this run's attempt is not timed out"


def test_what_the_workflow_sets_goes_through_methods() -> None:
    s = Scheduler(settings(), 4, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1)])
    s.set_flow_cap(1)
    [a] = s.take_runnable()
    assert s.effective_parallelism == 1 and s.flow_cap == 1
    s.forget_running(a.page_num)  # the run no longer waits for it (cancelled)
    assert not s.is_current(a.page_num, a.attempt) and a.page_num in s.pages
    s.mark_successor_enqueued(1)
    assert s.enqueue(1, [("c", 1)]).added == [], "its successors are known already"
    s.set_feeding(True)
    assert not s.is_finished
