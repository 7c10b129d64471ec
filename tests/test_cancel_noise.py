"""Cancelling a batch with running pages keeps the worker's output short: no traceback, and at
most a couple of lines per page that was running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, EmbeddedTemporal
from tests.helpers import assert_eventually, batch_id

ROOT = Path(__file__).resolve().parent.parent
RUNNING = 4


async def test_cancel_prints_no_traceback_and_few_lines_per_running_page(
    temporal: EmbeddedTemporal, orchestra: BatchOrchestratorClient, task_queue: str
) -> None:
    # The `batch-orchestra worker` command, logging at INFO as a user runs it.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "batch_orchestra",
        "worker",
        "tests.cli_processors",
        "--task-queue",
        task_queue,
        "--address",
        temporal.address,
        "--namespace",
        temporal.namespace,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode())

    reader = asyncio.ensure_future(read())
    try:
        await assert_eventually(lambda: _contains(lines, "worker polling"))
        wid = batch_id()
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="CliSleepy",
                page_size=10,
                max_parallelism=RUNNING,
                args=json.dumps({"key": wid, "pages": 100, "sleep": 60}),
                # Heartbeats carry the cancellation to the pages within a third of this.
                heartbeat_timeout=timedelta(seconds=3),
            ),
            id=wid,
            task_queue=task_queue,
        )

        async def all_running() -> None:
            assert (await handle.get_progress()).num_processing_pages == RUNNING

        await assert_eventually(all_running)
        before = len(lines)
        await handle.workflow_handle.cancel()

        async def cancelled() -> None:
            desc = await handle.workflow_handle.describe()
            assert desc.status == WorkflowExecutionStatus.CANCELED

        await assert_eventually(cancelled)
        await asyncio.sleep(4)  # the pages hear of it (heartbeat every 1 s) and stop
        after_cancel = lines[before:]
    finally:
        stopping = time.monotonic()
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 40)
        await reader
    output = "".join(lines)
    assert proc.returncode == 0, output
    # The pages stopped on the cancellation: none was left for the shutdown to wait for
    # (it would give them 30 s, then fail them with a traceback).
    assert time.monotonic() - stopping < 10, output
    assert "Traceback" not in output, output
    assert len(after_cancel) <= 2 * RUNNING, "".join(after_cancel)


async def _contains(lines: list[str], text: str) -> None:
    assert any(text in line for line in lines)
