"""Unit tests of item-failure and redrive bookkeeping (no Temporal)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from batch_orchestra import BatchOrchestratorInput, ItemFailure, RedrivePage
from batch_orchestra._engine.continuation import (
    SchedulerState,
    scheduler_from_state,
    scheduler_to_state,
)
from batch_orchestra._engine.progress import build_progress
from batch_orchestra._engine.scheduler import Outcome, Scheduler
from batch_orchestra._exceptions import InvalidBatchInputError
from batch_orchestra._model import FailurePolicy, validate_input
from batch_orchestra._model.codec import from_wire, to_wire
from tests.test_scheduler import settings


def _item(key: str, page: int) -> ItemFailure:
    return ItemFailure(
        key=key,
        page_num=page,
        error_type="ValueError",
        error_message="bad",
        failed_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )


def _failed_batch() -> Scheduler:
    """Pages 0..3; 1 and 2 fail for good (1 after enqueueing its successor)."""
    s = Scheduler(settings(), 5, 0.0)
    s.enqueue(None, [("0", 7), ("1", 7), ("2", 7), ("3", 7)])
    s.take_runnable()
    s.enqueue(1, [("1b", 7)])
    assert s.fail(1, "Fatal", "x", non_retryable=False, now=1.0) is Outcome.FAILED
    assert s.fail(2, "Fatal", "y", non_retryable=False, now=2.0) is Outcome.FAILED
    s.complete(0, 7, 3.0)
    return s


def test_item_failures_count_exactly_and_keep_the_latest_100() -> None:
    s = Scheduler(settings(), 1, 0.0)
    for page in range(3):
        s.record_item_failures(1_000 + page, [_item(f"{page}-{i}", page) for i in range(60)])
    assert s.num_failed_items == 3_003
    assert [f.key for f in s.failed_items][:1] == ["1-20"] and len(s.failed_items) == 100
    p = build_progress(s, 1.0)
    assert p.num_failed_items == 3_003 and p.failed_items[-1].key == "2-59"


def test_item_failures_survive_continue_as_new() -> None:
    s = _failed_batch()
    s.record_item_failures(5, [_item("k", 0)])
    wire = to_wire(scheduler_to_state(s, 10.0))
    t = scheduler_from_state(settings(), FailurePolicy.disabled(), from_wire(SchedulerState, wire))
    assert t.num_failed_items == 5 and list(t.failed_items) == list(s.failed_items)
    failed = build_progress(t, 4.0).failed_pages
    assert [(f.cursor_str, f.size, f.successor_enqueued) for f in failed] == [
        ("1", 7, True),
        ("2", 7, False),
    ]


def test_redrive_requeues_the_failed_pages_with_a_fresh_budget() -> None:
    s = _failed_batch()
    assert s.num_failed == 2 and s.errors.counts()
    assert s.redrive_failed() == [1, 2]
    assert s.num_failed == 0 and not s.failed and s.num_redriven == 2
    runnable = {a.page_num: a for a in s.take_runnable()}
    assert set(runnable) == {1, 2, 4}  # 4: the successor page 1 enqueued before it failed
    assert runnable[1].successor_enqueued and not runnable[2].successor_enqueued
    assert runnable[1].attempt == 2  # attempt numbers go on ...
    # ... but the retry budget is fresh: 3 attempts (settings) before the page is stuck
    for _ in range(2):
        assert s.fail(2, "ValueError", "z", non_retryable=False, now=5.0) is Outcome.RETRY
        s.release_due(100.0)
        s.take_runnable()
    assert s.fail(2, "ValueError", "z", non_retryable=False, now=5.0) is Outcome.STUCK
    assert s.redrive_failed() == []


def test_max_failed_items_pauses() -> None:
    s = Scheduler(settings(), 2, 0.0, FailurePolicy(max_failed_items=3))
    s.enqueue(None, [("0", 1), ("1", 1)])
    s.take_runnable()
    s.record_item_failures(3, [])
    assert s.check_policy(1.0) is None
    s.record_item_failures(1, [_item("x", 0)])
    reason = s.check_policy(1.0)
    assert reason is not None and "max_failed_items" in reason and s.paused


def test_redrive_input_is_validated() -> None:
    def inp(**kw: object) -> BatchOrchestratorInput:
        return BatchOrchestratorInput(page_processor="P", page_size=1, max_parallelism=1, **kw)  # type: ignore[arg-type]

    validate_input(inp(redrive_of="old", redrive_pages=[RedrivePage(cursor_str="a", size=3)]))
    with pytest.raises(InvalidBatchInputError, match="redrive_pages or first_cursor_str"):
        validate_input(
            inp(first_cursor_str="x", redrive_pages=[RedrivePage(cursor_str="a", size=3)])
        )
    with pytest.raises(InvalidBatchInputError, match="size 0"):
        validate_input(inp(redrive_pages=[RedrivePage(cursor_str="a", size=0)]))
    with pytest.raises(InvalidBatchInputError, match="max_failed_items"):
        validate_input(inp(failure_policy=FailurePolicy(max_failed_items=-1)))
