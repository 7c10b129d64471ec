"""Series: latency from a tick to its first page, actions per tick, catch-up, and a chaos run.

    python -m bench.series [--runs 10] [--missed 10] [--chaos-seconds 120] [--seed 1]
                           [--json out.json]

Everything runs against one embedded dev server (a SQLite file, so it can be restarted) with
the workers in processes of their own (``bench/_series_worker.py``), over SQLite tables that
the benchmark grows while the series runs:

1. **Baseline**: ``--runs`` plain one-page batches started by the client: the time from the
   batch's start to its first page starting, and the actions it costs.
2. **Latency and actions**: a series every 2 s over a table that gets one row before each tick:
   the time from each run's nominal time to its batch's first page starting (and to the run
   starting), and, counted from the histories, the actions of a tick with one page and of an
   empty tick (nothing new).
3. **Catch-up**: the worker is down for ``--missed`` ticks while rows arrive; how many runs, and
   how long after the worker is back, until the mark is current.
4. **Chaos**: a series every 3 s over a table that grows every 0.3 s for ``--chaos-seconds``,
   one of two workers SIGKILLed every ~10 s and restarted, the server SIGKILLed and restarted
   once halfway; then the growth stops and the series catches up. Every id in ``(0, final
   mark]`` must have been processed (0 gaps), the mark must never have moved back; duplicates
   (rows written twice, allowed for at-least-once pages) are counted.

Actions are counted from the workflow histories as Temporal Cloud bills them: workflow starts
(client, schedule, child), activities scheduled, local activities, timers, signals, updates
accepted, plus the queries a run sends (one per watermark claim; queries leave no event).
Heartbeats are not in histories: a page under the heartbeat timeout sends about one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    EmbeddedTemporal,
    SeriesDescription,
    SeriesHandle,
    SeriesSpec,
    Watermark,
)
from batch_orchestra.testing import free_port
from bench import _series_worker as w

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def _ts(ev: HistoryEvent) -> float:
    return ev.event_time.seconds + ev.event_time.nanos / 1e9


class Workers:
    """Worker processes on one task queue; SIGKILL and restart them."""

    def __init__(self, address: str, queue: str, log: Path) -> None:
        self.address, self.queue, self.log = address, queue, log
        self.procs: list[subprocess.Popen[bytes] | None] = []

    async def start(self, i: int | None = None) -> None:
        out = self.log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench._series_worker", self.address, self.queue],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=out,
            start_new_session=True,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 90)
        assert b"ready" in line, line
        if i is None:
            self.procs.append(proc)
        else:
            self.procs[i] = proc

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs[i] = None

    def kill_all(self) -> None:
        for i in range(len(self.procs)):
            self.kill(i)


async def _retry(call: Callable[[], Awaitable[T]], seconds: float = 60) -> T:
    """A client call, retried while the server is down."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await call()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _history(client: Client, wid: str) -> list[HistoryEvent]:
    """Every event of a workflow, over all its runs (following continue-as-new)."""
    desc = await client.get_workflow_handle(wid).describe()
    run_id: str | None = desc.raw_description.workflow_execution_info.first_run_id or None
    events: list[HistoryEvent] = []
    while run_id:
        history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        events += history.events
        run_id = None
        for e in history.events:
            if e.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return events


def _actions(events: list[HistoryEvent], updates_of: str | None = None) -> Counter[str]:
    """Billable actions in ``events`` by kind (``updates_of``: only the updates whose ID names
    it, for the series' book, which serves every run)."""
    c: Counter[str] = Counter()
    for e in events:
        if e.HasField("workflow_execution_update_accepted_event_attributes"):
            uid = e.workflow_execution_update_accepted_event_attributes.protocol_instance_id
            if updates_of is None or updates_of in uid:
                c["update"] += 1
        if updates_of is not None:
            continue
        if e.HasField("workflow_execution_started_event_attributes"):
            c["workflow start"] += 1  # by the client, the schedule, a parent or continue-as-new
        elif e.HasField("activity_task_scheduled_event_attributes"):
            c["activity"] += 1
        elif e.HasField("marker_recorded_event_attributes"):
            # Local activities are billed; patch markers (workflow.patched) are not.
            c["local activity"] += e.marker_recorded_event_attributes.marker_name.endswith(
                "local_activity"
            )
        elif e.HasField("timer_started_event_attributes"):
            c["timer"] += 1
        elif e.HasField("signal_external_workflow_execution_initiated_event_attributes"):
            c["signal"] += 1
        elif e.HasField("workflow_execution_signaled_event_attributes"):
            c["signal"] += 1
    return +c


def _first_page_started(events: list[HistoryEvent]) -> float | None:
    return next(
        (_ts(e) for e in events if e.HasField("activity_task_started_event_attributes")), None
    )


def _quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"median": statistics.median(values), "p95": p95, "max": values[-1], "n": len(values)}


