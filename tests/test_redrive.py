"""Per-item failures, the failures view and redrive, on the real dev server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.worker import Replayer

from batch_orchestra import (
    BatchNotifierConfig,
    BatchOrchestrator,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    FailurePolicy,
)
from tests.helpers import assert_eventually, batch_id, run_histories
from tests.redrive_processors import (
    BROKEN,
    DEAD_LETTERS,
    HOLD,
    NOTIFIER_CALLS,
    RUNS,
    dead_letter_rows,
)
from tests.test_cli import assert_ok, run_cli


async def _replays(orchestra: BatchOrchestratorClient, workflow_id: str) -> None:
    """Every run of the batch replays (the workflow runs outside the sandbox)."""
    replayer = Replayer(workflows=[BatchOrchestrator])
    for history in await run_histories(orchestra.client, workflow_id):
        await replayer.replay_workflow(history)


def _input(bid: str, processor: str, args: dict[str, Any], **kw: Any) -> BatchOrchestratorInput:
    return BatchOrchestratorInput(
        page_processor=processor,
        page_size=kw.pop("page_size", 10),
        max_parallelism=kw.pop("max_parallelism", 4),
        args=json.dumps(args),
        batch_id=bid,
        first_cursor_str="0",
        **kw,
    )


async def test_item_failures_counted_exactly_across_continue_as_new_and_delivered(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
    tmp_path: Path,
) -> None:
    bid = batch_id()
    DEAD_LETTERS[bid] = str(tmp_path / "dead.db")
    pages, size, every = 30, 10, 7
    inp = _input(
        bid,
        "ItemsFlaky",
        {"pages": pages, "every": every, "flaky_page": 4},
        page_size=size,
        pages_per_run=8,
        notifier=BatchNotifierConfig(name="dead_letter"),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 90)
    bad = [k for k in range(pages * size) if k % every == 0]
    assert result.num_runs > 2  # the count went through several hand-overs
    assert result.num_completed_pages == pages and result.num_failed_pages == 0
    # exact: the flaky page's first attempt recorded "ghost" and failed; it does not count
    assert result.num_failed_items == len(bad)
    assert result.num_completed_items == pages * size - len(bad)
    assert len(result.failed_items) == min(100, len(bad))
    assert all(f.key != "ghost" for f in result.failed_items)
    latest = result.failed_items[-1]
    assert latest.error_type == "ValueError" and latest.error_message.startswith("bad item")
    assert latest.failed_at.tzinfo is not None
    # the notifier got every item (at least once); the dead-letter table keeps each once
    rows = dead_letter_rows(DEAD_LETTERS[bid])
    assert sorted(key for _, key, _ in rows) == sorted(f"item-{k}" for k in bad)
    assert {page for page, _, _ in rows} == {k // size for k in bad}
    delivered = sum(n for event, n in NOTIFIER_CALLS[bid] if event == "items_failed")
    assert delivered >= len(bad)
    assert NOTIFIER_CALLS[bid][-1][0] == "finished"
    assert RUNS[bid].attempts.count(("4", 2)) == 1  # the flaky page was retried
    await _replays(orchestra, bid)


async def test_item_failures_of_pages_reporting_by_signal_count_once(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    """Pages longer than handover_wait / 2 report by signal as well as by result, and some run
    across hand-overs: their failures still count exactly once."""
    bid = batch_id()
    pages, size, every = 12, 10, 3
    inp = _input(
        bid,
        "ItemsFlaky",
        {"pages": pages, "every": every, "sleep": 0.6},
        page_size=size,
        pages_per_run=4,
        handover_wait=timedelta(seconds=1),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_runs > 2 and result.num_completed_pages == pages
    assert result.num_failed_items == len([k for k in range(pages * size) if k % every == 0])
    assert sorted(f.key for f in result.failed_items) == sorted(
        f"item-{k}" for k in range(pages * size) if k % every == 0
    )
    signals = [
        e
        for h in await run_histories(orchestra.client, bid)
        for e in h.events
        if e.workflow_execution_signaled_event_attributes.signal_name
        == "batch_orchestra.page_finished"
    ]
    assert len(signals) >= pages  # every page also reported by signal
    await _replays(orchestra, bid)


async def test_sync_record_failures_and_max_failed_items_pauses(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    bid = batch_id()
    inp = _input(
        bid,
        "ItemsSync",
        {"pages": 50, "bad": 3},
        max_parallelism=1,
        failure_policy=FailurePolicy(max_failed_items=10),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def paused() -> Any:
            p = await handle.get_progress()
            assert p.is_paused and p.num_processing_pages == 0, p
            return p

        p = await assert_eventually(paused, timeout=30)
        # 3 per page: the fourth page passes 10 and pauses the batch
        assert p.num_failed_items == 12 and p.num_completed_pages == 4
        assert "max_failed_items" in (p.pause_reason or "")
        assert {f.key for f in p.failed_items} == {f"{n}-{i}" for n in range(4) for i in range(3)}
        assert p.failed_items[0].error_type == "KeyError"
        await handle.workflow_handle.terminate()


async def _wait_failed(handle: Any, n: int) -> Any:
    async def failed() -> Any:
        p = await handle.get_progress()
        assert p.num_failed_pages == n, p
        return p

    return await assert_eventually(failed, timeout=30)


async def test_redrive_of_a_paused_batch_runs_exactly_the_failed_pages(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    bid = batch_id()
    BROKEN[bid], HOLD[bid] = {2, 5}, asyncio.Event()
    inp = _input(bid, "Redrivable", {"pages": 10, "fail_after_enqueue": [2, 5]})
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        await _wait_failed(handle, 2)
        p = await handle.pause()
        assert p.num_failed_pages == 2 and p.is_paused
        assert {f.cursor_str: f.successor_enqueued for f in p.failed_pages} == {
            "2": True,
            "5": True,
        }
        BROKEN[bid] = set()  # "deploy the fix"
        p = await handle.redrive()
        assert p.num_failed_pages == 0 and p.num_redriven_pages == 2 and p.is_paused
        await asyncio.sleep(0.5)
        assert Counter(c for c, _ in RUNS[bid].attempts)["2"] == 1  # paused: nothing started
        await handle.resume()

        async def redriven() -> None:
            assert {"2", "5"} <= set(RUNS[bid].completed)

        await assert_eventually(redriven, timeout=30)
        HOLD[bid].set()
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_completed_pages == 10 and result.num_failed_pages == 0
    assert result.num_discovered_pages == 10  # page 2's successor was not enqueued again
    runs = Counter(c for c, _ in RUNS[bid].attempts)
    assert runs == {**{str(n): 1 for n in range(10)}, "2": 2, "5": 2}
    assert sorted(RUNS[bid].completed, key=int) == [str(n) for n in range(10)]
    # the redriven pages did not enqueue their successors again
    assert RUNS[bid].enqueued.count("2") == 1 and RUNS[bid].enqueued.count("5") == 1
    await _replays(orchestra, bid)


async def test_redrive_of_a_finished_batch_is_a_new_batch_over_its_failed_pages(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    bid = batch_id()
    BROKEN[bid] = {2, 5}
    inp = _input(bid, "Redrivable", {"pages": 8, "fail_after_enqueue": [2]})
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        old = await asyncio.wait_for(handle.result(), 30)
        # page 5 failed before enqueueing: 6 and 7 were never discovered
        assert old.num_completed_pages == 4 and old.num_failed_pages == 2
        assert {f.cursor_str: f.successor_enqueued for f in old.failed_pages} == {
            "2": True,
            "5": False,
        }
        new_id = f"{bid}-redrive-1"
        BROKEN[new_id] = set()
        redrive = await orchestra.redrive(bid)
        assert redrive.id == new_id
        result = await asyncio.wait_for(redrive.result(), 30)
    assert result.redrive_of == bid
    assert result.num_completed_pages == 4 and result.num_failed_pages == 0
    # exactly the failed pages, and the chain only where it had stopped (5 -> 6 -> 7)
    assert sorted(c for c, _ in RUNS[new_id].attempts) == ["2", "5", "6", "7"]
    assert sorted(RUNS[new_id].enqueued) == ["5", "6"]  # not 2: its successor was enqueued
    assert result.num_discovered_pages == 4
    await _replays(orchestra, new_id)


async def test_cli_failures_and_redrive(
    temporal: Any,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    bid = batch_id()
    BROKEN[bid] = {3}
    inp = _input(bid, "Redrivable", {"pages": 6, "item_failures": True})
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        old = await asyncio.wait_for(handle.result(), 30)
        assert old.num_failed_pages == 1 and old.num_failed_items == 3  # pages 0, 1, 2

        status = assert_ok(await run_cli(temporal, "status", bid))
        assert "3 failed (see: batch-orchestra failures" in status
        table = assert_ok(await run_cli(temporal, "failures", bid))
        assert "page 3 is broken" in table and "key-1" in table
        assert f"batch-orchestra redrive {bid}" in table

        data = json.loads(assert_ok(await run_cli(temporal, "failures", bid, "--json")))
        assert data["num_failed_pages"] == 1 and data["num_failed_items"] == 3
        assert [f["cursor_str"] for f in data["failed_pages"]] == ["3"]
        assert data["failed_pages"][0]["error_message"] == "page 3 is broken"
        assert sorted(f["key"] for f in data["failed_items"]) == ["key-0", "key-1", "key-2"]

        rows = list(
            csv.DictReader(
                io.StringIO(assert_ok(await run_cli(temporal, "failures", bid, "--csv")))
            )
        )
        assert [(r["kind"], r["page_num"], r["cursor_str"] or r["key"]) for r in rows] == [
            ("failed_page", "3", "3"),
            ("item", "0", "key-0"),
            ("item", "1", "key-1"),
            ("item", "2", "key-2"),
        ]

        new_id = f"{bid}-again"
        BROKEN[new_id] = set()
        out = assert_ok(await run_cli(temporal, "redrive", bid, "--id", new_id))
        assert f"started batch {new_id!r} to redrive 1 failed page(s) of {bid!r}" in out
        result = await asyncio.wait_for(orchestra.get_handle(new_id).result(), 30)
    assert result.redrive_of == bid and result.num_failed_pages == 0
    assert sorted(c for c, _ in RUNS[new_id].attempts) == ["3", "4", "5"]
    assert result.num_failed_items == 3  # the redriven chain's pages 3, 4, 5 record one each

    # the old batch's failed items, by key, through the processor's run_items
    items_id = f"{bid}-items"
    async with new_worker():
        out = assert_ok(await run_cli(temporal, "redrive", bid, "--items", "--id", items_id))
        assert f"started batch {items_id!r}" in out
        result = await asyncio.wait_for(orchestra.get_handle(items_id).result(), 30)
    assert sorted(RUNS[items_id].completed) == ["item:key-0", "item:key-1", "item:key-2"]
    assert result.num_completed_items == 3 and result.redrive_of == bid


async def test_redrive_items_by_key_in_pages_of_page_size(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    bid = batch_id()
    async with new_worker():
        old = await orchestra.start(
            _input(bid, "Redrivable", {"pages": 1}, page_size=2), id=bid, task_queue=task_queue
        )
        await asyncio.wait_for(old.result(), 30)
        keys = ["a", "b", "c", "a", "d", "e"]
        handle = await orchestra.redrive_items(bid, keys)
        assert handle.id == f"{bid}-items-1"
        result = await asyncio.wait_for(handle.result(), 30)
        # each key once, two per page; no page enqueues a successor
        assert sorted(RUNS[handle.id].completed) == [f"item:{k}" for k in "abcde"]
        assert result.num_completed_pages == 3 == result.num_discovered_pages
        # a processor without run_items fails the page for good, saying what to do
        sync_id = batch_id()
        await orchestra.start(
            _input(sync_id, "ItemsSync", {"pages": 1, "bad": 0}),
            id=sync_id,
            task_queue=task_queue,
        )
        await asyncio.wait_for(orchestra.get_handle(sync_id).result(), 30)
        handle = await orchestra.redrive_items(sync_id, ["x"])
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_failed_pages == 1 and result.num_completed_pages == 0
    assert "does not implement run_items" in result.failed_pages[0].error_message


async def test_cli_redrive_of_a_running_batch(
    temporal: Any,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    bid = batch_id()
    BROKEN[bid], HOLD[bid] = {1}, asyncio.Event()
    inp = _input(bid, "Redrivable", {"pages": 4, "fail_after_enqueue": [1]})
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        await _wait_failed(handle, 1)
        BROKEN[bid] = set()
        out = assert_ok(await run_cli(temporal, "redrive", bid))
        assert f"batch {bid!r}: 1 failed page(s) queued again" in out

        async def redriven() -> None:
            assert "1" in RUNS[bid].completed

        await assert_eventually(redriven, timeout=30)
        HOLD[bid].set()
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_completed_pages == 4 and result.num_failed_pages == 0
    assert Counter(c for c, _ in RUNS[bid].attempts) == {"0": 1, "1": 2, "2": 1, "3": 1}
    refused = await run_cli(temporal, "redrive", bid, "--id", f"{bid}-none")
    assert refused.exit_code == 1 and "no failed page" in refused.stderr
