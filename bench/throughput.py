"""Throughput benchmark: the issue's matrix of chains x page durations x caps, against raw
Temporal baselines measured on the same server in the same run.

    python -m bench.throughput                      # N = 5000 pages per configuration
    python -m bench.throughput --quick              # N = 300: a smoke test of the whole matrix
    python -m bench.throughput --json out.json      # also write every figure (after each phase)
    python -m bench.throughput --render out.json    # print the table of a (partial) JSON again

One dev server (embedded, or ``TEMPORAL_ADDRESS``) and one worker process
(``bench._worker``) run every configuration in turn; a second worker process, started with
``BATCH_ORCHESTRA_ENQUEUE_BY_SIGNAL=1`` on its own task queue, runs only the "enqueue by
signal" rows. For each page duration (no-op, 10 ms, 100 ms) and cap (10, 100):

* ``raw (a)``: ``BenchRawBaseline``, N activities, at most cap in flight, no signals;
* ``raw+signal (b)``: the same, each activity sending one signal to its workflow first;
* ``ours 1 chain``, ``ours 8 chains``, ``ours 1 chain la8`` (one chain, each leader page
  enqueueing its next 8 pages at once): BatchOrchestrator batches of ``BenchNoopPages``;
  plus one row outside the issue's matrix, ``ours 8 chains la8`` at 100 ms and cap 100.

And for each page duration, the one-chain hop comparison (no cap binds one chain):

* ``plain chain (c)``: ``BenchPlainChain``, one chain where each activity signals the next
  index and the workflow starts that activity on the signal;
* ``ours 1 chain, signal``: our one chain with the enqueue sent as a signal ("before"),
  beside ``ours 1 chain`` at cap 100 with the enqueue sent as an update ("after").

pages/s = N / wall time from the start call to the result. Max parallelism is the
orchestrator's ``max_parallelism_achieved`` for our batches; for the baselines, the most
activities scheduled and not yet closed at once, read from the workflow histories (the same
quantity; the histories give it for ours too, as a check). Mean parallelism is the mean of that
occupancy over the batch. ms/page = wall time / N: for one chain, one hop's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from batch_orchestra import (
    DEV_SERVER_DYNAMIC_CONFIG,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    EmbeddedTemporal,
)
from batch_orchestra._devserver import free_port
from bench._analysis import Occupancy
from bench._baseline import (
    BASELINE_ACTIVITY,
    BASELINE_SIGNAL_ACTIVITY,
    PLAIN_CHAIN_ACTIVITY,
    PlainChain,
    PlainChainInput,
    RawBaseline,
    RawBaselineInput,
)
from bench._history import read_batch_history
from bench._noop import LAST_PROCESSOR_NAME, PROCESSOR_NAME, NoopArgs
from bench._proc import cpu_seconds, group_cpu_seconds, machine_cpu
from bench._sql_pages import SQL_LA1_PROCESSOR, SQL_PROCESSOR, create_rows
from bench.scale import PAGE_ACTIVITY, WorkerProcess, _server_pgid

RAW, RAW_SIGNAL, OURS, OURS_SIGNAL, PLAIN = "raw", "raw-signal", "ours", "ours-signal", "plain"
OURS_UPDATE = "ours-update"
"""Ours on a worker whose quick pages send their enqueue by update at once (no result path)."""
OURS_RESULT = "ours-result"
"""Ours on a worker that never chooses the path: quick pages' successors always in the result."""
OURS_LAST = "ours-last"
"""Our one chain whose pages work first and enqueue last: successors travel in the result."""
SQL, SQL_LA1 = "sql", "sql-la1"
"""One chain through ``SqlSource`` on SQLite: lookahead found by itself, or fixed at 1."""
OUR_KINDS = (OURS, OURS_SIGNAL, OURS_LAST, OURS_UPDATE, OURS_RESULT, SQL, SQL_LA1)
"""The rows that run a BatchOrchestrator batch."""
DURATIONS = (0.0, 0.01, 0.1)
CAPS = (10, 100)
WORKER_SLOTS = 200
SWEEP_SLOTS = 600
"""The sweep's worker has room for its largest cap (500)."""
SCALE_SLOTS = 100
"""The worker-scaling rows run workers with the SDK's default activity slots."""
TARGET_SIGNAL_RATIO = 0.80
TARGET_RAW_RATIO = 0.90
TARGET_ACTIONS = 1.1
TARGET_HOP_MS = 10.0
TARGET_SWEEP = 1.2
TARGET_PARALLELISM = 90
TARGET_HOP_RATE = 1.5
HOP_DURATIONS = (0.01, 0.05)
SWEEP_DURATIONS = (0.01, 0.1, 1.0)
SWEEP_CAPS = (10, 100, 500)
SCALE_WORKERS = (1, 2, 3)
DEFAULT_HEARTBEAT: timedelta | None = BatchOrchestratorInput(
    page_processor=PROCESSOR_NAME, page_size=1, max_parallelism=1
).heartbeat_timeout
HEARTBEAT_OPERATIONS = ("RecordActivityTaskHeartbeat", "RecordActivityTaskHeartbeatById")


