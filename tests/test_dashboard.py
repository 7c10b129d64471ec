"""The web dashboard through httpx's ASGI transport, against the real dev server and real batches.

Every route, the access token, the cross-site checks, escaping of HTML-laden IDs and errors,
read-only mode, mounting under a prefix, and the ``batch-orchestra dashboard`` command.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Mount
from temporalio.client import WorkflowExecutionStatus

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    EmbeddedTemporal,
)
from batch_orchestra.cli import cli
from batch_orchestra.dashboard import create_app
from batch_orchestra.dashboard._html import Chrome, list_page
from batch_orchestra.dashboard._serve import check_bind
from batch_orchestra.testing import free_port
from tests.helpers import assert_eventually

EVIL_ID = '<script>alert("id")</script>/x&y"z'
"""A batch ID that would run script if the dashboard did not escape it."""


def ui(app: Any, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", **kwargs
    )


def page_path(batch_id: str, prefix: str = "") -> str:
    return f"{prefix}/batches/{quote(batch_id, safe='')}"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def start_scripted(
    orchestra: BatchOrchestratorClient,
    wid: str,
    task_queue: str,
    *,
    n: int,
    sleep: float,
    parallelism: int = 2,
) -> BatchOrchestratorHandle:
    return await orchestra.start(
        BatchOrchestratorInput(
            page_processor="Scripted",
            page_size=10,
            max_parallelism=parallelism,
            args=json.dumps({"n": n, "sleep": sleep}),
            batch_id=wid,
        ),
        id=wid,
        task_queue=task_queue,
    )


@pytest.fixture
async def app_client(temporal: EmbeddedTemporal) -> AsyncIterator[httpx.AsyncClient]:
    # A long page: the session's server holds every other test's batches too.
    app = create_app(temporal.client, ui_url="http://ui.example:8233", page_size=100)
    async with ui(app) as c:
        yield c


async def test_list_batch_page_controls_and_metrics(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    app_client: httpx.AsyncClient,
) -> None:
    wid = EVIL_ID + task_queue
    async with new_worker():
        handle = await start_scripted(orchestra, wid, task_queue, n=400, sleep=0.2)
        await assert_eventually(_picked_up(handle))

        listing = await app_client.get("/")
        assert listing.status_code == 200
        assert "<script>alert" not in listing.text
        # Escaped, with line breaks allowed after separators (<wbr> adds no text).
        assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;/x&amp;y&quot;z" in (
            listing.text.replace("<wbr>", "")
        )
        assert "&lt;/<wbr>script&gt;" in listing.text
        assert "Scripted" in listing.text
        assert page_path(wid) in listing.text
        assert "default-src 'self'" in listing.headers["content-security-policy"]
        running = await app_client.get("/", params={"status": "running"})
        assert page_path(wid) in running.text
        completed = await app_client.get("/", params={"status": "completed"})
        assert page_path(wid) not in completed.text
        assert (await app_client.get("/", params={"status": "nope"})).status_code == 400

        page = await app_client.get(page_path(wid))
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert 'id="pause-button"' in page.text
        assert re.search(r'class="control when-open when-paused" hidden>', page.text)
        assert f"http://ui.example:8233/namespaces/default/workflows/{quote(wid, safe='')}" in (
            page.text.replace("&amp;", "&")
        )
        state = (await app_client.get(f"/api/batches/{quote(wid, safe='')}")).json()
        assert state["id"] == wid and state["processor"] == "Scripted"
        assert state["label"] == "RUNNING" and state["is_open"]
        assert state["progress"]["max_parallelism"] == 2

        metrics = await app_client.get("/metrics")
        assert metrics.status_code == 200
        label = wid.replace("\\", "\\\\").replace('"', '\\"')
        line = re.search(
            r'^batch_orchestra_pages_completed_total\{batch_id="'
            + re.escape(label)
            + r'",processor="Scripted"\} (\S+)$',
            metrics.text,
            re.M,
        )
        assert line, metrics.text[:2000]
        assert re.search(r"^batch_orchestra_running_batches \d", metrics.text, re.M)
        # A second, paused batch; a dashboard bound to one batch exports only one.
        idle = await start_scripted(
            orchestra, f"idle-{task_queue}", task_queue, n=10, sleep=0, parallelism=0
        )
        one = create_app(temporal.client, max_metrics_batches=1)
        async with ui(one) as bounded:
            text = (await bounded.get("/metrics")).text
        assert re.search(r"^batch_orchestra_exported_batches 1\.0$", text, re.M), text
        assert (
            len(
                set(re.findall(r'^batch_orchestra_max_parallelism\{batch_id="([^"]*)"', text, re.M))
            )
            <= 1
        )

        csrf = csrf_of(page.text)
        # Cross-site: another origin, or no CSRF token: refused, and the batch keeps running.
        evil = await app_client.post(
            "/actions/pause",
            data={"batch_id": wid, "csrf_token": csrf},
            headers={"origin": "http://evil.example"},
        )
        assert evil.status_code == 403 and "Cross-site" in evil.text
        forged = await app_client.post("/actions/pause", data={"batch_id": wid})
        assert forged.status_code == 403
        referer = await app_client.post(
            "/actions/pause",
            data={"batch_id": wid, "csrf_token": csrf},
            headers={"referer": "http://evil.example/page"},
        )
        assert referer.status_code == 403
        assert not (await handle.get_progress()).is_paused

        paused = await app_client.post(
            "/actions/pause",
            data={"batch_id": wid, "csrf_token": csrf},
            headers={"origin": "http://127.0.0.1"},
        )
        assert paused.status_code == 303
        assert paused.headers["location"] == page_path(wid) + "?done=paused"
        assert (await handle.get_progress()).is_paused
        metrics = (await app_client.get("/metrics")).text
        for paused_id in (label, f"idle-{task_queue}"):
            labels = r'\{batch_id="' + re.escape(paused_id) + r'",processor="Scripted"\}'
            assert re.search(r"^batch_orchestra_paused" + labels + r" 1\.0$", metrics, re.M)
            assert re.search(r"^batch_orchestra_auto_paused" + labels + r" 0\.0$", metrics, re.M)
            assert re.search(
                r"^batch_orchestra_effective_parallelism" + labels + r" 0\.0$", metrics, re.M
            )
        after = await app_client.get(paused.headers["location"])
        assert "Paused: running pages finish" in after.text
        assert re.search(r'class="control when-open when-running" hidden>', after.text)
        assert re.search(r'class="control when-open when-paused">', after.text)
        assert (await app_client.get("/", params={"status": "paused"})).text.count(
            page_path(wid)
        ) == 1

        bad = await app_client.post(
            "/actions/set-parallelism", data={"batch_id": wid, "csrf_token": csrf, "n": "-1"}
        )
        assert bad.status_code == 400
        resumed = await app_client.post(
            "/actions/resume", data={"batch_id": wid, "csrf_token": csrf}
        )
        assert resumed.status_code == 303
        assert resumed.headers["location"] == page_path(wid) + "?done=resumed"
        assert not (await handle.get_progress()).is_paused
        changed = await app_client.post(
            "/actions/set-parallelism", data={"batch_id": wid, "csrf_token": csrf, "n": "5"}
        )
        assert changed.status_code == 303
        assert (await handle.get_progress()).max_parallelism == 5
        final = await handle.result()
        assert final.num_completed_pages == 40 and final.num_completed_items == 400

        done = await app_client.get(page_path(wid))
        assert "COMPLETED" in done.text and 'id="pause-button"' not in done.text
        late = await app_client.post("/actions/resume", data={"batch_id": wid, "csrf_token": csrf})
        assert late.status_code == 409 and "only a running batch" in late.text
        await idle.workflow_handle.cancel()
        await assert_eventually(_closed(idle, WorkflowExecutionStatus.CANCELED))

    missing = await app_client.get(page_path("<img src=x onerror=alert(1)>"))
    assert missing.status_code == 404
    assert "<img" not in missing.text and "&lt;img src=x onerror=alert(1)&gt;" in missing.text
    gone = await app_client.get("/api/batches/no-such-batch")
    assert gone.status_code == 404 and "no batch" in gone.json()["error"]
    js = await app_client.get("/static/dashboard.js")
    assert js.status_code == 200 and "textContent" in js.text and ".innerHTML" not in js.text
    assert (await app_client.get("/static/dashboard.css")).status_code == 200


def _closed(handle: BatchOrchestratorHandle, status: WorkflowExecutionStatus) -> Callable[[], Any]:
    async def check() -> None:
        assert (await handle.workflow_handle.describe()).status == status

    return check


def _picked_up(handle: BatchOrchestratorHandle) -> Callable[[], Any]:
    async def check() -> None:
        p = await handle.get_progress()
        assert p.num_completed_pages >= 1

    return check


async def test_start_form_and_cancel(
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    app_client: httpx.AsyncClient,
) -> None:
    form = await app_client.get("/start")
    assert form.status_code == 200
    csrf = csrf_of(form.text)
    fields = {
        "csrf_token": csrf,
        "processor": "Scripted",
        "task_queue": task_queue,
        "page_size": "10",
        "max_parallelism": "1",
        "args": '{"n": 300, "sleep": 0.2}',
        "first_cursor": "",
        "total_items": "300",
        "batch_id": f"started-{task_queue}",
    }
    bad_args = await app_client.post("/start", data={**fields, "args": "{<b>nope"})
    assert bad_args.status_code == 400
    assert "args must be valid JSON" in bad_args.text and "<b>nope" not in bad_args.text
    assert "{&lt;b&gt;nope" in bad_args.text  # the form keeps what was typed, escaped
    bad_size = await app_client.post("/start", data={**fields, "page_size": "0"})
    assert bad_size.status_code == 400 and "page_size" in bad_size.text
    async with new_worker():
        started = await app_client.post("/start", data=fields)
        assert started.status_code == 303, started.text
        assert started.headers["location"] == page_path(fields["batch_id"]) + "?done=started"
        handle = orchestra.get_handle(fields["batch_id"])
        await assert_eventually(_picked_up(handle))
        p = await handle.get_progress()
        assert p.total_items == 300 and p.max_parallelism == 1
        again = await app_client.post("/start", data=fields)
        assert again.status_code == 400 and "already running" in again.text

        canceled = await app_client.post(
            "/actions/cancel", data={"batch_id": fields["batch_id"], "csrf_token": csrf}
        )
        assert canceled.status_code == 303

        await assert_eventually(_closed(handle, WorkflowExecutionStatus.CANCELED))
    listing = await app_client.get("/", params={"status": "canceled"})
    assert page_path(fields["batch_id"]) in listing.text
    suggestions = await app_client.get("/start")
    assert '<option value="Scripted">' in suggestions.text


async def test_token_required_on_every_request(temporal: EmbeddedTemporal) -> None:
    app = create_app(temporal.client, token="s3cret-token")
    async with ui(app) as anonymous:
        for path in ("/", "/metrics", "/start", "/static/dashboard.js", "/api/batches/x"):
            denied = await anonymous.get(path)
            assert denied.status_code == 401, path
            assert "access token" in denied.text
        assert (await anonymous.post("/actions/pause", data={"batch_id": "x"})).status_code == 401
        wrong = await anonymous.get("/", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await anonymous.get("/", params={"token": "nope"})).status_code == 401
        bearer = await anonymous.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
        assert bearer.status_code == 200 and "batch_orchestra_running_batches" in bearer.text

        login = await anonymous.get("/", params={"token": "s3cret-token", "status": "running"})
        assert login.status_code == 303
        assert login.headers["location"] == "/?status=running"  # the token leaves the address
        cookie = login.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "s3cret-token" not in cookie
        follow = await anonymous.get("/?status=running")  # the client kept the cookie
        assert follow.status_code == 200


async def test_read_only_hides_and_refuses_controls(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = f"readonly-{task_queue}"
    async with new_worker(), ui(create_app(temporal.client, read_only=True)) as c:
        handle = await start_scripted(orchestra, wid, task_queue, n=60, sleep=0.1)
        await assert_eventually(_picked_up(handle))
        page = await c.get(page_path(wid))
        assert page.status_code == 200 and "read-only" in page.text
        assert "<form" not in page.text and "Start a batch" not in page.text
        for action in ("pause", "resume", "set-parallelism", "cancel"):
            refused = await c.post(f"/actions/{action}", data={"batch_id": wid, "n": "0"})
            assert refused.status_code == 403 and "read-only" in refused.text
        assert (await c.get("/start")).status_code == 403
        assert (await c.post("/start", data={"processor": "Scripted"})).status_code == 403
        p = await handle.result()
        assert not p.is_paused and p.num_completed_pages == 6 and p.max_parallelism == 2


async def test_list_pages_through_older_batches(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    # Two completed batches of its own (the session's server may hold no others yet), seen by
    # the server's list (visibility lags a moment behind the batches' ends).
    async with new_worker():
        for n in range(2):
            handle = await start_scripted(
                orchestra, f"{task_queue}-older-{n}", task_queue, n=1, sleep=0
            )
            await handle.result()

    async def listed() -> None:
        query = f"WorkflowId STARTS_WITH '{task_queue}-older-' AND ExecutionStatus = 'Completed'"
        found = [w async for w in temporal.client.list_workflows(query)]
        assert len(found) == 2

    await assert_eventually(listed)
    async with ui(create_app(temporal.client, page_size=1)) as c:
        first = await c.get("/", params={"status": "completed"})
        more = re.search(r'href="(/\?status=completed&amp;page=[^"]+)"', first.text)
        assert more, "no link to older batches"
        second = await c.get(more.group(1).replace("&amp;", "&"))
        assert second.status_code == 200 and "← Newest" in second.text
        ids = [re.findall(r'<td class="id"><a href="([^"]+)"', r.text) for r in (first, second)]
        assert len(ids[0]) == len(ids[1]) == 1 and ids[0] != ids[1]
    with pytest.raises(ValueError, match="page_size must be >= 1"):
        create_app(temporal.client, page_size=0)


async def test_mounted_under_a_prefix_and_trusted_hosts(temporal: EmbeddedTemporal) -> None:
    dash = create_app(temporal.client, trusted_hosts=["127.0.0.1", "localhost"])
    outer = Starlette(routes=[Mount("/ops", app=dash)])
    async with ui(outer) as c:
        listing = await c.get("/ops/", params={"status": "completed"})
        assert listing.status_code == 200
        assert 'href="/ops/static/dashboard.css"' in listing.text
        assert 'href="/ops/start"' in listing.text
        assert (await c.get("/ops/static/dashboard.js")).status_code == 200
        assert (await c.get("/ops/api/batches/none")).status_code == 404
        rebound = await c.get("/ops/", headers={"host": "attacker.example"})
        assert rebound.status_code == 400


def test_empty_state_says_how_to_start() -> None:
    chrome = Chrome(base="", namespace="<ns>", address="localhost:7233", read_only=False, csrf="t")
    page = list_page(chrome, [], status="all", next_token=None, first_page=True)
    assert "No batches yet in namespace &lt;ns&gt;" in page
    assert "batch-orchestra worker" in page and "batch-orchestra start" in page
    assert 'href="/start"' in page
    filtered = list_page(chrome, [], status="failed", next_token=None, first_page=True)
    assert "No failed batches." in filtered and "batch-orchestra worker" not in filtered


def test_refuses_to_bind_beyond_loopback_without_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(ValueError, match="without an access token"):
        check_bind("0.0.0.0", None)
    result = CliRunner(env={"BATCH_ORCHESTRA_DASHBOARD_TOKEN": ""}).invoke(
        cli, ["dashboard", "--host", "0.0.0.0", "--address", "127.0.0.1:1"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: refusing to serve the dashboard on '0.0.0.0'")
    assert "--token" in result.stderr


async def test_dashboard_command_serves(temporal: EmbeddedTemporal) -> None:
    port = free_port()
    env = {**os.environ, "BATCH_ORCHESTRA_DASHBOARD_TOKEN": ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "batch_orchestra",
        "dashboard",
        "--port",
        str(port),
        "--address",
        temporal.address,
        "--namespace",
        temporal.namespace,
        "--read-only",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"dashboard (read-only) at http://127.0.0.1:{port}/" in line, line
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as c:
            assert (await c.get("/")).status_code == 200
            assert (await c.get("/", headers={"host": "evil.example"})).status_code == 400
            assert (await c.post("/actions/pause", data={"batch_id": "x"})).status_code == 403
    finally:
        proc.terminate()
        await proc.wait()


def test_metrics_mark_a_batch_that_paused_itself() -> None:
    from batch_orchestra import BatchOrchestratorProgress
    from batch_orchestra.dashboard._metrics import BatchSample, render

    def progress(reason: str | None, effective: int) -> BatchOrchestratorProgress:
        p = BatchOrchestratorProgress(
            is_paused=reason is not None, max_parallelism=8, num_stuck_pages=3
        )
        # Fields a newer library version reports; read with getattr when present.
        p.pause_reason = reason  # type: ignore[attr-defined]
        p.effective_parallelism = effective  # type: ignore[attr-defined]
        return p

    text = render(
        [
            BatchSample("auto", "P", progress("more than 50% of the last 100 attempts failed", 0)),
            BatchSample("manual", "P", progress("paused by an operator", 0)),
            BatchSample("running", "P", progress(None, 8)),
            BatchSample("silent", "P", None),
        ],
        running=4,
        max_batches=100,
    ).decode()
    assert 'batch_orchestra_auto_paused{batch_id="auto",processor="P"} 1.0' in text
    assert 'batch_orchestra_auto_paused{batch_id="manual",processor="P"} 0.0' in text
    assert 'batch_orchestra_paused{batch_id="manual",processor="P"} 1.0' in text
    assert 'batch_orchestra_effective_parallelism{batch_id="running",processor="P"} 8.0' in text
    assert 'batch_orchestra_pages_stuck{batch_id="auto",processor="P"} 3.0' in text
    assert 'batch_orchestra_progress_up{batch_id="silent",processor="P"} 0.0' in text
    assert 'batch_id="silent",processor="P"} 0.0' in text and text.count('"silent"') == 1
    assert "batch_orchestra_running_batches 4.0" in text


def test_metrics_count_item_workflows_only_of_batches_that_start_them() -> None:
    from batch_orchestra import BatchOrchestratorProgress
    from batch_orchestra.dashboard._metrics import BatchSample, render

    items = BatchOrchestratorProgress(
        max_open_items=500,
        num_items_started=1200,
        num_items_open=480,
        num_items_completed=700,
        num_items_failed=20,
    )
    text = render(
        [BatchSample("items", "P", items), BatchSample("pages", "P", BatchOrchestratorProgress())],
        running=2,
        max_batches=100,
    ).decode()
    labels = '{batch_id="items",processor="P"}'
    assert f"batch_orchestra_item_workflows_started_total{labels} 1200.0" in text
    assert f"batch_orchestra_item_workflows_open{labels} 480.0" in text
    assert f"batch_orchestra_item_workflows_completed_total{labels} 700.0" in text
    assert f"batch_orchestra_item_workflows_failed_total{labels} 20.0" in text
    assert f"batch_orchestra_max_open_items{labels} 500.0" in text
    # A batch without item workflows exports none of them (and its other metrics as before).
    assert not re.search(
        r'^batch_orchestra_(item_workflows|max_open)\w*\{batch_id="pages"', text, re.M
    )
    assert 'batch_orchestra_pages_completed_total{batch_id="pages",processor="P"} 0.0' in text


async def test_embedded_server_refuses_a_taken_port(temporal: EmbeddedTemporal) -> None:
    import socket

    from batch_orchestra.dashboard import DashboardServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is already in use"):
            async with DashboardServer(create_app(temporal.client), port=port):
                pass


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # no hint: the CSRF token decides
        ({"origin": "http://dash.example:8234"}, True),
        ({"origin": "https://dash.example:8234"}, True),  # TLS ends at a proxy
        ({"referer": "http://dash.example:8234/batches/x"}, True),
        ({"origin": "http://evil.example"}, False),
        ({"origin": "http://dash.example:9999"}, False),
        ({"origin": "null"}, False),  # sandboxed frames, data: URLs
        ({"referer": "http://evil.example/dash.example:8234"}, False),
    ],
)
def test_cross_site_check(headers: dict[str, str], allowed: bool) -> None:
    from starlette.requests import Request

    from batch_orchestra.dashboard._security import same_origin

    raw = [(b"host", b"dash.example:8234")] + [(k.encode(), v.encode()) for k, v in headers.items()]
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/actions/pause",
            "headers": raw,
            "scheme": "http",
            "query_string": b"",
        }
    )
    assert same_origin(request) is allowed


def test_dashboard_exports() -> None:
    import batch_orchestra.dashboard as dashboard

    assert dashboard.__all__ == ["DashboardServer", "create_app", "serve"]
    assert all(getattr(dashboard, name).__doc__ for name in dashboard.__all__)


def test_the_dashboard_reads_batches_through_the_shared_read_model_not_the_cli() -> None:
    """Every import in dashboard/ (top level or inside a function) stays clear of cli/."""
    import ast
    from pathlib import Path

    import batch_orchestra.dashboard as dashboard

    folder = Path(dashboard.__file__).parent
    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):  # relative to batch_orchestra.dashboard
                base = ["batch_orchestra", "dashboard"][: 3 - node.level] if node.level else []
                base += [node.module] if node.module else []
                names = [".".join([*base, alias.name]) for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [(path.name, n) for n in names if n.startswith("batch_orchestra.cli")]
    assert len(list(folder.glob("*.py"))) > 5, "the scan found the dashboard's modules"
    assert found == [], f"dashboard modules import the CLI: {found}"


def test_an_ended_batch_page_shows_no_pause() -> None:
    from batch_orchestra import BatchOrchestratorProgress
    from batch_orchestra._read import BatchView
    from batch_orchestra.dashboard._html import PageFacts, batch_page

    chrome = Chrome(base="", namespace="ns", address="localhost:7233", read_only=False, csrf="t")
    reason = "no progress: ... then resume the batch"
    progress = BatchOrchestratorProgress(
        is_finished=True, is_paused=True, pause_reason=reason, no_progress=reason, max_parallelism=4
    )
    view = BatchView(id="b", status="COMPLETED", task_queue="q", url="u", progress=progress)
    page = batch_page(chrome, view, PageFacts(), "")
    assert "then resume the batch" not in page and "paused:" not in page
    assert "None" not in page  # no health check: the hidden health line is empty
    from batch_orchestra.dashboard._data import view_json

    state = view_json(view, "P")  # what the page's script refreshes it with
    assert state["progress"]["is_paused"] is False and state["progress"]["pause_reason"] is None
