"""Nothing is lost when a worker process is SIGKILLed or the server restarts mid-batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    EmbeddedTemporal,
)
from batch_orchestra.testing import free_port
from tests.helpers import assert_eventually, batch_id

ROOT = Path(__file__).resolve().parent.parent


def _items_done(db: Path) -> list[int]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT item FROM done")]
        except sqlite3.OperationalError:
            return []


@asynccontextmanager
async def _worker_process(address: str, task_queue: str) -> AsyncIterator[Callable[[], None]]:
    """A worker in its own process (ready when this enters); yields a SIGKILL for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.worker_main", address, task_queue],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def kill() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert b"worker ready" in line
        yield kill
    finally:
        kill()


def _input(bid: str, db: Path, n: int, sleep: float) -> BatchOrchestratorInput:
    return BatchOrchestratorInput(
        page_processor="SqliteRecorded",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps({"db": str(db), "n": n, "sleep": sleep}),
        page_timeout=timedelta(seconds=3),
        pages_per_run=25,
    )


async def test_worker_killed_mid_batch_another_finishes(
    temporal, orchestra, task_queue, new_worker, tmp_path
) -> None:
    db = tmp_path / "done.db"
    bid = batch_id()
    async with _worker_process(temporal.address, task_queue) as kill_worker:
        handle = await orchestra.start(_input(bid, db, 600, 0.2), id=bid, task_queue=task_queue)

        async def some_done() -> None:
            assert len(_items_done(db)) >= 100

        await assert_eventually(some_done, timeout=60)
        kill_worker()
        killed_at = len(_items_done(db))
        assert killed_at < 600, "the batch finished before the kill; make it longer"
        async with new_worker():
            result = await asyncio.wait_for(handle.result(), 120)
    items = _items_done(db)
    assert set(items) == set(range(600)), "every item processed at least once"
    assert result.num_completed_pages == 60
    assert result.num_failed_pages == 0 and result.num_stuck_pages == 0


async def test_server_restarted_on_same_db_mid_batch(tmp_path) -> None:
    db = tmp_path / "done.db"
    port = free_port()
    server = EmbeddedTemporal(port=port, db_filename=tmp_path / "temporal.db", use_env=False)
    await server.start()
    bid = batch_id()
    task_queue = f"tq-{bid}"
    try:
        client = server.client
        worker = Worker(client, task_queue=task_queue, plugins=[BatchOrchestraPlugin()])
        async with worker:
            await BatchOrchestratorClient(client).start(
                _input(bid, db, 400, 0.1), id=bid, task_queue=task_queue
            )

            async def some_done() -> None:
                assert len(_items_done(db)) >= 80

            await assert_eventually(some_done, timeout=60)
            server.kill()
            assert len(_items_done(db)) < 400
            await asyncio.sleep(1.0)
            await server.start()
            fresh = BatchOrchestratorClient(await Client.connect(server.address))
            result = await asyncio.wait_for(fresh.get_handle(bid).result(), 180)
    finally:
        await server.stop()
    assert set(_items_done(db)) == set(range(400))
    assert result.num_completed_pages == 40
    assert result.num_failed_pages == 0


async def test_worker_killed_while_pages_were_handed_over_running(
    temporal, orchestra, task_queue, new_worker, tmp_path
) -> None:
    """Attempts carried into a new run while running, whose worker then dies, never report:
    the new run counts them as timed out after page_timeout (+ grace) and retries them."""
    db = tmp_path / "done.db"
    bid = batch_id()
    inp = _input(bid, db, 24, 2.0)
    inp.page_size, inp.pages_per_run = 1, 6
    inp.handover_wait = timedelta(milliseconds=300)
    async with _worker_process(temporal.address, task_queue) as kill_worker:
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def handed_over_running() -> None:
            p = await handle.get_progress()
            assert p.num_runs >= 2 and p.num_processing_pages > 0

        await assert_eventually(handed_over_running, timeout=60, interval=0.05)
        kill_worker()
        async with new_worker():
            result = await asyncio.wait_for(handle.result(), 120)
    assert set(_items_done(db)) == set(range(24))
    assert result.num_completed_pages == 24 and result.num_failed_pages == 0
