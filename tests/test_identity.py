"""Messages know their batch, on the real dev server: a batch started under the ID of a cancelled
one whose pages still run. Gates force the worst ordering: every message of the old execution
(its enqueues, its pages' reports with their item failures and values) reaches the new batch
before the new batch's own pages send theirs, which share their page numbers and attempts."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from batch_orchestra import (
    BatchOrchestraError,
    BatchOrchestraPlugin,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    WorkerSettings,
    page_processor,
)
from tests.helpers import (
    assert_eventually,
    batch_id,
    enqueue_signals_only,
    enqueue_update_events,
)

FIRST_PAGES = 3  # page numbers 0-2: each batch's three first cursors


@dataclass
class Gate:
    """What one batch's gated pages did, and the event that lets them go on."""

    open: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: set[int] = field(default_factory=set)
    enqueued: set[int] = field(default_factory=set)


GATES: dict[str, Gate] = defaultdict(Gate)


@page_processor
class Gated(PageProcessor):
    """A cursor "start:end" is item ``start`` of a chain that ends before ``end``. The first
    pages wait at the batch's gate (args: tag), then enqueue their successor, record their item
    as failed and return it as their value."""

    async def run(self, context: BatchProcessorContext) -> dict[str, int]:
        gate = GATES[json.loads(context.args_str)["tag"]]
        start, end = (int(part) for part in context.page.cursor_str.split(":"))
        if context.page_num < FIRST_PAGES:
            gate.waiting.add(context.page_num)
            await gate.open.wait()
        if start + 1 < end:
            await context.enqueue_next_page(BatchPage(f"{start + 1}:{end}", 1))
            gate.enqueued.add(context.page_num)
        context.record_failure(f"item-{start}", "a bad item")
        context.add_completed_items(1)
        await asyncio.sleep(0.01)  # work after the enqueue: the enqueue goes out on its own
        return {"sum": start, "pages": 1}

    def initial_result(self) -> dict[str, int]:
        return {"sum": 0, "pages": 0}

    def reduce(self, acc: dict[str, int], value: dict[str, int]) -> dict[str, int]:
        return {"sum": acc["sum"] + value["sum"], "pages": acc["pages"] + value["pages"]}

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class Broken(PageProcessor):
    """Every page fails for good; a page of item keys runs them."""

    async def run(self, context: BatchProcessorContext) -> int:
        raise ApplicationError(f"page {context.page_num} is broken", non_retryable=True)

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        return len(keys)

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


def _chains(tag: str, offset: int, **kwargs: Any) -> BatchOrchestratorInput:
    """Three chains of 4, 3 and 3 pages over the items offset + 0..9."""
    return BatchOrchestratorInput(
        page_processor="Gated",
        page_size=1,
        max_parallelism=3,
        batch_id=tag,
        args=json.dumps({"tag": tag}),
        first_cursor_strs=[f"{offset + a}:{offset + b}" for a, b in ((0, 4), (4, 7), (7, 10))],
        **kwargs,
    )


async def _signals(client: Any, workflow_id: str, run_id: str, name: str) -> int:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return sum(
        e.workflow_execution_signaled_event_attributes.signal_name == name for e in history.events
    )


