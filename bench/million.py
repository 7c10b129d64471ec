"""The long run: one batch of N no-op pages (default 1,000,000) on the embedded server with one
worker process, reporting progress as it goes. It keeps no per-page record (the scale
benchmark's history analysis would not fit a million pages); it samples the progress query and
reads the continue-as-new input of the latest hand-over now and then.

    python -m bench.million --pages 1000000 --parallelism 20 --log bench/results/million.log
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, EmbeddedTemporal
from bench._noop import PROCESSOR_NAME, NoopArgs
from bench._proc import status_kib

ROOT = Path(__file__).resolve().parent.parent


async def _latest_handover_bytes(client, workflow_id: str) -> tuple[int, int] | None:
    """(bytes of the current run's continue-as-new input, its history length so far)."""
    handle = client.get_workflow_handle(workflow_id)
    desc = await handle.describe()
    history = await handle.fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes
    size = sum(len(p.data) for p in first.input.payloads)
    return size, desc.history_length or len(history.events)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1_000_000)
    parser.add_argument("--parallelism", type=int, default=20)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--lookahead", type=int, default=1, help="pages enqueued per call")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between reports")
    parser.add_argument("--log", default=None, help="append reports to this file too")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    chains = opts.chains or opts.parallelism
    log = open(opts.log, "a") if opts.log else None

    def say(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        if log:
            log.write(line + "\n")
            log.flush()

    async with EmbeddedTemporal(use_env=False) as temporal:
        tq = f"million-{uuid.uuid4().hex[:8]}"
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench._worker",
                "--address",
                temporal.address,
                "--task-queue",
                tq,
                "--max-concurrent-activities",
                str(max(100, 2 * opts.parallelism)),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert worker.stdout is not None
            await asyncio.to_thread(worker.stdout.readline)
            args = NoopArgs(pages=opts.pages, chains=chains, lookahead=opts.lookahead)
            bid = f"million-{uuid.uuid4().hex[:8]}"
            handle = await BatchOrchestratorClient(temporal.client).start(
                BatchOrchestratorInput(
                    page_processor=PROCESSOR_NAME,
                    page_size=1,
                    max_parallelism=opts.parallelism,
                    args=args.to_json(),
                    first_cursor_strs=args.first_cursors(),
                    batch_id=bid,
                ),
                id=bid,
                task_queue=tq,
            )
            say(
                f"started {bid}: {opts.pages} pages, parallelism {opts.parallelism}, "
                f"{chains} chains, lookahead {opts.lookahead}"
            )
            t0 = time.monotonic()
            done = asyncio.ensure_future(handle.result())
            sizes: list[int] = []
            while not done.done():
                await asyncio.wait([done], timeout=opts.every)
                try:
                    p = await handle.get_progress()
                    size, events = await _latest_handover_bytes(temporal.client, bid)
                except Exception as err:  # a hand-over in progress
                    say(f"(progress unavailable: {err})")
                    continue
                sizes.append(size)
                elapsed = time.monotonic() - t0
                rss = (status_kib(worker.pid, "VmRSS") or 0) / 1024
                say(
                    f"{p.num_completed_pages:>8} pages in {elapsed:7.0f}s = "
                    f"{p.num_completed_pages / elapsed:6.1f}/s "
                    f"(recent {p.pages_per_second:6.1f}/s), "
                    f"run {p.num_runs}, this run's input {size} B, {events} events, "
                    f"worker RSS {rss:.0f} MiB"
                )
            result = done.result()
            elapsed = time.monotonic() - t0
            peak = (status_kib(worker.pid, "VmHWM") or 0) / 1024
            say(
                json.dumps(
                    {
                        "pages": result.num_completed_pages,
                        "failed": result.num_failed_pages,
                        "seconds": round(elapsed, 1),
                        "pages_per_second": round(result.num_completed_pages / elapsed, 1),
                        "runs": result.num_runs,
                        "continue_as_new_input_bytes_min_max": [
                            min(sizes[1:] or sizes or [0]),
                            max(sizes[1:] or sizes or [0]),
                        ],
                        "worker_peak_rss_mib": round(peak, 1),
                    }
                )
            )
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        if log:
            log.close()


if __name__ == "__main__":
    asyncio.run(main())
