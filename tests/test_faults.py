"""Faults that once wedged or corrupted a batch, on the real dev server: an outage of the
downstream, a reused batch ID, parallelism past Temporal's limits, slot shortages at hand-overs,
unusual processors, and a deploy that fixes a bug mid-batch."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from batch_orchestra import (
    BatchNotifierConfig,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    InvalidBatchInputError,
    PageProcessor,
    page_processor,
)
from tests.helpers import assert_eventually, batch_id, continue_as_new_payloads, run_histories
from tests.processors import NOTICES, OUTAGE, RECORDS

OUTAGE_PAGES = int(os.environ.get("BATCH_ORCHESTRA_OUTAGE_PAGES", "600"))


async def _continue_as_new_sizes(client, wid: str) -> list[int]:
    payloads = continue_as_new_payloads(await run_histories(client, wid))
    return [sum(len(p.data) for p in ps) for ps in payloads]


async def test_an_outage_pauses_the_batch_and_every_page_completes_after_it(
    orchestra, task_queue, new_worker
) -> None:
    """Every page enqueues its successor and then fails (the database is down): the default
    failure policy pauses the batch, which keeps answering; after the fix and a resume every
    page completes and none failed."""
    bid = batch_id()
    OUTAGE[bid] = True
    inp = BatchOrchestratorInput(
        page_processor="Outage",
        page_size=10,
        max_parallelism=20,
        batch_id=bid,
        args=json.dumps({"n": OUTAGE_PAGES * 10}),
        pages_per_run=150,
        notifier=BatchNotifierConfig(name="record_notifier"),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def paused_itself():
            p = await handle.get_progress()
            assert p.is_paused, p
            return p

        p = await assert_eventually(paused_itself, timeout=60)
        assert "page attempts failed" in (p.pause_reason or "")
        assert "could not connect to the database" in (p.pause_reason or "")
        assert p.errors and p.errors[0].error_type == "ConnectionError"
        assert p.num_completed_pages == 0 and p.num_failed_pages == 0
        assert p.num_discovered_pages < OUTAGE_PAGES, "the pause stopped the chain early"

        async def notified():
            assert any(e == "paused" for e, _, _ in NOTICES[bid])

        await assert_eventually(notified)
        OUTAGE[bid] = False  # the database is back (the operator fixed the cause)
        await handle.resume()
        result = await asyncio.wait_for(handle.result(), 180)
    assert result.num_completed_pages == OUTAGE_PAGES
    assert result.num_failed_pages == 0 and result.num_stuck_pages == 0
    assert sorted(set(RECORDS[bid].items)) == list(range(OUTAGE_PAGES * 10))
    sizes = await _continue_as_new_sizes(orchestra.client, bid)
    assert max(sizes, default=0) < 64 * 1024
    assert NOTICES[bid][-1][0] == "finished"
    print(
        f"outage: paused after {p.num_discovered_pages} pages discovered ({p.pause_reason}); "
        f"{result.num_completed_pages} completed after resume in {result.num_runs} runs; "
        f"largest hand-over input {max(sizes, default=0)} bytes"
    )


async def test_a_reused_batch_id_ignores_the_old_executions_messages(
    orchestra, task_queue, new_worker
) -> None:
    """Batch A is cancelled while its pages run (without heartbeats, so they go on); batch B
    starts under the same ID. A's late enqueues and reports must not touch B."""
    wid = batch_id()
    old, new = f"{wid}-a", f"{wid}-b"
    async with new_worker():
        a = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="LateEnqueue",
                page_size=1,
                max_parallelism=3,
                batch_id=wid,
                args=json.dumps({"n": 100, "sleep": 3.0, "tag": old}),
                heartbeat_timeout=None,
                first_cursor_strs=[f"{old}:0", f"{old}:50", f"{old}:90"],
                handover_wait=timedelta(seconds=1),
            ),
            id=wid,
            task_queue=task_queue,
        )

        async def running():
            assert len(RECORDS[old].attempts) == 3

        await assert_eventually(running)
        await a.workflow_handle.cancel()

        async def closed():
            desc = await a.workflow_handle.describe()
            assert desc.status == WorkflowExecutionStatus.CANCELED

        await assert_eventually(closed)
        b = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="LateEnqueue",
                page_size=1,
                max_parallelism=3,
                batch_id=wid,
                args=json.dumps({"n": 4, "sleep": 0.5, "tag": new}),
                first_cursor_str=f"{new}:0",
                handover_wait=timedelta(seconds=1),
            ),
            id=wid,
            task_queue=task_queue,
        )
        result = await asyncio.wait_for(b.result(), 60)
    # B ran its own 4 pages and nothing of A's: A's pages finished while B ran and their
    # enqueues (page numbers 0-2, which B also has) were ignored.
    assert result.num_completed_pages == 4 and result.num_discovered_pages == 4
    assert sorted(RECORDS[new].pages) == [0, 1, 2, 3]