@pytest.mark.parametrize("by_signal", [False, True], ids=["enqueue_by_update", "enqueue_by_signal"])
async def test_a_reused_batch_id_runs_exactly_its_own_pages_when_the_old_messages_come_first(
    orchestra, client, task_queue, new_worker, caplog, by_signal
) -> None:
    """Batch A (3 chains) is cancelled while its first pages wait; batch B starts under the same
    workflow ID with the same shape. A's pages then enqueue (by update or by signal, with
    the page numbers B's first pages have), and report by signal (same page numbers and
    attempts as B's running ones, with an item failure and a value each); only then do B's
    pages go on. B must run its own 10 pages, count its own 10 failed items and fold its own
    values, and log A's messages once."""
    caplog.set_level(logging.WARNING, logger="temporalio.workflow")
    wid = batch_id()
    old, new = f"{wid}-a", f"{wid}-b"
    plugin = BatchOrchestraPlugin(settings=WorkerSettings(enqueue_by_signal=by_signal))
    async with new_worker(plugin=plugin):
        # No heartbeats: A's pages do not hear of the cancellation and go on. A tiny
        # handover_wait makes them report by signal (page_finished) when they end.
        a = await orchestra.start(
            _chains(old, 100, heartbeat_timeout=None, handover_wait=timedelta(milliseconds=20)),
            id=wid,
            task_queue=task_queue,
        )
        old_execution = a.workflow_handle.first_execution_run_id or ""

        async def waiting(tag: str) -> None:
            assert GATES[tag].waiting == set(range(FIRST_PAGES)), GATES[tag]

        await assert_eventually(lambda: waiting(old))
        await a.workflow_handle.cancel()

        async def closed() -> None:
            desc = await a.workflow_handle.describe()
            assert desc.status == WorkflowExecutionStatus.CANCELED

        await assert_eventually(closed)
        b = await orchestra.start(_chains(new, 0), id=wid, task_queue=task_queue)
        new_run = b.workflow_handle.first_execution_run_id or ""
        assert new_run and new_run != old_execution
        await assert_eventually(lambda: waiting(new))

        # A's pages go on while B's first pages (page numbers 0-2, attempt 1) wait.
        GATES[old].open.set()

        async def old_messages_delivered() -> None:
            assert GATES[old].enqueued == set(range(FIRST_PAGES)), GATES[old]
            reports = await _signals(client, wid, new_run, "batch_orchestra.page_finished")
            assert reports == FIRST_PAGES, f"{reports} of A's page reports reached B"
            # ... and A's enqueues reached B by the transport under test
            by = enqueue_signals_only if by_signal else enqueue_update_events
            assert await by(client, wid) == FIRST_PAGES

        await assert_eventually(old_messages_delivered)
        GATES[new].open.set()
        result = await asyncio.wait_for(b.result(), 60)

    assert result.num_discovered_pages == 10, result
    assert result.num_completed_pages == 10 and result.num_completed_items == 10, result
    assert result.num_failed_pages == result.num_stuck_pages == 0, result
    assert result.num_failed_items == 10, result
    assert sorted(f.key for f in result.failed_items) == sorted(f"item-{i}" for i in range(10))
    assert result.result == {"sum": sum(range(10)), "pages": 10}, result.result
    ignored = [r for r in caplog.records if "another batch execution" in r.getMessage()]
    assert len(ignored) == 1 and old_execution in ignored[0].getMessage(), [
        r.getMessage() for r in ignored
    ]


@pytest.mark.parametrize("kind", ["redrive", "items"])
async def test_two_redrives_that_chose_one_derived_id_do_not_share_it(
    orchestra, client, task_queue, new_worker, monkeypatch, kind
) -> None:
    """Two redrives of one finished batch both find ``<id>-redrive-1`` (or ``<id>-items-1``)
    free; the first starts it and finishes before the second starts. The second must fail,
    naming the ID, rather than start a second execution under it."""
    wid = batch_id()
    real = orchestra._free_redrive_id
    chosen, go = asyncio.Event(), asyncio.Event()
    calls = 0

    async def chosen_early(*args: Any) -> str:
        nonlocal calls
        calls += 1
        new_id = await real(*args)
        if calls == 1:  # the late redrive: its ID is chosen, its start waits
            chosen.set()
            await go.wait()
        return new_id

    def redrive() -> Any:
        if kind == "redrive":
            return orchestra.redrive(wid)
        return orchestra.redrive_items(wid, ["k1", "k2"])

    async with new_worker():
        old = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="Broken",
                page_size=2,
                max_parallelism=1,
                batch_id=wid,
                first_cursor_str="0",
            ),
            id=wid,
            task_queue=task_queue,
        )
        assert (await asyncio.wait_for(old.result(), 30)).num_failed_pages == 1
        monkeypatch.setattr(orchestra, "_free_redrive_id", chosen_early)
        late = asyncio.ensure_future(redrive())
        await asyncio.wait_for(chosen.wait(), 30)
        first = await redrive()
        assert first.id == f"{wid}-{kind}-1"
        await asyncio.wait_for(first.result(), 30)
        go.set()
        with pytest.raises(BatchOrchestraError, match=f"{first.id}.*at the same time"):
            await asyncio.wait_for(late, 30)
    desc = await client.get_workflow_handle(first.id).describe()
    assert desc.run_id == first.workflow_handle.first_execution_run_id