def _log(msg: str) -> None:
    print(f"[bench.throughput {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _dur(page_seconds: float) -> str:
    if page_seconds <= 0:
        return "no-op"
    return f"{page_seconds:g} s" if page_seconds >= 1 else f"{1000 * page_seconds:g} ms"


@dataclass(frozen=True)
class Spec:
    """One configuration of the matrix."""

    kind: str
    page_seconds: float
    cap: int | None
    """max_parallelism (None: the plain chain, which has no cap)."""
    chains: int = 1
    lookahead: int = 1
    group: str = ""
    """"" (the matrix), "hop", "cost", "workers" or "sweep": the label's prefix."""
    pages: int | None = None
    """N for this row (None: ``--pages``)."""
    no_heartbeats: bool = False
    """Start the batch with ``heartbeat_timeout=None`` (pages send no heartbeat)."""
    workers: int = 0
    """0: the shared worker process; W >= 1: W processes with the SDK's default activity
    slots on one task queue of their own."""

    @property
    def name(self) -> str:
        suffix = (
            f", {self.workers} worker" + ("s" if self.workers > 1 else "") if self.workers else ""
        )
        if self.kind == RAW:
            return "raw (a)" + suffix
        if self.kind == RAW_SIGNAL:
            return "raw+signal (b)" + suffix
        if self.kind == PLAIN:
            return "plain chain (c)"
        if self.kind in (SQL, SQL_LA1):
            return "SqlSource 1 chain" + (" la1" if self.kind == SQL_LA1 else "")
        name = f"ours {self.chains} chain" + ("s" if self.chains > 1 else "")
        if self.lookahead > 1:
            name += f" la{self.lookahead}"
        if self.kind == OURS_SIGNAL:
            name += ", signal"
        if self.kind == OURS_LAST:
            name += ", result"
        if self.kind == OURS_UPDATE:
            name += ", by update"
        if self.kind == OURS_RESULT:
            name += ", in result"
        if self.no_heartbeats:
            name += ", no heartbeats"
        return name + suffix

    @property
    def label(self) -> str:
        """What ``--only`` matches: e.g. 'hop: ours 1 chain, result, 50 ms, cap 100'."""
        prefix = f"{self.group}: " if self.group else ""
        return f"{prefix}{self.name}, {_dur(self.page_seconds)}, cap {self.cap or '-'}"

    @property
    def one_chain(self) -> bool:
        return self.kind in (*OUR_KINDS, PLAIN) and self.chains == 1


@dataclass
class Result:
    spec: Spec
    pages: int
    wall_s: float
    pages_per_s: float
    ms_per_page: float
    max_parallelism: int | None
    """Ours: progress.max_parallelism_achieved; baselines: from history."""
    max_parallelism_history: int | None
    mean_parallelism: float | None
    runs: int
    failed_pages: int = 0
    signals: int = 0
    """Signals the workflow received (ours: enqueues sent by signal)."""
    updates: int = 0
    """Updates the workflow accepted (ours: enqueues sent by update)."""
    worker_cpu_ms_per_page: float | None = None
    server_cpu_ms_per_page: float | None = None
    other_cpu_share: float | None = None
    """Share of all CPUs used by neither this phase's worker nor the server."""
    actions: int | None = None
    """Billable actions in the histories (starts incl. continue-as-new, activity attempts,
    timers, signals, updates, children, local activities), heartbeats not included."""
    activity_attempts: int = 0
    timers: int = 0
    heartbeats: int | None = None
    """Heartbeats the server received during the row (its frontend's request counter)."""
    hop_median_ms: float | None = None
    """One chain: the median hop from history (update/signal: scheduled -> next scheduled;
    result: this page's completion -> the next one scheduled)."""
    ideal_s: float | None = None
    """pages x page time / min(cap, slots): the wall time with every slot always busy."""

    @property
    def actions_per_page(self) -> float | None:
        if self.actions is None or not self.pages:
            return None
        return (self.actions + (self.heartbeats or 0)) / self.pages

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"]["name"] = self.spec.name
        d["spec"]["label"] = self.spec.label
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Result:
        d = dict(d)
        spec = dict(d.pop("spec"))
        spec.pop("name", None)
        spec.pop("label", None)
        return Result(spec=Spec(**spec), **d)


def sweep_pages(page_seconds: float, cap: int, quick: bool) -> int:
    """A sweep cell's N: about 4 s of ideal time (1 s with --quick), 40 to 1,500 pages."""
    ideal_s, most = (1.0, 200) if quick else (4.0, 1500)
    return max(40, min(most, round(ideal_s * cap / page_seconds)))


def extra_parts(quick: bool) -> list[Spec]:
    """The rows past the matrix: delivery paths, cost, worker scaling, the SqlSource sweep."""
    specs: list[Spec] = []
    hop_pages = 150 if quick else 500
    for d in HOP_DURATIONS:
        for kind in (OURS, OURS_LAST, OURS_SIGNAL):
            specs.append(Spec(kind, d, 100, group="hop", pages=hop_pages))
    for chains in (1, 8):  # quick no-op pages: path chosen (the default), always update, result
        for kind in (OURS, OURS_UPDATE, OURS_RESULT):
            n = hop_pages if chains == 1 else None
            specs.append(Spec(kind, 0.0, 100, chains=chains, group="path", pages=n))
    long_page = 6.0 if quick else 60.0
    specs.append(Spec(OURS, long_page, 100, group="cost", pages=20 if quick else 100))
    specs.append(Spec(OURS, 0.0, 100, chains=8, group="cost", no_heartbeats=True))
    for w in SCALE_WORKERS:
        n = 300 if quick else 3000
        specs.append(Spec(RAW, 1.0, 300, group="workers", pages=n, workers=w))
        specs.append(
            Spec(OURS, 1.0, 300, chains=8, lookahead=8, group="workers", pages=n, workers=w)
        )
    for d in SWEEP_DURATIONS:
        for cap in SWEEP_CAPS:
            n = sweep_pages(d, cap, quick)
            for kind in (RAW, SQL, SQL_LA1):
                specs.append(Spec(kind, d, cap, group="sweep", pages=n))
    return specs


def matrix(quick: bool = False) -> list[Spec]:
    """Every configuration, the ones the issue's targets rest on first (so that a run cut
    short by ``--budget`` still answers them), then the rest of the matrix, then the extra
    parts (``extra_parts``)."""
    specs = [
        Spec(RAW, 0.0, 100),
        Spec(RAW_SIGNAL, 0.0, 100),
        Spec(OURS, 0.0, 100, chains=8),
        Spec(RAW, 0.1, 100),
        Spec(RAW_SIGNAL, 0.1, 100),
        Spec(OURS, 0.1, 100, chains=8),
    ]
    for d in (0.0, 0.1, 0.01):
        specs += [Spec(PLAIN, d, None), Spec(OURS, d, 100), Spec(OURS_SIGNAL, d, 100)]
    for d in DURATIONS:
        for cap in CAPS:
            specs += [
                s
                for s in (
                    Spec(RAW, d, cap),
                    Spec(RAW_SIGNAL, d, cap),
                    Spec(OURS, d, cap, chains=8),
                    Spec(OURS, d, cap),
                    Spec(OURS, d, cap, lookahead=8),
                )
                if s not in specs
            ]
    # Not in the issue's matrix: 8 chains with lookahead 8, to show what multiplies discovery.
    specs.append(Spec(OURS, 0.1, 100, chains=8, lookahead=8))
    return specs + extra_parts(quick)


class WorkerDied(RuntimeError):
    pass


class Bench:
    def __init__(
        self, temporal: EmbeddedTemporal, opts: argparse.Namespace, metrics_port: int | None
    ) -> None:
        self.temporal = temporal
        self.client: Client = temporal.client
        self.opts = opts
        self.metrics_port = metrics_port
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-throughput-")
        tag = uuid.uuid4().hex[:8]
        address, ns = temporal.address, temporal.namespace
        self.worker = WorkerProcess(address, ns, f"tp-{tag}", WORKER_SLOTS)
        self.signal_worker = WorkerProcess(
            address,
            ns,
            f"tp-signal-{tag}",
            WORKER_SLOTS,
            env={"BATCH_ORCHESTRA_ENQUEUE_BY_SIGNAL": "1"},
        )
        self.sweep_worker = WorkerProcess(address, ns, f"tp-sweep-{tag}", SWEEP_SLOTS)
        self.update_worker = WorkerProcess(
            address,
            ns,
            f"tp-update-{tag}",
            WORKER_SLOTS,
            env={"BATCH_ORCHESTRA_DEFER_GRACE": "0"},
        )
        self.result_worker = WorkerProcess(
            address,
            ns,
            f"tp-result-{tag}",
            WORKER_SLOTS,
            env={"BATCH_ORCHESTRA_CHOOSE_PATH": "0"},
        )
        self.scale_workers = [
            WorkerProcess(address, ns, f"tp-scale-{tag}", SCALE_SLOTS) for _ in SCALE_WORKERS
        ]
        self.task_queues = {
            id(self.worker): f"tp-{tag}",
            id(self.signal_worker): f"tp-signal-{tag}",
            id(self.sweep_worker): f"tp-sweep-{tag}",
            id(self.update_worker): f"tp-update-{tag}",
            id(self.result_worker): f"tp-result-{tag}",
            **{id(w): f"tp-scale-{tag}" for w in self.scale_workers},
        }

    @property
    def all_workers(self) -> list[WorkerProcess]:
        return [
            self.worker,
            self.signal_worker,
            self.sweep_worker,
            self.update_worker,
            self.result_worker,
            *self.scale_workers,
        ]

    def workers_for(self, spec: Spec) -> list[WorkerProcess]:
        """The worker processes that run ``spec`` (all on one task queue)."""
        if spec.workers:
            return self.scale_workers[: spec.workers]
        if spec.group == "sweep":
            return [self.sweep_worker]
        if spec.kind == OURS_SIGNAL:
            return [self.signal_worker]
        if spec.kind == OURS_UPDATE:
            return [self.update_worker]
        if spec.kind == OURS_RESULT:
            return [self.result_worker]
        return [self.worker]

    async def close(self) -> None:
        for w in self.all_workers:
            await w.stop()
        self.tmp.cleanup()

    def heartbeats(self) -> int | None:
        """Heartbeats the server's frontend has received so far (None: no metrics)."""
        if self.metrics_port is None:
            return None
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
            ) as r:
                text = r.read().decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith("service_requests{") and 'service_name="frontend"' in line:
                if any(f'operation="{op}"' in line for op in HEARTBEAT_OPERATIONS):
                    total += float(line.rsplit(" ", 1)[1])
        return int(total)

    async def settled_heartbeats(self) -> int | None:
        """``heartbeats()`` once it stops moving: the server publishes its counters about once
        a second, so a row's last heartbeats show a moment after it ends."""
        last = await asyncio.to_thread(self.heartbeats)
        for _ in range(5):
            if last is None:
                return None
            await asyncio.sleep(1.2)
            now = await asyncio.to_thread(self.heartbeats)
            if now == last:
                return now
            last = now
        return last

    async def _start_workflow(
        self, spec: Spec, n: int, wf_id: str, task_queue: str
    ) -> tuple[Any, str, int | None, int]:
        """Start one configuration and wait for it: (workflow handle, activity type, the
        orchestrator's max parallelism or None, failed pages)."""
        timeout = timedelta(seconds=self.opts.timeout)
        if spec.kind in OUR_KINDS:
            assert spec.cap is not None
            if spec.kind in (SQL, SQL_LA1):
                url = f"sqlite:///{self.tmp.name}/{wf_id}.sqlite"
                await asyncio.to_thread(create_rows, url, n)
                processor = SQL_PROCESSOR if spec.kind == SQL else SQL_LA1_PROCESSOR
                args_str = json.dumps({"url": url, "page_seconds": spec.page_seconds})
                cursors = [""]
            else:
                args = NoopArgs(
                    pages=n,
                    chains=spec.chains,
                    page_seconds=spec.page_seconds,
                    lookahead=spec.lookahead,
                )
                processor = LAST_PROCESSOR_NAME if spec.kind == OURS_LAST else PROCESSOR_NAME
                args_str, cursors = args.to_json(), args.first_cursors()
            handle = await BatchOrchestratorClient(self.client).start(
                BatchOrchestratorInput(
                    page_processor=processor,
                    page_size=1,
                    max_parallelism=spec.cap,
                    args=args_str,
                    first_cursor_strs=cursors,
                    page_timeout=timedelta(minutes=5),
                    batch_id=wf_id,
                    heartbeat_timeout=None if spec.no_heartbeats else DEFAULT_HEARTBEAT,
                ),
                id=wf_id,
                task_queue=task_queue,
                execution_timeout=timeout,
            )
            progress = await handle.result()
            if progress.num_completed_pages != n:
                _log(
                    f"WARNING: {spec.name}: {progress.num_completed_pages} pages completed, "
                    f"{progress.num_failed_pages} failed, {progress.num_stuck_pages} stuck"
                )
            failed = n - progress.num_completed_pages
            return (
                handle.workflow_handle,
                PAGE_ACTIVITY,
                progress.max_parallelism_achieved,
                failed,
            )
        wh: WorkflowHandle[Any, int]
        if spec.kind == PLAIN:
            wh = await self.client.start_workflow(
                PlainChain.run,
                PlainChainInput(total=n, page_seconds=spec.page_seconds),
                id=wf_id,
                task_queue=task_queue,
                execution_timeout=timeout,
            )
            activity_type = PLAIN_CHAIN_ACTIVITY
        else:
            assert spec.cap is not None
            wh = await self.client.start_workflow(
                RawBaseline.run,
                RawBaselineInput(
                    total=n,
                    parallelism=spec.cap,
                    page_seconds=spec.page_seconds,
                    signal_each=spec.kind == RAW_SIGNAL,
                ),
                id=wf_id,
                task_queue=task_queue,
                execution_timeout=timeout,
            )
            activity_type = (
                BASELINE_SIGNAL_ACTIVITY if spec.kind == RAW_SIGNAL else (BASELINE_ACTIVITY)
            )
        done = await wh.result()
        return wh, activity_type, None, n - done

    async def _watch(self, workers: list[WorkerProcess], wf_id: str, run: Any) -> Any:
        """Await ``run`` unless a worker process exits first (something killed it): then
        terminate the workflow and raise, rather than wait for a task nobody will poll."""
        task = asyncio.ensure_future(run)
        died = []
        for worker in workers:
            assert worker.proc is not None
            died.append(asyncio.ensure_future(worker.proc.wait()))
        await asyncio.wait([task, *died], return_when=asyncio.FIRST_COMPLETED)
        for d in died:
            d.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(Exception):
            await self.client.get_workflow_handle(wf_id).terminate("a worker exited")
        codes = [w.proc.returncode if w.proc else None for w in workers]
        raise WorkerDied(f"a worker process exited (codes {codes}) during {wf_id}")

    async def run(self, spec: Spec, n: int) -> Result:
        n = spec.pages or n
        workers = self.workers_for(spec)
        for other in self.all_workers:  # one busy set of worker processes at a time
            if other not in workers and other is not self.worker:  # (that one idles)
                await other.stop()
        for worker in workers:
            if worker.proc is None or worker.proc.returncode is not None:
                await worker.start()
        task_queue = self.task_queues[id(workers[0])]
        wf_id = f"tp-{spec.kind}-{uuid.uuid4().hex[:8]}"
        pgid = _server_pgid(self.temporal)
        _log(f"{spec.label}: {n} pages ({wf_id})")

        def worker_cpu() -> float | None:
            values = [cpu_seconds(w.pid) for w in workers]
            return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

        hb0 = await self.settled_heartbeats()
        w0, s0, m0 = (
            worker_cpu(),
            group_cpu_seconds(pgid) if pgid else None,
            (machine_cpu()),
        )
        t0 = time.monotonic()
        wh, activity_type, max_par, failed = await self._watch(
            workers, wf_id, self._start_workflow(spec, n, wf_id, task_queue)
        )
        wall = time.monotonic() - t0
        w1, s1, m1 = (
            worker_cpu(),
            group_cpu_seconds(pgid) if pgid else None,
            (machine_cpu()),
        )
        hb1 = await self.settled_heartbeats()

        # Parallelism from the histories (after the clock stopped: it adds nothing to the run).
        first_run = wh.first_execution_run_id or wh.result_run_id or wh.run_id
        hist = await read_batch_history(self.client, wf_id, first_run, activity_type)
        intervals = [(s.scheduled, s.closed) for s in hist.slots if s.closed is not None]
        max_hist: int | None = None
        mean_par: float | None = None
        if intervals:
            occ = Occupancy(intervals)
            a, b = min(x for x, _ in intervals), max(y for _, y in intervals)
            max_hist = max(occ.levels)
            mean_par = occ.integral(a, b) / (b - a) if b > a else None
        hop: float | None = None
        if spec.one_chain and len(hist.slots) > 2:
            slots = sorted(hist.slots, key=lambda x: x.scheduled)
            if spec.kind == OURS_LAST:
                gaps = [
                    b.scheduled - a.closed
                    for a, b in zip(slots, slots[1:], strict=False)
                    if a.closed is not None
                ]
            else:
                gaps = [b.scheduled - a.scheduled for a, b in zip(slots, slots[1:], strict=False)]
            hop = 1000 * statistics.median(gaps) if gaps else None
        slots_total = sum(
            SCALE_SLOTS if spec.workers else SWEEP_SLOTS if spec.group == "sweep" else WORKER_SLOTS
            for _ in workers
        )

        res = Result(
            spec=spec,
            pages=n - failed,
            wall_s=wall,
            pages_per_s=(n - failed) / wall,
            ms_per_page=1000 * wall / n,
            max_parallelism=max_par if max_par is not None else max_hist,
            max_parallelism_history=max_hist,
            mean_parallelism=mean_par,
            runs=len(hist.runs),
            failed_pages=failed,
            signals=sum(r.signals for r in hist.runs),
            updates=sum(r.updates for r in hist.runs),
            actions=sum(r.actions for r in hist.runs),
            activity_attempts=sum(r.activity_attempts for r in hist.runs),
            timers=sum(r.timers for r in hist.runs),
            heartbeats=hb1 - hb0 if hb0 is not None and hb1 is not None else None,
            hop_median_ms=hop,
            ideal_s=(
                n * spec.page_seconds / min(spec.cap, slots_total)
                if spec.cap and spec.page_seconds > 0
                else None
            ),
        )
        if w0 is not None and w1 is not None:
            res.worker_cpu_ms_per_page = 1000 * (w1 - w0) / n
        if s0 is not None and s1 is not None:
            res.server_cpu_ms_per_page = 1000 * (s1 - s0) / n
        if m0 is not None and m1 is not None and m1[1] > m0[1]:
            ncpu = os.cpu_count() or 1
            busy = (m1[0] - m0[0]) / (m1[1] - m0[1]) * ncpu * wall
            mine = (w1 - w0 if w0 is not None and w1 is not None else 0.0) + (
                s1 - s0 if s0 is not None and s1 is not None else 0.0
            )
            res.other_cpu_share = max(0.0, busy - mine) / (ncpu * wall)
        _log(
            f"  {res.pages_per_s:.1f} pages/s, {res.ms_per_page:.2f} ms/page, max parallelism "
            f"{res.max_parallelism} (history {max_hist}), mean {_f(mean_par, '.1f')}, "
            f"{res.runs} runs, {res.updates} updates, {res.signals} signals, "
            f"{_f(res.actions_per_page)} actions/page ({res.heartbeats} heartbeats), hop "
            f"{_f(hop, '.1f')} ms"
        )
        return res

    async def warm_up(self) -> None:
        """A few pages of each workflow type, not recorded: first-use costs stay out."""
        await self.worker.start()
        for spec in (
            Spec(RAW, 0.0, 10),
            Spec(RAW_SIGNAL, 0.0, 10),
            Spec(PLAIN, 0.0, None),
            Spec(OURS, 0.0, 10, chains=8),
        ):
            wf_id = f"tp-warmup-{uuid.uuid4().hex[:8]}"
            await self._watch(
                [self.worker],
                wf_id,
                self._start_workflow(spec, 40, wf_id, self.task_queues[id(self.worker)]),
            )


