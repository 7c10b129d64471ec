"""Checkpoints inside a page and per-item retries, on the real dev server: a retried page
starts after its last checkpoint, whether its attempt raised, its worker was SIGKILLed or the
batch handed over to a new run in between; one bad row becomes one failed item."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.worker import Replayer

from batch_orchestra import BatchOrchestrator, BatchOrchestratorInput, FailurePolicy
from batch_orchestra._worker.context import attempt_report
from tests.checkpoint_processors import CALLS, DONE, RESUMED
from tests.helpers import assert_eventually, batch_id, run_histories
from tests.test_crash import _worker_process


def _input(processor: str, bid: str, **kw: Any) -> BatchOrchestratorInput:
    args = kw.pop("args", {})
    return BatchOrchestratorInput(
        page_processor=processor,
        page_size=10,
        max_parallelism=2,
        batch_id=bid,
        args=json.dumps(args),
        **kw,
    )


async def test_a_page_that_failed_after_seven_items_resumes_at_the_eighth(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("FailsAfterSeven", bid), id=bid, task_queue=task_queue
        )
        p = await asyncio.wait_for(handle.result(), 60)
    assert DONE[bid] == [(1, n) for n in range(7)] + [(2, 7), (2, 8), (2, 9)]
    assert RESUMED[bid] == [(1, 0), (2, 7)]
    assert p.num_completed_pages == 1 and p.num_completed_items == 10  # each item once
    # The failure recorded by the attempt that then failed travelled with its checkpoint.
    assert p.num_failed_items == 1 and [f.key for f in p.failed_items] == ["row-2"]


async def test_a_processor_reads_back_its_own_checkpoint(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("ManualCheckpoint", bid), id=bid, task_queue=task_queue
        )
        p = await asyncio.wait_for(handle.result(), 60)
    assert RESUMED[bid] == [None, {"next": 7}]
    assert [n for _, n in DONE[bid]] == list(range(10))
    assert p.num_completed_items == 10


def _rows(db: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return list(conn.execute("SELECT attempt, item FROM done ORDER BY rowid"))


async def _heartbeated_position(handle: Any) -> int | None:
    """How far the running attempt's last heartbeat that reached the server says it got."""
    desc = await handle.workflow_handle.describe()
    for act in desc.raw_description.pending_activities:
        for payload in act.heartbeat_details.payloads:
            detail = json.loads(payload.data)
            if isinstance(detail, dict) and "batch_orchestra.checkpoint" in detail:
                return int(json.loads(detail["batch_orchestra.checkpoint"])["p"])
    return None


async def test_a_page_whose_worker_was_killed_resumes_after_its_last_heartbeat(
    temporal, orchestra, task_queue, new_worker, tmp_path
) -> None:
    db = tmp_path / "done.db"
    bid = batch_id()
    inp = _input("FailsAfterSeven", bid, args={"db": str(db), "hang": True})
    inp.heartbeat_timeout = timedelta(seconds=2)
    async with _worker_process(temporal.address, task_queue) as kill_worker:
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def checkpointed_seven() -> None:
            assert await _heartbeated_position(handle) == 7

        await assert_eventually(checkpointed_seven, timeout=30, interval=0.1)
        kill_worker()
        async with new_worker():
            p = await asyncio.wait_for(handle.result(), 60)
    for run in await run_histories(orchestra.client, bid):  # the heartbeat-timeout path too
        await Replayer(workflows=[BatchOrchestrator]).replay_workflow(run)
    assert _rows(db) == [(1, n) for n in range(7)] + [(2, 7), (2, 8), (2, 9)]
    assert p.num_completed_items == 10 and p.num_completed_pages == 1
    assert p.num_failed_items == 1


