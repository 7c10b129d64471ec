"""Item workflows through faults: a worker SIGKILLed while its page is starting items, then the
server restarted mid-batch. Every key's workflow exists exactly once and completed, none lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    EmbeddedTemporal,
)
from batch_orchestra.testing import free_port
from tests.helpers import assert_eventually
from tests.item_processors import StartOrderItems
from tests.item_workflows import ChargeItem, SilentItem, item_enter, item_leave
from tests.test_crash import _worker_process

N = 200


async def _statuses(
    client: Client, task_queue: str, kind: str
) -> tuple[Counter[str], Counter[str]]:
    """(executions per workflow ID, executions per status) of the test's item workflows."""
    query = f'WorkflowType = "{kind}" AND TaskQueue = "{task_queue}"'
    found = [wf async for wf in client.list_workflows(query)]
    return Counter(wf.id for wf in found), Counter(wf.status.name for wf in found)


@pytest.mark.slow
@pytest.mark.parametrize("silent", [False, True], ids=["reports_to_batch", "followed_only"])
async def test_a_worker_killed_mid_start_and_a_server_restart_lose_no_item_and_run_none_twice(
    tmp_path: Path, silent: bool
) -> None:
    """With ``reports_to_batch`` on the items, and without: then only the worker that started an
    item tells the batch of its close, and the killed worker's items are found by the checks."""
    server = EmbeddedTemporal(port=free_port(), db_filename=tmp_path / "t.db", use_env=False)
    await server.start()
    tag = uuid.uuid4().hex[:8]
    bid, task_queue, gate = f"items-fault-{tag}", f"tq-items-fault-{tag}", tmp_path / "gate"
    inp = BatchOrchestratorInput(
        page_processor=StartOrderItems,
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps(
            {
                "tag": tag,
                "n": N,
                "ms": 300,
                "gate_at": 50,
                "gate_file": str(gate),
                "silent": silent,
            }
        ),
        max_open_items=40,
        item_check_interval=timedelta(seconds=2),
        page_timeout=timedelta(seconds=5),
        heartbeat_timeout=timedelta(seconds=3),
        pages_per_run=6,
    )
    try:
        orchestra = BatchOrchestratorClient(server.client)
        async with _worker_process(server.address, task_queue) as kill_worker:
            handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

            async def page_hangs_mid_start() -> None:
                assert gate.exists()

            # The gate: page 50's first attempt has started half its items and hangs.
            await assert_eventually(page_hangs_mid_start, timeout=90, interval=0.2)
            kill_worker()
        worker = Worker(
            server.client,
            task_queue=task_queue,
            plugins=[BatchOrchestraPlugin()],
            workflows=[ChargeItem, SilentItem],
            activities=[item_enter, item_leave],
        )
        async with worker:

            async def more_items_done() -> None:
                p = await handle.get_progress()
                assert p.num_items_completed >= 100, p.num_items_completed

            await assert_eventually(more_items_done, timeout=120, interval=0.5)
            server.kill()
            await asyncio.sleep(1.0)
            await server.start()
            fresh = BatchOrchestratorClient(await Client.connect(server.address))
            result = await asyncio.wait_for(fresh.get_handle(bid).result(), 240)

            async def every_item_once() -> tuple[Counter[str], Counter[str]]:
                kind = "TestSilentItem" if silent else "TestChargeItem"
                by_id, by_status = await _statuses(fresh.client, task_queue, kind)
                assert len(by_id) == N and set(by_id.values()) == {1}, by_id.most_common(3)
                assert by_status == {"COMPLETED": N}, by_status
                return by_id, by_status

            await assert_eventually(every_item_once, timeout=60, interval=0.5)
    finally:
        await server.stop()
    assert result.num_items_started == N and result.num_items_completed == N
    assert result.num_items_failed == 0 and result.num_items_open == 0
    assert result.num_completed_pages == N // 10 and result.num_failed_pages == 0