def _f(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _find(
    results: list[Result], kind: str, d: float, cap: int | None, chains: int = 1, lookahead: int = 1
) -> Result | None:
    for r in results:
        s = r.spec
        if (s.kind, s.page_seconds, s.cap, s.chains, s.lookahead) == (
            kind,
            d,
            cap,
            chains,
            lookahead,
        ):
            return r
    return None


def render(all_results: list[Result], meta: dict[str, Any]) -> str:
    results = [r for r in all_results if not r.spec.group]
    lines = [
        f"bench.throughput: {meta.get('pages')} pages per configuration, one worker process "
        f"({WORKER_SLOTS} activity slots), server {meta.get('server')}, {meta.get('cpus')} CPUs",
        "ratios are pages/s over raw (a) and raw+signal (b) with the same page duration and "
        "cap, in this run; ms/page = wall / N (one hop, for one chain); upd/sig = updates and "
        "signals the workflow received (ours: enqueues); other CPU = share of all CPUs used by "
        "processes other than this phase's worker and the server",
        "",
    ]
    head = (
        f"{'config':<24}{'pages':>7}{'wall s':>8}{'pages/s':>9}{'max par':>8}"
        f"{'mean par':>9}{'/ (a)':>7}{'/ (b)':>7}{'ms/page':>9}{'runs':>5}{'upd/sig':>12}"
        f"{'wCPU ms/p':>10}{'sCPU ms/p':>10}{'other CPU':>10}"
    )
    order = [RAW, RAW_SIGNAL, OURS, OURS_SIGNAL, PLAIN]

    def key(r: Result) -> tuple[Any, ...]:
        s = r.spec
        return (order.index(s.kind), s.chains != 8, s.lookahead)

    for d in DURATIONS:
        for cap in (*CAPS, None):
            rows = sorted(
                (r for r in results if r.spec.page_seconds == d and r.spec.cap == cap), key=key
            )
            if not rows:
                continue
            lines.append(f"{_dur(d)} pages, " + (f"cap {cap}" if cap else "no cap (one chain)"))
            lines.append(head)
            a = _find(results, RAW, d, cap)
            b = _find(results, RAW_SIGNAL, d, cap)
            for r in rows:
                ra = r.pages_per_s / a.pages_per_s if a and cap else None
                rb = r.pages_per_s / b.pages_per_s if b and cap else None
                mp = "-" if r.max_parallelism is None else str(r.max_parallelism)
                lines.append(
                    f"{r.spec.name:<24}{r.pages:>7}{r.wall_s:>8.1f}{r.pages_per_s:>9.1f}"
                    f"{mp:>8}{_f(r.mean_parallelism, '.1f'):>9}{_f(ra):>7}{_f(rb):>7}"
                    f"{r.ms_per_page:>9.2f}{r.runs:>5}{f'{r.updates}/{r.signals}':>12}"
                    f"{_f(r.worker_cpu_ms_per_page):>10}"
                    f"{_f(r.server_cpu_ms_per_page):>10}{_pct(r.other_cpu_share):>10}"
                )
            lines.append("")

    hop_lines = [
        "One chain: a hop's cost (ms/page = wall / N) and hop rate against the plain "
        "one-signal-per-page chain (c)",
        f"{'pages':<8}{'plain (c)':>10}{'before: signal':>16}{'after: update':>15}"
        f"{'after, cap 10':>15}{'la8, cap 100':>14}{'after/plain rate':>18}"
        f"{'before/plain':>14}{'after/before':>14}",
    ]
    for d in DURATIONS:
        c = _find(results, PLAIN, d, None)
        before = _find(results, OURS_SIGNAL, d, 100)
        after = _find(results, OURS, d, 100)
        after10 = _find(results, OURS, d, 10)
        la = _find(results, OURS, d, 100, lookahead=8)
        if not any((c, before, after, after10, la)):
            continue

        def ms(r: Result | None) -> str:
            return _f(r.ms_per_page if r else None)

        def rate(x: Result | None, y: Result | None) -> str:
            return _f(y.ms_per_page / x.ms_per_page if x and y else None) + ("x" if x and y else "")

        hop_lines.append(
            f"{_dur(d):<8}{ms(c):>10}{ms(before):>16}{ms(after):>15}{ms(after10):>15}"
            f"{ms(la):>14}{rate(after, c):>18}{rate(before, c):>14}{rate(after, before):>14}"
        )
    if len(hop_lines) > 2:
        lines += hop_lines + [""]

    targets_at = len(lines)
    r8 = _find(results, OURS, 0.0, 100, chains=8)
    b0 = _find(results, RAW_SIGNAL, 0.0, 100)
    if r8 and b0:
        x = r8.pages_per_s / b0.pages_per_s
        lines.append(
            f"  8 chains, cap 100, no-op: {x:.2f} of raw+signal (b) "
            f"({r8.pages_per_s:.1f} vs {b0.pages_per_s:.1f} pages/s); target >= "
            f"{TARGET_SIGNAL_RATIO:.2f}: {_met(x >= TARGET_SIGNAL_RATIO)}"
        )
    r100 = _find(results, OURS, 0.1, 100, chains=8)
    if r100:
        top = r100.max_parallelism or 0
        lines.append(
            f"  8 chains, cap 100, 100 ms: max parallelism {top} (mean "
            f"{_f(r100.mean_parallelism, '.1f')}); target >= {TARGET_PARALLELISM}: "
            f"{_met(top >= TARGET_PARALLELISM)}"
        )
    for d in DURATIONS:
        c, after = _find(results, PLAIN, d, None), _find(results, OURS, d, 100)
        before = _find(results, OURS_SIGNAL, d, 100)
        if c and after:
            x = c.ms_per_page / after.ms_per_page
            lines.append(
                f"  1 chain, {_dur(d)}: hop rate {x:.2f}x the plain chain's; target >= "
                f"{TARGET_HOP_RATE:g}x: {_met(x >= TARGET_HOP_RATE)}; hop "
                f"{after.ms_per_page:.1f} ms after (update), "
                f"{_f(before.ms_per_page if before else None, '.1f')} ms before (signal), "
                f"{c.ms_per_page:.1f} ms plain"
            )
    if len(lines) > targets_at:
        lines.insert(targets_at, "Targets")
    lines += render_parts(all_results)
    for err in meta.get("errors", []):
        lines.append(f"FAILED: {err}")
    if meta.get("skipped"):
        lines.append(f"skipped (time budget): {', '.join(meta['skipped'])}")
    return "\n".join(lines)


def _group(results: list[Result], group: str) -> list[Result]:
    return [r for r in results if r.spec.group == group]


def _actions_row(r: Result) -> str:
    hb = "-" if r.heartbeats is None else str(r.heartbeats)
    return (
        f"{r.spec.label:<52}{r.pages:>6}{_f(r.actions_per_page):>9}{r.runs:>5}"
        f"{r.activity_attempts:>9}{r.timers:>7}{r.updates:>8}{r.signals:>8}{hb:>6}"
    )


def render_parts(results: list[Result]) -> list[str]:
    """The tables of the parts past the matrix, and every row's billable actions."""
    lines: list[str] = []
    hops = _group(results, "hop")
    if hops:
        lines += [
            "Delivery paths: one chain, cap 100 (hop = ms/page for update and signal, whose "
            "pages enqueue first; ms/page less the page's work for result, whose pages enqueue "
            "last; median = from history)",
            f"{'pages':<8}{'path':<9}{'pages/s':>9}{'ms/page':>9}{'hop ms':>8}{'median':>8}"
            f"{'act/page':>10}{'upd/sig':>10}",
        ]
        for r in sorted(hops, key=lambda r: (r.spec.page_seconds, r.spec.kind)):
            path = {OURS: "update", OURS_LAST: "result", OURS_SIGNAL: "signal"}[r.spec.kind]
            hop = r.ms_per_page - (1000 * r.spec.page_seconds if r.spec.kind == OURS_LAST else 0)
            lines.append(
                f"{_dur(r.spec.page_seconds):<8}{path:<9}{r.pages_per_s:>9.1f}"
                f"{r.ms_per_page:>9.2f}{hop:>8.1f}{_f(r.hop_median_ms, '.1f'):>8}"
                f"{_f(r.actions_per_page):>10}{f'{r.updates}/{r.signals}':>10}"
            )
        lines.append("")
    paths = _group(results, "path")
    if paths:
        lines += [
            "Quick no-op pages, cap 100: the path chosen per batch (the default), always by "
            "update, always in the result",
            f"{'config':<32}{'pages/s':>9}{'ms/page':>9}{'max par':>8}{'act/page':>10}"
            f"{'upd/sig':>10}",
        ]
        for r in sorted(paths, key=lambda r: (r.spec.chains, r.spec.kind)):
            lines.append(
                f"{r.spec.name:<32}{r.pages_per_s:>9.1f}{r.ms_per_page:>9.2f}"
                f"{_f(r.max_parallelism, 'd'):>8}{_f(r.actions_per_page):>10}"
                f"{f'{r.updates}/{r.signals}':>10}"
            )
        lines.append("")
    scale = _group(results, "workers")
    if scale:
        lines += [
            "Worker scaling: 1 s pages at cap 300, workers of 100 activity slots (the SDK's "
            "default) on one task queue; ideal = N x 1 s / min(300, 100 x workers)",
            f"{'config':<40}{'pages':>6}{'wall s':>8}{'pages/s':>9}{'ideal s':>9}"
            f"{'/ ideal':>9}{'max par':>8}{'mean par':>9}{'wCPU ms/p':>10}{'sCPU ms/p':>10}"
            f"{'other CPU':>10}",
        ]
        for r in sorted(scale, key=lambda r: (r.spec.workers, r.spec.kind)):
            ratio = r.ideal_s / r.wall_s if r.ideal_s else None
            lines.append(
                f"{r.spec.name:<40}{r.pages:>6}{r.wall_s:>8.1f}{r.pages_per_s:>9.1f}"
                f"{_f(r.ideal_s, '.1f'):>9}{_f(ratio):>9}{_f(r.max_parallelism, 'd'):>8}"
                f"{_f(r.mean_parallelism, '.1f'):>9}{_f(r.worker_cpu_ms_per_page):>10}"
                f"{_f(r.server_cpu_ms_per_page):>10}{_pct(r.other_cpu_share):>10}"
            )
        lines.append("")
    sweep = _group(results, "sweep")
    if sweep:
        lines += [
            "Sweep: one chain through SqlSource on SQLite, page size 1, no tuning (lookahead "
            "found by itself; la1 = lookahead fixed at 1); raw (a) = the same N activities "
            "under the cap; time / ideal where ideal = N x page time / cap",
            f"{'page':<8}{'cap':>5}{'pages':>6}{'ideal s':>8}{'ours s':>8}{'/ ideal':>8}"
            f"{'max par':>8}{'la1 s':>8}{'/ ideal':>8}{'max par':>8}{'raw s':>8}{'/ ideal':>8}"
            f"{'act/page':>9}",
        ]
        for d in SWEEP_DURATIONS:
            for cap in SWEEP_CAPS:
                cell = {
                    r.spec.kind: r for r in sweep if (r.spec.page_seconds, r.spec.cap) == (d, cap)
                }
                if not cell:
                    continue
                any_r = next(iter(cell.values()))
                ideal = any_r.ideal_s

                def col(
                    kind: str, ideal: float | None = ideal, cell: dict[str, Result] = cell
                ) -> str:
                    r = cell.get(kind)
                    if r is None:
                        return f"{'-':>8}{'-':>8}" + (f"{'-':>8}" if kind != RAW else "")
                    out = f"{r.wall_s:>8.1f}{_f(r.wall_s / ideal if ideal else None):>8}"
                    if kind != RAW:
                        out += f"{_f(r.max_parallelism, 'd'):>8}"
                    return out

                ours = cell.get(SQL)
                lines.append(
                    f"{_dur(d):<8}{cap:>5}{any_r.pages:>6}{_f(ideal, '.1f'):>8}{col(SQL)}"
                    f"{col(SQL_LA1)}{col(RAW)}"
                    f"{_f(ours.actions_per_page if ours else None):>9}"
                )
        lines.append("")
    counted = [r for r in results if r.actions is not None]
    if counted:
        lines += [
            "Billable actions (Temporal Cloud's unit) per page, from the histories; heartbeats "
            "from the server's request counter",
            f"{'config':<52}{'pages':>6}{'act/page':>9}{'runs':>5}{'attempts':>9}"
            f"{'timers':>7}{'updates':>8}{'signals':>8}{'hb':>6}",
        ]
        lines += [_actions_row(r) for r in counted]
        lines.append("")
    targets: list[str] = []
    matrix_rows = [r for r in results if not r.spec.group]
    r8 = _find(matrix_rows, OURS, 0.0, 100, chains=8)
    a0 = _find(matrix_rows, RAW, 0.0, 100)
    if r8 and a0:
        x = r8.pages_per_s / a0.pages_per_s
        targets.append(
            f"  8 chains, cap 100, no-op: {x:.2f} of raw (a) ({r8.pages_per_s:.1f} vs "
            f"{a0.pages_per_s:.1f} pages/s); goal >= {TARGET_RAW_RATIO:.2f}: "
            f"{_met(x >= TARGET_RAW_RATIO)}"
        )
    if r8 and r8.actions_per_page is not None:
        targets.append(
            f"  8 chains, cap 100, no-op: {r8.actions_per_page:.2f} actions/page; goal <= "
            f"{TARGET_ACTIONS:g}: {_met(r8.actions_per_page <= TARGET_ACTIONS)}"
        )
    for r in _group(results, "cost"):
        if r.spec.no_heartbeats and r.actions_per_page is not None:
            targets.append(
                f"  {r.spec.name}, {_dur(r.spec.page_seconds)}: {r.actions_per_page:.2f} "
                f"actions/page without heartbeats (goal <= {TARGET_ACTIONS:g}: "
                f"{_met(r.actions_per_page <= TARGET_ACTIONS)})"
            )
    for r in hops:
        path = {OURS: "update", OURS_LAST: "result", OURS_SIGNAL: "signal"}[r.spec.kind]
        hop = r.ms_per_page - (1000 * r.spec.page_seconds if r.spec.kind == OURS_LAST else 0)
        targets.append(
            f"  1 chain, {_dur(r.spec.page_seconds)}, by {path}: hop {hop:.1f} ms; goal <= "
            f"{TARGET_HOP_MS:g} ms: {_met(hop <= TARGET_HOP_MS)}"
        )
    for r in sweep:
        if r.spec.kind == SQL and r.spec.page_seconds >= 0.1 and r.ideal_s:
            x = r.wall_s / r.ideal_s
            targets.append(
                f"  sweep {_dur(r.spec.page_seconds)}, cap {r.spec.cap}: {x:.2f} x the ideal; "
                f"goal <= {TARGET_SWEEP:g}: {_met(x <= TARGET_SWEEP)}"
            )
    if targets:
        lines += ["Goals", *targets, ""]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--pages",
        type=int,
        default=None,
        help="N pages per configuration (default 5000; 300 with --quick)",
    )
    ap.add_argument("--quick", action="store_true", help="small N for a smoke test")
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write the results here (rewritten after every configuration)",
    )
    ap.add_argument(
        "--render",
        type=Path,
        default=None,
        help="print the table of an earlier --json file and exit",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="start no configuration after this many seconds (the rest is reported as skipped)",
    )
    ap.add_argument(
        "--only",
        default=None,
        metavar="REGEX",
        help="run only the configurations whose label matches, e.g. 'cap 10$' "
        "or 'chain, .*100 ms' (labels: 'ours 8 chains, 10 ms, cap 100', "
        "'raw+signal (b), no-op, cap 10', 'plain chain (c), 100 ms, cap -'; the parts past "
        "the matrix: '^hop: ' (one chain by update, result and signal), '^cost: ' (60 s "
        "pages), '^workers: ' (1-3 worker processes), '^sweep: ' (SqlSource page time x cap))",
    )
    ap.add_argument("--timeout", type=float, default=1800, help="per-configuration limit, s")
    ap.add_argument("--no-warm-up", dest="warm_up", action="store_false")
    ap.add_argument(
        "--stock-server",
        action="store_true",
        help="run the embedded server with Temporal's own dynamic config instead "
        "of batch_orchestra.DEV_SERVER_DYNAMIC_CONFIG",
    )
    ap.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="one more dynamic-config value for the embedded server (repeatable)",
    )
    opts = ap.parse_args(argv)
    if opts.pages is None:
        opts.pages = 300 if opts.quick else 5000
    if opts.pages < 8:
        ap.error("--pages must be >= 8")
    return opts


