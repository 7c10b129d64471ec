"""The ``batch-orchestra`` command line, driven through click's runner against the real dev server.

The runner calls ``asyncio.run`` inside the command, so it runs in a thread while the worker
runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from temporalio.client import WorkflowExecutionStatus

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorProgress, EmbeddedTemporal
from batch_orchestra.cli import cli
from batch_orchestra.testing import free_port
from tests.cli_processors import STARTS
from tests.helpers import assert_eventually, batch_id

ROOT = Path(__file__).resolve().parent.parent
PROGRESS_FIELDS = {f.name for f in dataclasses.fields(BatchOrchestratorProgress)}


async def run_cli(temporal: EmbeddedTemporal | None, *args: str, columns: int = 200) -> Result:
    """Invoke the CLI; with ``temporal``, pointed at the test server."""
    argv = list(args)
    if temporal is not None:
        argv += ["--address", temporal.address, "--namespace", temporal.namespace]
    # COLUMNS: rich wraps at 80 columns off a terminal; wide rows keep assertions simple.
    runner = CliRunner(env={"COLUMNS": str(columns)})
    return await asyncio.to_thread(runner.invoke, cli, argv)


def assert_ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def assert_error(result: Result, message: str, code: int = 1) -> None:
    """Exit code ``code`` and one clear line on stderr, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if code == 1:
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr


def start_args(processor: str, wid: str, task_queue: str, **args: Any) -> list[str]:
    return [
        "start",
        processor,
        "--page-size",
        "10",
        "--max-parallelism",
        "2",
        "--args",
        json.dumps({"key": wid, **args}),
        "--id",
        wid,
        "--task-queue",
        task_queue,
    ]


