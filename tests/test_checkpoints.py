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

from batch_orchestra import BatchOrchestratorInput, FailurePolicy
from tests.checkpoint_processors import CALLS, DONE, RESUMED
from tests.helpers import assert_eventually, batch_id
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