@pytest.mark.slow
async def test_parallelism_past_temporals_limits_never_wedges(
    orchestra, task_queue, new_worker
) -> None:
    """2,500 chains at parallelism 3,000: more than Temporal's 2,000 pending activities."""
    bid = batch_id()
    with pytest.raises(InvalidBatchInputError, match="args is .* bytes"):
        await orchestra.start(
            BatchOrchestratorInput(
                page_processor="Scripted",
                page_size=1,
                max_parallelism=1,
                args="x" * 300_000,
            ),
            id=bid,
            task_queue=task_queue,
        )
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=1,
        max_parallelism=3_000,
        batch_id=bid,
        args=json.dumps({"chain_len": 1}),
        first_cursor_strs=[str(i) for i in range(2_500)],
    )
    async with new_worker(max_concurrent_activities=1_000):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 240)
    assert result.num_completed_pages == 2_500 and result.num_failed_pages == 0
    assert result.max_parallelism_achieved <= 1_900
    assert sorted(RECORDS[bid].items) == list(range(2_500))


def _slot_shortage(bid: str, processor: str, timeout: float = 120) -> BatchOrchestratorInput:
    """Parallelism 200 on a worker with Temporal's default 100 activity slots, 2-second pages,
    a hand-over every 150 attempts: at each, about 50 attempts wait for a slot."""
    return BatchOrchestratorInput(
        page_processor=processor,
        page_size=10,
        max_parallelism=200,
        batch_id=bid,
        args=json.dumps({"chain_len": 20, "sleep": 2.0}),
        first_cursor_strs=[str(k * 20) for k in range(200)],
        pages_per_run=150,
        handover_wait=timedelta(milliseconds=500),
        page_timeout=timedelta(seconds=timeout),
        heartbeat_timeout=timedelta(seconds=5),
    )


@pytest.mark.slow
async def test_attempts_waiting_for_slots_at_hand_overs_are_not_lost(
    orchestra, task_queue, new_worker
) -> None:
    """Temporal drops the attempts still waiting for a slot when their run closes. The next run
    learns which had started (they say so when their heartbeat finds the run closed) and runs
    the others again soon, uncounted: every page completes, none fails."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _slot_shortage(bid, "Scripted"), id=bid, task_queue=task_queue
        )
        # Well before page_timeout (120 s), after which a dropped attempt would time out.
        result = await asyncio.wait_for(handle.result(), 100)
    assert result.num_failed_pages == 0, result.failed_pages[:3]
    assert result.num_completed_pages == 400 and result.num_runs >= 3
    assert set(RECORDS[bid].pages) == set(range(400))


@pytest.mark.slow
async def test_at_most_once_attempts_waiting_for_slots_at_hand_overs_run_exactly_once(
    orchestra, task_queue, new_worker
) -> None:
    """At most once, an attempt waits for a slot at most 10 s (schedule-to-start), then is
    taken back and started again; a hand-over waits past that, so it never leaves an attempt
    waiting: each page runs exactly once and none fails."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _slot_shortage(bid, "ScriptedAtMostOnce", 15), id=bid, task_queue=task_queue
        )
        result = await asyncio.wait_for(handle.result(), 180)
    assert result.num_failed_pages == 0, result.failed_pages[:3]
    assert sorted(RECORDS[bid].pages) == list(range(400)), "each page exactly once"


async def test_a_plain_def_run_with_a_sync_driver_works(
    orchestra, task_queue, new_worker, tmp_path: Path
) -> None:
    bid, db = batch_id(), tmp_path / "done.db"
    inp = BatchOrchestratorInput(
        page_processor="SyncSqlite",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps({"db": str(db), "n": 200}),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_completed_pages == 20 and result.num_completed_items == 200
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT item FROM done")) == list(range(200))


async def test_a_forgotten_await_still_enqueues_and_float_counts_count(
    orchestra, task_queue, new_worker, caplog
) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="ForgetsAwait",
        page_size=50,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps({"n": 3_000}),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_completed_pages == 60 and result.num_completed_items == 3_000
    assert sorted(RECORDS[bid].items) == list(range(3_000))
    assert "without await" in caplog.text


async def test_retrying_pages_and_their_errors_show_from_the_first_failure(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Outage",
        page_size=10,
        max_parallelism=2,
        batch_id=bid,
        args=json.dumps({"n": 10}),
    )
    OUTAGE[bid] = True
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def retrying():
            p = await handle.get_progress()
            assert p.num_retrying_pages == 1 and p.retrying_pages, p
            return p

        p = await assert_eventually(retrying, timeout=10)
        [page] = p.retrying_pages
        assert page.error_type == "ConnectionError" and "could not connect" in page.error_message
        assert page.next_retry_at is not None and page.attempts >= 1
        OUTAGE[bid] = False
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_completed_pages == 1


FIXED: dict[str, bool] = {}


@page_processor
class Deployed(PageProcessor):
    """Version 1: pages 3 and 5 hit a bug."""

    async def run(self, context: BatchProcessorContext) -> int:
        start = int(context.page.cursor_str or 0)
        if start + 10 < 100:
            await context.enqueue_next_page(BatchPage(str(start + 10), 10))
        if context.page_num in (3, 5):
            raise KeyError(f"bug in version 1 on page {context.page_num}")
        RECORDS[context.batch_id].pages.append(context.page_num)
        return 10

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self):  # type: ignore[no-untyped-def]
        from temporalio.common import RetryPolicy

        return RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2)

    @property
    def extended_retry_interval_seconds(self) -> int:
        return 2


