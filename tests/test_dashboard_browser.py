"""The dashboard in a real browser (Playwright driving Debian's Chromium) on real batches.

The list shows the batch; its page shows progress moving; pausing from the page (accepting the
confirmation) stops pages from starting, checked through the API; resuming finishes the batch; an
HTML-laden batch ID renders as text. A second batch is operated from its page (failed items,
retry-page, skip-page, set-rate, redrive, redrive of items, each checked through the API), at
375 and 1,440 px without sideways scrolling, and with no worker. Screenshots go to
``test-artifacts/dashboard/`` (or ``$TEST_ARTIFACTS/dashboard``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import batch_orchestra._engine.history as history_module
import tests.dashboard_processors as ops
from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    EmbeddedTemporal,
)
from batch_orchestra.dashboard import DashboardServer, create_app
from batch_orchestra.dashboard._data import dashboard_identity
from batch_orchestra.testing import free_port
from tests.helpers import assert_eventually

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BATCH_ORCHESTRA_CHROMIUM") or shutil.which("chromium") or ""
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright.async_api import Dialog, Page, async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None  # type: ignore[assignment]

_MISSING = (
    "playwright is not installed (pip install -e '.[dev]')"
    if async_playwright is None
    else "Chromium is not installed (apt-get install chromium)"
    if not CHROMIUM
    else None
)
if _MISSING:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"browser tests must run under CI, but {_MISSING}")
    pytest.skip(f"browser tests skipped: {_MISSING}", allow_module_level=True)

EVIL_ID = "<img src=x onerror=alert(1)><b>bold</b>"
PAGES = 60


async def _number(page: Page, field: str) -> int:
    text = await page.text_content(f'#batch [data-field="{field}"]') or "0"
    return int(text.split()[0].replace(",", ""))


async def test_dashboard_in_a_browser(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wid = f"{EVIL_ID}-{task_queue[-8:]}"
    # A long page: the session's server holds every other test's batches too.
    app = create_app(temporal.client, poll_interval=timedelta(milliseconds=400), page_size=100)
    dialogs: list[tuple[str, str]] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append((dialog.type, dialog.message))
        await (dialog.accept() if dialog.type == "confirm" else dialog.dismiss())

    async with (
        new_worker(),
        DashboardServer(app, port=free_port()) as server,
        async_playwright() as pw,
    ):
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="Scripted",
                page_size=10,
                max_parallelism=2,
                # About 20 s of pages at parallelism 2: the pause must land before the last one
                # (at 0.2 s a page the batch once finished while the browser started).
                args=json.dumps({"n": PAGES * 10, "sleep": 0.6}),
                total_items=PAGES * 10,
            ),
            id=wid,
            task_queue=task_queue,
        )
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            # Without the page's CSP: Playwright's waits evaluate script, and escaping must hold
            # on its own, not only because the CSP would block an injected script.
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            page.on("dialog", on_dialog)

            # The list shows the batch, its ID as text.
            await page.goto(server.url)
            link = page.get_by_role("link", name=wid)
            await link.wait_for()
            assert await link.text_content() == wid
            assert await page.locator("#batches img, #batches td.id b").count() == 0
            await page.screenshot(path=str(ARTIFACTS / "list.png"), full_page=True)

            # Its page: the ID as text, and progress moving while we watch.
            await link.click()
            await page.wait_for_function(
                "Number(document.getElementById('batch').dataset.polls || 0) >= 2"
            )
            assert await page.text_content("#batch-id") == wid
            assert await page.locator("#batch-id *:not(wbr), img").count() == 0
            before = await _number(page, "num_completed_pages")
            bar_before = float(await page.eval_on_selector("#progress", "e => e.value"))
            await page.wait_for_function(
                "n => Number(document.querySelector('#batch [data-field=num_completed_pages]')"
                ".textContent.replace(/,/g, '')) > n + 2",
                arg=before,
                timeout=15_000,
            )
            assert float(await page.eval_on_selector("#progress", "e => e.value")) > bar_before
            # One quantity per chart: items/s; pages running and the cap.
            assert await page.locator("#chart-items polyline").count() == 1
            assert await page.locator("#chart-pages polyline").count() == 2
            await page.screenshot(path=str(ARTIFACTS / "batch-running.png"), full_page=True)

            # Pause from the page: after the running pages finish, none starts. The page posts
            # it and stays (no reload), saying what happened.
            await page.evaluate("window.__same_page = true")
            await page.click("#pause-button")
            await page.wait_for_selector('#flash:has-text("Paused")')
            assert dialogs[-1][0] == "confirm" and "Pause batch" in dialogs[-1][1]
            assert (await handle.get_progress()).is_paused
            assert await page.evaluate("window.__same_page === true")

            async def drained() -> None:
                assert (await handle.get_progress()).num_processing_pages == 0

            await assert_eventually(drained, timeout=10)
            frozen = (await handle.get_progress()).num_completed_pages
            await asyncio.sleep(1.0)
            p = await handle.get_progress()
            assert p.num_processing_pages == 0 and p.num_completed_pages == frozen
            assert frozen < PAGES
            await page.wait_for_selector('#batch [data-field="label"]:has-text("PAUSED")')
            await page.screenshot(path=str(ARTIFACTS / "batch-paused.png"), full_page=True)

            # Resume from the page: the batch finishes, and the page says so.
            await page.click("#resume-button")
            await page.wait_for_selector('#flash:has-text("Resumed")')
            final = await asyncio.wait_for(handle.result(), 60)
            assert final.num_completed_pages == PAGES and final.num_completed_items == PAGES * 10
            await page.reload()
            await page.wait_for_selector('#batch [data-field="label"]:has-text("COMPLETED")')
            assert await page.eval_on_selector("#progress", "e => e.value") == 100
            await page.screenshot(path=str(ARTIFACTS / "batch-completed.png"), full_page=True)
            assert [kind for kind, _ in dialogs] == ["confirm", "confirm"]  # no injected alert
        finally:
            await browser.close()


async def _fits(page: Page, what: str) -> None:
    """The page does not scroll sideways at this width (a wide table scrolls in its own box)."""
    scroll, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{what}: {scroll} px wide in a {inner} px window"


async def _points(page: Page) -> int:
    return int(await page.get_attribute("#chart-items", "data-points") or 0)


async def test_operating_a_batch_in_a_browser(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    """Failed items, every page action checked through the API, the chart across an action, a
    finished batch's average, a redrive of items, 375 and 1,440 px, and no worker: "unknown"."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wid = f"nightly-backfill_eu/west-{task_queue[-8:]}"
    app = create_app(temporal.client, poll_interval=timedelta(milliseconds=400), page_size=100)
    async with DashboardServer(app, port=free_port()) as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            url = server.url.rstrip("/") + f"/batches/{quote(wid, safe='')}"
            async with new_worker(), ops.holding(wid):
                handle = await orchestra.start(
                    BatchOrchestratorInput(
                        page_processor="Operable",
                        page_size=10,
                        max_parallelism=4,
                        args=json.dumps(
                            {
                                "pages": 16,
                                "sleep": 0.3,
                                "stuck": [3, 5],
                                "broken": [7],
                                "bad_items": [0, 4, 8, 12],
                            }
                        ),
                        total_items=160,
                    ),
                    id=wid,
                    task_queue=task_queue,
                )
                await page.goto(url)
                await page.wait_for_function(
                    "Number(document.getElementById('batch').dataset.polls || 0) >= 2"
                )

                async def held() -> BatchOrchestratorProgress:
                    p = await handle.get_progress()
                    assert p.num_stuck_pages == 2 and p.num_failed_pages == 1, p
                    assert p.num_failed_items == 4, p
                    return p

                await assert_eventually(held, timeout=30)
                # The failed items: on their card, in their table, as CSV.
                await page.wait_for_selector('#batch [data-field="num_failed_items"]:text-is("4")')
                await page.wait_for_function(
                    "document.querySelectorAll('#failed-items tbody tr').length === 4"
                )
                href = await page.get_attribute("#failures-csv", "href")
                exported = await (await page.request.get(server.url.rstrip("/") + str(href))).text()
                assert all(f"item-{n}" in exported for n in (0, 4, 8, 12)), exported
                await page.wait_for_function(
                    "Number(document.getElementById('chart-items').dataset.points) >= 3"
                )
                before = await _points(page)
                await page.wait_for_selector("#retry-page-3-button")
                await page.wait_for_selector("#stuck-pages .msg details")
                await page.screenshot(path=str(ARTIFACTS / "failing-1440.png"), full_page=True)
                await page.evaluate("window.__same_page = true")

                # Set the rate limits: posted without a reload; the chart keeps its points.
                await page.fill("#pages-rate-input", "40")
                await page.click("#set-rate-button")
                await page.wait_for_selector('#flash:has-text("Rate limit now 40 pages/s")')
                assert (await handle.get_progress()).max_pages_per_second == 40
                assert await page.evaluate("window.__same_page === true")
                assert await _points(page) >= before

                # Retry a stuck page (its cause fixed), skip the other with a reason, redrive
                # the failed page: each checked through the batch's own progress.
                ops.PASS[wid].add(3)
                await page.click("#retry-page-3-button")

                async def retried() -> None:
                    assert (await handle.get_progress()).num_stuck_pages == 1

                await assert_eventually(retried)
                await page.fill("#skip-reason-5", "row 5 is bad data")
                await page.click("#skip-page-5-button")

                async def skipped() -> None:
                    p = await handle.get_progress()
                    assert p.num_skipped_pages == 1 and p.num_stuck_pages == 0

                await assert_eventually(skipped)
                ops.PASS[wid].add(7)
                await page.click("#redrive-button")

                async def redriven() -> None:
                    assert (await handle.get_progress()).num_failed_pages == 0

                await assert_eventually(redriven)
                p = await handle.get_progress()
                assert [c.by for c in p.control_changes] == [dashboard_identity()] * 4
                await page.wait_for_selector('#changes:has-text("row 5 is bad data")')
                assert await page.evaluate("window.__same_page === true")
                assert await _points(page) >= before
                await page.screenshot(path=str(ARTIFACTS / "operated-1440.png"), full_page=True)
                await _fits(page, "batch page at 1,440 px")

                # A phone's width: nothing scrolls sideways; IDs wrap at their separators.
                await page.set_viewport_size({"width": 375, "height": 800})
                await page.reload()
                await page.wait_for_selector("#chart-items polyline")
                await _fits(page, "batch page at 375 px")
                await page.screenshot(path=str(ARTIFACTS / "operated-375.png"), full_page=True)
                await page.goto(server.url)
                await page.wait_for_selector("#batches")
                await _fits(page, "batch list at 375 px")
                await page.screenshot(path=str(ARTIFACTS / "list-375.png"), full_page=True)
                await page.set_viewport_size({"width": 1440, "height": 900})
                await page.reload()
                await _fits(page, "batch list at 1,440 px")
                await page.screenshot(path=str(ARTIFACTS / "list-1440.png"), full_page=True)

                # Finished: its average rate rather than "collecting samples", and a redrive of
                # its failed items from the page, which goes to the new batch's page.
                ops.release(wid)
                final = await handle.result()
                assert final.num_completed_pages == 15 and final.num_failed_items == 4
                await page.goto(url)
                await page.wait_for_selector('#chart-average:has-text("items/s on average")')
                assert "(average)" in (await page.text_content("#batch .counts") or "")
                assert "collecting" not in (await page.text_content("#chart-section") or "")
                await page.screenshot(path=str(ARTIFACTS / "finished-1440.png"), full_page=True)
                await page.click("#redrive-items-button")
                new_id = f"{wid}-items-1"
                await page.wait_for_url(f"**/batches/{quote(new_id, safe='')}?done=*")
                redrive = await orchestra.get_handle(new_id).result()
                assert redrive.num_completed_items == 4 and redrive.redrive_of == wid
                await page.wait_for_selector("#redrive-of")

            # No worker at all: every count is "unknown", never 0.
            lost = await orchestra.start(
                BatchOrchestratorInput(page_processor="Operable", page_size=10, max_parallelism=2),
                id=f"nobody-{task_queue}",
                task_queue=f"nobody-{task_queue}",
            )
            await page.goto(server.url.rstrip("/") + f"/batches/{quote(lost.id, safe='')}")
            for field in ("num_completed_pages", "num_completed_items", "max_parallelism"):
                assert await page.text_content(f'#batch [data-field="{field}"]') == "unknown"
            assert "no worker answered" in (await page.text_content("#batch") or "")
            await page.screenshot(path=str(ARTIFACTS / "no-worker-1440.png"), full_page=True)
            await lost.workflow_handle.terminate()
        finally:
            await browser.close()


