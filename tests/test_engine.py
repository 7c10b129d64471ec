"""The batch engine on its own: events in, decisions out, no Temporal server.

These drive ``BatchEngine`` the way the workflow shell does (``_workflow/drive.py``): take what
admission lets start, report how attempts ended, and read progress, the notifier's outbox and
the hand-over. The shell's own behaviour is covered by the integration tests and the replay of
recorded histories.
"""

from __future__ import annotations

from typing import Any

from batch_orchestra._engine.engine import BatchEngine
from batch_orchestra._engine.events import AttemptFailure, Patches
from batch_orchestra._engine.lifecycle import Lifecycle
from batch_orchestra._model import (
    BatchNotifierConfig,
    BatchOrchestratorInput,
    FailurePolicy,
    input_to_wire,
)
from tests.test_scheduler import settings


class Lines:
    """The engine's log, kept for the test to read."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str, *args: Any, page_num: int | None = None) -> None:
        self.lines.append((level, msg % args))

    def info(self, msg: str, *args: Any, page_num: int | None = None) -> None:
        self._add("info", msg, *args)

    def warning(self, msg: str, *args: Any, page_num: int | None = None) -> None:
        self._add("warning", msg, *args)

    def error(self, msg: str, *args: Any, page_num: int | None = None) -> None:
        self._add("error", msg, *args)


def engine_for(
    raw: dict[str, Any], now: float = 0.0, policy: FailurePolicy | None = None, **kw: Any
) -> tuple[BatchEngine, Lines]:
    log = Lines()
    engine = BatchEngine(raw, execution="exec-1", log=log, patched=lambda _: True)
    carried = engine.handover.carried_input(raw)
    engine.configure(Patches(), policy or FailurePolicy(), carried)
    if engine.cont is not None:
        engine.resume_run(now)
    else:
        engine.begin_run(settings(**kw), now)
    engine.state = Lifecycle.RUNNING
    return engine, log


def batch(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        page_processor="P", page_size=10, max_parallelism=3, batch_id="b", first_cursor_str="0"
    )
    base.update(kw)
    return input_to_wire(BatchOrchestratorInput(**base))


def test_a_chain_of_pages_runs_to_its_end_on_the_engine_alone() -> None:
    engine, _ = engine_for(batch())
    now = 1.0
    while not engine.sched.is_finished:
        starts = engine.admission.take(now)
        assert starts.attempts, "a page is always ready until the chain ends"
        for att in starts.attempts:
            n = int(att.cursor)
            successors = [(str(n + 1), 10)] if n < 9 else []
            engine.attempt_succeeded(att.page_num, 10, successors, 0.1, None, (0, None), now)
        now += 1.0
    p = engine.progress(now)
    assert p.num_completed_pages == 10 and p.num_completed_items == 100
    assert engine.woken and engine.quiet()


def test_a_hand_over_carries_the_state_and_the_next_run_goes_on_from_it() -> None:
    raw = batch(pages_per_run=2)
    engine, _ = engine_for(raw)
    [att] = engine.admission.take(1.0).attempts
    engine.attempt_succeeded(att.page_num, 10, [("1", 10)], 0.1, None, (0, None), 1.0)
    [att] = engine.admission.take(2.0).attempts
    engine.attempt_succeeded(att.page_num, 10, [("2", 10)], 0.1, None, (0, None), 2.0)
    assert engine.handover.should_hand_over(history_events=10, history_bytes=1_000)
    nxt = engine.handover.continuation(engine.handover.carried_input(raw), 3.0, None)

    following, _ = engine_for(nxt, now=3.0)
    assert following.progress(3.0).num_completed_pages == 2
    assert [a.cursor for a in following.admission.take(3.0).attempts] == ["2"]
    assert not following.handover.should_hand_over(history_events=10, history_bytes=1_000)


def test_a_page_that_fails_for_good_pauses_the_batch_and_tells_the_notifier() -> None:
    # two chains, one page at a time: a page is still pending when the first fails
    raw = batch(
        notifier=BatchNotifierConfig(name="n"),
        first_cursor_str="",
        first_cursor_strs=["0", "1"],
        max_parallelism=1,
    )
    policy = FailurePolicy(max_failed_pages=0)
    engine, log = engine_for(raw, policy=policy, maximum_attempts=1, use_extended_retries=False)
    [att] = engine.admission.take(1.0).attempts
    failure = AttemptFailure(kind="Fatal", message="no such table", non_retryable=True)
    engine.attempt_failed(att.page_num, att.attempt, failure, 1.0)
    p = engine.progress(1.0)
    assert p.num_failed_pages == 1 and p.is_paused
    notices = [engine.outbox.take(budgets=True) for _ in range(2)]
    assert [n.event for n in notices] == ["pages_failed", "paused"]
    assert notices[0].pages[0].error_message == "no such table"
    assert ("error", "batch paused itself: " + str(p.pause_reason)) in log.lines


def test_a_lost_worker_is_retried_and_not_counted_by_the_failure_policy() -> None:
    engine, _ = engine_for(batch())
    [att] = engine.admission.take(1.0).attempts
    lost = AttemptFailure(kind="Timeout", message="page timed out (heartbeat)", timeout="heartbeat")
    engine.attempt_failed(att.page_num, att.attempt, lost, 1.0)
    p = engine.progress(1.0)
    assert p.num_failed_pages == 0 and not p.is_paused
    assert p.num_retrying_pages == 1 and "stopped heartbeating" in p.errors[0].error_message


def test_an_attempt_that_never_started_is_taken_back_without_a_failure() -> None:
    engine, _ = engine_for(batch())
    [att] = engine.admission.take(1.0).attempts
    unstarted = AttemptFailure(kind="Timeout", message="x", timeout="schedule_to_start")
    engine.attempt_failed(att.page_num, att.attempt, unstarted, 1.0)
    [again] = engine.admission.take(2.0).attempts
    assert again.page_num == att.page_num and engine.progress(2.0).errors == []


def test_messages_of_another_execution_are_ignored_and_logged_once() -> None:
    engine, log = engine_for(batch())
    [att] = engine.admission.take(1.0).attempts
    for _ in range(3):
        assert engine.enqueue(att.page_num, [("x", 10)], "exec-0") == 0
    assert engine.enqueue(att.page_num, [("1", 10)], "exec-1") == 1
    ignored = [line for level, line in log.lines if "another batch execution" in line]
    assert len(ignored) == 1 and "exec-0" in ignored[0]


def test_controls_apply_log_who_asked_and_refuse_with_a_reason() -> None:
    engine, log = engine_for(batch(max_parallelism=4))
    controls = engine.controls
    controls.pause("ops", 1.0)
    assert engine.progress(1.0).is_paused and engine.admission.take(1.0).attempts == []
    controls.set_parallelism(2, "ops", 3.0)
    controls.resume("ops", 4.0)
    assert len(engine.admission.take(5.0).attempts) == 1
    assert ("info", "paused (asked by ops)") in log.lines
    assert "there is no page" not in str(controls.refuse_page_action(99, "skip"))
    engine.state = Lifecycle.FINISHED
    assert "finished" in str(controls.refuse_redrive())
    idle, _ = engine_for(batch(max_parallelism=0))
    assert "use set_max_parallelism" in str(idle.controls.refuse_resume())
