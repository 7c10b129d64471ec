"""Faults of the orchestrator shell around its pages: an attempt of an ended batch, big
enqueues, a worker shutting down while an attempt checks its batch."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.worker import Worker

from batch_orchestra import (
    BatchNotifierConfig,
    BatchOrchestraPlugin,
    BatchOrchestratorInput,
    BatchPage,
)
from batch_orchestra._engine.budgets import enqueue_size
from batch_orchestra._engine.outbox import ITEMS_OUTBOX_LIMIT
from batch_orchestra._model.messages import PAGE_RUNNING_SIGNAL
from tests.helpers import assert_eventually, batch_id, run_histories
from tests.shell_processors import GATES, NOTIFIED


def _gated(bid: str, **args: object) -> BatchOrchestratorInput:
    return BatchOrchestratorInput(
        page_processor="ShellGated",
        page_size=1,
        max_parallelism=1,
        batch_id=bid,
        first_cursor_str="0",
        args=json.dumps({"n": 1, **args}),
        heartbeat_timeout=timedelta(seconds=1),
    )


async def test_an_attempt_of_an_ended_batch_stops_when_a_new_batch_reuses_its_id(
    orchestra, task_queue, new_worker
) -> None:
    """The attempt learns its batch is gone at a heartbeat; a new batch running under the same
    workflow ID is not its batch going on."""
    wid, old, new = batch_id(), batch_id(), batch_id()
    async with new_worker():
        first = await orchestra.start(
            _gated(old, before_enqueue={"0": "hold"}), id=wid, task_queue=task_queue
        )
        await asyncio.wait_for(GATES[old].at_gate["hold"].wait(), 30)
        await first.workflow_handle.terminate("test: the batch ends under a running page")
        second = await orchestra.start(
            _gated(new, before_enqueue={"0": "hold"}), id=wid, task_queue=task_queue
        )
        await asyncio.wait_for(GATES[new].at_gate["hold"].wait(), 30)
        try:
            await asyncio.wait_for(GATES[old].cancelled.wait(), 10)
        except TimeoutError:
            raise AssertionError("the ended batch's attempt went on under the new batch") from None
        GATES[new].open["hold"].set()
        result = await asyncio.wait_for(second.result(), 30)
    assert result.num_completed_pages == 1


async def test_an_enqueue_too_big_for_one_message_fails_its_page_naming_the_size(
    orchestra, task_queue, new_worker
) -> None:
    """200 cursors of 12,000 characters (2.4 MB): no message can carry them; the page fails at
    once with the size, not with a transport error on every retry."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="BigEnqueue",
        page_size=1,
        max_parallelism=1,
        batch_id=bid,
        args=json.dumps({"count": 200, "chars": 12_000}),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_failed_pages == 1 and result.num_completed_pages == 0
    failed = result.failed_pages[0]
    assert failed.attempts == 1, "an enqueue that cannot fit is not retried"
    size = enqueue_size([BatchPage(f"{i}:{'x' * 12_000}", 1) for i in range(200)])
    assert f"{size:,} bytes" in failed.error_message, failed.error_message
    assert "at most 1,000,000 bytes" in failed.error_message, failed.error_message


async def _until_page_running_signal(client, workflow_id: str) -> None:
    async def signalled() -> None:
        names = [
            e.workflow_execution_signaled_event_attributes.signal_name
            for h in await run_histories(client, workflow_id)
            for e in h.events
        ]
        assert PAGE_RUNNING_SIGNAL in names

    await assert_eventually(signalled, timeout=30)


async def test_worker_shutdown_stops_an_attempt_running_on_past_a_handover(
    client, orchestra, task_queue, new_worker
) -> None:
    """A page handed over has had its one cancellation (its run closed): the worker's shutdown
    must still stop it, not wait for the page's whole work."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="ShellGated",
        page_size=1,
        max_parallelism=1,
        batch_id=bid,
        first_cursor_str="0",
        args=json.dumps({"n": 2, "after_enqueue": {"0": "end"}}),
        pages_per_run=1,
        handover_wait=timedelta(milliseconds=300),
        heartbeat_timeout=timedelta(seconds=1),
    )
    rec = GATES[bid]
    worker = Worker(client, task_queue=task_queue, plugins=[BatchOrchestraPlugin()])
    running = asyncio.ensure_future(worker.run())
    handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
    await asyncio.wait_for(rec.at_gate["end"].wait(), 30)
    await _until_page_running_signal(client, bid)  # handed over, it told the next run it runs
    shutdown = asyncio.ensure_future(worker.shutdown())
    await asyncio.wait({shutdown}, timeout=10)
    hung = not shutdown.done()
    rec.open["end"].set()  # let a hung shutdown end
    await shutdown
    await running
    assert not hung, "the worker's shutdown waited for a page handed over at a hand-over"
    assert rec.cancelled.is_set()
    async with new_worker():  # the page stopped by the shutdown runs again
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_completed_pages == 2 and result.num_failed_pages == 0


async def test_item_failures_waiting_for_a_stuck_notifier_are_bounded(
    orchestra, task_queue, new_worker
) -> None:
    """11,000 item failures while the notifier hangs on its first call: past
    ITEMS_OUTBOX_LIMIT waiting, the oldest are dropped from delivery (they stay counted)."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="ManyItemFailures",
        page_size=1,
        max_parallelism=1,
        batch_id=bid,
        first_cursor_strs=[str(i) for i in range(11)],
        args=json.dumps({"per_page": 1_000}),
        notifier=BatchNotifierConfig(name="gated_notifier"),
    )
    rec = GATES[bid]
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        await asyncio.wait_for(rec.at_gate["notifier"].wait(), 30)

        async def all_done() -> None:
            assert (await handle.get_progress()).num_completed_pages == 11

        await assert_eventually(all_done, timeout=30)
        rec.open["notifier"].set()
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_failed_items == 11_000
    delivered = [k for event, keys in NOTIFIED[bid] if event == "items_failed" for k in keys]
    first_call = len(NOTIFIED[bid][0][1])  # in flight while the others waited
    assert len(delivered) == first_call + ITEMS_OUTBOX_LIMIT, len(delivered)
    assert len(set(delivered)) == len(delivered)
