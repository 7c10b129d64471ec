"""Where one hop's time goes: one chain on the embedded server, read back from its history.

    python -m bench.hops                         # 300 no-op pages on the embedded server
    python -m bench.hops --page-ms 10            # pages that work 10 ms after enqueueing
    python -m bench.hops --stock-server          # with Temporal's own dynamic config

A hop is the time from one page's activity being scheduled to the next one's. The history
splits it into: the workflow task's wait for a worker (scheduled -> started), the workflow task
itself (started -> completed, the worker's time plus a round trip), and the rest (the activity
reaching its enqueue, the enqueue reaching the server). Printed as medians and percentiles over
the hops of the first run, with the hop series so that a change of regime shows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from typing import Any

from temporalio.worker import Worker

from batch_orchestra import (
    DEV_SERVER_DYNAMIC_CONFIG,
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    EmbeddedTemporal,
)
from bench._noop import PROCESSOR_NAME, NoopArgs


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _ms(ts: Any) -> float:
    return float(ts.ToMicroseconds()) / 1000.0


async def measure(pages: int, page_seconds: float, stock: bool) -> dict[str, Any]:
    config = {k: None for k in DEV_SERVER_DYNAMIC_CONFIG} if stock else {}
    async with EmbeddedTemporal(use_env=False, dynamic_config=config) as temporal:
        client, queue = temporal.client, f"hops-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=queue, plugins=[BatchOrchestraPlugin()]):
            args = NoopArgs(pages=pages, chains=1, page_seconds=page_seconds)
            bid = f"hops-{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            handle = await BatchOrchestratorClient(client).start(
                BatchOrchestratorInput(
                    page_processor=PROCESSOR_NAME,
                    page_size=1,
                    max_parallelism=100,
                    args=args.to_json(),
                    first_cursor_str="0",
                    batch_id=bid,
                ),
                id=bid,
                task_queue=queue,
            )
            await handle.result()
            wall = time.monotonic() - started
            run_id = handle.workflow_handle.first_execution_run_id
            history = await client.get_workflow_handle(bid, run_id=run_id).fetch_history()
    scheduled: list[float] = []
    wft_wait: list[float] = []
    wft_run: list[float] = []
    wft_sched = wft_start = 0.0
    for e in history.events:
        kind = e.WhichOneof("attributes")
        t = _ms(e.event_time)
        if kind == "activity_task_scheduled_event_attributes":
            scheduled.append(t)
        elif kind == "workflow_task_scheduled_event_attributes":
            wft_sched = t
        elif kind == "workflow_task_started_event_attributes":
            wft_start = t
            wft_wait.append(t - wft_sched)
        elif kind == "workflow_task_completed_event_attributes":
            wft_run.append(t - wft_start)
    hops = [b - a for a, b in zip(scheduled, scheduled[1:], strict=False)]
    return {
        "pages": pages,
        "page_ms": 1000 * page_seconds,
        "stock": stock,
        "wall_s": wall,
        "ms_per_page": 1000 * wall / pages,
        "hops": hops,
        "wft_wait": wft_wait,
        "wft_run": wft_run,
    }


def report(r: dict[str, Any]) -> str:
    hops, wait, run = r["hops"], r["wft_wait"], r["wft_run"]
    server = "Temporal's default dynamic config" if r["stock"] else "DEV_SERVER_DYNAMIC_CONFIG"
    lines = [
        f"one chain, {r['pages']} pages of {r['page_ms']:g} ms, embedded server with {server}",
        f"  wall {r['wall_s']:.2f} s = {r['ms_per_page']:.1f} ms a page",
        f"  hop (activity scheduled -> next scheduled), first run: median "
        f"{statistics.median(hops):.1f} ms, p10 {_pct(hops, 0.1):.1f}, p90 {_pct(hops, 0.9):.1f}",
        f"  workflow task waiting for a worker (scheduled -> started): median "
        f"{statistics.median(wait):.1f} ms, p90 {_pct(wait, 0.9):.1f}",
        f"  workflow task running (started -> completed): median {statistics.median(run):.1f} ms,"
        f" p90 {_pct(run, 0.9):.1f}",
        "  hop series (ms): " + " ".join(f"{h:.0f}" for h in hops[:80]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.hops", description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument(
        "--page-ms",
        type=float,
        default=0.0,
        help="how long a page works after enqueueing its successor",
    )
    ap.add_argument(
        "--stock-server",
        action="store_true",
        help="run the server with Temporal's own dynamic config",
    )
    opts = ap.parse_args(argv)
    if opts.pages < 3:
        ap.error(f"--pages must be at least 3, got {opts.pages}")
    result = asyncio.run(measure(opts.pages, opts.page_ms / 1000, opts.stock_server))
    print(report(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