def _spec(db: Path, every: float) -> SeriesSpec:
    batch = BatchOrchestratorInput(
        page_processor="SeriesRows",
        page_size=10,
        max_parallelism=4,
        args=json.dumps({"db": str(db)}),
        page_timeout=timedelta(seconds=30),
        heartbeat_timeout=timedelta(seconds=5),
    )
    return SeriesSpec(batch=batch, every=timedelta(seconds=every), window=Watermark(initial="0"))


async def _until(
    check: Callable[[], Awaitable[T | None]], timeout: float, interval: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            got = await check()
            if got is not None:
                return got
        if time.monotonic() > deadline:
            raise TimeoutError("waited too long")
        await asyncio.sleep(interval)


async def baseline(client: Client, queue: str, tmp: Path, runs: int) -> dict[str, Any]:
    """Plain one-page batches started by the client: start -> first page, and their actions."""
    db = tmp / "baseline.db"
    w.create(db)
    w.add(db, 5)
    orchestra = BatchOrchestratorClient(client)
    latencies, actions = [], Counter[str]()
    for i in range(runs):
        wid = f"bench-baseline-{uuid.uuid4().hex[:8]}"
        handle = await orchestra.start(_spec(db, 1).batch, id=wid, task_queue=queue)
        await handle.result()
        events = await _history(client, wid)
        first = _first_page_started(events)
        assert first is not None
        latencies.append(first - _ts(events[0]))
        if i == 0:
            actions = _actions(events)
    return {"start_to_first_page_s": _quantiles(latencies), "actions": dict(actions)}


async def latency_and_actions(client: Client, queue: str, tmp: Path, runs: int) -> dict[str, Any]:
    """A series every 2 s, one new row before each tick; then a few empty ticks."""
    db = tmp / "latency.db"
    w.create(db)
    name = f"bench-latency-{uuid.uuid4().hex[:6]}"
    orchestra = BatchOrchestratorClient(client)
    series = await orchestra.create_series(_spec(db, 2), id=name, task_queue=queue)
    committed: list[str] = []
    mark = 0
    try:
        for _ in range(runs):
            mark = w.add(db, 1)

            async def moved(want: str = str(mark)) -> SeriesDescription | None:
                d = await series.describe()
                return d if d.mark == want and not d.running else None

            await _until(moved, 30)
        d = await series.describe()
        committed = [r.run_id for r in d.runs if r.outcome == "committed"][:runs]

        async def empties() -> SeriesDescription | None:
            d = await series.describe()
            return d if sum(r.outcome == "empty" for r in d.runs) >= 3 else None

        d = await _until(empties, 30)
    finally:
        await series.delete()
    page_lat, tick_lat = [], []
    one_page: Counter[str] = Counter()
    book = await _history(client, name)
    for r in d.runs:
        if r.run_id not in committed or r.batch_id is None or r.nominal_time is None:
            continue
        nominal = r.nominal_time.timestamp()
        tick = await _history(client, r.run_id)
        batch = await _history(client, r.batch_id)
        first = _first_page_started(batch)
        assert first is not None
        page_lat.append(first - nominal)
        tick_lat.append(_ts(tick[0]) - nominal)
        if not one_page:
            one_page = _actions(tick) + _actions(batch) + _actions(book, updates_of=r.run_id)
            one_page["query"] += 1
    empty_run = next(r for r in d.runs if r.outcome == "empty")
    empty = _actions(await _history(client, empty_run.run_id)) + _actions(
        book, updates_of=empty_run.run_id
    )
    empty["query"] += 1
    return {
        "nominal_to_first_page_s": _quantiles(page_lat),
        "nominal_to_run_start_s": _quantiles(tick_lat),
        "actions_one_page_tick": dict(one_page),
        "actions_empty_tick": dict(empty),
    }


async def catch_up(
    client: Client, workers: Workers, queue: str, tmp: Path, missed: int
) -> dict[str, Any]:
    """The worker is down for ``missed`` ticks while rows arrive; how long until current."""
    db = tmp / "catchup.db"
    w.create(db)
    w.add(db, 20)
    name = f"bench-catchup-{uuid.uuid4().hex[:6]}"
    series = await BatchOrchestratorClient(client).create_series(
        _spec(db, 2), id=name, task_queue=queue
    )
    try:
        await _until(lambda: _at(series, "20"), 30)
        workers.kill_all()
        start = await series.describe()
        before, skipped = start.num_runs, start.num_skipped
        for _ in range(missed):
            w.add(db, 50)
            await asyncio.sleep(2.0)
        top = str(w.add(db, 50))
        began = time.monotonic()
        await workers.start(0)
        d = await _until(lambda: _at(series, top), 120)
        took = time.monotonic() - began
    finally:
        await series.delete()
    return {
        "ticks_missed": missed,
        "ticks_skipped_by_overlap": d.num_skipped - skipped,
        "runs_to_catch_up": d.num_runs - before,
        "seconds_from_worker_back_to_current": round(took, 2),
        "rows_waiting": 50 * (missed + 1),
    }


async def _at(series: SeriesHandle, mark: str) -> SeriesDescription | None:
    d = await series.describe()
    return d if d.mark == mark and not d.running else None


@dataclass
class Chaos:
    kills: int = 0
    server_restarts: int = 0
    marks: list[str] | None = None


async def chaos(
    server: EmbeddedTemporal, workers: Workers, queue: str, tmp: Path, seconds: float, seed: int
) -> dict[str, Any]:
    """A growing table, killed workers and a server restart; then check every row."""
    rng = random.Random(seed)
    db = tmp / "chaos.db"
    w.create(db)
    name = f"bench-chaos-{uuid.uuid4().hex[:6]}"
    spec = _spec(db, 3)
    client = server.client
    series = await BatchOrchestratorClient(client).create_series(spec, id=name, task_queue=queue)
    faults = Chaos(marks=[])
    assert faults.marks is not None
    stop = asyncio.Event()
    holder: dict[str, SeriesHandle] = {"series": series}

    async def grow() -> None:
        while not stop.is_set():
            w.add(db, rng.randrange(1, 15))
            await asyncio.sleep(0.3)

    async def sample() -> None:
        while True:
            with contextlib.suppress(Exception):
                d = await holder["series"].describe(rpc_timeout=timedelta(seconds=2))
                if d.mark is not None and (not faults.marks or faults.marks[-1] != d.mark):
                    faults.marks.append(d.mark)
            await asyncio.sleep(0.5)

    tasks = [asyncio.ensure_future(grow()), asyncio.ensure_future(sample())]
    began = time.monotonic()
    restarted = False
    try:
        while time.monotonic() - began < seconds:
            await asyncio.sleep(rng.uniform(5, 15))
            i = rng.randrange(len(workers.procs))
            workers.kill(i)
            faults.kills += 1
            if not restarted and time.monotonic() - began > seconds / 2:
                server.kill()
                await asyncio.sleep(1.0)
                await server.start()
                restarted = True
                faults.server_restarts += 1
                client = server.client
                holder["series"] = BatchOrchestratorClient(client).get_series(name)
            await workers.start(i)
        stop.set()
        top = str(w.add(db, 1))
        caught = time.monotonic()
        d = await _until(lambda: _at(holder["series"], top), 180)
        catch_s = time.monotonic() - caught
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await _retry(lambda: holder["series"].delete())
    counts = w.done_counts(db)
    final = int(d.mark or 0)
    gaps = [i for i in range(1, final + 1) if i not in counts]
    numeric = [int(m) for m in faults.marks]
    backwards = sum(b < a for a, b in zip(numeric, numeric[1:], strict=False))
    log_back = sum(int(m.new or 0) < int(m.old or 0) for m in d.mark_changes if m.by is None)
    return {
        "seconds": round(time.monotonic() - began, 1),
        "worker_kills": faults.kills,
        "server_restarts": faults.server_restarts,
        "final_mark": final,
        "rows_processed_at_least_once": sum(1 for i in range(1, final + 1) if i in counts),
        "gaps": len(gaps),
        "duplicate_rows": sum(n - 1 for n in counts.values() if n > 1),
        "ids_written_twice_or_more": sum(1 for n in counts.values() if n > 1),
        "mark_moves_seen": len(numeric),
        "mark_moved_back": backwards + log_back,
        "runs": d.num_runs,
        "committed": d.num_committed,
        "held": d.num_held,
        "ticks_skipped": d.num_skipped,
        "catch_up_after_growth_stopped_s": round(catch_s, 1),
    }


@contextlib.asynccontextmanager
async def _server(tmp: Path) -> AsyncIterator[EmbeddedTemporal]:
    server = EmbeddedTemporal(port=free_port(), db_filename=tmp / "temporal.db", use_env=False)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--missed", type=int, default=10)
    parser.add_argument("--chaos-seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-series-"))
    queue = f"bench-series-{uuid.uuid4().hex[:6]}"
    results: dict[str, Any] = {}
    async with _server(tmp) as server:
        workers = Workers(server.address, queue, tmp / "workers.log")
        try:
            await workers.start()
            client = server.client
            print("baseline ...", flush=True)
            results["baseline"] = await baseline(client, queue, tmp, opts.runs)
            print("latency and actions ...", flush=True)
            results["series"] = await latency_and_actions(client, queue, tmp, opts.runs)
            print("catch-up ...", flush=True)
            results["catch_up"] = await catch_up(client, workers, queue, tmp, opts.missed)
            await workers.start()
            print("chaos ...", flush=True)
            results["chaos"] = await chaos(
                server, workers, queue, tmp, opts.chaos_seconds, opts.seed
            )
        finally:
            workers.kill_all()
    base = results["baseline"]["start_to_first_page_s"].get("median") or 0.0
    lat = results["series"]["nominal_to_first_page_s"].get("median") or 0.0
    results["ratios"] = {
        "series_latency_over_plain_start": round(lat / base, 2) if base else None,
        "one_page_tick_actions_over_plain_batch": round(
            sum(results["series"]["actions_one_page_tick"].values())
            / max(1, sum(results["baseline"]["actions"].values())),
            2,
        ),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if opts.json:
        opts.json.write_text(text)
    c = results["chaos"]
    ok = c["gaps"] == 0 and c["mark_moved_back"] == 0
    print("OK" if ok else "FAILED: gaps or a mark moved back", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