async def test_a_checkpoint_survives_a_handover(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    inp = _input("FailsAfterSeven", bid, args={"pages": 3}, first_cursor_str="0")
    inp.pages_per_run, inp.handover_wait = 1, timedelta(milliseconds=200)
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        p = await asyncio.wait_for(handle.result(), 90)
    assert p.num_runs >= 3
    for run in await run_histories(orchestra.client, bid):  # the patched path replays
        await Replayer(workflows=[BatchOrchestrator]).replay_workflow(run)
    for attempt, skipped in RESUMED[bid]:
        assert skipped == (7 if attempt == 2 else 0)
    assert len(RESUMED[bid]) == 6  # each of the 3 pages: two attempts, the second resumed
    assert Counter(n for _, n in DONE[bid]) == {n: 3 for n in range(10)}
    assert p.num_completed_items == 30 and p.num_failed_items == 3


async def test_one_always_failing_row_is_one_failed_item_and_the_page_succeeds(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("RetriesEachItem", bid), id=bid, task_queue=task_queue
        )
        p = await asyncio.wait_for(handle.result(), 60)
    calls = CALLS[bid]
    assert calls[4] == 3 and calls[6] == 3 and calls[8] == 1  # BadRow is not retried
    assert all(calls[n] == 1 for n in (0, 1, 2, 3, 5, 7, 9))  # neighbours never repeated
    assert [n for _, n in DONE[bid]] == [0, 1, 2, 3, 5, 6, 7, 9]
    assert p.num_completed_pages == 1 and p.num_failed_pages == 0
    assert p.num_completed_items == 8 and p.num_failed_items == 2
    failed = {f.key: f.error_type for f in p.failed_items}
    assert failed == {"row-4": "ConnectionError", "row-8": "BadRow"}


async def test_too_many_failed_items_still_pause_the_batch(orchestra, task_queue, new_worker):
    bid = batch_id()
    inp = _input(
        "RetriesEachItem",
        bid,
        args={"pages": 20},
        first_cursor_str="0",
        failure_policy=FailurePolicy(max_failed_items=1),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def paused() -> None:
            p = await handle.get_progress()
            assert p.is_paused and "item" in (p.pause_reason or "")
            assert p.num_completed_pages < 20

        await assert_eventually(paused, timeout=30)
        await handle.workflow_handle.terminate("test over")


# -- the worker side, without a server ----------------------------------------------------------


def _context(checkpoint: str | None = None) -> Any:
    import logging

    from batch_orchestra import BatchPage, BatchProcessorContext

    return BatchProcessorContext(
        page=BatchPage("c", 10),
        page_num=3,
        attempt=2,
        args=None,
        batch_id="b",
        successor_enqueued=True,
        enqueue=lambda pages: None,  # type: ignore[arg-type,return-value]
        logger=logging.LoggerAdapter(logging.getLogger("test"), {}),
        checkpoint=checkpoint,
    )


async def test_items_resume_by_key_when_the_page_changed_and_by_position_else() -> None:
    first = _context()
    rows = first.items(["a", "b", "c", "d"], key=str.upper)
    assert [next(rows), next(rows), next(rows)] == ["a", "b", "c"]  # "c" raised: not done
    cp = attempt_report(first).checkpoint
    assert json.loads(cp) == {"p": 2, "i": 2, "k": "B"}
    by_key = _context(cp).items(["x", "a", "b", "c", "d"], key=str.upper)  # a row came first
    assert list(by_key) == ["c", "d"] and by_key.skipped == 3
    assert list(_context(cp).items(["p", "q", "r"])) == ["r"]  # no key: by position
    again = _context(cp)
    list(again.items(["a", "b", "c", "d"], key=str.upper))
    assert attempt_report(again).items == 4  # each item counted once across the two attempts


async def test_a_checkpoint_is_bounded_and_an_unreadable_one_is_ignored() -> None:
    from batch_orchestra import ProcessorUsageError

    context = _context()
    context.checkpoint({"offset": 7})
    resumed = _context(attempt_report(context).checkpoint)
    assert resumed.resumed_from == {"offset": 7} and resumed.is_resumed
    with pytest.raises(ProcessorUsageError, match="4,096"):
        context.checkpoint("x" * 5000)
    with pytest.raises(ProcessorUsageError, match="JSON-friendly"):
        context.checkpoint(object())
    for bad in ("not json", "[1]", '{"p": "x"}', '{"fd": [[1]]}'):
        ignored = _context(bad)
        assert not ignored.is_resumed and ignored.resumed_from is None
        assert list(ignored.items([1, 2])) == [1, 2]


async def test_item_retries_are_checked_and_carry_their_error_type() -> None:
    from temporalio.common import RetryPolicy
    from temporalio.exceptions import ApplicationError

    from batch_orchestra._worker.checkpoint import checkpoint_of_details, with_checkpoint

    with pytest.raises(ValueError, match="retry.maximum_attempts"):
        await _context().process_items([1], _noop, retry=RetryPolicy(maximum_attempts=0))
    err = with_checkpoint(ConnectionError("gone"), '{"p":1}')
    assert isinstance(err, ApplicationError) and err.type == "ConnectionError"
    assert checkpoint_of_details(err.details) == '{"p":1}' and not err.non_retryable
    mine = with_checkpoint(ApplicationError("no", {"a": 1}, type="X", non_retryable=True), "{}")
    assert isinstance(mine, ApplicationError) and mine.non_retryable and mine.type == "X"
    assert mine.details[0] == {"a": 1} and checkpoint_of_details(mine.details) == "{}"
    cancelled = asyncio.CancelledError()
    assert with_checkpoint(cancelled, "{}") is cancelled


async def _noop(item: object) -> None:
    return None


# -- the workflow side's bookkeeping (pure) -----------------------------------------------------


def test_held_checkpoints_are_bounded_and_count_in_a_task_s_start_budget() -> None:
    from batch_orchestra._engine.checkpoints import MAX_HELD_CHECKPOINT_BYTES, CheckpointBook
    from batch_orchestra._engine.scheduler import Scheduler
    from tests.test_scheduler import settings

    # carried by a hand-over: this run keeps them
    book = CheckpointBook({"0": '{"p":1}'}, max_bytes=4 * 1024, patched=lambda _: False)
    big = json.dumps({"p": 1, "s": "x" * 4000})
    for n in range(1, 101):
        book.keep(n, big)
    assert book.held_bytes <= MAX_HELD_CHECKPOINT_BYTES
    assert book.get(0) is None and book.get(100) == big  # the oldest went first
    assert set(book.state(held={99, 100, 5})) == {"99", "100"}
    assert book.size_of(100) > 4000 and book.size_of(5) == 0

    s = Scheduler(settings(), 10, 0.0)
    s.enqueue(None, [(str(i), 1) for i in range(10)])
    taken = s.take_runnable(10, 5_000, 100, lambda n: 4_000 if n in (1, 2) else 0)
    assert [a.page_num for a in taken] == [0, 1]  # page 2's checkpoint would pass the budget
