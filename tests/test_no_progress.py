"""Unit tests of the pure rules for a batch that gets nowhere, and of failing hooks (no Temporal)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from batch_orchestra import FailurePolicy, InvalidArgsError, InvalidBatchInputError
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_from_state,
    scheduler_to_state,
)
from batch_orchestra._engine.hook_errors import MAX_HOOK_ERROR, HookErrors
from batch_orchestra._engine.progress import build_progress
from batch_orchestra._engine.scheduler import Outcome, Scheduler
from batch_orchestra._model import BatchOrchestratorInput, validate_input
from batch_orchestra._model.typed import check_args
from tests.test_scheduler import settings

BAD = ("TypeError", "Args.__init__() got an unexpected keyword argument 'db'")


def default_retries() -> Any:
    """The default at-least-once policy: 10 attempts, 1 s doubling to 100 s."""
    return settings(maximum_attempts=10, maximum_interval_seconds=100.0)


def attempt(s: Scheduler, error: tuple[str, str] | None, now: float, **kw: Any) -> Outcome | None:
    """Release what is due, run the next attempt; fail it with ``error`` (or complete it)."""
    s.release_due(now)
    [att] = s.take_runnable(1)
    if error is None:
        s.complete(att.page_num, 1, now)
        return None
    return s.fail(att.page_num, *error, non_retryable=False, now=now, **kw)


def test_one_page_failing_the_same_way_is_named_at_once_and_paused_within_its_retries() -> None:
    s = Scheduler(default_retries(), 4, 0.0, FailurePolicy())
    s.enqueue(None, [("", 10)])
    t = 0.0
    assert attempt(s, BAD, t) is Outcome.RETRY and s.check_policy(t) is None
    assert build_progress(s, t).no_progress is None, "one failure is a retrying page, no more"
    t = 1.0  # the first retry, 1 s later
    attempt(s, BAD, t)
    assert s.check_policy(t) is None
    text = build_progress(s, t).no_progress
    assert text is not None and text.startswith("no progress: no page has completed yet")
    assert "the last 2 page attempts failed with TypeError: Args.__init__()" in text
    assert "pauses itself after 5" in text
    for t in (3.0, 7.0, 15.0):
        outcome = attempt(s, BAD, t)
        reason = s.check_policy(t)
    assert outcome is Outcome.RETRY, "still within its 10 initial retries"
    assert reason is not None and s.paused and s.pause_reason == reason
    assert "the last 5 page attempts failed with TypeError: Args.__init__()" in reason
    assert "no_progress_attempts=5" in reason and "then resume" in reason
    p = build_progress(s, 15.0)
    assert p.is_paused and p.no_progress and "pauses itself" not in p.no_progress
    assert s.check_stall(15.0) is None, "paused: not a stall"


def test_only_identical_counted_failures_make_a_streak() -> None:
    s = Scheduler(default_retries(), 1, 0.0, FailurePolicy(no_progress_attempts=3))
    s.enqueue(None, [("", 10)])
    attempt(s, BAD, 0.0)
    attempt(s, BAD, 100.0)
    # a lost worker and an attempt no worker could run say nothing about the page
    attempt(s, ("Timeout", "heartbeat"), 200.0, worker_lost=True)
    attempt(s, ("BatchOrchestraUnknownPageProcessor", "no processor"), 300.0, did_not_run=True)
    assert s.watch.streak == 2 and s.check_policy(300.0) is None
    attempt(s, ("TypeError", "another message"), 400.0)  # another error starts a new streak
    assert s.watch.streak == 1 and s.check_policy(400.0) is None
    assert build_progress(s, 400.0).no_progress is None
    attempt(s, ("TypeError", "another message"), 500.0)
    attempt(s, ("TypeError", "another message"), 600.0)
    assert s.check_policy(600.0) is not None and s.paused


def test_a_completed_page_means_progress_and_a_resume_judges_afresh() -> None:
    s = Scheduler(default_retries(), 1, 0.0, FailurePolicy(no_progress_attempts=3))
    s.enqueue(None, [("a", 1), ("b", 1), ("c", 1)])
    attempt(s, BAD, 0.0)
    attempt(s, BAD, 0.1)
    attempt(s, None, 10.0)  # a page completes: the batch gets somewhere
    assert s.watch.streak == 0 and build_progress(s, 10.0).no_progress is None
    for t in (20.0, 40.0, 80.0, 160.0):
        attempt(s, BAD, t)
        assert s.check_policy(t) is None, "pages completed: the rate rule's business"
    s.pause("paused by an operator", 200.0)
    s.resume(300.0)
    assert s.watch.streak == 0 and not s.watch.progressed
    for t in (400.0, 500.0):
        attempt(s, BAD, t)
        assert s.check_policy(t) is None
    text = build_progress(s, 500.0).no_progress
    assert text and "no page has completed since the batch was resumed" in text
    attempt(s, BAD, 600.0)
    reason = s.check_policy(600.0)
    assert reason and "since the batch was resumed and the last 3 page attempts" in reason


def test_without_the_rule_a_failing_page_still_shows_but_never_pauses() -> None:
    for policy in (FailurePolicy(no_progress_attempts=None), FailurePolicy.disabled()):
        s = Scheduler(settings(maximum_attempts=3), 1, 0.0, policy)
        s.enqueue(None, [("", 10)])
        outcomes = [attempt(s, BAD, float(t * 1000)) for t in range(8)]
        assert outcomes[-1] is Outcome.STUCK and not s.paused
        assert s.check_policy(8000.0) is None
        text = build_progress(s, 8000.0).no_progress
        assert text and "the last 8 page attempts failed with TypeError" in text


def test_a_stall_is_told_once_until_a_page_completes() -> None:
    s = Scheduler(settings(maximum_attempts=2), 2, 0.0, FailurePolicy())
    s.enqueue(None, [("a", 1), ("b", 1)])
    [a, b] = s.take_runnable()
    s.complete(a.page_num, 1, 0.0)
    s.fail(b.page_num, *BAD, non_retryable=False, now=1.0)
    assert s.check_stall(1.0) is None, "one failure does not make a repeating error"
    assert attempt(s, BAD, 2.0) is Outcome.STUCK
    text = s.check_stall(2.0)
    assert text is not None and s.check_policy(2.0) is None, "a stall does not pause"
    assert (
        text.startswith("no progress: since ") and "only retries of failing pages can run" in text
    )
    assert "(0 retrying, 1 stuck, next retry at " in text
    assert "the last 2 page attempts failed with TypeError" in text
    assert build_progress(s, 2.0).no_progress == text
    for t in (100.0, 200.0, 300.0):
        attempt(s, BAD, t)
        assert s.check_stall(t) is None, "the same stall is told once"
    shown = build_progress(s, 300.0).no_progress
    assert shown and "the last 5 page attempts" in shown
    s.enqueue(None, [("c", 1)])
    attempt(s, BAD, 400.0)  # the stuck page's retry comes first
    assert s.ready and s.check_stall(400.0) is None
    attempt(s, None, 401.0)  # then the new page completes: the stall is over
    assert build_progress(s, 401.0).no_progress is None
    attempt(s, BAD, 500.0)
    attempt(s, BAD, 600.0)
    assert s.check_stall(600.0) is not None, "a new stall is told again"


def test_not_a_stall_while_something_else_can_run() -> None:
    s = Scheduler(settings(maximum_attempts=5), 3, 0.0, FailurePolicy(no_progress_attempts=None))
    s.enqueue(None, [("a", 1), ("b", 1)])
    [a, b] = s.take_runnable()
    for t in (1.0, 3.0, 7.0):
        s.fail(a.page_num, *BAD, non_retryable=False, now=t)
        assert s.check_stall(t) is None, "page b still runs"
        s.release_due(t + 100)
        [a] = s.take_runnable()
    s.complete(b.page_num, 1, 8.0)
    s.fail(a.page_num, *BAD, non_retryable=False, now=9.0)
    assert s.check_stall(9.0) is None, "a completion reset the streak"
    s.release_due(1e9)
    [a] = s.take_runnable()
    s.fail(a.page_num, *BAD, non_retryable=False, now=1e9)
    assert s.check_stall(1e9) is not None


def test_the_watch_travels_across_continue_as_new() -> None:
    s = Scheduler(default_retries(), 4, 0.0, FailurePolicy())
    s.enqueue(None, [("", 10)])
    for t in (0.0, 1.0, 3.0):
        attempt(s, BAD, t)
    t2 = scheduler_from_state(s.settings, s.policy, scheduler_to_state(s, None))
    assert (t2.watch.streak, t2.watch.error_type) == (3, "TypeError")
    attempt(t2, BAD, 7.0)
    attempt(t2, BAD, 15.0)
    assert t2.check_policy(15.0) is not None, "the streak went on in the next run"
    # a hand-over from an older version has no watch: a batch with completed pages progressed
    old = scheduler_to_state(s, None)
    old.no_progress, old.num_completed = [], 7
    assert scheduler_from_state(s.settings, s.policy, old).watch.progressed


def test_no_progress_text_is_bounded() -> None:
    s = Scheduler(default_retries(), 1, 0.0, FailurePolicy(no_progress_attempts=None))
    s.enqueue(None, [("", 10)])
    for t in (0.0, 10.0, 100.0):
        attempt(s, ("E" * 300, "m" * 10_000), t)
    text = build_progress(s, 100.0).no_progress
    assert text is not None and len(text) == 500
    s.check_stall(100.0)
    text = build_progress(s, 100.0).no_progress
    assert text is not None and len(text) <= 500


def test_no_progress_attempts_is_validated() -> None:
    for bad in (0, -1, 2.5, True, "5"):
        inp = BatchOrchestratorInput(
            page_processor="P",
            page_size=1,
            max_parallelism=1,
            failure_policy=FailurePolicy(no_progress_attempts=bad),  # type: ignore[arg-type]
        )
        with pytest.raises(InvalidBatchInputError, match="no_progress_attempts"):
            validate_input(inp)
    assert FailurePolicy().no_progress_attempts == 5
    assert FailurePolicy.disabled().no_progress_attempts is None


def test_hook_errors_are_one_per_hook_bounded_and_marked_recovered() -> None:
    hooks = HookErrors()
    hooks.failed("notifier", "tell", "RuntimeError: " + "x" * 2_000, 10.0, "pages_failed")
    hooks.failed("notifier", "tell", "RuntimeError: down", 20.0, "finished")
    hooks.failed("tracker", "track", "ValueError: no", 30.0)
    assert not hooks.succeeded("health_check", 31.0), "never failed"
    [tracker, notifier] = hooks.progress()  # in a fixed order: tracker, notifier, ...
    assert (notifier.kind, notifier.name, notifier.event) == ("notifier", "tell", "finished")
    assert notifier.consecutive_failures == notifier.total_failures == 2
    assert notifier.last_error == "RuntimeError: down" and notifier.recovered_at is None
    assert notifier.last_failed_at.timestamp() == 20.0
    assert tracker.last_error == "ValueError: no"
    assert hooks.succeeded("tracker", 40.0)
    tracker = hooks.progress()[0]
    assert tracker.consecutive_failures == 0 and tracker.total_failures == 1
    assert tracker.recovered_at is not None and tracker.recovered_at.timestamp() == 40.0
    long = HookErrors()
    long.failed("reduce", "P" * 900, "E" * 9_000, 1.0)
    [r] = long.progress()
    assert len(r.last_error) == MAX_HOOK_ERROR and len(r.name) <= MAX_HOOK_ERROR


def test_hook_errors_travel_in_the_continuation_and_older_ones_still_read() -> None:
    s = Scheduler(default_retries(), 1, 0.0)
    hooks = HookErrors()
    hooks.failed("notifier", "tell", "RuntimeError: down", 20.0, "stalled")
    cont = BatchContinuation(
        settings=s.settings, scheduler=scheduler_to_state(s, None), hook_errors=hooks.records()
    )
    wire = continuation_to_wire(cont)
    back = continuation_from_wire(wire)
    assert HookErrors(back.hook_errors).progress() == hooks.progress()
    del wire["hook_errors"], wire["scheduler"]["no_progress"]  # as an older version wrote it
    older = continuation_from_wire(wire)
    assert older.hook_errors == [] and older.scheduler.no_progress == []


@dataclass
class DbArgs:
    db_path: str
    percent: int = 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"db": "x"}', "field 'db_path' is missing (args: '{\"db\": \"x\"}'; unknown key(s)"),
        ('{"db_path": "x", "percent": "ten"}', "field 'percent' is 'ten': Expected value"),
        ("{oops", "they are not JSON: '{oops'"),
        ("[1, 2]", "they are list '[1, 2]', not a JSON object"),
    ],
    ids=["missing", "wrong-type", "not-json", "not-object"],
)
def test_args_that_do_not_fit_the_args_type_name_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidArgsError) as info:
        check_args(DbArgs, text, "Reprice")
    err = info.value
    assert message in str(err), str(err)
    assert "do not fit DbArgs, the args_type of Reprice" in str(err)
    assert "args=args_str(DbArgs(...))" in str(err) and "\n" not in str(err)
    assert err.page_num is None and err.text == text and err.model is DbArgs
    check_args(DbArgs, '{"db_path": "x"}', "Reprice")  # fits: no error


def test_pydantic_args_name_the_field_too() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        db_path: str
        percent: int = 10

    with pytest.raises(InvalidArgsError, match="field 'db_path' is missing"):
        check_args(Model, '{"db": "x"}', "P")
    with pytest.raises(InvalidArgsError, match="field 'percent' is 'ten': Input should be"):
        check_args(Model, '{"db_path": "x", "percent": "ten"}', "P")
