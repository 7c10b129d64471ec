"""Scale benchmark: N no-op pages through Batch Orchestra vs a raw Temporal baseline.

    python -m bench.scale --pages 2000 --parallelism 20
    python -m bench.scale --pages 3000 --parallelism 50 --page-seconds 1.0 --pages-per-run 500

One fresh embedded dev server (or TEMPORAL_ADDRESS) per invocation, one worker *process* per
phase. Each phase runs a batch of N pages under the same parallelism cap:

* ``ours``: a BatchOrchestrator batch of the ``BenchNoopPages`` processor, split into
  ``--chains`` chains (default: the parallelism, so page discovery never limits it);
* ``baseline``: ``BenchRawBaseline``, a plain workflow running N no-op activities with at most
  P in flight, continuing as new the same way (when suggested / every ``--pages-per-run``),
  with no signals.

Everything else is read back from the workflow histories afterwards (see bench/_history.py):
runs, events per run, continue-as-new input sizes, and slot occupancy over time, from which
utilisation overall and within +-``--window`` seconds of each hand-over is computed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, EmbeddedTemporal
from bench._analysis import Analysis, analyse
from bench._baseline import BASELINE_ACTIVITY, RawBaseline, RawBaselineInput
from bench._history import BatchHistory, read_batch_history
from bench._noop import PROCESSOR_NAME, NoopArgs
from bench._proc import cpu_seconds, group_cpu_seconds, machine_cpu, status_kib

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE_ACTIVITY = "batch_orchestra.process_page"


def _log(msg: str) -> None:
    print(f"[bench.scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Phase:
    name: str
    wall_s: float = 0.0
    pages: int = 0
    pages_per_s: float = 0.0
    runs: int = 0
    max_events_in_run: int = 0
    max_history_bytes_in_run: int = 0
    max_continue_as_new_input_bytes: int | None = None
    worker_peak_rss_mib: float | None = None
    worker_cpu_s: float | None = None
    server_cpu_s: float | None = None
    worker_cpu_ms_per_page: float | None = None
    server_cpu_ms_per_page: float | None = None
    events_per_page: float | None = None
    machine_busy: float | None = None
    """Share of all CPUs busy during the phase (from /proc/stat)."""
    other_cpu_share: float | None = None
    """Share of all CPUs used by other processes than this phase's worker and server."""
    analysis: Analysis | None = None
    runs_detail: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "analysis"}
        d["analysis"] = self.analysis.to_dict() if self.analysis else None
        return d


class WorkerProcess:
    """``python -m bench._worker`` in its own process (``env``: extra environment variables)."""

    def __init__(
        self,
        address: str,
        namespace: str,
        task_queue: str,
        max_activities: int,
        env: dict[str, str] | None = None,
    ):
        self.extra_env = dict(env or {})
        self.args = [
            sys.executable,
            "-m",
            "bench._worker",
            "--address",
            address,
            "--namespace",
            namespace,
            "--task-queue",
            task_queue,
            "--max-concurrent-activities",
            str(max_activities),
        ]
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=str(REPO_ROOT),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"worker exited before it was ready: {self.args}")
            if line.strip() == b"ready":
                return

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        if proc.returncode != 0:
            _log(f"WARNING: the worker exited with code {proc.returncode}")


def _server_pgid(temporal: EmbeddedTemporal) -> int | None:
    proc = getattr(temporal, "_proc", None)  # the dev server we started (None if external)
    return proc.pid if proc is not None else None


