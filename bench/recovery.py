"""How long pages of a SIGKILLed worker wait before they run again: heartbeats vs page_timeout.

``python -m bench.recovery [--page-timeout 120] [--heartbeats none,30,10]``

For each heartbeat setting, on one embedded dev server: a worker process (``bench._chaos_worker``)
takes 4 pages that each sleep ``--page-seconds``; once they all run, the worker is SIGKILLed and
a second one started. Printed: seconds from the kill until the batch finishes, less one page's
length, i.e. how long the dead worker's pages waited before their retry started. Without
heartbeats that is ``page_timeout``; with the library's heartbeats, about the heartbeat timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, EmbeddedTemporal
from bench._chaos_worker import PROCESSOR_NAME, ChaosArgs, create_table

ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def _worker(address: str, task_queue: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench._chaos_worker",
            "--address",
            address,
            "--task-queue",
            task_queue,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        if b"ready" not in line:
            raise RuntimeError(f"the worker did not start: {line!r}")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def one(
    temporal: EmbeddedTemporal, heartbeat: float | None, page_timeout: float, page_s: float
) -> float:
    """Seconds the dead worker's pages waited before their retries started."""
    tq, db = f"recovery-{uuid.uuid4().hex[:8]}", tempfile.mktemp(suffix=".db")
    create_table(db)
    args = ChaosArgs(db=db, pages=4, chains=4, page_ms=page_s * 1000)
    orchestra = BatchOrchestratorClient(temporal.client)
    async with _worker(temporal.address, tq) as first:
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=PROCESSOR_NAME,
                page_size=1,
                max_parallelism=4,
                args=args.to_json(),
                first_cursor_strs=args.first_cursors(),
                page_timeout=timedelta(seconds=page_timeout),
                heartbeat_timeout=None if heartbeat is None else timedelta(seconds=heartbeat),
            ),
            id=tq,
            task_queue=tq,
        )
        while (await handle.get_progress()).num_processing_pages < 4:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # well into the pages
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed = time.monotonic()
        async with _worker(temporal.address, tq):
            result = await asyncio.wait_for(handle.result(), page_timeout * 3 + 120)
        finished = time.monotonic()
    assert result.num_completed_pages == 4 and result.num_failed_pages == 0, result
    return finished - killed - page_s


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page-timeout", type=float, default=120.0)
    ap.add_argument("--page-seconds", type=float, default=20.0)
    ap.add_argument(
        "--heartbeats",
        default="none,30,10",
        help="heartbeat timeouts in seconds to compare; 'none' for no heartbeats",
    )
    opts = ap.parse_args()
    settings = [None if h == "none" else float(h) for h in opts.heartbeats.split(",")]
    async with EmbeddedTemporal(use_env=False) as temporal:
        rows = []
        for hb in settings:
            waited = await one(temporal, hb, opts.page_timeout, opts.page_seconds)
            label = "no heartbeats" if hb is None else f"heartbeat_timeout {hb:g} s"
            rows.append((label, waited))
            print(
                f"{label:>26}: the dead worker's pages waited {waited:6.1f} s "
                f"(page_timeout {opts.page_timeout:g} s)",
                flush=True,
            )
    base = rows[0][1]
    for label, waited in rows[1:]:
        print(f"{label}: {base / waited:.1f}x sooner than {rows[0][0]}")


if __name__ == "__main__":
    asyncio.run(main())
