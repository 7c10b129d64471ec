"""Messages that reach a continued run in its first workflow task, before it has built its
scheduler, are handled, not dropped (a successor page lost, a page run twice).

``HoldFirstTask`` fails the second run's first workflow task until it carries the message, so
the ordering is forced, not left to timing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.worker import Replayer

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestrator,
    BatchOrchestratorInput,
    WorkerSettings,
)
from batch_orchestra._model.messages import ENQUEUE_SIGNAL, ENQUEUE_UPDATE, PAGE_FINISHED_SIGNAL
from tests.helpers import batch_id, run_histories
from tests.shell_processors import GATES, HOLDS, Hold, HoldFirstTask


def _inp(bid: str, **args: object) -> BatchOrchestratorInput:
    return BatchOrchestratorInput(
        page_processor="ShellGated",
        page_size=1,
        max_parallelism=2,
        batch_id=bid,
        first_cursor_str="0",
        args=json.dumps({"n": 3, **args}),
        pages_per_run=1,  # every page started hands over: page 0 runs on into the second run
        handover_wait=timedelta(milliseconds=300),
        heartbeat_timeout=None,
        page_timeout=timedelta(seconds=5),
    )


async def _held(hold: Hold) -> None:
    """Until the second run's first task has been held (it waits for the message)."""
    assert await asyncio.to_thread(hold.held.wait, 30), "the second run's first task never came"


async def _page_zero_enqueues_into_the_first_task(
    orchestra, task_queue, new_worker, message: str, plugin: BatchOrchestraPlugin
) -> None:
    bid = batch_id()
    HOLDS[bid] = hold = Hold({message})
    rec = GATES[bid]
    async with new_worker(plugin=plugin, interceptors=[HoldFirstTask()]):
        handle = await orchestra.start(
            _inp(bid, before_enqueue={"0": "enqueue"}), id=bid, task_queue=task_queue
        )
        await asyncio.wait_for(rec.at_gate["enqueue"].wait(), 30)
        await _held(hold)  # the first run has handed over, page 0 still running
        rec.open["enqueue"].set()  # page 0 enqueues page 1 into the held first task
        result = await asyncio.wait_for(handle.result(), 30)
    assert hold.released.is_set(), "the message did not reach the second run's first task"
    assert result.num_completed_pages == 3, "page 0's successor was lost"
    assert sorted(rec.done) == [0, 1, 2]
    await _replays(orchestra, bid)


async def _replays(orchestra, bid: str) -> None:
    """Every run of the batch replays (the message handled before the run built its scheduler
    included)."""
    replayer = Replayer(workflows=[BatchOrchestrator])
    for history in await run_histories(orchestra.client, bid):
        await replayer.replay_workflow(history)


async def test_enqueue_update_in_a_runs_first_task_is_kept(
    orchestra, task_queue, new_worker
) -> None:
    await _page_zero_enqueues_into_the_first_task(
        orchestra, task_queue, new_worker, ENQUEUE_UPDATE, BatchOrchestraPlugin()
    )


async def test_enqueue_signal_in_a_runs_first_task_is_kept(
    orchestra, task_queue, new_worker
) -> None:
    plugin = BatchOrchestraPlugin(settings=WorkerSettings(enqueue_by_signal=True))
    await _page_zero_enqueues_into_the_first_task(
        orchestra, task_queue, new_worker, ENQUEUE_SIGNAL, plugin
    )


async def test_page_report_in_a_runs_first_task_is_kept(orchestra, task_queue, new_worker) -> None:
    """A page handed over reports its end into the next run's first task: it counts once, and
    is not taken for timed out and run again."""
    bid = batch_id()
    HOLDS[bid] = hold = Hold({PAGE_FINISHED_SIGNAL})
    rec = GATES[bid]
    async with new_worker(interceptors=[HoldFirstTask()]):
        handle = await orchestra.start(
            _inp(bid, after_enqueue={"0": "end"}), id=bid, task_queue=task_queue
        )
        await asyncio.wait_for(rec.at_gate["end"].wait(), 30)
        await _held(hold)
        rec.open["end"].set()  # page 0 ends and reports into the held first task
        result = await asyncio.wait_for(handle.result(), 12)
    assert hold.released.is_set(), "the report did not reach the second run's first task"
    assert result.num_completed_pages == 3 and result.num_failed_pages == 0
    assert sorted(rec.attempts) == [(0, 1), (1, 1), (2, 1)], "a page ran twice"
    await _replays(orchestra, bid)


async def test_resume_in_a_runs_first_task_waits_for_the_scheduler(
    orchestra, task_queue, new_worker
) -> None:
    """A batch paused while it hands over; its resume reaches the next run's first task: it
    waits for the run's scheduler, resumes the batch and says so."""
    bid = batch_id()
    HOLDS[bid] = hold = Hold({"resume"})
    rec = GATES[bid]
    inp = _inp(bid, before_enqueue={"0": "enqueue"})
    inp.handover_wait = timedelta(seconds=2)
    async with new_worker(interceptors=[HoldFirstTask()]):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        await asyncio.wait_for(rec.at_gate["enqueue"].wait(), 30)
        assert (await handle.pause()).is_paused  # the first run is draining page 0
        await _held(hold)
        resumed = await asyncio.wait_for(handle.resume(), 30)
        rec.open["enqueue"].set()
        result = await asyncio.wait_for(handle.result(), 30)
    assert hold.released.is_set(), "the resume did not reach the second run's first task"
    assert not resumed.is_paused
    assert result.num_completed_pages == 3 and result.num_runs >= 3
    await _replays(orchestra, bid)
