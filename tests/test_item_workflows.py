"""Item workflows on the real dev server: a batch whose pages start a workflow per item, under a
cap on open items, across hand-overs, page retries, terminations and a redrive."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from temporalio.client import Client

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    InvalidBatchInputError,
    WorkerSettings,
)
from batch_orchestra._model.messages import ITEMS_CLOSED_SIGNAL
from batch_orchestra.dashboard import create_app
from tests import item_workflows
from tests.helpers import assert_eventually
from tests.item_processors import StartOrderItems
from tests.item_workflows import ChargeItem, SilentItem, item_enter, item_leave
from tests.test_cli import assert_ok, run_cli
from tests.test_dashboard import page_path, ui


def _input(tag: str, **args: Any) -> BatchOrchestratorInput:
    opts = {k: args.pop(k) for k in list(args) if k in ("max_open_items", "pages_per_run")}
    return BatchOrchestratorInput(
        page_processor=StartOrderItems,
        page_size=10,
        max_parallelism=10,
        batch_id=f"items-{tag}",
        args=json.dumps(dict(args, tag=tag)),
        item_check_interval=timedelta(seconds=1),
        **({"max_open_items": 50} | opts),
    )


def _worker_kwargs() -> dict[str, Any]:
    return {"workflows": [ChargeItem, SilentItem], "activities": [item_enter, item_leave]}


async def _runs_by_id(client: Client, task_queue: str) -> Counter[str]:
    """Every ChargeItem execution started on this test's queue, counted by workflow ID."""
    query = f'WorkflowType = "TestChargeItem" AND TaskQueue = "{task_queue}"'
    return Counter([wf.id async for wf in client.list_workflows(query)])


async def test_500_items_never_pass_50_open_and_all_complete_across_hand_overs(
    orchestra: BatchOrchestratorClient, client: Client, task_queue: str, new_worker: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    inp = _input(tag, n=500, pages_per_run=8, ms=1000)
    sampled: list[int] = []
    async with new_worker(**_worker_kwargs()):
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)

        async def sample() -> None:
            while True:
                p = await handle.get_progress()
                sampled.append(p.num_items_open)
                await asyncio.sleep(0.2)

        sampler = asyncio.ensure_future(sample())
        try:
            result = await asyncio.wait_for(handle.result(), 240)
        finally:
            sampler.cancel()
    assert result.num_completed_pages == 50 and result.num_completed_items == 500
    assert result.num_items_started == 500 and result.num_items_completed == 500
    assert result.num_items_open == 0 and result.num_items_failed == 0
    assert result.num_runs > 3  # the open items went across several hand-overs
    assert 40 <= max(sampled) <= 50, sampled  # the cap was used, never passed
    # Between their enter and leave (inside their open span) at most 50 ran at once.
    assert 0 < item_workflows.MOST[tag] <= 50
    assert sorted(Counter(item_workflows.RUNS[tag]).values()) == [1] * 500
    runs = await assert_eventually(
        lambda: _expect_runs(client, task_queue, 500), timeout=30, interval=0.5
    )
    prefix = f"{inp.batch_id}/{handle.workflow_handle.first_execution_run_id[:8]}/"
    assert set(runs) == {f"{prefix}o{i}" for i in range(500)}


async def _expect_runs(client: Client, task_queue: str, n: int) -> Counter[str]:
    runs = await _runs_by_id(client, task_queue)
    assert len(runs) == n and set(runs.values()) == {1}, runs.most_common(3)
    return runs


async def test_a_retried_page_starts_no_item_twice(
    orchestra: BatchOrchestratorClient, client: Client, task_queue: str, new_worker: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    # The pages at 0 and 30 start their items, then fail; their retries start the same keys.
    inp = _input(tag, n=60, fail_after_start=[0, 30])
    async with new_worker(**_worker_kwargs()):
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 120)
    assert result.num_completed_pages == 6 and result.num_items_completed == 60
    assert result.num_items_started == 60 and result.num_items_failed == 0
    assert sorted(Counter(item_workflows.RUNS[tag]).values()) == [1] * 60  # each ran once
    await assert_eventually(lambda: _expect_runs(client, task_queue, 60), timeout=30)