async def run_phase(name: str, temporal: EmbeddedTemporal, opts: argparse.Namespace) -> Phase:
    client: Client = temporal.client
    n, p = opts.pages, opts.parallelism
    task_queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    wf_id = f"bench-scale-{name}-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        temporal.address,
        temporal.namespace,
        task_queue,
        opts.max_concurrent_activities or max(2 * p, 100),
    )
    await worker.start()
    pgid = _server_pgid(temporal)
    phase = Phase(name)
    try:
        w_cpu0, s_cpu0 = cpu_seconds(worker.pid), group_cpu_seconds(pgid) if pgid else None
        m_cpu0 = machine_cpu()
        _log(f"{name}: {n} pages, parallelism {p} (workflow {wf_id})")
        t_start = time.monotonic()
        if name == "ours":
            args = NoopArgs(
                pages=n, chains=opts.chains, page_seconds=opts.page_seconds, jitter=opts.page_jitter
            )
            cursors = args.first_cursors()
            handle = await BatchOrchestratorClient(client).start(
                BatchOrchestratorInput(
                    page_processor=PROCESSOR_NAME,
                    page_size=1,
                    max_parallelism=p,
                    args=args.to_json(),
                    first_cursor_strs=cursors,
                    page_timeout=timedelta(minutes=5),
                    pages_per_run=opts.pages_per_run,
                    batch_id=wf_id,
                ),
                id=wf_id,
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=opts.timeout),
            )
            wh = handle.workflow_handle
            progress = await handle.result()
            done = progress.num_completed_pages
            activity = PAGE_ACTIVITY
            if progress.num_failed_pages or progress.num_stuck_pages:
                _log(
                    f"WARNING: {progress.num_failed_pages} failed, "
                    f"{progress.num_stuck_pages} stuck pages"
                )
        else:
            wh = await client.start_workflow(
                RawBaseline.run,
                RawBaselineInput(
                    total=n,
                    parallelism=p,
                    page_seconds=opts.page_seconds,
                    jitter=opts.page_jitter,
                    pages_per_run=opts.pages_per_run,
                ),
                id=wf_id,
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=opts.timeout),
            )
            done = await wh.result()
            activity = BASELINE_ACTIVITY
        phase.wall_s = time.monotonic() - t_start
        w_cpu1, s_cpu1 = cpu_seconds(worker.pid), group_cpu_seconds(pgid) if pgid else None
        m_cpu1 = machine_cpu()
        rss = status_kib(worker.pid, "VmHWM")
    finally:
        await worker.stop()
    if done != n:
        _log(f"WARNING: {name} completed {done} pages, expected {n}")
    phase.pages = done
    phase.pages_per_s = done / phase.wall_s
    if w_cpu0 is not None and w_cpu1 is not None:
        phase.worker_cpu_s = w_cpu1 - w_cpu0
        phase.worker_cpu_ms_per_page = 1000 * phase.worker_cpu_s / max(done, 1)
    if s_cpu0 is not None and s_cpu1 is not None:
        phase.server_cpu_s = s_cpu1 - s_cpu0
        phase.server_cpu_ms_per_page = 1000 * phase.server_cpu_s / max(done, 1)
    if m_cpu0 is not None and m_cpu1 is not None:
        busy, total = m_cpu1[0] - m_cpu0[0], m_cpu1[1] - m_cpu0[1]
        ncpu = os.cpu_count() or 1
        phase.machine_busy = busy / total if total > 0 else None
        # CPU used by anything but this phase's worker and server (other tests, this process).
        if phase.machine_busy is not None:
            other = (
                phase.machine_busy * ncpu * phase.wall_s
                - (phase.worker_cpu_s or 0)
                - (phase.server_cpu_s or 0)
            )
            phase.other_cpu_share = max(0.0, other / (ncpu * phase.wall_s))
    phase.worker_peak_rss_mib = rss / 1024 if rss is not None else None
    first_run = wh.first_execution_run_id or wh.result_run_id or wh.run_id
    assert first_run is not None
    hist: BatchHistory = await read_batch_history(client, wf_id, first_run, activity)
    phase.runs = len(hist.runs)
    phase.max_events_in_run = max(r.events for r in hist.runs)
    phase.max_history_bytes_in_run = max(r.history_bytes for r in hist.runs)
    can = [
        r.continue_as_new_input_bytes
        for r in hist.runs
        if r.continue_as_new_input_bytes is not None
    ]
    phase.max_continue_as_new_input_bytes = max(can) if can else None
    phase.events_per_page = sum(r.events for r in hist.runs) / max(done, 1)
    phase.runs_detail = [
        {
            "run": r.index,
            "events": r.events,
            "history_bytes": r.history_bytes,
            "pages": r.activities,
            "continue_as_new_input_bytes": r.continue_as_new_input_bytes,
            "duration_s": round(r.ended - r.started, 3),
            "first_task_backoff_s": r.first_task_backoff_s,
            "pages_per_s": round(r.activities / max(r.ended - r.started, 1e-9), 1),
        }
        for r in hist.runs
    ]
    phase.analysis = analyse(hist, p, opts.window)
    _log(
        f"{name}: {done} pages in {phase.wall_s:.1f}s = {phase.pages_per_s:.1f} pages/s, "
        f"{phase.runs} runs"
    )
    return phase


