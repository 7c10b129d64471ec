"""The dashboard shows everything the command line knows and has every action it has.

Through httpx's ASGI transport against the real dev server and a real batch whose pages the test
steers (tests/dashboard_processors.py): failed items on the card, in the list, in a table and as
CSV; retrying, stuck and failed pages with their actions; retry-page, skip-page, set-rate and
redrive, each recorded in the batch's change log as the dashboard (or the signed-in user); and
"unknown" rather than 0 when no worker answers.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import tests.dashboard_processors as ops
from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    EmbeddedTemporal,
)
from batch_orchestra.dashboard import create_app
from batch_orchestra.dashboard._data import dashboard_identity
from tests.helpers import assert_eventually, batch_id
from tests.test_dashboard import csrf_of, page_path, ui

JSON = {"accept": "application/json"}


async def start_operable(
    orchestra: BatchOrchestratorClient, wid: str, task_queue: str, **args: Any
) -> BatchOrchestratorHandle:
    return await orchestra.start(
        BatchOrchestratorInput(
            page_processor="Operable",
            page_size=10,
            max_parallelism=4,
            args=json.dumps({"pages": 12, "sleep": 0.02, **args}),
            total_items=120,
        ),
        id=wid,
        task_queue=task_queue,
    )


@pytest.fixture
async def dash(temporal: EmbeddedTemporal) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(temporal.client, page_size=100, users={"alice": "alice-token"})
    async with ui(app, headers={"authorization": "Bearer alice-token"}) as c:
        yield c


async def _progress_when(
    handle: BatchOrchestratorHandle, check: Callable[[BatchOrchestratorProgress], bool]
) -> BatchOrchestratorProgress:
    async def ready() -> BatchOrchestratorProgress:
        p = await handle.get_progress()
        assert check(p), p
        return p

    return await assert_eventually(ready, timeout=30)


async def test_failures_and_every_action(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    wid = batch_id()
    app = create_app(temporal.client, page_size=100)
    async with new_worker(), ui(app) as c, ops.holding(wid):
        handle = await start_operable(
            orchestra, wid, task_queue, stuck=[3, 5], broken=[7], bad_items=[0, 4, 8]
        )
        p = await _progress_when(
            handle,
            lambda p: (
                p.num_stuck_pages == 2 and p.num_failed_pages == 1 and p.num_failed_items == 3
            ),
        )
        page = (await c.get(page_path(wid))).text
        # Failed items: the card, the table, the CSV link; the list says so too.
        assert re.search(r'data-field="num_failed_items">3<', page)
        table = page.split('id="failed-items"', 1)[1].split("</table>", 1)[0]
        keys = re.findall(r"item-\d+", table.replace("<wbr>", ""))
        assert keys == [f"item-{n}" for n in (8, 4, 0)]  # the latest first
        assert "price of item 4 is negative" in table
        csv_href = re.search(r'id="failures-csv" href="([^"]+)"', page)
        assert csv_href, page
        listing = (await c.get("/", params={"status": "running"})).text
        row = listing.split(page_path(wid), 1)[1].split("</tr>", 1)[0]
        assert "1 failed · 2 stuck · 3 failed items" in row
        # Stuck and failed pages with their errors; the two stuck pages' messages differ only in
        # their URL and attempt number: one error with a sample.
        assert 'id="retry-page-3-button"' in page and 'id="skip-page-5-button"' in page
        errors = page.split('id="errors"', 1)[1].split("</table>", 1)[0]
        assert re.search(
            r"<td class=num>2</td><td>ConnectionError</td><td class=num>2</td>", errors
        )
        assert "<summary>HTTP 500 Internal Server Error for https://api.example/items/" in errors
        assert "page 7 has a row that cannot be read" in page
        exported = (await c.get(csv_href.group(1).replace("&amp;", "&"))).text
        kinds = [
            (r["kind"], r["page_num"], r["key"]) for r in csv.DictReader(io.StringIO(exported))
        ]
        assert ("failed_page", "7", "") in kinds and ("stuck_page", "3", "") in kinds
        assert {("item", str(n), f"item-{n}") for n in (0, 4, 8)} <= set(kinds)

        csrf = csrf_of(page)

        async def act(action: str, **fields: str) -> httpx.Response:
            return await c.post(
                f"/actions/{action}",
                data={"batch_id": wid, "csrf_token": csrf, **fields},
                headers=JSON,
            )

        # Bad input is refused, naming the field, before anything reaches the batch.
        bad = await act("set-rate", pages_per_second="fast")
        assert (
            bad.status_code == 400
            and "pages per second must be a positive number" in (bad.json()["error"])
        )
        assert (await act("skip-page", page_num="5", reason=" ")).status_code == 400
        assert (await act("set-rate")).json()["title"] == "No rate limit given"
        unknown = await act("retry-page", page_num="99")
        assert unknown.status_code == 409 and "refused retry-page 99" in unknown.json()["error"]

        rated = await act("set-rate", pages_per_second="50", items_per_second="none")
        assert rated.json() == {
            "ok": True,
            "message": "Rate limit now 50 pages/s.",
            "location": page_path(wid) + "?done=rate",
        }
        assert (await handle.get_progress()).max_pages_per_second == 50

        ops.PASS[wid].add(3)
        assert (await act("retry-page", page_num="3", reason="fixed upstream")).json()["ok"]
        await _progress_when(handle, lambda p: p.num_stuck_pages == 1)
        skipped = await act("skip-page", page_num="5", reason="row 5 is bad data")
        assert "Page 5 skipped (row 5 is bad data)" in skipped.json()["message"]
        await _progress_when(handle, lambda p: p.num_skipped_pages == 1 and not p.num_stuck_pages)
        ops.PASS[wid].add(7)
        redriven = await act("redrive")
        assert redriven.json()["message"] == "1 failed page(s) queued again."
        await _progress_when(handle, lambda p: p.num_failed_pages == 0)

        # Without script: a form post and a redirect back to the page, which says what happened.
        plain = await c.post(
            "/actions/set-parallelism", data={"batch_id": wid, "csrf_token": csrf, "n": "3"}
        )
        assert plain.status_code == 303 and plain.headers["location"].endswith("?done=parallelism")

        p = await handle.get_progress()
        changes = [(ch.change, ch.by) for ch in p.control_changes]
        me = dashboard_identity()
        assert [by for _, by in changes] == [me] * 5, changes
        assert [ch for ch, _ in changes][0] == "rate limit none -> 50 pages/s"
        assert changes[1][0].startswith("page 3 retried now")
        after = (await c.get(page_path(wid))).text
        log = after.split('id="changes"', 1)[1].split("</table>", 1)[0]
        assert "row 5 is bad data" in log and log.count("dashboard@") == 5

        ops.release(wid)
        final = await handle.result()
        assert final.num_completed_pages == 11 and final.num_skipped_pages == 1
        # A finished batch: its average rate, and a redrive of its failed items from the page.
        done = await c.get(page_path(wid))
        assert "items/s (average)" in done.text and "items/s on average" in done.text
        items = await act("redrive-items")
        new_id = f"{wid}-items-1"
        assert items.json()["location"] == page_path(new_id) + "?done=redrive-started"
        redrive = orchestra.get_handle(new_id)
        assert (await redrive.result()).num_completed_items == 3
        assert sorted(ops.ITEMS_RUN[new_id]) == ["item-0", "item-4", "item-8"]


async def test_actions_are_recorded_as_the_signed_in_user(
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    dash: httpx.AsyncClient,
) -> None:
    wid = batch_id()
    async with new_worker(), ops.holding(wid):
        handle = await start_operable(orchestra, wid, task_queue)
        await _progress_when(handle, lambda p: p.num_completed_pages >= 1)
        csrf = csrf_of((await dash.get(page_path(wid))).text)
        paused = await dash.post(
            "/actions/pause", data={"batch_id": wid, "csrf_token": csrf}, headers=JSON
        )
        assert paused.json()["ok"], paused.text
        p = await handle.get_progress()
        assert p.is_paused and p.control_changes[-1].by == dashboard_identity("alice")
        assert dashboard_identity("alice").startswith("alice (dashboard@")
        await dash.post("/actions/resume", data={"batch_id": wid, "csrf_token": csrf})
        ops.release(wid)
        final = await handle.result()
    assert [c.by for c in final.control_changes] == [dashboard_identity("alice")] * 2


async def test_unknown_is_unknown_and_last_known_is_said(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    app = create_app(temporal.client, page_size=100)
    async with ui(app) as c:
        # Never picked up: no progress at all.
        lost = await start_operable(orchestra, batch_id(), f"{task_queue}-nobody")
        page = (await c.get(page_path(lost.id))).text
        for field in ("num_completed_pages", "num_completed_items", "max_parallelism", "percent"):
            assert re.search(rf'data-field="{field}">unknown', page), field
        assert 'data-field="num_completed_items">unknown of 120<' in page
        assert "needs total_items" not in page and "started -" not in page
        assert "no worker answered the progress query" in page
        await lost.workflow_handle.terminate()

        # Seen once with a worker, then the worker stops: the last known numbers, said so. (The
        # batch is paused first, so that no page is running when its worker stops.)
        wid = batch_id()
        async with new_worker():
            handle = await start_operable(orchestra, wid, task_queue, pages=200, sleep=0.1)
            await _progress_when(handle, lambda p: p.num_completed_pages >= 3)
            await handle.pause()
            p = await _progress_when(handle, lambda p: p.num_processing_pages == 0)
            api = f"/api/batches/{quote(wid, safe='')}"
            assert (await c.get(api)).json()["stale_at"] is None
        state = (await c.get(api)).json()
        assert state["stale_at"] is not None
        assert state["note"].startswith("no worker answered: showing the last known progress")
        assert state["progress"]["num_completed_pages"] == p.num_completed_pages
        assert state["label"] == "PAUSED"
        await handle.workflow_handle.terminate()


def test_users_file(tmp_path: Any) -> None:
    from batch_orchestra.dashboard._security import read_users_file

    good = tmp_path / "users"
    good.write_text("# name token\nalice  s3cret-a\nbob s3cret-b  # on call\n\n")
    assert read_users_file(str(good)) == {"alice": "s3cret-a", "bob": "s3cret-b"}
    for text, message in (
        ("alice\n", "users:1: expected a user name and a token"),
        ("alice a\nalice b\n", "users:2: user 'alice' or its token is given twice"),
        ("# nobody\n", "names no user"),
    ):
        bad = tmp_path / "users"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_users_file(str(bad))
