"""End-to-end behaviour of a batch on the real dev server."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    BatchTrackerConfig,
    EmbeddedTemporal,
)
from tests.helpers import (
    assert_eventually,
    batch_id,
    enqueue_signals_from,
    enqueue_signals_only,
)
from tests.processors import RECORDS


def _input(bid: str, processor: str = "Scripted", **kw: Any) -> BatchOrchestratorInput:
    args = kw.pop("args", {})
    return BatchOrchestratorInput(
        page_processor=processor,
        page_size=kw.pop("page_size", 10),
        max_parallelism=kw.pop("max_parallelism", 5),
        args=json.dumps(args),
        batch_id=bid,
        **kw,
    )


async def _run(orchestra: BatchOrchestratorClient, task_queue: str, inp: BatchOrchestratorInput):
    handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)
    return handle, await asyncio.wait_for(handle.result(), 120)


async def test_exact_page_counts(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        _, result = await _run(orchestra, task_queue, _input(bid, page_size=7, args={"n": 1000}))
    rec = RECORDS[bid]
    assert result.num_completed_pages == 143
    assert result.num_completed_items == 1000
    assert result.is_finished and result.num_failed_pages == 0 and result.num_stuck_pages == 0
    assert sorted(rec.pages) == list(range(143))
    assert sorted(rec.items) == list(range(1000))
    assert result.start_time is not None and result.start_time.tzinfo is not None


async def test_parallelism_reached_and_never_exceeded(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        _, result = await _run(
            orchestra,
            task_queue,
            _input(bid, page_size=1, max_parallelism=4, args={"n": 40, "sleep": 0.3}),
        )
    rec = RECORDS[bid]
    assert rec.max_running == 4
    assert result.max_parallelism_achieved == 4
    assert result.num_completed_pages == 40


async def test_pause_stops_new_pages_and_resume_finishes(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input(bid, page_size=1, max_parallelism=3, args={"n": 30, "sleep": 0.2}),
            id=bid,
            task_queue=task_queue,
        )

        async def some_done() -> None:
            assert (await handle.get_progress()).num_completed_pages >= 3

        await assert_eventually(some_done)
        paused = await handle.pause()
        assert paused.is_paused and paused.effective_parallelism == 0
        assert paused.max_parallelism == 3 and paused.pause_reason == "paused by an operator"

        async def drained() -> BatchOrchestratorProgress:
            p = await handle.get_progress()
            assert p.num_processing_pages == 0
            return p

        await assert_eventually(drained)
        started_before = len(RECORDS[bid].attempts)
        await asyncio.sleep(1.5)
        assert len(RECORDS[bid].attempts) == started_before, "a page started while paused"
        assert not (await handle.get_progress()).is_finished
        resumed = await handle.resume()
        assert resumed.max_parallelism == 3 and not resumed.is_paused
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_completed_pages == 30
    assert sorted(RECORDS[bid].items) == list(range(30))


async def test_set_and_restore_parallelism(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input(bid, page_size=1, max_parallelism=2, args={"n": 40, "sleep": 0.2}),
            id=bid,
            task_queue=task_queue,
        )
        p = await handle.set_max_parallelism(6)
        assert p.max_parallelism == 6
        p = await handle.restore_max_parallelism()
        assert p.max_parallelism == 2
        with pytest.raises(ValueError, match="max_parallelism"):
            await handle.set_max_parallelism(-1)
        await handle.set_max_parallelism(8)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_completed_pages == 40
    assert result.max_parallelism == 8


async def test_continue_as_new_keeps_exact_counts(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        handle, result = await _run(
            orchestra,
            task_queue,
            _input(bid, page_size=3, max_parallelism=4, pages_per_run=7, args={"n": 300}),
        )
    rec = RECORDS[bid]
    assert result.num_completed_pages == 100
    assert result.num_runs >= 100 // 7
    assert sorted(rec.pages) == list(range(100)), "each page processed exactly once"
    assert sorted(rec.items) == list(range(300))
    # no worker runs now: a finished batch answers from its result, at once (the query used to
    # wait ~30 s for a worker before falling back)
    assert (await asyncio.wait_for(handle.get_progress(), 10)).num_completed_pages == 100


async def test_extended_retries_recover_a_stuck_page(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    # page 2 fails 4 times: 3 initial attempts, then stuck, then an extended retry succeeds
    args = {"n": 60, "fail": {"2": {"attempts": 4, "message": "db is down"}}}
    async with new_worker():
        handle = await orchestra.start(_input(bid, args=args), id=bid, task_queue=task_queue)

        async def stuck() -> None:
            p = await handle.get_progress()
            assert p.num_stuck_pages == 1
            assert p.stuck_pages[0].page_num == 2
            assert "db is down" in p.stuck_pages[0].error_message
            assert p.stuck_pages[0].next_retry_at is not None

        await assert_eventually(stuck)
        result = await asyncio.wait_for(handle.result(), 60)
    rec = RECORDS[bid]
    assert result.num_completed_pages == 6 and result.num_stuck_pages == 0
    assert result.num_failed_pages == 0
    assert [a for p, a in rec.attempts if p == 2] == [1, 2, 3, 4, 5]
    assert sorted(rec.items) == list(range(60))
    # page 2 enqueued page 3 once, on its first attempt; its retries sent no signal
    assert await enqueue_signals_from(handle, 2) == 1
    assert sorted(rec.pages) == list(range(6))


async def test_failed_page_is_reported_and_batch_finishes(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    args = {"n": 50, "fail": {"1": {"attempts": 99, "message": "bad row 17"}}}
    async with new_worker():
        _, result = await _run(orchestra, task_queue, _input(bid, "ScriptedNoExtended", args=args))
    assert result.is_finished
    assert result.num_failed_pages == 1 and result.num_completed_pages == 4
    failure = result.failed_pages[0]
    assert failure.page_num == 1 and failure.attempts == 3
    assert failure.error_type == "ValueError" and "bad row 17" in failure.error_message
    assert failure.cursor_str == "10"


async def test_non_retryable_error_type_fails_at_once(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    args = {"n": 30, "fail": {"0": {"attempts": 99}}}
    async with new_worker():
        _, result = await _run(
            orchestra, task_queue, _input(bid, "ScriptedNonRetryable", args=args)
        )
    assert result.num_failed_pages == 1 and result.failed_pages[0].attempts == 1
    assert [a for p, a in RECORDS[bid].attempts if p == 0] == [1]
    assert result.num_completed_pages == 2  # page 0 enqueued page 1 before failing


async def test_at_most_once_page_is_never_retried(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    args = {"n": 30, "fail": {"1": {"attempts": 1}}}
    async with new_worker():
        _, result = await _run(orchestra, task_queue, _input(bid, "ScriptedAtMostOnce", args=args))
    assert [a for p, a in RECORDS[bid].attempts if p == 1] == [1]
    assert result.num_failed_pages == 1 and result.num_completed_pages == 2


async def test_page_timeout_reaches_the_activity(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        _, result = await _run(
            orchestra,
            task_queue,
            _input(
                bid,
                "ScriptedNoExtended",
                page_size=10,
                args={"n": 10, "sleep": 5},
                page_timeout=timedelta(seconds=1),
            ),
        )
    assert result.num_failed_pages == 1
    assert result.failed_pages[0].error_type == "Timeout"
    assert result.failed_pages[0].attempts == 3


async def test_failure_after_enqueue_does_not_enqueue_twice(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    args = {"n": 40, "fail": {"0": {"attempts": 2}}}
    async with new_worker():
        handle, result = await _run(orchestra, task_queue, _input(bid, args=args))
    rec = RECORDS[bid]
    assert result.num_completed_pages == 4
    assert sorted(rec.pages) == [0, 1, 2, 3]
    assert [a for p, a in rec.attempts if p == 0] == [1, 2, 3]
    assert await enqueue_signals_from(handle, 0) == 1


async def test_looping_cursor_is_caught(orchestra, task_queue, new_worker, caplog) -> None:
    bid = batch_id()
    async with new_worker():
        _, result = await _run(orchestra, task_queue, _input(bid, "Looping", first_cursor_str="x"))
    assert result.num_completed_pages == 1
    assert RECORDS[bid].pages == [0]


async def test_several_chains_finish_with_exact_counts(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        _, result = await _run(
            orchestra,
            task_queue,
            BatchOrchestratorInput(
                page_processor="Scripted",
                page_size=10,
                max_parallelism=6,
                batch_id=bid,
                args=json.dumps({"n": 100}),
                first_cursor_strs=["0", "1000", "2000"],
            ),
        )
    # each chain runs from its cursor up to n=100 (chains at 1000 and 2000 are one page each)
    assert result.num_completed_pages == 10 + 1 + 1
    assert result.num_open_chains == 0


async def test_tracker_called_every_interval_and_at_the_end(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    async with new_worker():
        _, result = await _run(
            orchestra,
            task_queue,
            _input(
                bid,
                page_size=1,
                max_parallelism=2,
                args={"n": 12, "sleep": 0.25},
                pages_per_run=5,
                batch_tracker=BatchTrackerConfig(
                    name="record_tracker", interval=timedelta(milliseconds=500)
                ),
            ),
        )
    calls = RECORDS[bid].trackers
    assert calls[-1] == (12, True)
    assert len([c for c in calls if not c[1]]) >= 2
    assert [c for c in calls if c[1]] == [(12, True)]


async def test_logs_carry_batch_id_and_page_num(orchestra, task_queue, new_worker, caplog) -> None:
    bid = batch_id()
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    async with new_worker():
        await _run(orchestra, task_queue, _input(bid, args={"n": 20}))
    page_records = [r for r in caplog.records if r.name == "batch_orchestra.page"]
    assert {getattr(r, "page_num", None) for r in page_records} == {0, 1}
    assert all(getattr(r, "batch_id", None) == bid for r in page_records)
    wf_records = [r for r in caplog.records if "batch finished" in r.getMessage()]
    assert wf_records and getattr(wf_records[0], "batch_id", None) == bid


async def test_get_handle_follows_a_running_batch(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        await orchestra.start(
            _input(bid, page_size=2, pages_per_run=3, args={"n": 30}), id=bid, task_queue=task_queue
        )
        result = await asyncio.wait_for(orchestra.get_handle(bid).result(), 60)
    assert result.num_completed_pages == 15


@pytest.mark.parametrize("fail_leader_once", [False, True])
async def test_lookahead_pages_processed_once(
    orchestra, task_queue, new_worker, fail_leader_once
) -> None:
    bid = batch_id()
    args = {"n": 1000, "k": 8, "fail_leader_once": fail_leader_once}
    async with new_worker():
        handle, result = await _run(
            orchestra,
            task_queue,
            _input(bid, "Lookahead", page_size=10, max_parallelism=16, args=args, pages_per_run=30),
        )
    rec = RECORDS[bid]
    assert result.num_completed_pages == 100 and result.num_failed_pages == 0
    assert sorted(rec.pages) == list(range(100))
    assert sorted(rec.items) == list(range(1000))
    if fail_leader_once:
        assert await enqueue_signals_from(handle, 0) == 1  # its retry enqueued nothing
        assert [a for p, a in rec.attempts if p == 0] == [1, 2]


async def test_cancel_stops_new_pages_and_calls_tracker(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input(
                bid,
                page_size=1,
                max_parallelism=2,
                args={"n": 100, "sleep": 0.3},
                batch_tracker=BatchTrackerConfig(
                    name="record_tracker", interval=timedelta(minutes=10)
                ),
            ),
            id=bid,
            task_queue=task_queue,
        )

        async def some_done() -> None:
            assert (await handle.get_progress()).num_completed_pages >= 2

        await assert_eventually(some_done)
        await handle.workflow_handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 30)
        assert isinstance(info.value.cause, CancelledError)
        started = len(RECORDS[bid].attempts)
        await asyncio.sleep(1.0)
        assert len(RECORDS[bid].attempts) == started, "a page started after the cancel"
        assert started < 100
        progress = await handle.get_progress()
    assert progress.is_cancelled and not progress.is_finished
    assert RECORDS[bid].trackers and RECORDS[bid].trackers[-1][1], "a final tracker call"


async def test_watch_yields_progress_until_the_result(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input(bid, page_size=1, max_parallelism=2, args={"n": 12, "sleep": 0.1}),
            id=bid,
            task_queue=task_queue,
        )
        seen = [p async for p in handle.watch(timedelta(milliseconds=200))]
    assert len(seen) >= 3
    assert seen[-1].is_finished and seen[-1].num_completed_pages == 12
    counts = [p.num_completed_pages for p in seen]
    assert counts == sorted(counts)


async def test_enqueues_fall_back_to_signals_when_updates_are_refused() -> None:
    """Temporal caps updates per workflow run (2,000 by default) and in flight (10). On a server
    that refuses all but the first 5 updates of a run, 16 chains enqueue by signal instead, and
    every page still runs exactly once."""
    bid = batch_id()
    chains = [str(k * 100) for k in range(16)]
    server = EmbeddedTemporal(
        use_env=False,
        dynamic_config={"history.maxTotalUpdates": 5},
    )
    async with server:
        async with Worker(server.client, task_queue=bid, plugins=[BatchOrchestraPlugin()]):
            handle = await BatchOrchestratorClient(server.client).start(
                BatchOrchestratorInput(
                    page_processor="Scripted",
                    page_size=10,
                    max_parallelism=16,
                    batch_id=bid,
                    args=json.dumps({"chain_len": 100, "sleep": 0.2}),
                    first_cursor_strs=chains,
                ),
                id=bid,
                task_queue=bid,
            )
            result = await asyncio.wait_for(handle.result(), 120)
            signals = await enqueue_signals_only(server.client, bid)
    rec = RECORDS[bid]
    assert result.num_completed_pages == 160 and result.num_failed_pages == 0
    assert sorted(rec.items) == list(range(1600))
    assert all(attempt == 1 for _, attempt in rec.attempts)
    assert signals > 0, "some enqueues went by signal"