def _fmt(v: Any, spec: str = ".2f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{1000 * v:.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def render(opts: argparse.Namespace, phases: dict[str, Phase]) -> str:
    names = [n for n in ("ours", "baseline") if n in phases]
    cols = {"ours": "batch-orchestra", "baseline": "raw baseline"}
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fn: Any) -> None:
        rows.append((label, [fn(phases[n]) for n in names]))

    def a(ph: Phase) -> Analysis:
        assert ph.analysis is not None
        return ph.analysis

    row("pages", lambda ph: str(ph.pages))
    row("wall time (s)", lambda ph: _fmt(ph.wall_s, ".1f"))
    row("pages/s", lambda ph: _fmt(ph.pages_per_s, ".1f"))
    row("runs", lambda ph: str(ph.runs))
    row("most history events in one run", lambda ph: str(ph.max_events_in_run))
    row("history events per page", lambda ph: _fmt(ph.events_per_page, ".2f"))
    row(
        "largest continue-as-new input (bytes)", lambda ph: _fmt(ph.max_continue_as_new_input_bytes)
    )
    row("worker peak RSS (MiB)", lambda ph: _fmt(ph.worker_peak_rss_mib, ".1f"))
    row("worker CPU per page (ms)", lambda ph: _fmt(ph.worker_cpu_ms_per_page, ".2f"))
    row("server CPU per page (ms)", lambda ph: _fmt(ph.server_cpu_ms_per_page, ".2f"))
    row(
        "machine CPU busy (other processes)",
        lambda ph: f"{_pct(ph.machine_busy)} ({_pct(ph.other_cpu_share)})",
    )
    row("slot time per page (ms): sched->close", lambda ph: _ms(a(ph).mean_slot_s))
    row("  sched->start (dispatch)", lambda ph: _ms(a(ph).mean_schedule_to_start_s))
    row("  start->close (execution)", lambda ph: _ms(a(ph).mean_start_to_close_s))
    row("utilisation (running / max_parallelism)", lambda ph: _pct(a(ph).utilisation))
    w = _fmt(opts.window, "g")
    row(f"  within +-{w} s of a hand-over", lambda ph: _pct(a(ph).utilisation_near_handovers))
    row("  elsewhere", lambda ph: _pct(a(ph).utilisation_elsewhere))
    row("  steady state (outside hand-over stalls)", lambda ph: _pct(a(ph).utilisation_steady))
    row("throughput lost to hand-overs", lambda ph: _pct(a(ph).handover_cost))
    row(
        "  per hand-over: seconds of steady-state work",
        lambda ph: _fmt(a(ph).mean_lost_s_per_handover, ".3f"),
    )
    row("  per hand-over: pages", lambda ph: _fmt(a(ph).pages_lost_per_handover, ".1f"))
    row(
        "mean stall per hand-over (s): last start -> first start",
        lambda ph: _fmt(a(ph).mean_stall_s, ".3f"),
    )
    row("  drain: last start -> continued-as-new", lambda ph: _fmt(a(ph).mean_drain_s, ".3f"))
    row("  restart: continued-as-new -> first start", lambda ph: _fmt(a(ph).mean_restart_s, ".3f"))
    row(
        "hand-overs delayed by the server (run < 1 s)",
        lambda ph: f"{a(ph).handovers_delayed_by_server}/{len(a(ph).handovers)}",
    )

    width = max(len(r[0]) for r in rows) + 2
    cw = 17
    lines = [
        f"bench.scale: {opts.pages} pages, parallelism {opts.parallelism}, "
        f"page {opts.page_seconds:g} s (jitter {opts.page_jitter:g}), {opts.chains} chain(s), "
        f"pages_per_run "
        f"{opts.pages_per_run or 'auto (when Temporal suggests)'}",
        "".ljust(width) + "".join(cols[n].rjust(cw) for n in names),
    ]
    lines += [label.ljust(width) + "".join(v.rjust(cw) for v in vals) for label, vals in rows]
    if "ours" in phases and "baseline" in phases:
        ratio = phases["ours"].pages_per_s / phases["baseline"].pages_per_s
        lines.append(f"batch-orchestra pages/s as a fraction of the raw baseline: {ratio:.2f}")
    if opts.page_seconds > 0:
        ideal = opts.parallelism / opts.page_seconds
        for n in names:
            ph = phases[n]
            lines.append(
                f"{cols[n]}: {ph.pages_per_s:.1f} pages/s = {100 * ph.pages_per_s / ideal:.1f}% "
                f"of the ideal {ideal:g} pages/s (parallelism / page_seconds)"
            )
    for n in names:
        hos = a(phases[n]).handovers
        if hos:
            lines.append(
                f"{cols[n]} hand-overs (drain s / restart s / utilisation within +-{w} s): "
                + ", ".join(
                    f"{_fmt(h.drain_s, '.2f')}/{_fmt(h.restart_s, '.2f')}/"
                    f"{100 * h.utilisation_in_window:.0f}%"
                    for h in hos
                )
            )
    for n in names:
        prof = a(phases[n]).profile
        if prof:
            lines.append(
                f"{cols[n]} utilisation around hand-overs (offset from continued-as-new, s: %):"
            )
            lines.append("  " + "  ".join(f"{off:+.2f}:{100 * u:.0f}" for off, u in prof))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pages", type=int, default=2000, help="pages in the batch (N)")
    ap.add_argument("--parallelism", type=int, default=20, help="max_parallelism (P)")
    ap.add_argument(
        "--page-seconds", type=float, default=0.0, help="each page sleeps this long (0: no-op)"
    )
    ap.add_argument(
        "--page-jitter",
        type=float,
        default=0.0,
        help="spread page durations evenly over page_seconds * [1-J, 1+J] "
        "(the same durations in both phases); 0 <= J < 1",
    )
    ap.add_argument(
        "--chains",
        type=int,
        default=None,
        help="independent chains of pages (default: the parallelism)",
    )
    ap.add_argument(
        "--pages-per-run",
        type=int,
        default=None,
        help="continue as new every this many pages, in both phases "
        "(default: when Temporal suggests it)",
    )
    ap.add_argument(
        "--window",
        type=float,
        default=1.0,
        help="seconds either side of a hand-over counted as 'around' it",
    )
    ap.add_argument(
        "--phases", default="baseline,ours", help="which phases to run, in order (baseline,ours)"
    )
    ap.add_argument(
        "--max-concurrent-activities",
        type=int,
        default=None,
        help="worker slots (default max(2*P, 100))",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="per-phase limit, seconds")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of all phases on the same server (order alternates)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    opts = ap.parse_args(argv)
    if opts.chains is None:
        opts.chains = opts.parallelism
    opts.chains = max(1, min(opts.chains, opts.pages))
    if not 0 <= opts.page_jitter < 1:
        ap.error("--page-jitter must be in [0, 1)")
    if opts.pages < 1 or opts.parallelism < 1:
        ap.error("--pages and --parallelism must be >= 1")
    return opts


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    opts = parse_args(argv)
    order = [x.strip() for x in opts.phases.split(",") if x.strip()]
    for name in order:
        if name not in ("ours", "baseline"):
            raise SystemExit(f"unknown phase {name!r}; use ours and/or baseline")
    rounds: list[dict[str, Phase]] = []
    t = time.monotonic()
    async with EmbeddedTemporal() as temporal:
        _log(f"Temporal at {temporal.address} (up in {time.monotonic() - t:.1f}s)")
        for r in range(opts.repeat):
            phases: dict[str, Phase] = {}
            # Alternate the order between rounds so that drift (a warmer server, a busier
            # machine) does not always favour the same phase.
            for name in order if r % 2 == 0 else order[::-1]:
                phases[name] = await run_phase(name, temporal, opts)
            rounds.append(phases)
            if opts.repeat > 1:
                print(f"--- round {r + 1} of {opts.repeat}", flush=True)
            print(render(opts, phases), flush=True)
    ratios = [
        ph["ours"].pages_per_s / ph["baseline"].pages_per_s
        for ph in rounds
        if "ours" in ph and "baseline" in ph
    ]
    if len(ratios) > 1:
        print(
            "batch-orchestra / raw baseline pages/s per round: "
            + ", ".join(f"{x:.2f}" for x in ratios)
            + f"; median {statistics.median(ratios):.2f}",
            flush=True,
        )
    result: dict[str, Any] = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "rounds": [{n: ph.to_dict() for n, ph in phases.items()} for phases in rounds],
        "ours_over_baseline": ratios,
        "ours_over_baseline_median": statistics.median(ratios) if ratios else None,
    }
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2, default=str))
        _log(f"wrote {opts.json}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