async def test_a_terminated_item_is_counted_failed_and_redriven(
    orchestra: BatchOrchestratorClient,
    client: Client,
    task_queue: str,
    new_worker: Any,
    temporal: Any,
) -> None:
    tag = uuid.uuid4().hex[:8]
    inp = _input(tag, n=30, hold=[7], fail=[12])
    async with new_worker(**_worker_kwargs()):
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)

        async def held_open() -> None:
            p = await handle.get_progress()
            assert p.num_items_open == 1 and p.num_items_completed == 28, p
            assert p.num_items_failed == 1  # o12 failed and said so

        await assert_eventually(held_open, timeout=60, interval=0.3)
        prefix = f"{inp.batch_id}/{handle.workflow_handle.first_execution_run_id[:8]}/"
        app = create_app(temporal.client, ui_url="http://ui.example:8233", page_size=100)
        async with ui(app) as web:
            metrics = (await web.get("/metrics")).text
        labels = re.escape(f'{{batch_id="{inp.batch_id}",processor="') + '[^"]*"}'
        for name, value in [
            ("item_workflows_open", 1),
            ("item_workflows_completed_total", 28),
            ("item_workflows_failed_total", 1),
            ("item_workflows_started_total", 30),
            ("max_open_items", 50),
        ]:
            line = f"^batch_orchestra_{name}{labels} {value:.1f}$"
            assert re.search(line, metrics, re.M), (line, metrics[:3000])
        # An operator terminates the held item: it never tells the batch; a check finds it.
        await client.get_workflow_handle(prefix + "o7").terminate("by an operator")
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.num_items_failed == 2 and result.num_items_completed == 28
        assert result.num_items_open == 0 and result.num_failed_items == 2
        failed = {f.key: f.error_type for f in result.failed_items}
        assert failed == {"o7": "ItemWorkflowTerminated", "o12": "Declined"}
        shown = assert_ok(await run_cli(temporal, "status", handle.id))
        assert "0 open of 50 · 30 started · 28 completed · 2 failed" in shown
        # The failures listing links each failed item to its workflow in the Temporal UI.
        item_page = "/namespaces/default/workflows/" + quote(prefix + "o7", safe="")
        listed = assert_ok(await run_cli(temporal, "failures", handle.id))
        assert "http://localhost:8233" + item_page in listed, listed
        async with ui(app) as web:
            page = (await web.get(page_path(handle.id))).text
        assert f'<a href="http://ui.example:8233{item_page}"' in page
        # Redriving the failed items runs a new run of each one's workflow, under its ID.
        again = await orchestra.redrive_items(handle.id)
        redriven = await asyncio.wait_for(again.result(), 60)
    assert redriven.num_items_completed == 2 and redriven.num_items_failed == 0
    runs = await assert_eventually(lambda: _expect_count(client, task_queue, 32), timeout=30)
    assert runs[prefix + "o7"] == 2 and runs[prefix + "o12"] == 2
    assert runs[prefix + "o3"] == 1


async def _expect_count(client: Client, task_queue: str, n: int) -> Counter[str]:
    runs = await _runs_by_id(client, task_queue)
    assert sum(runs.values()) == n, runs.most_common(3)
    return runs


