"""Item workflows at scale: ours against a plain loop and Temporal's sliding-window pattern.

    python -m bench.items                      # 10,000 items, 1,000 open at most
    python -m bench.items --items 2000 --open 200 --json out.json

One embedded dev server and one worker process (``bench._items_worker``) run, in turn:

* **raw**: a client loop that starts N trivial workflows (``BenchItem``) with at most C open and
  waits for each: the most a client can get from the server here.
* **sliding window**: Temporal's pattern: one parent workflow keeps at most C children open;
  each child signals the parent when done; the parent continues as new every 500 children,
  carrying its open set.
* **ours**: a batch whose pages start the items (``context.start_items``) with
  ``max_open_items=C``; the worker that started them follows them and tells the batch of their
  closes, many in one signal (the item workflow sends nothing).
* **ours + reports** (``--only reports``): the same, the item workflow also decorated with
  ``reports_to_batch`` (a signal and a workflow task more per item).
* **ours, own queue** (``--only queue``): ours with the items on a task queue of their own
  (polled by the same worker process), away from the batch's workflow tasks.

Printed per row: items per second (N / wall time from the first start to the last close), the
start latency (an item's workflow started to its first workflow task started, p50/p99, from a
sample of item histories), history events and billable actions per item (the item's own, from
the sample, plus the orchestrating workflow's, which for ours includes its page activities), and
ours over raw and over the sliding window. Then the hand-over's size and encoding time with 1,000
and 10,000 items open (the open set travels in every continue-as-new).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    EmbeddedTemporal,
)
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_to_state,
)
from batch_orchestra._engine.items import ItemBook
from batch_orchestra._engine.scheduler import Scheduler
from batch_orchestra._model import ProcessorSettings
from batch_orchestra._model.messages import item_workflow_prefix
from bench._history import read_batch_history
from bench._items_worker import (
    ITEM_QUEUE_SUFFIX,
    ITEM_WORKFLOW,
    PROCESSOR,
    WINDOW_WORKFLOW,
    WindowInput,
)
from bench.plot_items import plot
from bench.scale import WorkerProcess

SAMPLE = 200
"""Item histories read per row for latencies, events and actions."""


@dataclass
class Row:
    name: str
    items: int
    wall_s: float
    items_per_s: float
    start_p50_ms: float | None
    start_p99_ms: float | None
    events_per_item: float
    actions_per_item: float
    orchestrator_runs: int = 0
    max_handover_bytes: int | None = None


class ItemsWorker(WorkerProcess):
    def __init__(self, address: str, task_queue: str) -> None:
        super().__init__(address, "default", task_queue, 100)
        self.args = [
            sys.executable,
            "-m",
            "bench._items_worker",
            "--address",
            address,
            "--task-queue",
            task_queue,
        ]


async def _item_histories(client: Client, ids: list[str]) -> tuple[list[float], float, float]:
    """(start latencies in ms, mean events, mean billable actions) of these item workflows."""
    latencies: list[float] = []
    events: list[int] = []
    actions: list[int] = []
    for wid in ids:
        hist = await client.get_workflow_handle(wid).fetch_history()
        evs = list(hist.events)
        started = evs[0].event_time.ToDatetime().timestamp()
        first_task = next(
            e for e in evs if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        )
        latencies.append(1000 * (first_task.event_time.ToDatetime().timestamp() - started))
        events.append(len(evs))
        sent = sum(
            e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
            for e in evs
        )
        actions.append(1 + sent)  # its start, and the signal it sends
    return latencies, statistics.fmean(events), statistics.fmean(actions)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _row(
    client: Client,
    name: str,
    n: int,
    wall: float,
    ids: list[str],
    orchestrator: tuple[str, str, str] | None,
) -> Row:
    sample = random.Random(7).sample(ids, min(SAMPLE, len(ids)))
    latencies, events, actions = await _item_histories(client, sample)
    runs, extra_events, extra_actions, handover = 0, 0, 0, None
    if orchestrator is not None:
        wid, run_id, activity = orchestrator
        hist = await read_batch_history(client, wid, run_id, activity)
        runs = len(hist.runs)
        extra_events = sum(r.events for r in hist.runs)
        extra_actions = sum(r.actions for r in hist.runs)
        sizes = [r.continue_as_new_input_bytes for r in hist.runs if r.continue_as_new_input_bytes]
        handover = max(sizes) if sizes else None
    return Row(
        name=name,
        items=n,
        wall_s=wall,
        items_per_s=n / wall,
        start_p50_ms=_pct(latencies, 0.5),
        start_p99_ms=_pct(latencies, 0.99),
        events_per_item=events + extra_events / n,
        actions_per_item=actions + extra_actions / n,
        orchestrator_runs=runs,
        max_handover_bytes=handover,
    )


async def run_raw(client: Client, task_queue: str, n: int, cap: int, tag: str) -> Row:
    gate = asyncio.Semaphore(cap)
    ids = [f"raw-{tag}-{i}" for i in range(n)]

    async def one(i: int) -> None:
        async with gate:
            handle = await client.start_workflow(
                ITEM_WORKFLOW, {"i": i}, id=ids[i], task_queue=task_queue
            )
            await handle.result()

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    return await _row(client, "raw loop", n, time.monotonic() - began, ids, None)


async def run_window(client: Client, task_queue: str, n: int, cap: int, tag: str) -> Row:
    wid = f"window-{tag}"
    began = time.monotonic()
    handle = await client.start_workflow(
        WINDOW_WORKFLOW, WindowInput(n, cap, 500), id=wid, task_queue=task_queue
    )
    await handle.result()
    wall = time.monotonic() - began
    ids = [f"{wid}/c{i}" for i in range(n)]
    first = handle.first_execution_run_id or handle.result_run_id or ""
    return await _row(client, "sliding window", n, wall, ids, (wid, first, ""))


async def run_ours(client: Client, task_queue: str, n: int, cap: int, tag: str) -> Row:
    return await _run_ours(client, task_queue, n, cap, tag, reports=False)


async def run_ours_reports(client: Client, task_queue: str, n: int, cap: int, tag: str) -> Row:
    return await _run_ours(client, task_queue, n, cap, tag, reports=True)


async def run_ours_queue(client: Client, task_queue: str, n: int, cap: int, tag: str) -> Row:
    return await _run_ours(client, task_queue, n, cap, tag, own_queue=True)


async def _run_ours(
    client: Client,
    task_queue: str,
    n: int,
    cap: int,
    tag: str,
    *,
    reports: bool = False,
    own_queue: bool = False,
) -> Row:
    bid = f"items-{tag}" + ("-reports" if reports else "")
    args: dict[str, object] = {"n": n, "reports": reports}
    if own_queue:
        args["item_queue"] = task_queue + ITEM_QUEUE_SUFFIX
    inp = BatchOrchestratorInput(
        page_processor=PROCESSOR,
        page_size=100,
        max_parallelism=10,
        batch_id=bid,
        args=json.dumps(args),
        max_open_items=cap,
    )
    began = time.monotonic()
    handle = await BatchOrchestratorClient(client).start(inp, id=bid, task_queue=task_queue)
    ticker = asyncio.create_task(_tick(handle, began))
    try:
        result = await handle.result()  # waits again if a loaded server times out its poll
    finally:
        ticker.cancel()
    wall = time.monotonic() - began
    assert result.num_items_completed == n, result
    run_id = handle.workflow_handle.first_execution_run_id or ""
    prefix = item_workflow_prefix(bid, run_id)
    ids = [f"{prefix}i{i}" for i in range(n)]
    name = "ours + reports" if reports else "ours, own queue" if own_queue else "ours"
    return await _row(client, name, n, wall, ids, (bid, run_id, "batch_orchestra.process_page"))


async def _tick(handle: BatchOrchestratorHandle, began: float, every: float = 60.0) -> None:
    """A progress line every minute: a long run shows how it goes, a cut-short one how far."""
    while True:
        await asyncio.sleep(every)
        try:
            p = await handle.get_progress()
        except Exception as err:  # a query can time out on a busy server; try again next minute
            print(f"[bench.items]   (progress query failed: {err})", flush=True)
            continue
        wall = time.monotonic() - began
        print(
            f"[bench.items]   {wall:7.0f} s: started {p.num_items_started}, "
            f"open {p.num_items_open}, completed {p.num_items_completed}, "
            f"failed {p.num_items_failed} ({p.num_items_completed / wall:.1f} items/s)",
            flush=True,
        )


def handover_cost(open_items: int) -> dict[str, float]:
    """The continue-as-new input with this many items open: bytes, and encode + decode time."""
    book = ItemBook(max(open_items, 1))
    book.opened(1, [f"order-{i:08d}" for i in range(open_items)], now=1_700_000_000.0)
    settings = ProcessorSettings(
        name="Bench",
        at_most_once=False,
        maximum_attempts=3,
        initial_interval_seconds=1.0,
        backoff_coefficient=2.0,
        maximum_interval_seconds=60.0,
        non_retryable_error_types=[],
        use_extended_retries=False,
        extended_retry_interval_seconds=60.0,
    )
    sched = Scheduler(settings, 10, 1_700_000_000.0)
    began = time.perf_counter()
    wire = continuation_to_wire(
        BatchContinuation(
            settings=settings, scheduler=scheduler_to_state(sched, None), items=book.state()
        )
    )
    text = json.dumps(wire, separators=(",", ":"))
    back = continuation_from_wire(json.loads(text))
    ItemBook.restore(open_items, back.items)
    return {"open": open_items, "bytes": len(text), "ms": 1000 * (time.perf_counter() - began)}


def render(rows: list[Row], costs: list[dict[str, float]]) -> str:
    by = {r.name: r for r in rows}
    lines = [
        f"{'row':<16}{'items':>7}{'wall s':>8}{'items/s':>9}{'start p50':>11}{'p99 ms':>8}"
        f"{'events/item':>13}{'actions/item':>14}{'runs':>6}",
    ]
    for r in rows:
        lines.append(
            f"{r.name:<16}{r.items:>7}{r.wall_s:>8.1f}{r.items_per_s:>9.1f}"
            f"{_ms(r.start_p50_ms):>11}{_ms(r.start_p99_ms):>8}{r.events_per_item:>13.1f}"
            f"{r.actions_per_item:>14.2f}{r.orchestrator_runs:>6}"
        )
    ours = by.get("ours")
    if ours is not None:
        for base, goal in (("raw loop", 0.8), ("sliding window", 5.0)):
            if base in by:
                ratio = ours.items_per_s / by[base].items_per_s
                met = "met" if ratio >= goal else "NOT met"
                lines.append(f"ours / {base}: {ratio:.2f} (goal >= {goal}: {met})")
        if ours.max_handover_bytes:
            lines.append(f"ours: largest hand-over {ours.max_handover_bytes / 1024:.0f} KB")
    for c in costs:
        lines.append(
            f"hand-over with {int(c['open']):,} items open: {c['bytes'] / 1024:.0f} KB, "
            f"{c['ms']:.0f} ms to encode and decode"
        )
    return "\n".join(lines)


def _say(text: str) -> None:
    print(f"[bench.items {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


async def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.items", description=__doc__)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--open", type=int, default=1_000, help="at most this many open at once")
    ap.add_argument(
        "--only",
        default="raw,window,ours",
        help="rows to run, comma-separated, of raw, window, ours, reports (ours with "
        "@reports_to_batch on the item) and queue (ours with the items on their own task queue)",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None, help="a PNG of the rows (bench.plot_items)")
    opts = ap.parse_args(argv)
    rows: list[Row] = []
    async with EmbeddedTemporal() as temporal:
        tag = uuid.uuid4().hex[:8]
        task_queue = f"bench-items-{tag}"
        worker = ItemsWorker(temporal.address, task_queue)
        await worker.start()
        try:
            client = temporal.client
            runners = {
                "raw": run_raw,
                "window": run_window,
                "ours": run_ours,
                "reports": run_ours_reports,
                "queue": run_ours_queue,
            }
            for key in opts.only.split(","):
                print(
                    f"[bench.items] {key}: {opts.items} items, at most {opts.open} open", flush=True
                )
                row = await runners[key](client, task_queue, opts.items, opts.open, f"{key}-{tag}")
                print(
                    f"[bench.items]   {row.items_per_s:.1f} items/s in {row.wall_s:.1f} s",
                    flush=True,
                )
                rows.append(row)
        finally:
            await worker.stop()
    costs = [handover_cost(k) for k in (1_000, 10_000)]
    print(render(rows, costs))
    data = {"rows": [asdict(r) for r in rows], "handover": costs}
    if opts.json is not None:
        opts.json.write_text(json.dumps(data, indent=2))
    if opts.plot is not None:
        plot(data, opts.plot)
        print(f"[bench.items] wrote {opts.plot}")


if __name__ == "__main__":
    asyncio.run(main())
