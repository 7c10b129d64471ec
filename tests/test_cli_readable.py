"""The command line's output for people: ``list`` at 80 columns, one-line and grouped errors in
``status`` (``--full`` for all of it), Ctrl-C in ``--watch``, the worker's log, the demo's hint.

Against the real dev server, through click's runner or a subprocess, as in tests/test_cli.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from temporalio.service import RPCError

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorProgress, EmbeddedTemporal
from batch_orchestra._model import ErrorCount
from batch_orchestra._read import (
    BatchView,
    group_errors,
    normalize_message,
    one_line,
    progress_line,
)
from batch_orchestra.cli._list import render_batch_list, short_time, wrap_parts
from batch_orchestra.cli._logging import LOG_FORMAT, AttemptFailureFilter
from batch_orchestra.testing import free_port
from tests.helpers import assert_eventually, batch_id
from tests.test_cli import ROOT, _read_until, _spawn, assert_ok, run_cli, start_args

HTTP_500 = (
    "HTTP 500 Internal Server Error for url https://api.example.com/v1/items/{page}?try=3\n"
    "<html><head><title>500</title></head>\n<body>request {page}f3a9c2e1b2d4c5e8 failed"
    "</body></html>"
)


def _view(wid: str, status: str = "COMPLETED", **progress: Any) -> BatchView:
    fields = {
        "num_completed_pages": 120,
        "num_completed_items": 12_000,
        "total_items": 20_000,
        "max_parallelism": 8,
        "percent_complete": 60.0,
        "items_per_second": 1234.5,
        "pages_per_second": 12.3,
        "eta_seconds": 65.0,
        "num_processing_pages": 8,
        "num_failed_pages": 2,
        **progress,
    }
    return BatchView(
        id=wid,
        status=status,
        task_queue="q",
        url=f"http://ui/{wid}",
        progress=BatchOrchestratorProgress(**fields),
    )


def _printed(renderable: Any, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_list_layout_fits_80_columns_without_cutting() -> None:
    started = datetime(2026, 12, 1, 20, 55, 7, tzinfo=timezone.utc)
    rows = [
        (_view("prices-demo", "RUNNING"), started),
        (_view("nightly-backfill-eu", "COMPLETED", is_finished=True, eta_seconds=None), started),
    ]
    wide = _printed(render_batch_list(rows, 200), 200)
    assert rows[0][0].progress is not None
    assert "12-01 20:55" in wide[1] and progress_line(rows[0][0].progress) in wide[1]
    for width in (80, 60):
        lines = _printed(render_batch_list(rows, width), width)
        assert all(len(line) <= width for line in lines), lines
        assert not any("…" in line for line in lines)
        text = "\n".join(lines)
        for view, _ in rows:
            assert view.id in text
            assert view.progress is not None
            for part in progress_line(view.progress).split(" · "):
                assert part in text, (part, lines)  # a piece wraps whole, never cut
        assert "RUNNING" in text and "COMPLETED" in text
    # An ID too long to share a line: a block per batch, the ID on its own line.
    long_id = "inflate-prices-2026-12-01-nightly_backfill/eu-west-1-with-a-long-suffix"
    lines = _printed(render_batch_list([(_view(long_id), started)], 80), 80)
    assert lines[0] == long_id and all(len(line) <= 80 for line in lines)
    assert "COMPLETED" in lines[1] and "started 12-01 20:55 UTC" in lines[1]


def test_short_times_and_wrapping() -> None:
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    assert short_time(datetime(2026, 12, 1, 20, 55, tzinfo=timezone.utc), now) == "12-01 20:55"
    assert short_time(datetime(2025, 3, 4, 5, 6, tzinfo=timezone.utc), now) == "2025-03-04"
    assert short_time(None) == "-"
    assert wrap_parts(["45%", "90 pages done", "900/2,000 items"], 22) == [
        "45% · 90 pages done ·",
        "900/2,000 items",
    ]
    assert wrap_parts(["a-very-long-piece-of-text"], 5) == ["a-very-long-piece-of-text"]
    assert wrap_parts(["1%", "120 pages done (8 running, 2 failed)", "9 items"], 20) == [
        "1% · 120 pages",
        "done (8 running, 2",
        "failed) · 9 items",
    ]


async def test_list_at_80_columns(
    temporal: EmbeddedTemporal, new_worker: Callable[..., Any], task_queue: str
) -> None:
    wid = batch_id()
    async with new_worker():
        assert_ok(
            await run_cli(temporal, *start_args("CliSleepy", wid, task_queue, pages=3), "--watch")
        )
    out = assert_ok(await run_cli(temporal, "list", "--limit", "100", columns=80))
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    at = next(i for i, line in enumerate(lines) if wid in line)
    block = " ".join(lines[at : at + 3])
    assert "COMPLETED" in block and "3 pages done" in block and "30 items" in block
    assert "…" not in block  # (another batch's long failure message is cut; progress never)
    assert re.search(r"\b\d\d-\d\d \d\d:\d\d\b", out) and not re.search(r"\d{4}-\d\d-\d\d \d", out)


def test_errors_are_grouped_by_their_shape() -> None:
    assert normalize_message(
        "HTTP 500 for https://api.x/items/17?a=1 id 7f3a9c2e-1b2d-4c5e-8f9a-0b1c2d3e4f5a "
        "object 9f86d081884c7d65 at 0x7f12ab, took 1.5s"
    ) == ("HTTP <n> for <url> id <uuid> object <hex> at <hex>, took <n>s")
    assert normalize_message("row deadbeef missing") == "row deadbeef missing"  # a word
    errors = [
        ErrorCount(error_type="HTTPError", error_message=HTTP_500.format(page=p), pages=n)
        for p, n in ((2, 1), (3, 3), (4, 1))
    ] + [
        ErrorCount(error_type="KeyError", error_message="'sku'", pages=2),
        ErrorCount(error_type="HTTPError", error_message="HTTP 404", pages=1),
    ]
    groups = group_errors(errors)
    assert [(g.error_type, g.pages, g.variants) for g in groups] == [
        ("HTTPError", 5, 3),
        ("KeyError", 2, 1),
        ("HTTPError", 1, 1),
    ]
    assert groups[0].sample == HTTP_500.format(page=3)  # the one most pages hold
    assert one_line(HTTP_500) == (
        "HTTP 500 Internal Server Error for url https://api.example.com/v1/items/{page}?try=3 …"
    )
    assert one_line("a\n b", 3) == "a …" and one_line("abcdef", 4) == "abc…"


async def test_status_shows_errors_on_one_line_and_full_whole(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    broken = (2, 3, 4, 5)
    fail = {str(p): {"attempts": 10_000, "message": HTTP_500.format(page=p)} for p in broken}
    async with new_worker():
        handle = await orchestra.start(
            # Failed for good (no extended retries), so the four stay put while status reads them.
            _scripted_input(json.dumps({"n": 100, "fail": fail}), "ScriptedNoExtended"),
            id=wid,
            task_queue=task_queue,
        )

        async def all_held() -> None:
            p = await handle.get_progress()
            assert p.num_failed_pages == len(broken), p
            assert sum(e.pages for e in p.errors) == len(broken)

        await assert_eventually(all_held)
        out = assert_ok(await run_cli(temporal, "status", wid, columns=100))
        full = assert_ok(await run_cli(temporal, "status", wid, "--full", columns=100))
        # The batch may have finished meanwhile (its other pages done): nothing to terminate.
        with contextlib.suppress(RPCError):
            await handle.workflow_handle.terminate()
    assert all(len(line) <= 100 for line in out.splitlines())
    assert "<html>" not in out and "</body>" not in out  # only each message's first line
    assert f"whole messages: batch-orchestra status {wid} --full" in out
    group = [line for line in out.splitlines() if re.search(r"│\s+4 │ ValueError\s+│\s+4 │", line)]
    assert len(group) == 1, out  # 4 pages, 4 messages that differ only in their URL and ID
    assert out.count("HTTP 500 Internal") == 1 + len(broken)  # the sample, and one line a page
    words = " ".join(full.replace("│", " ").split())
    for p in broken:
        assert f"request {p}f3a9c2e1b2d4c5e8 failed</body></html>" in words, full
    assert "--full" not in full


def _scripted_input(args: str, processor: str = "Scripted") -> Any:
    from batch_orchestra import BatchOrchestratorInput

    return BatchOrchestratorInput(
        page_processor=processor, page_size=1, max_parallelism=4, args=args
    )


async def test_ctrl_c_stops_watch_with_130(
    temporal: EmbeddedTemporal, new_worker: Callable[..., Any], task_queue: str
) -> None:
    wid = batch_id()
    async with new_worker():
        assert_ok(
            await run_cli(temporal, *start_args("CliSleepy", wid, task_queue, pages=500, sleep=0.2))
        )
        proc = await _spawn(
            "status", wid, "--watch", "--interval", "0.2", "--address", temporal.address
        )
        try:
            await _read_until(proc, "RUNNING")  # watching: a line per refresh
            proc.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
        await temporal.client.get_workflow_handle(wid).terminate()
    assert proc.returncode == 130, rest.decode()
    assert f"stopped watching; batch {wid!r} keeps running" in rest.decode()


async def test_worker_logs_one_line_per_failed_attempt(
    temporal: EmbeddedTemporal, orchestra: BatchOrchestratorClient, task_queue: str
) -> None:
    proc = await _spawn(
        "worker",
        "tests.cli_processors",
        "--task-queue",
        task_queue,
        "--address",
        temporal.address,
        "--namespace",
        temporal.namespace,
    )
    flaky, failing = batch_id(), batch_id()
    try:
        await _read_until(proc, "worker polling")
        for wid, processor, args in (
            (flaky, "CliFlaky", {"fail_page": 1, "fail_attempts": 2}),
            (failing, "CliFailing", {"fail_page": 2}),
        ):
            assert_ok(
                await run_cli(temporal, *start_args(processor, wid, task_queue, pages=4, **args))
            )
        assert (await orchestra.get_handle(flaky).result()).num_completed_pages == 4
        assert (await orchestra.get_handle(failing).result()).num_failed_pages == 1
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = rest.decode()
    retried = [line for line in log.splitlines() if "HTTP 503" in line]
    assert [line.split(" WARNING temporalio.activity: ")[1] for line in retried] == [
        f"page 1 of batch {flaky!r} failed (attempt {n}): ConnectionError: HTTP 503 from "
        "https://api.example/items/1 …"
        for n in (1, 2)
    ], log  # one line per failed attempt, no second line for the same
    broken = [line for line in log.splitlines() if "boom: page 2 is broken" in line]
    assert len(broken) == 2, log
    assert broken[0].endswith(
        f"WARNING temporalio.activity: page 2 of batch {failing!r} failed (attempt 1): "
        "RuntimeError: boom: page 2 is broken"
    )
    assert broken[1].endswith(
        f"ERROR temporalio.workflow: page 2 of batch {failing!r} failed for good: "
        "RuntimeError: boom: page 2 is broken"
    )
    assert "Traceback" not in log and "<html>" not in log
    assert "HTTP Request" not in log  # a third-party library's INFO line
    assert "INFO batch_orchestra.page: walking page 3" in log  # the processor's own INFO line


def test_attempt_failure_keeps_its_traceback_at_debug() -> None:
    def record() -> logging.LogRecord:
        try:
            raise RuntimeError("HTTP 500\n<html>body</html>")
        except RuntimeError:
            exc_info = sys.exc_info()
        rec = logging.LogRecord(
            "temporalio.activity", logging.WARNING, __file__, 1, "Completing activity as failed",
            None, exc_info,
        )  # fmt: skip
        rec.__dict__["__temporal_error_identifier"] = "ActivityFailure"
        rec.temporal_activity = {"activity_id": "page-7-attempt-3", "workflow_id": "b"}
        return rec

    for traceback in (False, True):
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(AttemptFailureFilter(traceback=traceback))
        handler.handle(record())
        text = out.getvalue()
        assert "page 7 of batch 'b' failed (attempt 3): RuntimeError: HTTP 500 …" in text
        assert ("Traceback" in text) is traceback


async def test_demo_hint_names_a_command_that_works(temporal: EmbeddedTemporal) -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal.address}
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "samples.inflate_prices.demo",
        "--products",
        "300",
        "--page-size",
        "100",
        "--io-delay",
        "0",
        "--no-hold",
        "--dashboard-port",
        str(free_port()),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(demo.communicate(), 120)
    assert demo.returncode == 0, out.decode()
    hint = re.search(r"too quick to catch\? run `(make demo [^`]+)`", out.decode())
    assert hint, out.decode()
    argv = shlex.split(hint.group(1))
    dry = subprocess.run(
        [*argv, "-n"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    line = next(x for x in dry.stdout.splitlines() if "-m samples.inflate_prices.demo" in x)
    from samples.inflate_prices.demo import parse_args

    opts = parse_args(shlex.split(line.split("samples.inflate_prices.demo", 1)[1]))
    assert opts.io_delay == 2.0 and opts.hold is True


def _stuck_page() -> Any:
    from batch_orchestra._model import PageFailure

    at = datetime(2026, 12, 1, 20, 55, tzinfo=timezone.utc)
    return PageFailure(
        page_num=0,
        cursor_str="c",
        attempts=3,
        error_type="Boom",
        error_message="boom",
        failed_at=at,
        next_retry_at=at,
    )


def test_an_ended_batch_shows_no_pause_and_a_paused_one_no_retry_time() -> None:
    from batch_orchestra.cli._render import render_status

    reason = "no progress: ... then resume the batch"
    paused = {"is_paused": True, "pause_reason": reason, "no_progress": reason}
    done = _view("b", "COMPLETED", is_finished=True, max_parallelism=4, **paused)
    text = "\n".join(_printed(render_status(done), 120))
    assert "COMPLETED" in text and "parallelism  4," in text
    assert "paused" not in text and "resume" not in text and "no progress" not in text

    waiting = _view("b", "RUNNING", stuck_pages=[_stuck_page()], num_stuck_pages=1, **paused)
    text = "\n".join(_printed(render_status(waiting), 120))
    assert "PAUSED" in text and "on resume" in text and "20:55:00 UTC" not in text


def test_counts_of_one_are_singular() -> None:
    one = _view("b", "RUNNING", num_completed_pages=1, num_completed_items=1, total_items=None)
    assert one.progress is not None
    line = progress_line(one.progress)
    assert "1 page done" in line and "1 item" in line and "1 items" not in line


async def test_status_says_when_a_batch_is_discovery_bound(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    """Two chains whose pages find their successor only after 0.2 s of work keep about 2 of a
    cap of 20 running: status says the batch is discovery-bound and what fills the cap."""
    from batch_orchestra import BatchOrchestratorInput

    wid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="LateEnqueue",
        page_size=1,
        max_parallelism=20,
        args=json.dumps({"n": 100_000, "sleep": 0.2, "tag": wid}),
        first_cursor_strs=[f"{wid}:0", f"{wid}:50000"],
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=wid, task_queue=task_queue)

        async def told() -> str:
            out = assert_ok(await run_cli(temporal, "status", wid, columns=200))
            assert "discovery-bound: " in out, out
            return out

        out = await assert_eventually(told, timeout=60, interval=0.5)
        p = await handle.get_progress()
        await handle.workflow_handle.terminate()
    words = " ".join(out.replace("│", " ").split())
    assert re.search(r"discovery-bound: [0-9] of 20 running, nothing pending", words), words
    assert "2 open chains" in words and "docs/tuning.md" in words
    assert p.discovery_bound is not None or p.num_processing_pages > 10
