"""Duplicate API calls: what a retried page repeats, with and without checkpoints.

``python -m bench.duplicates [--rows 5000] [--page-size 25] [--modes a,b,c,d] [--out FILE]``

A local HTTP API on loopback (part of the benchmark) answers 500 to ``--error-rate`` of calls
and is slow (``--slow-ms``) on ``--slow-rate`` of them, decided by a fixed seed from the row and
how many times it was called before, so every mode meets the same faults. ``--rows`` CSV rows
go through ``FileSource`` in pages of ``--page-size``; each row is one POST with an idempotency
key (the batch and the row). A worker process runs one of:

* ``a``: raise on an error (the page is retried, from its first row);
* ``b``: checkpoints (``context.items``): a retried page resumes at the row that failed;
* ``c``: checkpoints and per-item retries (``context.process_items`` with a ``RetryPolicy``);
* ``d``: as ``c``, with the worker SIGKILLed twice during the run (at a third and two thirds
  of the rows) and started again at once.

Printed per mode: calls made, successful calls, duplicate successful calls (a row that
succeeded more than once counts each extra), rows that never succeeded, failed items, failed
pages, wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, EmbeddedTemporal

ROOT = Path(__file__).resolve().parent.parent
PROCESSORS = {"a": "DupRaise", "b": "DupCheckpoint", "c": "DupItemRetries", "d": "DupItemRetries"}
LABELS = {
    "a": "(a) raise on error",
    "b": "(b) checkpoints",
    "c": "(c) checkpoints + per-item retries",
    "d": "(d) as (c), worker SIGKILLed twice",
}


class Api:
    """The API's books: calls and successes per idempotency key, faults by a fixed seed."""

    def __init__(self, seed: int, error_rate: float, slow_rate: float, slow_ms: float) -> None:
        self.seed, self.error_rate, self.slow_rate = seed, error_rate, slow_rate
        self.slow = slow_ms / 1000
        self.lock = threading.Lock()
        self.calls: dict[str, int] = defaultdict(int)  # key -> calls
        self.ok: dict[str, int] = defaultdict(int)  # key -> successful calls

    def answer(self, key: str, row_id: str) -> int:
        with self.lock:
            n = self.calls[key]
            self.calls[key] += 1
        draw = random.Random(f"{self.seed}/{row_id}/{n}").random()
        if draw < self.error_rate:
            return 500
        if draw < self.error_rate + self.slow_rate:
            time.sleep(self.slow)
        with self.lock:
            self.ok[key] += 1
        return 200

    def tally(self, batch: str) -> dict[str, int]:
        prefix = batch + "/"
        with self.lock:
            calls = sum(v for k, v in self.calls.items() if k.startswith(prefix))
            ok = {k: v for k, v in self.ok.items() if k.startswith(prefix)}
        return {
            "calls": calls,
            "successful": sum(ok.values()),
            "duplicates": sum(v - 1 for v in ok.values()),
            "rows_done": len(ok),
        }


def serve(api: Api) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = api.answer(self.headers["Idempotency-Key"], json.loads(body)["id"])
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a SIGKILLed worker's connections reset: expected in mode d

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class WorkerProcess:
    def __init__(self, address: str, task_queue: str, api_url: str, throttle_ms: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench._dup_worker",
                "--address",
                address,
                "--task-queue",
                task_queue,
                "--api",
                api_url,
                "--throttle-ms",
                str(throttle_ms),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )

    async def ready(self) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 60)
        assert b"ready" in line, line

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


async def run_mode(mode: str, opts: argparse.Namespace, temporal: Any, api: Api, url: str) -> Any:
    task_queue = f"dup-{mode}-{uuid.uuid4().hex[:8]}"
    bid = f"dup-{mode}-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(temporal.address, task_queue, url, opts.throttle_ms)
    await worker.ready()
    orchestra = BatchOrchestratorClient(temporal.client)
    began = time.monotonic()
    kills = 0
    try:
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=PROCESSORS[mode],
                page_size=opts.page_size,
                max_parallelism=opts.parallelism,
                batch_id=bid,
                args=json.dumps({"path": opts.csv}),
                heartbeat_timeout=timedelta(seconds=opts.heartbeat_timeout),
            ),
            id=bid,
            task_queue=task_queue,
        )
        result = asyncio.ensure_future(handle.result())
        if mode == "d":
            for fraction in (1 / 3, 2 / 3):
                while api.tally(bid)["rows_done"] < opts.rows * fraction and not result.done():
                    await asyncio.sleep(0.02)
                if result.done():
                    break
                worker.kill()
                kills += 1
                worker = WorkerProcess(temporal.address, task_queue, url, opts.throttle_ms)
                await worker.ready()
        progress = await asyncio.wait_for(result, opts.timeout)
    finally:
        worker.stop()
    seconds = time.monotonic() - began
    row = api.tally(bid)
    row.update(
        mode=mode,
        label=LABELS[mode],
        rows=opts.rows,
        rows_never_done=opts.rows - row["rows_done"],
        failed_items=progress.num_failed_items,
        failed_pages=progress.num_failed_pages,
        completed_items=progress.num_completed_items,
        seconds=round(seconds, 1),
        kills=kills,
    )
    return row


def write_csv(path: str, rows: int) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "email", "amount"])
        for i in range(rows):
            writer.writerow([str(i), f"customer{i}@example.com", f"{(i * 37) % 1000 / 10:.2f}"])


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| mode | calls | successful calls | duplicate successful calls | rows never done "
        "| failed items | failed pages | wall time |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        share = 100 * r["duplicates"] / r["rows"]
        lines.append(
            f"| {r['label']} | {r['calls']:,} | {r['successful']:,} | {r['duplicates']:,} "
            f"({share:.2f} %) | {r['rows_never_done']:,} | {r['failed_items']:,} "
            f"| {r['failed_pages']:,} | {r['seconds']:.1f} s |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--slow-rate", type=float, default=0.02)
    parser.add_argument("--slow-ms", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--heartbeat-timeout", type=float, default=5.0)
    parser.add_argument("--throttle-ms", type=float, default=50.0)
    parser.add_argument("--modes", default="a,b,c,d")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", default=None)
    opts = parser.parse_args()
    opts.csv = os.path.join(tempfile.mkdtemp(), "rows.csv")
    write_csv(opts.csv, opts.rows)
    api = Api(opts.seed, opts.error_rate, opts.slow_rate, opts.slow_ms)
    server = serve(api)
    url = f"http://127.0.0.1:{server.server_port}"
    results = []
    async with EmbeddedTemporal() as temporal:
        for mode in opts.modes.split(","):
            results.append(await run_mode(mode.strip(), opts, temporal, api, url))
            print(json.dumps(results[-1]), flush=True)
    server.shutdown()
    text = table(results)
    print(text)
    if opts.out:
        Path(opts.out).write_text(
            json.dumps({"options": {k: v for k, v in vars(opts).items()}, "results": results})
            + "\n"
        )


if __name__ == "__main__":
    asyncio.run(main())