async def _from(page: Page) -> float:
    """The time of the chart's first point (seconds since the epoch)."""
    return float(await page.get_attribute("#chart-items", "data-from") or "nan")


async def test_the_chart_shows_the_batch_s_whole_life_from_its_own_history(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page opened while a batch runs charts it from before it was opened (the batch's own
    history, sampled here every 0.25 s instead of every minute); an action from the page keeps
    those points, updated in place; the finished batch's page shows its history and average."""
    monkeypatch.setattr(history_module, "SAMPLE_SECONDS", 0.25)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app = create_app(temporal.client, poll_interval=timedelta(milliseconds=300), page_size=100)
    async with (
        new_worker(),
        DashboardServer(app, port=free_port()) as server,
        async_playwright() as pw,
    ):
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="Scripted",
                page_size=10,
                max_parallelism=2,
                args=json.dumps({"n": 60 * 10, "sleep": 0.2}),
                total_items=60 * 10,
            ),
            id=f"history-{task_queue}",
            task_queue=task_queue,
        )

        async def sampled() -> float:
            p = await handle.get_progress()
            assert p.history and p.history[0].t < time.time() - 2.5, p.history
            assert len(p.history) >= 10, p.history  # the page below charts at least these
            return p.history[0].t

        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            await assert_eventually(sampled, timeout=15)
            opened = time.time()
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(server.url.rstrip("/") + f"/batches/{quote(handle.id, safe='')}")
            await page.wait_for_selector('#chart-source:has-text("the batch\'s history")')
            # Its points start before the page was opened, at the batch's first sample.
            assert await _from(page) < opened - 2
            before = await _points(page)
            assert before >= 10
            await page.screenshot(path=str(ARTIFACTS / "history-running.png"), full_page=True)

            # Set the parallelism from the page: posted without a reload; the chart keeps its
            # points from before and gains new ones in place.
            await page.evaluate("window.__same_page = true")
            await page.fill("#parallelism-input", "4")
            await page.click("#set-parallelism-button")
            await page.wait_for_selector('#flash:has-text("Parallelism set to 4")')
            assert (await handle.get_progress()).max_parallelism == 4
            await page.wait_for_function(
                "n => Number(document.getElementById('chart-items').dataset.points) > n",
                arg=before,
            )
            assert await page.evaluate("window.__same_page === true")
            assert await _from(page) < opened - 2
            assert "the batch's history" in (await page.text_content("#chart-source") or "")

            async def recorded() -> None:  # the change is in the batch's history (next sample)
                caps = [s.max_parallelism for s in (await handle.get_progress()).history]
                assert caps[0] == 2 and caps[-1] == 4, caps

            await assert_eventually(recorded, timeout=15)

            # Finished: the result carries the history; the page charts it with the average.
            final = await asyncio.wait_for(handle.result(), 30)
            assert final.num_completed_pages == 60 and final.history[0].t < opened - 2
            assert final.history[-1].completed_items == 600
            await page.goto(server.url.rstrip("/") + f"/batches/{quote(handle.id, safe='')}")
            await page.wait_for_selector('#chart-average:has-text("items/s on average")')
            await page.wait_for_selector('#chart-source:has-text("the batch\'s history")')
            assert await _from(page) == final.history[0].t
            assert await _points(page) >= len(final.history) > before
            await page.screenshot(path=str(ARTIFACTS / "history-finished.png"), full_page=True)
        finally:
            await browser.close()