async def status_json(temporal: EmbeddedTemporal, wid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(assert_ok(await run_cli(temporal, "status", wid, "--json")))
    return data


async def test_start_status_json_and_list(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    async with new_worker():
        out = assert_ok(
            await run_cli(
                temporal,
                *start_args("CliSleepy", wid, task_queue, pages=8, sleep=0.05),
                "--max-parallelism",
                "3",
            )
        )
        assert f"started batch {wid!r}: processor CliSleepy, page size 10, parallelism 3" in out
        assert f"http://localhost:8233/namespaces/{temporal.namespace}/workflows/{wid}" in out
        assert "picked up by a worker" in out
        await orchestra.get_handle(wid).result()

        data = await status_json(temporal, wid)
        assert set(data) == PROGRESS_FIELDS
        assert data["num_completed_pages"] == 8
        assert data["num_completed_items"] == 80
        assert data["is_finished"] is True
        assert data["num_processing_pages"] == data["num_pending_pages"] == 0
        assert data["num_failed_pages"] == data["num_stuck_pages"] == 0
        assert data["max_parallelism"] == 3
        assert 1 <= data["max_parallelism_achieved"] <= 3
        assert data["total_items"] is None and data["eta_seconds"] is None
        assert datetime.fromisoformat(data["start_time"]).tzinfo is not None

        out = assert_ok(await run_cli(temporal, "status", wid))
        assert "COMPLETED" in out and "8 done" in out
        assert f"/namespaces/{temporal.namespace}/workflows/{wid}" in out

        out = assert_ok(await run_cli(temporal, "list", "--limit", "100"))
        row = next(line for line in out.splitlines() if wid in line)
        assert "COMPLETED" in row and "8 pages done" in row and "80 items" in row


async def test_start_refuses_a_misspelled_args_key_of_the_sample(
    temporal: EmbeddedTemporal, task_queue: str
) -> None:
    import samples.inflate_prices.processor  # noqa: F401  (registers InflateProductPrices)

    args = json.dumps({"db_path": "x.db", "percentage": 20})
    result = await run_cli(
        temporal,
        *["start", "InflateProductPrices", "--page-size", "10", "--max-parallelism", "1"],
        *["--args", args, "--task-queue", task_queue],
    )
    assert_error(result, "unknown key(s) ['percentage']")
    assert (
        "did you mean 'percent'?" in result.stderr and "fields: db_path, percent" in result.stderr
    )


async def test_start_watch_follows_the_batch_to_the_end(
    temporal: EmbeddedTemporal, new_worker: Callable[..., Any], task_queue: str
) -> None:
    wid = batch_id()
    async with new_worker():
        out = assert_ok(
            await run_cli(
                temporal,
                *start_args("CliSleepy", wid, task_queue, pages=4, sleep=0.05),
                "--watch",
                "--interval",
                "0.2",
            )
        )
    assert f"batch {wid}  COMPLETED" in out
    assert "4 done · 0 running · 0 pending (0 retrying) · 0 stuck · 0 failed" in out


async def test_pause_resume_set_parallelism(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    handle = orchestra.get_handle(wid)
    async with new_worker():
        assert_ok(
            await run_cli(temporal, *start_args("CliSleepy", wid, task_queue, pages=30, sleep=0.2))
        )

        async def some_done() -> None:
            assert (await handle.get_progress()).num_completed_pages >= 2

        await assert_eventually(some_done)
        out = assert_ok(await run_cli(temporal, "pause", wid))
        assert f"paused batch {wid!r} (resume returns to parallelism 2)" in out
        at_pause = await handle.get_progress()

        async def drained() -> BatchOrchestratorProgress:
            p = await handle.get_progress()
            assert p.num_processing_pages == 0
            return p

        p = await assert_eventually(drained)
        # Only the pages running when the pause was acknowledged finished; none started since.
        assert p.num_completed_pages <= at_pause.num_completed_pages + at_pause.num_processing_pages
        starts = len(STARTS[wid])
        assert starts == p.num_completed_pages
        await asyncio.sleep(1.0)
        assert len(STARTS[wid]) == starts
        data = await status_json(temporal, wid)
        assert data["is_paused"] is True and data["effective_parallelism"] == 0
        assert data["max_parallelism"] == 2 and data["pause_reason"] == "paused by an operator"
        assert data["num_processing_pages"] == 0
        assert data["num_completed_pages"] == p.num_completed_pages
        assert "PAUSED" in assert_ok(await run_cli(temporal, "status", wid))

        # The README's sequence: a paused batch keeps its pause; set-parallelism changes what
        # resume returns to.
        out = assert_ok(await run_cli(temporal, "set-parallelism", wid, "4"))
        assert f"batch {wid!r}: parallelism 2 -> 4; it stays paused until resume" in out
        await asyncio.sleep(0.5)
        assert len(STARTS[wid]) == starts, "set-parallelism unpaused the batch"
        out = assert_ok(await run_cli(temporal, "resume", wid))
        assert f"resumed batch {wid!r} at parallelism 4" in out

        async def restarted() -> None:
            assert len(STARTS[wid]) > starts

        await assert_eventually(restarted)
        out = assert_ok(await run_cli(temporal, "resume", wid))
        assert f"batch {wid!r} was not paused; parallelism stays 4" in out
        assert (await status_json(temporal, wid))["max_parallelism"] == 4

        final = await handle.result()
    assert final.num_completed_pages == 30
    assert final.max_parallelism == 4
    assert final.max_parallelism_achieved == 4


async def test_cancel(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    handle = orchestra.get_handle(wid)
    async with new_worker():
        assert_ok(
            await run_cli(
                temporal, *start_args("CliSleepy", wid, task_queue, pages=1000, sleep=0.2)
            )
        )

        async def some_done() -> None:
            assert (await handle.get_progress()).num_completed_pages >= 1

        await assert_eventually(some_done)
        out = assert_ok(await run_cli(temporal, "cancel", wid))
        assert f"batch {wid!r} is CANCELED" in out
        desc = await handle.workflow_handle.describe()
        assert desc.status == WorkflowExecutionStatus.CANCELED
        starts = len(STARTS[wid])
        await asyncio.sleep(0.5)
        assert len(STARTS[wid]) == starts  # no page starts after the cancellation

        out = assert_ok(await run_cli(temporal, "status", wid))
        assert "CANCELED" in out
        assert_error(await run_cli(temporal, "cancel", wid), "is already CANCELED")
        assert_error(await run_cli(temporal, "pause", wid), "only a running batch")
        out = assert_ok(await run_cli(temporal, "list", "--limit", "100"))
        assert "CANCELED" in next(line for line in out.splitlines() if wid in line)


async def test_failures_table_shows_the_error_message(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    async with new_worker():
        assert_ok(
            await run_cli(
                temporal, *start_args("CliFailing", wid, task_queue, pages=5, fail_page=2)
            )
        )
        await orchestra.get_handle(wid).result()
        out = assert_ok(await run_cli(temporal, "status", wid))
        data = await status_json(temporal, wid)
    assert "failed pages" in out
    row = next(
        line for line in out.splitlines() if "boom: page 2 is broken" in line and "'2'" in line
    )
    assert "RuntimeError" in row and "'2'" in row
    assert data["num_failed_pages"] == 1 and data["num_completed_pages"] == 4
    assert data["failed_pages"][0]["error_message"] == "boom: page 2 is broken"


async def test_eta_and_percent_with_total_items(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    async with new_worker():
        assert_ok(
            await run_cli(
                temporal,
                *start_args("CliSleepy", wid, task_queue, pages=40, sleep=0.15),
                "--total-items",
                "400",
            )
        )

        async def eta_shown() -> str:
            out = assert_ok(await run_cli(temporal, "status", wid))
            assert "RUNNING" in out and "ETA" in out
            return out

        out = await assert_eventually(eta_shown, timeout=15)
        assert "of 400" in out and "%" in out and "items/s" in out
        data = await status_json(temporal, wid)
        assert data["total_items"] == 400
        await orchestra.get_handle(wid).result()
    if not data["is_finished"]:
        assert 0 <= data["percent_complete"] < 100
        assert data["eta_seconds"] is not None and data["eta_seconds"] >= 0
    out = assert_ok(await run_cli(temporal, "status", wid))
    assert "100.0%" in out and "ETA" not in out


UNREACHABLE = [
    ["status", "b"],
    ["status", "b", "--json"],
    ["pause", "b"],
    ["resume", "b"],
    ["set-parallelism", "b", "3"],
    ["cancel", "b"],
    ["list"],
    ["start", "CliSleepy", "--page-size", "1", "--max-parallelism", "1", "-q", "q"],
    ["worker", "tests.cli_processors", "-q", "q"],
]


@pytest.mark.parametrize("argv", UNREACHABLE, ids=lambda a: a[0])
async def test_unreachable_server_is_one_line(argv: list[str]) -> None:
    result = await run_cli(None, *argv, "--address", "127.0.0.1:1")
    assert_error(result, "cannot reach a Temporal server at 127.0.0.1:1")


@pytest.mark.parametrize(
    "argv",
    [["status"], ["status", "--json"], ["pause"], ["resume"], ["cancel"]],
    ids=lambda a: "-".join(a),
)
async def test_unknown_batch_is_one_line(temporal: EmbeddedTemporal, argv: list[str]) -> None:
    result = await run_cli(temporal, argv[0], "no-such-batch", *argv[1:])
    assert_error(result, f"no batch with ID 'no-such-batch' in namespace '{temporal.namespace}'")
    result = await run_cli(temporal, "set-parallelism", "no-such-batch", "2")
    assert_error(result, "no batch with ID 'no-such-batch'")


async def test_unknown_namespace_is_one_line(temporal: EmbeddedTemporal) -> None:
    result = await run_cli(None, "status", "b", "--address", temporal.address, "--namespace", "nx")
    assert_error(result, "namespace 'nx' does not exist")


@pytest.mark.parametrize("watch", [False, True], ids=["start", "start-watch"])
async def test_unknown_processor_is_one_line(
    temporal: EmbeddedTemporal, new_worker: Callable[..., Any], task_queue: str, watch: bool
) -> None:
    wid = batch_id()
    async with new_worker():
        result = await run_cli(
            temporal,
            *start_args("NoSuchProcessor", wid, task_queue),
            *(["--watch", "--interval", "0.2"] if watch else []),
        )
    assert_error(result, f"batch {wid!r} failed: no page processor named 'NoSuchProcessor'")
    assert "CliSleepy" in result.stderr  # the registered ones are listed


async def test_start_without_a_worker_fails_and_terminate_removes_the_batch(
    temporal: EmbeddedTemporal, task_queue: str
) -> None:
    wid = batch_id()
    result = await run_cli(
        temporal, *start_args("CliSleepy", wid, task_queue), "--confirm-timeout", "0.5"
    )
    assert_error(result, f"no worker picked batch {wid!r} up within 0.5s")
    assert f"batch-orchestra terminate {wid}" in result.stderr
    out = assert_ok(await run_cli(temporal, "terminate", wid, "--reason", "no worker"))
    assert f"terminated batch {wid!r}: no worker" in out
    desc = await temporal.client.get_workflow_handle(wid).describe()
    assert desc.status is not None and desc.status.name == "TERMINATED"
    assert_error(await run_cli(temporal, "terminate", wid), "is already TERMINATED")
    # its ID is not reused by accident
    again = await run_cli(temporal, *start_args("CliSleepy", wid, task_queue))
    assert_error(again, "already ran")
    assert "--reuse-id" in again.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--args", "{oops"], "not valid JSON"),
        (["--page-size", "0"], "--page-size must be an int >= 1, got 0"),
        (["--max-parallelism", "-1"], "--max-parallelism must be an int >= 0"),
    ],
    ids=["args", "page-size", "parallelism"],
)
async def test_bad_start_input_is_a_usage_error(argv: list[str], message: str) -> None:
    base = ["start", "P", "--page-size", "1", "--max-parallelism", "1", "-q", "q"]
    result = await run_cli(None, *base, *argv, "--address", "127.0.0.1:1")
    assert_error(result, message, code=2)


async def test_worker_with_a_bad_module_is_one_line() -> None:
    result = await run_cli(None, "worker", "no_such_module_xyz", "-q", "q")
    assert_error(result, "cannot import module 'no_such_module_xyz'")


async def test_worker_takes_a_file_path_as_its_module() -> None:
    # imported (its relative imports work), then the unreachable server is the only error
    result = await run_cli(
        None, "worker", "samples/inflate_prices/processor.py", "-q", "q", "--address", "127.0.0.1:1"
    )
    assert_error(result, "cannot reach a Temporal server at 127.0.0.1:1")
    result = await run_cli(None, "worker", "samples/no_such_file.py", "-q", "q")
    assert_error(result, "give a module's dotted name (e.g. 'samples.no_such_file')")


async def test_server_port_in_use_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = await run_cli(None, "server", "--port", str(port), "--headless")
    assert_error(result, f"port {port} on 127.0.0.1 is already in use")


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "batch_orchestra",
        *argv,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )


async def _read_until(proc: asyncio.subprocess.Process, text: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    seen = ""
    async with asyncio.timeout(timeout):
        while text not in seen:
            line = await proc.stdout.readline()
            assert line, f"exited before printing {text!r}:\n{seen}"
            seen += line.decode()
    return seen


async def test_worker_command_runs_batches_and_stops_on_ctrl_c(
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
    try:
        out = await _read_until(proc, "worker polling")
        assert "processors: CliFailing, CliFlaky, CliSleepy" in out
        wid = batch_id()
        assert_ok(await run_cli(temporal, *start_args("CliSleepy", wid, task_queue, pages=3)))
        assert (await orchestra.get_handle(wid).result()).num_completed_pages == 3
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, rest.decode()
    assert "worker stopped" in rest.decode()


async def test_server_command_serves_until_ctrl_c() -> None:
    port, ui_port = free_port(), free_port()
    proc = await _spawn("server", "--port", str(port), "--ui-port", str(ui_port))
    try:
        out = await _read_until(proc, "next:", timeout=60)
        assert f"Temporal dev server at 127.0.0.1:{port}" in out
        assert f"Web UI http://127.0.0.1:{ui_port}" in out
        out = assert_ok(await run_cli(None, "list", "--address", f"127.0.0.1:{port}"))
        assert "no batches in namespace 'default'" in out
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0


async def test_python_dash_m_help() -> None:
    proc = await _spawn("--help")
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    for command in (
        "server",
        "worker",
        "start",
        "status",
        "pause",
        "resume",
        "set-parallelism",
        "cancel",
        "list",
    ):
        assert command in out.decode()


async def test_list_keeps_ids_whole_at_80_columns(
    temporal: EmbeddedTemporal,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = f"{batch_id()}-with-a-long-descriptive-suffix"
    async with new_worker():
        assert_ok(
            await run_cli(temporal, *start_args("CliSleepy", wid, task_queue, pages=2), "--watch")
        )
    out = assert_ok(await run_cli(temporal, "list", "--limit", "100", columns=80))
    assert wid in out, out