async def test_the_starting_worker_tells_the_batch_of_closes_in_few_signals(
    orchestra: BatchOrchestratorClient, client: Client, task_queue: str, new_worker: Any
) -> None:
    """Items that tell nothing themselves (no ``reports_to_batch``), and a check an hour away:
    only the worker that started them can tell the batch, and it does, many closes a signal."""
    tag = uuid.uuid4().hex[:8]
    inp = _input(tag, n=100, silent=True, hold=[7], fail=[12], ms=300)
    inp.item_check_interval = timedelta(hours=1)
    async with new_worker(**_worker_kwargs()):
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)

        async def held_open() -> None:
            p = await handle.get_progress()
            assert p.num_items_open == 1 and p.num_items_completed == 98, p
            assert p.num_items_failed == 1  # o12 failed

        await assert_eventually(held_open, timeout=60, interval=0.3)
        prefix = f"{inp.batch_id}/{handle.workflow_handle.first_execution_run_id[:8]}/"
        await client.get_workflow_handle(prefix + "o7").terminate("by an operator")
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_items_completed == 98 and result.num_items_failed == 2
    assert result.num_items_open == 0 and result.num_items_started == 100
    failed = {f.key: f.error_type for f in result.failed_items}
    assert failed == {"o7": "ItemWorkflowTerminated", "o12": "Declined"}
    assert sorted(Counter(item_workflows.RUNS[tag]).values()) == [1] * 100
    history = await handle.workflow_handle.fetch_history()
    told = [
        e.workflow_execution_signaled_event_attributes
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
        and e.workflow_execution_signaled_event_attributes.signal_name == ITEMS_CLOSED_SIGNAL
    ]
    closes = sum(len(json.loads(a.input.payloads[0].data)["closed"]) for a in told)
    assert closes == 100, closes
    assert len(told) <= 50, f"{len(told)} signals for 100 closes"


async def test_without_following_a_silent_item_waits_for_the_check(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    """``WorkerSettings(follow_items=False)``: the batch learns of a silent item's close from its
    check only (here every 3 s), so it is not done before one has run."""
    tag = uuid.uuid4().hex[:8]
    inp = _input(tag, n=10, silent=True, ms=50)
    inp.item_check_interval = timedelta(seconds=3)
    plugin = BatchOrchestraPlugin(settings=WorkerSettings(follow_items=False))
    async with new_worker(plugin=plugin, **_worker_kwargs()):
        began = asyncio.get_running_loop().time()
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
        took = asyncio.get_running_loop().time() - began
    assert result.num_items_completed == 10 and result.num_items_open == 0
    assert took >= 3, took


async def test_cancelling_the_batch_cancels_its_open_items(
    orchestra: BatchOrchestratorClient, client: Client, task_queue: str, new_worker: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    inp = _input(tag, n=20, hold=list(range(20)))
    async with new_worker(**_worker_kwargs()):
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)

        async def all_open() -> None:
            assert (await handle.get_progress()).num_items_open == 20

        await assert_eventually(all_open, timeout=60, interval=0.3)
        await handle.workflow_handle.cancel()

        async def all_cancelled() -> None:
            query = f'WorkflowType = "TestChargeItem" AND TaskQueue = "{task_queue}"'
            statuses = Counter([wf.status.name async for wf in client.list_workflows(query)])
            assert statuses == {"CANCELED": 20}, statuses

        await assert_eventually(all_cancelled, timeout=60, interval=0.5)


def test_bad_item_settings_are_refused_with_what_to_do() -> None:
    from batch_orchestra._model import input_to_wire, validate_input

    with pytest.raises(InvalidBatchInputError, match="less than page_size=10"):
        validate_input(_input("x", n=1, max_open_items=5))
    with pytest.raises(InvalidBatchInputError, match="from 1 to 10,000"):
        validate_input(_input("x", n=1, max_open_items=20_000))
    assert input_to_wire(_input("x", n=1))["max_open_items"] == 50


async def test_a_malformed_item_close_does_not_stall_the_batch(
    orchestra: BatchOrchestratorClient, client: Client, task_queue: str, new_worker: Any
) -> None:
    # A close message from elsewhere than reports_to_batch, with nulls where text belongs.
    tag = uuid.uuid4().hex[:8]
    inp = _input(tag, n=20, hold=[3])
    async with new_worker(**_worker_kwargs()):
        handle = await orchestra.start(inp, id=inp.batch_id, task_queue=task_queue)

        async def held_open() -> None:
            assert (await handle.get_progress()).num_items_open == 1

        await assert_eventually(held_open, timeout=60, interval=0.3)
        execution = handle.workflow_handle.first_execution_run_id
        bad = {"execution": execution, "key": None, "ok": False, "error_message": None}
        await client.get_workflow_handle(inp.batch_id).signal("batch_orchestra.item_closed", bad)
        prefix = f"{inp.batch_id}/{execution[:8]}/"
        await client.get_workflow_handle(prefix + "o3").signal(ChargeItem.release)
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_items_completed == 20 and result.num_items_failed == 0
