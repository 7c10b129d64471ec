"""Chaos: a batch that must lose nothing while its workers and its server die under it.

    python -m bench.chaos [--pages 20000] [--page-size 10] [--parallelism 30] [--workers 3]
                          [--kill-every 5] [--seed S] [--json out.json]

One batch of at-least-once ``ChaosPages`` (``bench/_chaos_worker.py``) writes every item it
processes to a SQLite file, run by ``--workers`` worker processes on one task queue, while:

* worker 0 is SIGKILLed every ``--kill-every`` seconds (spread by +-50 %, from ``--seed``) and
  restarted; its running pages time out after ``--page-timeout`` and are retried elsewhere;
* the embedded dev server (SQLite file, fixed port) is SIGKILLed once, at
  ``--server-restart-at`` of the pages, and restarted on the same file;
* the batch is paused at ``--pause-at`` of the pages: it must drain (no page processing) and
  complete nothing more while paused; it is resumed ``--pause-seconds`` later.

Client calls that fail while the server is down are retried. At the end the driver kills every
worker, counts the rows, and prints pages completed, items written, items missing (must be 0),
duplicate rows (allowed for at-least-once pages, counted), wall time and the faults injected.
It exits 1 when an item is missing, a page failed, or the batch did not complete (wedged: no page
completed for ``--stall-timeout`` seconds, or past ``--timeout``); it then prints what the
workflow's history says and keeps the working directory (server database and logs) so the run
can be inspected with ``temporal workflow show``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.enums.v1 import TimeoutType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    EmbeddedTemporal,
)
from batch_orchestra.testing import free_port
from bench._chaos_worker import PROCESSOR_NAME, ChaosArgs, create_table

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass
class ChaosConfig:
    """One chaos run. Fractions are of ``pages`` completed; None disables that fault."""

    pages: int = 20_000
    page_size: int = 10
    parallelism: int = 30
    chains: int | None = None
    """Chains the pages are split into (default: one per parallelism slot)."""
    workers: int = 3
    kill_every: float = 5.0
    """Mean seconds between SIGKILLs of worker 0 (0: never)."""
    max_kills: int | None = None
    kill_at: float | None = None
    """Kill as soon as this fraction of pages has completed, then every ``kill_every`` s
    (default: the first kill ``kill_every`` s after the first page completes)."""
    sticky_timeout: float | None = None
    """The workers' ``sticky_queue_schedule_to_start_timeout`` in seconds (None: the SDK's
    10 s). A SIGKILLed worker that held the batch's workflow in its cache stalls the batch
    this long: its sticky queue is not drained to another worker before then."""
    task_timeout: float | None = None
    """The batch's workflow task timeout in seconds (None: Temporal's 10 s). A workflow task
    that a SIGKILLed worker had taken is retried only after it."""
    restart_delay: float = 0.5
    """Seconds a killed worker stays down before it is restarted."""
    server_restart_at: float | None = 0.35
    server_restarts: int = 1
    server_restart_every: float = 0.1
    """Further restarts (``server_restarts`` > 1) come this fraction of pages apart."""
    server_down_seconds: float = 2.0
    all_workers_down_at: float | None = None
    """SIGKILL every worker at once at this fraction of pages (None: never), like losing the
    whole fleet; they come back ``all_workers_down_seconds`` later."""
    all_workers_down_seconds: float = 8.0
    pause_at: float | None = 0.65
    pause_seconds: float = 3.0
    pause_in_outage: bool = False
    """Ask for the pause just after the server is killed (retried until it is back), instead
    of at ``pause_at``."""
    page_timeout: float = 5.0
    pages_per_run: int | None = None
    """Continue as new after this many pages (None: the library's own rule); small values
    put many hand-overs among the kills."""
    page_ms: float = 50.0
    """How long each page sleeps between its enqueue and its write."""
    poll_seconds: float = 1.0
    timeout: float = 1800.0
    stall_timeout: float = 180.0
    """Give up (and report a wedged batch) when no page completes for this long."""
    seed: int | None = None
    workdir: str | None = None
    keep: bool = False


@dataclass
class ChaosReport:
    """What a chaos run did and found."""

    config: dict[str, Any]
    seed: int
    batch_id: str
    workdir: str
    completed: bool = False
    pages_completed: int = 0
    pages_failed: int = 0
    pages_stuck: int = 0
    runs: int = 0
    progress_items: int = 0
    items_expected: int = 0
    items_written: int = 0
    items_distinct: int = 0
    items_missing: int = 0
    missing_sample: list[int] = field(default_factory=list)
    duplicates: int = 0
    pages_written_twice: int = 0
    wall_seconds: float = 0.0
    worker_kills: int = 0
    pages_at_kills: list[int] = field(default_factory=list)
    unexpected_worker_exits: int = 0
    server_restarts: int = 0
    server_down_seconds: float = 0.0
    fleet_kills: int = 0
    pauses: int = 0
    pause_drain_seconds: float = 0.0
    completed_while_paused: int = 0
    auto_pauses: int = 0
    rpc_errors_retried: int = 0
    activity_timeouts: int = 0
    """Page attempts that timed out (mostly those a killed worker held), from history."""
    workflow_task_timeouts: dict[str, int] = field(default_factory=dict)
    """Workflow tasks that timed out, by timeout type, from history: START_TO_CLOSE for a task
    a killed worker had taken, SCHEDULE_TO_START for one left on its sticky queue."""
    workflow_task_failures: int = 0
    problems: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No item missing, no page failed, the batch completed, and the pause held."""
        return not self.problems

    def lines(self) -> list[str]:
        """The human-readable summary."""
        c = self.config
        rate = self.pages_completed / self.wall_seconds if self.wall_seconds else 0.0
        out = [
            f"chaos: {c['pages']} pages x {c['page_size']} items, parallelism {c['parallelism']}, "
            f"{c['workers']} workers, page_timeout {c['page_timeout']} s, page_ms {c['page_ms']}, "
            f"sticky timeout {c['sticky_timeout'] or 'SDK default 10'} s, "
            f"workflow task timeout {c['task_timeout'] or 'default 10'} s, seed {self.seed}",
            f"pages completed        {self.pages_completed} / {c['pages']} "
            f"(failed {self.pages_failed}, stuck {self.pages_stuck}, runs {self.runs})",
            f"items written          {self.items_written} rows, {self.items_distinct} distinct "
            f"(progress counts {self.progress_items})",
            f"items missing          {self.items_missing}"
            + (f" (first: {self.missing_sample})" if self.missing_sample else ""),
            f"duplicates             {self.duplicates} rows "
            f"({self.pages_written_twice} pages written more than once)",
            f"wall time              {self.wall_seconds:.1f} s ({rate:.1f} pages/s)",
            f"worker kills           {self.worker_kills} (SIGKILL of worker 0, "
            f"mean every {c['kill_every']} s)",
            f"unexpected exits       {self.unexpected_worker_exits}",
            f"all workers killed     {self.fleet_kills} times "
            f"(down {c['all_workers_down_seconds']} s each)",
            f"server restarts        {self.server_restarts} "
            f"(down {self.server_down_seconds:.1f} s in all)",
            f"pause/resume           {self.pauses} (drained in {self.pause_drain_seconds:.1f} s, "
            f"{self.completed_while_paused} pages completed while paused and drained)",
            f"auto-pauses resumed    {self.auto_pauses}",
            f"RPC errors retried     {self.rpc_errors_retried}",
            f"from history           {self.activity_timeouts} page attempts timed out, "
            f"workflow tasks timed out {self.workflow_task_timeouts or 0}, "
            f"{self.workflow_task_failures} failed",
        ]
        out += [f"PROBLEM: {p}" for p in self.problems]
        out += [f"  {d}" for d in self.diagnosis]
        out.append("result                 " + ("OK" if self.ok else "FAILED"))
        return out


class _Worker:
    """One worker process slot; its process may be killed and started again."""

    def __init__(
        self,
        slot: int,
        address: str,
        namespace: str,
        task_queue: str,
        log: Path,
        sticky_timeout: float | None,
    ) -> None:
        self.slot = slot
        self._args = [
            sys.executable,
            "-m",
            "bench._chaos_worker",
            "--address",
            address,
            "--namespace",
            namespace,
            "--task-queue",
            task_queue,
        ]
        if sticky_timeout is not None:
            self._args += ["--sticky-timeout", str(sticky_timeout)]
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = asyncio.Lock()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self, timeout: float = 60.0) -> bool:
        """Spawn and wait for ``ready``; False (and nothing left running) if it never came."""
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(
                self._args,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        except asyncio.TimeoutError:
            line = b""
        if b"ready" not in line:
            self.kill()
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the process (and its group) at once."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class _Chaos:
    def __init__(
        self, cfg: ChaosConfig, temporal: EmbeddedTemporal | None, say: Callable[[str], None]
    ) -> None:
        if temporal is not None and cfg.server_restart_at is not None:
            raise ValueError(
                "server_restart_at needs a server this run owns; pass temporal=None "
                "or server_restart_at=None"
            )
        self.cfg = cfg
        self._say = say
        self.seed = cfg.seed if cfg.seed is not None else random.randrange(1 << 31)
        self.rng = random.Random(self.seed)
        self.workdir = Path(cfg.workdir or tempfile.mkdtemp(prefix="chaos-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.own_server = temporal is None
        self.server = temporal or EmbeddedTemporal(
            port=free_port(),
            db_filename=self.workdir / "temporal.db",
            use_env=False,
            log_file=self.workdir / "temporal.log",
        )
        self.batch_id = f"chaos-{uuid.uuid4().hex[:8]}"
        self.task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
        self.items_db = self.workdir / "items.db"
        self.report = ChaosReport(
            config=asdict(cfg),
            seed=self.seed,
            batch_id=self.batch_id,
            workdir=str(self.workdir),
            items_expected=cfg.pages * cfg.page_size,
        )
        self.workers: list[_Worker] = []
        self.handle: BatchOrchestratorHandle | None = None
        self.first_run_id: str | None = None
        self.completed = 0
        self.started = asyncio.Event()
        self.t0 = time.monotonic()

    def say(self, msg: str) -> None:
        self._say(f"[{time.monotonic() - self.t0:7.1f}s] {msg}")

    async def retry(self, what: str, call: Callable[[], Awaitable[T]], within: float = 90.0) -> T:
        """``call()`` until it succeeds (the server may be down), for at most ``within`` s."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await asyncio.wait_for(call(), 15)
            except Exception as err:
                self.report.rpc_errors_retried += 1
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what} kept failing for {within:.0f}s: {err!r}") from err
                await asyncio.sleep(1.0)

    async def progress(self, timeout: float = 10.0) -> BatchOrchestratorProgress | None:
        assert self.handle is not None
        try:
            return await asyncio.wait_for(
                self.handle.get_progress(rpc_timeout=timedelta(seconds=timeout / 2)), timeout
            )
        except Exception:
            self.report.rpc_errors_retried += 1
            return None

    async def run(self) -> ChaosReport:
        cfg, rep = self.cfg, self.report
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.own_server:
                await self.server.start()
            create_table(str(self.items_db))
            self.workers = [
                _Worker(
                    i,
                    self.server.address,
                    self.server.namespace,
                    self.task_queue,
                    self.workdir / f"worker-{i}.log",
                    cfg.sticky_timeout,
                )
                for i in range(cfg.workers)
            ]
            ready = await asyncio.gather(*(w.start() for w in self.workers))
            if not all(ready):
                raise RuntimeError(f"a worker did not start; see {self.workdir}/worker-*.log")
            args = ChaosArgs(
                db=str(self.items_db),
                pages=cfg.pages,
                chains=cfg.chains or cfg.parallelism,
                page_ms=cfg.page_ms,
            )
            task_timeout: dict[str, Any] = {}
            if cfg.task_timeout is not None:
                task_timeout["task_timeout"] = timedelta(seconds=cfg.task_timeout)
            self.t0 = time.monotonic()
            self.handle = await BatchOrchestratorClient(self.server.client).start(
                BatchOrchestratorInput(
                    page_processor=PROCESSOR_NAME,
                    page_size=cfg.page_size,
                    max_parallelism=cfg.parallelism,
                    args=args.to_json(),
                    first_cursor_strs=args.first_cursors(),
                    batch_id=self.batch_id,
                    page_timeout=timedelta(seconds=cfg.page_timeout),
                    pages_per_run=cfg.pages_per_run,
                ),
                id=self.batch_id,
                task_queue=self.task_queue,
                **task_timeout,
            )
            wf = self.handle.workflow_handle
            self.first_run_id = wf.first_execution_run_id or wf.result_run_id or wf.run_id
            self.say(f"started {self.batch_id} (seed {self.seed}, workdir {self.workdir})")
            tasks.append(asyncio.create_task(self._supervise()))
            if cfg.kill_every > 0 and cfg.workers > 1:
                tasks.append(asyncio.create_task(self._kill_loop()))
            final = await self._drive()
            rep.wall_seconds = time.monotonic() - self.t0
            if final is not None:
                rep.completed = final.is_finished
                rep.pages_completed = final.num_completed_pages
                rep.pages_failed = final.num_failed_pages
                rep.pages_stuck = final.num_stuck_pages
                rep.runs = final.num_runs
                rep.progress_items = final.num_completed_items
            if not rep.completed:
                await self._diagnose()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._history_stats(), 120)
        except Exception as err:
            rep.problems.append(f"the run itself failed: {err!r}")
            rep.wall_seconds = time.monotonic() - self.t0
            with contextlib.suppress(Exception):
                await self._diagnose()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
            if self.own_server:
                with contextlib.suppress(Exception):
                    await self.server.stop()
        self._count_items()
        self._judge()
        if rep.ok and not cfg.keep and cfg.workdir is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return rep

    async def _drive(self) -> BatchOrchestratorProgress | None:
        """Poll progress, inject the server restart and the pause, stop when finished."""
        cfg, rep = self.cfg, self.report
        deadline = self.t0 + cfg.timeout
        last_change, last_completed = time.monotonic(), -1
        restarts_at = (
            []
            if cfg.server_restart_at is None
            else [
                cfg.server_restart_at + k * cfg.server_restart_every
                for k in range(cfg.server_restarts)
            ]
        )
        pause_done = cfg.pause_at is None or cfg.pause_in_outage
        fleet_done = cfg.all_workers_down_at is None
        next_log = 0.0
        while time.monotonic() < deadline:
            await asyncio.sleep(cfg.poll_seconds)
            p = await self.progress()
            if p is None:
                if await self._closed_badly():
                    return None
                continue
            if p.is_finished:
                self.completed = p.num_completed_pages
                self.say(f"finished: {p.num_completed_pages} pages")
                return p
            self.completed = p.num_completed_pages
            if self.completed > 0:
                self.started.set()
            now = time.monotonic()
            if self.completed != last_completed:
                last_completed, last_change = self.completed, now
            elif now - last_change > cfg.stall_timeout:
                rep.problems.append(
                    f"wedged: no page completed for {cfg.stall_timeout:.0f}s "
                    f"(stuck at {self.completed} completed, {p.num_processing_pages} processing, "
                    f"{p.num_pending_pages} pending, {p.num_stuck_pages} stuck)"
                )
                return p
            if now >= next_log:
                next_log = now + 10
                self.say(
                    f"{p.num_completed_pages} completed, {p.num_processing_pages} processing, "
                    f"{p.num_pending_pages} pending, {p.num_stuck_pages} stuck, "
                    f"{p.num_failed_pages} failed, run {p.num_runs}"
                )
            if p.is_paused:
                rep.auto_pauses += 1
                self.say(
                    f"the batch paused itself ({getattr(p, 'pause_reason', None)!r}); "
                    "resuming it as an operator would"
                )
                await self.retry("resume", self._resume)
                last_change = time.monotonic()
                continue
            if not fleet_done and self.completed >= cfg.all_workers_down_at * cfg.pages:
                fleet_done = True
                await self._kill_all_workers()
                last_change = time.monotonic()
            elif restarts_at and self.completed >= restarts_at[0] * cfg.pages:
                restarts_at.pop(0)
                await self._restart_server()
                last_change = time.monotonic()
            elif not pause_done and self.completed >= cfg.pause_at * cfg.pages:
                pause_done = True
                await self._pause_resume()
                last_change = time.monotonic()
        rep.problems.append(f"the batch did not finish within {cfg.timeout:.0f}s")
        return await self.progress()

    async def _closed_badly(self) -> bool:
        try:
            desc = await asyncio.wait_for(self._workflow().describe(), 10)
        except Exception:
            return False
        if desc.status in (
            None,
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.COMPLETED,
            WorkflowExecutionStatus.CONTINUED_AS_NEW,
        ):
            return False
        self.report.problems.append(f"the batch's workflow closed as {desc.status.name}")
        return True

    def _workflow(self) -> WorkflowHandle[Any, Any]:
        """The batch's latest run."""
        return self.server.client.get_workflow_handle(self.batch_id)

    async def _pause(self) -> Any:
        assert self.handle is not None  # the latest, replaced when the server restarts
        return await self.handle.pause(rpc_timeout=timedelta(seconds=10))

    async def _resume(self) -> Any:
        assert self.handle is not None
        return await self.handle.resume(rpc_timeout=timedelta(seconds=10))

    async def _restart_server(self) -> None:
        self.say(f"SIGKILL the dev server at {self.completed} completed pages")
        down = time.monotonic()
        self.server.kill()
        pause = None
        if self.cfg.pause_in_outage and self.report.server_restarts == 0:
            pause = asyncio.create_task(self._pause_resume())
        while (left := self.cfg.server_down_seconds - (time.monotonic() - down)) > 0:
            await self.progress(timeout=max(0.1, min(1.0, left)))  # fails: counted
            await asyncio.sleep(min(0.5, max(0.0, left - 1.0)))
        await self.server.start()
        this_down = time.monotonic() - down
        self.report.server_down_seconds += this_down
        self.report.server_restarts += 1
        self.handle = BatchOrchestratorClient(self.server.client).get_handle(self.batch_id)
        self.say(f"dev server back after {this_down:.1f}s")
        if pause is not None:
            await pause

    async def _kill_all_workers(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            for w in self.workers:
                await stack.enter_async_context(w.lock)
            self.say(f"SIGKILL all {len(self.workers)} workers at {self.completed} completed pages")
            for w in self.workers:
                w.kill()
            self.report.fleet_kills += 1
            await asyncio.sleep(self.cfg.all_workers_down_seconds)
            ready = await asyncio.gather(*(w.start() for w in self.workers))
            self.say(f"workers back ({sum(ready)} of {len(ready)} ready)")

    async def _pause_resume(self) -> None:
        cfg, rep = self.cfg, self.report
        self.say(f"pause at {self.completed} completed pages")
        await self.retry("pause", self._pause)
        rep.pauses += 1
        t = time.monotonic()
        drain_limit = cfg.page_timeout + 30.0
        drained: BatchOrchestratorProgress | None = None
        while time.monotonic() - t < drain_limit:
            p = await self.progress()
            if p is not None and p.num_processing_pages == 0:
                drained = p
                break
            await asyncio.sleep(0.2)
        rep.pause_drain_seconds = time.monotonic() - t
        if drained is None:
            rep.problems.append(f"paused, but pages were still processing after {drain_limit:.0f}s")
        else:
            await asyncio.sleep(cfg.pause_seconds)
            after = await self.retry("progress", self._progress_or_raise)
            rep.completed_while_paused += after.num_completed_pages - drained.num_completed_pages
            self.say(
                f"paused and drained in {rep.pause_drain_seconds:.1f}s; "
                f"{rep.completed_while_paused} pages completed while paused"
            )
        await self.retry("resume", self._resume)
        self.say("resumed")

    async def _progress_or_raise(self) -> BatchOrchestratorProgress:
        p = await self.progress()
        if p is None:
            raise RuntimeError("progress unavailable")
        return p

    async def _kill_loop(self) -> None:
        cfg, rep = self.cfg, self.report
        victim = self.workers[0]
        await self.started.wait()
        if cfg.kill_at is not None:
            while self.completed < cfg.kill_at * cfg.pages:
                await asyncio.sleep(0.05)
        while cfg.max_kills is None or rep.worker_kills < cfg.max_kills:
            if rep.worker_kills or cfg.kill_at is None:
                await asyncio.sleep(cfg.kill_every * self.rng.uniform(0.5, 1.5))
            async with victim.lock:
                if not victim.alive():
                    continue  # the supervisor will bring it back
                victim.kill()
                rep.worker_kills += 1
                rep.pages_at_kills.append(self.completed)
                self.say(
                    f"SIGKILL worker 0 (kill {rep.worker_kills}) at about "
                    f"{self.completed} completed pages"
                )
                await asyncio.sleep(cfg.restart_delay)
                if not await victim.start():
                    self.say("worker 0 did not restart; the supervisor will retry")

    async def _supervise(self) -> None:
        """Restart any worker that died without being killed by the chaos (and count it)."""
        while True:
            await asyncio.sleep(1.0)
            for w in self.workers:
                if w.alive() or w.lock.locked():
                    continue
                async with w.lock:
                    code = w.proc.returncode if w.proc is not None else None
                    self.report.unexpected_worker_exits += 1
                    self.say(f"worker {w.slot} exited by itself (code {code}); restarting it")
                    await w.start()

    async def _diagnose(self) -> None:
        """What the workflow's latest run says: status, pending work, workflow task failures."""
        rep = self.report
        wf = self._workflow()
        desc = await asyncio.wait_for(wf.describe(), 15)
        rep.diagnosis.append(
            f"workflow {self.batch_id} run {desc.run_id}: status "
            f"{desc.status.name if desc.status else None}, history length {desc.history_length}, "
            f"{len(desc.raw_description.pending_activities)} pending activities"
        )
        history = await asyncio.wait_for(wf.fetch_history(), 60)
        failures = [
            e for e in history.events if e.HasField("workflow_task_failed_event_attributes")
        ]
        if failures:
            last = failures[-1].workflow_task_failed_event_attributes
            rep.diagnosis.append(
                f"{len(failures)} WorkflowTaskFailed events; the last: cause {last.cause}, "
                f"{last.failure.message[:500]!r}"
            )
        if self.own_server:
            rep.diagnosis.append(
                f"inspect: temporal server start-dev --headless --db-filename "
                f"{self.workdir / 'temporal.db'} --port {self.server.address.split(':')[-1]} & "
                f"temporal workflow show -w {self.batch_id} --address {self.server.address}"
            )

    async def _history_stats(self) -> None:
        """Timeouts and workflow task failures over every run of the batch."""
        rep, client = self.report, self.server.client
        run_id = self.first_run_id
        while run_id:
            history = await client.get_workflow_handle(self.batch_id, run_id=run_id).fetch_history()
            run_id = None
            for e in history.events:
                if e.HasField("activity_task_timed_out_event_attributes"):
                    rep.activity_timeouts += 1
                elif e.HasField("workflow_task_timed_out_event_attributes"):
                    kind = TimeoutType.Name(e.workflow_task_timed_out_event_attributes.timeout_type)
                    kind = kind.removeprefix("TIMEOUT_TYPE_")
                    rep.workflow_task_timeouts[kind] = rep.workflow_task_timeouts.get(kind, 0) + 1
                elif e.HasField("workflow_task_failed_event_attributes"):
                    rep.workflow_task_failures += 1
                elif e.HasField("workflow_execution_continued_as_new_event_attributes"):
                    attrs = e.workflow_execution_continued_as_new_event_attributes
                    run_id = attrs.new_execution_run_id

    def _count_items(self) -> None:
        rep, cfg = self.report, self.cfg
        expected = rep.items_expected
        if not self.items_db.exists():
            rep.items_missing = expected
            return
        with contextlib.closing(sqlite3.connect(self.items_db, timeout=60)) as conn:
            rep.items_written = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            present = {r[0] for r in conn.execute("SELECT DISTINCT item FROM items")}
            rep.pages_written_twice = conn.execute(
                "SELECT COUNT(*) FROM (SELECT page FROM items GROUP BY page HAVING COUNT(*) > ?)",
                (cfg.page_size,),
            ).fetchone()[0]
        rep.items_distinct = len(present)
        missing = [i for i in range(expected) if i not in present]
        rep.items_missing = len(missing)
        rep.missing_sample = missing[:10]
        rep.duplicates = rep.items_written - rep.items_distinct

    def _judge(self) -> None:
        rep, cfg = self.report, self.cfg
        if rep.items_missing:
            rep.problems.append(f"{rep.items_missing} items missing")
        if not rep.completed:
            rep.problems.append("the batch did not complete")
        if rep.pages_failed:
            rep.problems.append(f"{rep.pages_failed} pages failed")
        if rep.completed and rep.pages_completed != cfg.pages:
            rep.problems.append(f"{rep.pages_completed} pages completed, expected {cfg.pages}")
        if rep.completed_while_paused:
            rep.problems.append(f"{rep.completed_while_paused} pages completed while paused")


async def run_chaos(
    cfg: ChaosConfig,
    temporal: EmbeddedTemporal | None = None,
    say: Callable[[str], None] = print,
) -> ChaosReport:
    """Run one chaos batch and return what it found.

    Args:
        cfg: the run's shape and faults.
        temporal: a running server to use (then ``cfg.server_restart_at`` must be None); by
            default the run starts and owns a dev server on a SQLite file in its workdir.
        say: where progress lines go.
    """
    return await _Chaos(cfg, temporal, say).run()


def _parse_args(argv: list[str] | None) -> tuple[ChaosConfig, str | None]:
    d = ChaosConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pages", type=int, default=d.pages)
    p.add_argument("--page-size", type=int, default=d.page_size)
    p.add_argument("--parallelism", type=int, default=d.parallelism)
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument(
        "--kill-every",
        type=float,
        default=d.kill_every,
        help="mean seconds between SIGKILLs of worker 0 (0: none)",
    )
    p.add_argument("--max-kills", type=int, default=None)
    p.add_argument(
        "--kill-at",
        type=float,
        default=None,
        help="fraction of pages completed at which the first kill happens",
    )
    p.add_argument(
        "--sticky-timeout",
        type=float,
        default=None,
        help="workers' sticky_queue_schedule_to_start_timeout, s (SDK default 10)",
    )
    p.add_argument(
        "--task-timeout",
        type=float,
        default=None,
        help="the batch's workflow task timeout, s (Temporal's default 10)",
    )
    p.add_argument(
        "--server-restart-at",
        type=float,
        default=d.server_restart_at,
        help="fraction of pages completed at which the server is killed (<0: never)",
    )
    p.add_argument("--server-restarts", type=int, default=d.server_restarts)
    p.add_argument(
        "--server-restart-every",
        type=float,
        default=d.server_restart_every,
        help="fraction of pages between server restarts",
    )
    p.add_argument(
        "--all-workers-down-at",
        type=float,
        default=-1.0,
        help="fraction of pages at which every worker is SIGKILLed (<0: never)",
    )
    p.add_argument(
        "--all-workers-down",
        type=float,
        default=d.all_workers_down_seconds,
        help="seconds every worker stays down",
    )
    p.add_argument("--server-down", type=float, default=d.server_down_seconds)
    p.add_argument(
        "--pause-at",
        type=float,
        default=d.pause_at,
        help="fraction of pages completed at which the batch is paused (<0: never)",
    )
    p.add_argument("--pause-seconds", type=float, default=d.pause_seconds)
    p.add_argument(
        "--pause-in-outage",
        action="store_true",
        help="pause just after the server is killed (retried until it is back)",
    )
    p.add_argument("--page-timeout", type=float, default=d.page_timeout)
    p.add_argument("--pages-per-run", type=int, default=None)
    p.add_argument("--page-ms", type=float, default=d.page_ms)
    p.add_argument("--poll-seconds", type=float, default=d.poll_seconds)
    p.add_argument("--timeout", type=float, default=d.timeout)
    p.add_argument("--stall-timeout", type=float, default=d.stall_timeout)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workdir", default=None)
    p.add_argument("--keep", action="store_true", help="keep the workdir even when all is well")
    p.add_argument("--json", default=None, help="write the report as JSON here too")
    o = p.parse_args(argv)
    cfg = ChaosConfig(
        pages=o.pages,
        page_size=o.page_size,
        parallelism=o.parallelism,
        chains=o.chains,
        workers=o.workers,
        kill_every=o.kill_every,
        max_kills=o.max_kills,
        kill_at=o.kill_at,
        sticky_timeout=o.sticky_timeout,
        task_timeout=o.task_timeout,
        server_restart_at=o.server_restart_at if o.server_restart_at >= 0 else None,
        all_workers_down_at=o.all_workers_down_at if o.all_workers_down_at >= 0 else None,
        all_workers_down_seconds=o.all_workers_down,
        server_restarts=o.server_restarts,
        server_restart_every=o.server_restart_every,
        server_down_seconds=o.server_down,
        pause_at=o.pause_at if o.pause_at >= 0 else None,
        pause_seconds=o.pause_seconds,
        pause_in_outage=o.pause_in_outage,
        page_timeout=o.page_timeout,
        page_ms=o.page_ms,
        pages_per_run=o.pages_per_run,
        poll_seconds=o.poll_seconds,
        timeout=o.timeout,
        stall_timeout=o.stall_timeout,
        seed=o.seed,
        workdir=o.workdir,
        keep=o.keep,
    )
    return cfg, o.json


async def _main(argv: list[str] | None = None) -> int:
    cfg, json_path = _parse_args(argv)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    report = await run_chaos(cfg, say=lambda line: print(line, flush=True))
    print("\n".join(report.lines()), flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(asdict(report), indent=2) + "\n")
    if not report.ok:
        print(f"kept {report.workdir} (server database, server and worker logs, items.db)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