def _write_json(path: Path, results: list[Result], meta: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"meta": meta, "results": [r.to_dict() for r in results]}, indent=2))
    tmp.replace(path)


async def main(argv: list[str] | None = None) -> list[Result]:
    opts = parse_args(argv)
    if opts.render:
        data = json.loads(opts.render.read_text())
        loaded = [Result.from_dict(d) for d in data["results"]]
        print(render(loaded, data["meta"]))
        return loaded
    results: list[Result] = []
    meta: dict[str, Any] = {
        "pages": opts.pages,
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "skipped": [],
        "errors": [],
    }
    t_start = time.monotonic()
    config: dict[str, Any] = {}
    if opts.stock_server:
        config = {key: None for key in DEV_SERVER_DYNAMIC_CONFIG}
    for item in opts.dynamic_config:
        key, _, value = item.partition("=")
        config[key] = json.loads(value)
    metrics_port = free_port()
    async with EmbeddedTemporal(
        dynamic_config=config, extra_args=["--metrics-port", str(metrics_port)]
    ) as temporal:
        meta["server"] = "embedded dev server" if temporal.is_embedded else temporal.address
        if temporal.is_embedded:
            meta["dynamic_config"] = temporal.dynamic_config
            meta["server"] += " " + (
                json.dumps(temporal.dynamic_config)
                if temporal.dynamic_config
                else "(Temporal's defaults)"
            )
        _log(f"Temporal at {temporal.address}")
        bench = Bench(temporal, opts, metrics_port if temporal.is_embedded else None)
        try:
            if opts.warm_up:
                await bench.warm_up()
            for spec in matrix(opts.quick):
                label = spec.label
                if opts.only and not re.search(opts.only, label):
                    continue
                if opts.budget is not None and time.monotonic() - t_start > opts.budget:
                    meta["skipped"].append(label)
                    continue
                try:
                    results.append(await bench.run(spec, opts.pages))
                except WorkerDied as err:  # measured nothing; the next configuration restarts it
                    _log(f"ERROR: {label}: {err}")
                    meta["errors"].append(f"{label}: {err}")
                meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
                meta["load_avg"] = os.getloadavg()
                if opts.json:
                    _write_json(opts.json, results, meta)
        finally:
            await bench.close()
    if meta["skipped"]:
        _log(f"skipped {len(meta['skipped'])} configurations (time budget)")
    if opts.json:
        _write_json(opts.json, results, meta)
        _log(f"wrote {opts.json}")
    print(render(results, meta), flush=True)
    return results


if __name__ == "__main__":
    asyncio.run(main())
