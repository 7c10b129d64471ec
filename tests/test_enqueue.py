"""How a page's successors reach the orchestrator: by their own message, or with the result of
a page that finishes right after enqueueing (its successors then need no message at all)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    WorkerSettings,
)
from tests.helpers import batch_id, enqueue_counts, enqueue_update_events
from tests.processors import RECORDS


def _plugin(quick: bool, choose_path: bool = False) -> BatchOrchestraPlugin:
    # A generous grace: on a loaded machine a page may take more than the default 2 ms from
    # its enqueue to its end, and would then (rightly) stop counting as quick. The path is not
    # chosen by measurement here (tests/test_paths.py covers that): these tests pin each path.
    settings = WorkerSettings(defer_grace=0.1 if quick else 0.002, choose_path=choose_path)
    plugin = BatchOrchestraPlugin(settings=settings)
    for _ in range(40):
        plugin.transport.learn("Scripted", quick)
    return plugin


@pytest.fixture
def quick_mode() -> BatchOrchestraPlugin:
    """A worker plugin that believes Scripted pages finish right after they enqueue."""
    return _plugin(True)


@pytest.fixture
def slow_mode() -> BatchOrchestraPlugin:
    """A worker plugin that believes Scripted pages work after they enqueue."""
    return _plugin(False)


def _input(bid: str, **args: Any) -> BatchOrchestratorInput:
    return BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps(args),
    )


async def _run(orchestra: BatchOrchestratorClient, task_queue: str, inp: BatchOrchestratorInput):
    handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)
    return handle, await asyncio.wait_for(handle.result(), 120)


async def test_quick_pages_hand_successors_over_in_their_results(
    orchestra, task_queue, new_worker, quick_mode
) -> None:
    bid = batch_id()
    async with new_worker(plugin=quick_mode):
        handle, result = await _run(orchestra, task_queue, _input(bid, n=300))
    assert result.num_completed_pages == 30 and result.num_completed_items == 300
    assert sorted(RECORDS[bid].pages) == list(range(30))
    assert result.num_open_chains == 0
    # 29 pages had a successor; each went with the page's result, none by its own message
    assert await enqueue_counts(handle) == (0, 29)


async def test_a_worker_that_chooses_the_path_delivers_each_successor_once(
    orchestra, task_queue, new_worker
) -> None:
    # The default: quick pages try both paths on this batch, then keep the one measured quicker.
    plugin = _plugin(True, choose_path=True)
    bid = batch_id()
    async with new_worker(plugin=plugin):
        handle, result = await _run(orchestra, task_queue, _input(bid, n=300))
    assert result.num_completed_pages == 30 and result.num_completed_items == 300
    assert sorted(RECORDS[bid].pages) == list(range(30))
    by_update, by_result = await enqueue_counts(handle)
    assert by_update + by_result == 29  # every successor by exactly one path
    assert by_update >= 3 and by_result >= 3  # both were tried
    learned = plugin.transport.paths.learned(bid)
    assert learned is not None and learned[0] is not None and learned[1] is not None


async def test_pages_that_work_after_enqueueing_send_successors_at_once(
    orchestra, task_queue, new_worker, slow_mode
) -> None:
    bid = batch_id()
    async with new_worker(plugin=slow_mode):
        handle, result = await _run(orchestra, task_queue, _input(bid, n=40, sleep=0.5))
    assert result.num_completed_pages == 4
    assert await enqueue_counts(handle) == (3, 0)
    # one chain: a successor started while its predecessor was still working
    assert RECORDS[bid].max_running >= 2


async def test_a_quick_process_still_pipelines_a_page_that_works(
    orchestra, task_queue, new_worker, quick_mode
) -> None:
    """A process that holds enqueues back sends one anyway once its page goes on working."""
    bid = batch_id()
    async with new_worker(plugin=quick_mode):
        handle, result = await _run(orchestra, task_queue, _input(bid, n=40, sleep=1.0))
    assert result.num_completed_pages == 4
    messages, carried = await enqueue_counts(handle)
    assert messages + carried == 3 and messages >= 1
    assert RECORDS[bid].max_running >= 2


async def test_quick_page_failing_after_enqueue_sends_its_successor_once(
    orchestra, task_queue, new_worker, quick_mode
) -> None:
    bid = batch_id()
    async with new_worker(plugin=quick_mode):
        handle, result = await _run(
            orchestra, task_queue, _input(bid, n=40, fail={"0": {"attempts": 2}})
        )
    rec = RECORDS[bid]
    assert result.num_completed_pages == 4 and result.num_failed_pages == 0
    assert sorted(rec.pages) == [0, 1, 2, 3]
    assert [a for p, a in rec.attempts if p == 0] == [1, 2, 3]
    # the failed first attempt sent the successor; the retries enqueued nothing more
    assert await enqueue_counts(handle, 0) == (1, 0)


async def test_processes_learn_which_pages_are_quick(orchestra, task_queue, new_worker) -> None:
    # Starts out believing the pages slow; the generous grace keeps a loaded machine's delays
    # from the measurement, the 0.3 s pages are slow under any load.
    plugin = BatchOrchestraPlugin(settings=WorkerSettings(defer_grace=0.1))
    for _ in range(40):
        plugin.transport.learn("Scripted", False)
    async with new_worker(plugin=plugin):
        await _run(orchestra, task_queue, _input(batch_id(), n=300))
        assert plugin.transport.is_quick("Scripted")
        await _run(orchestra, task_queue, _input(batch_id(), n=100, sleep=0.3))
        assert not plugin.transport.is_quick("Scripted")


async def test_concurrent_enqueues_share_updates(
    orchestra, task_queue, new_worker, slow_mode
) -> None:
    """16 chains enqueue at once; a worker keeps a few updates in flight per batch and sends
    the rest together, and every page still runs exactly once."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=10,
        max_parallelism=16,
        batch_id=bid,
        args=json.dumps({"chain_len": 100, "sleep": 0.2}),
        first_cursor_strs=[str(k * 100) for k in range(16)],
    )
    async with new_worker(plugin=slow_mode):
        handle, result = await _run(orchestra, task_queue, inp)
    rec = RECORDS[bid]
    assert result.num_completed_pages == 160 and result.num_failed_pages == 0
    assert sorted(rec.items) == list(range(1600))
    assert all(attempt == 1 for _, attempt in rec.attempts)
    assert await enqueue_counts(handle) == (16 * 9, 0)
    assert await enqueue_update_events(orchestra.client, bid) < 16 * 9