_VERSION_1 = Deployed


async def test_a_deploy_fixes_stuck_pages_mid_batch(orchestra, task_queue, new_worker) -> None:
    """A worker runs a buggy processor; pages get stuck; the worker is replaced by one with
    the fixed processor (same name); the stuck pages complete and nothing is lost."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Deployed",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def stuck():
            p = await handle.get_progress()
            assert p.num_stuck_pages == 2 and p.num_completed_pages == 8, p

        await assert_eventually(stuck, timeout=30)

    @page_processor
    class Deployed(_VERSION_1):  # type: ignore[no-redef]  # version 2: the bug is fixed
        async def run(self, context: BatchProcessorContext) -> int:
            RECORDS[context.batch_id].pages.append(context.page_num)
            return 10

    try:
        async with new_worker():
            result = await asyncio.wait_for(handle.result(), 30)
    finally:
        page_processor(_VERSION_1)
    assert result.num_completed_pages == 10 and result.num_stuck_pages == 0
    assert result.num_failed_pages == 0 and sorted(RECORDS[bid].pages) == list(range(10))


async def test_pages_heartbeating_through_a_hand_over_finish_once(
    orchestra, task_queue, new_worker
) -> None:
    """A page handed over while running heartbeats into a closed run (Temporal answers "not
    found" and cancels it locally): it goes on, and reports to the next run."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="ScriptedAtMostOnce",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps({"chain_len": 20, "sleep": 4.0}),
        first_cursor_strs=[str(k * 20) for k in range(4)],
        pages_per_run=4,
        handover_wait=timedelta(milliseconds=500),
        heartbeat_timeout=timedelta(seconds=2),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_failed_pages == 0, result.failed_pages[:2]
    assert result.num_completed_pages == 8 and result.num_runs >= 2
    assert sorted(RECORDS[bid].pages) == list(range(8))


async def test_a_page_cut_off_by_worker_shutdown_is_retried_promptly(
    orchestra, task_queue, new_worker
) -> None:
    """Worker shutdown cancels a long page: it fails as WorkerShutdown (retryable) at once,
    instead of waiting for its timeout, and the next worker finishes it."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=10,
        max_parallelism=1,
        batch_id=bid,
        args=json.dumps({"n": 10, "sleep": 30.0}),
        page_timeout=timedelta(minutes=5),
    )
    async with new_worker(graceful_shutdown_timeout=timedelta(0)):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def started():
            assert RECORDS[bid].attempts

        await assert_eventually(started)

    async def retrying():
        p = await handle.get_progress()
        assert p.num_retrying_pages == 1 and p.retrying_pages[0].error_type == "WorkerShutdown"

    async with new_worker():
        await assert_eventually(retrying, timeout=15)
    await handle.workflow_handle.terminate("test over")


async def test_fire_and_forget_control_signals(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=1,
        max_parallelism=2,
        batch_id=bid,
        args=json.dumps({"n": 40, "sleep": 0.1}),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        wh = handle.workflow_handle
        await wh.signal("pause_signal")

        async def paused():
            assert (await handle.get_progress()).is_paused

        await assert_eventually(paused)
        await wh.signal("set_max_parallelism_signal", -1)  # logged and ignored
        await wh.signal("set_max_parallelism_signal", 4)
        await wh.signal("resume_signal")
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_completed_pages == 40 and result.max_parallelism == 4


@page_processor
class BigCursors(PageProcessor):
    """Pages "root<n>" each enqueue 40 pages whose cursors are 15 KB of incompressible text
    (2.4 MB from four roots, more than Temporal carries across continue-as-new)."""

    async def run(self, context: BatchProcessorContext) -> int:
        cursor = context.page.cursor_str
        if cursor.startswith("root") and "-" not in cursor:
            await context.enqueue_next_pages(
                [
                    BatchPage(
                        f"{cursor}-{k:02d}-" + base64.b64encode(os.urandom(11_000)).decode(), 1
                    )
                    for k in range(40)
                ]
            )
        await asyncio.sleep(0.05)
        return 1

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


async def test_a_backlog_too_big_to_hand_over_waits_until_it_fits(
    orchestra, task_queue, new_worker
) -> None:
    """A hand-over due while the unfinished pages' cursors would not fit in Temporal's 2 MB
    input is put off until enough of them have run (it used to fail every workflow task)."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="BigCursors",
                page_size=1,
                max_parallelism=4,
                batch_id=bid,
                first_cursor_strs=[f"root{n}" for n in range(4)],
                pages_per_run=4,
            ),
            id=bid,
            task_queue=task_queue,
        )
        p = await asyncio.wait_for(handle.result(), 120)
    assert p.num_completed_pages == 164 and p.num_failed_pages == 0
    assert p.num_runs > 2
    assert max(await _continue_as_new_sizes(orchestra.client, bid)) < 2_000_000
