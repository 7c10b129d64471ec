"""The dashboard in a real browser (Playwright driving Debian's Chromium) on a real batch.

The list shows the batch; its page shows progress moving; pausing from the page (accepting the
confirmation) stops pages from starting, checked through the API; resuming finishes the batch; an
HTML-laden batch ID renders as text. Screenshots go to ``test-artifacts/dashboard/`` (or
``$TEST_ARTIFACTS/dashboard``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, EmbeddedTemporal
from batch_orchestra.dashboard import DashboardServer, create_app
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
                args=json.dumps({"n": PAGES * 10, "sleep": 0.2}),
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
            assert await page.locator("#batch-id *, img").count() == 0
            before = await _number(page, "num_completed_pages")
            bar_before = float(await page.eval_on_selector("#progress", "e => e.value"))
            await page.wait_for_function(
                "n => Number(document.querySelector('#batch [data-field=num_completed_pages]')"
                ".textContent.replace(/,/g, '')) > n + 2",
                arg=before,
                timeout=15_000,
            )
            assert float(await page.eval_on_selector("#progress", "e => e.value")) > bar_before
            assert await page.locator("#chart polyline").count() == 3
            await page.screenshot(path=str(ARTIFACTS / "batch-running.png"), full_page=True)

            # Pause from the page: after the running pages finish, none starts.
            await page.click("#pause-button")
            await page.wait_for_url("**done=paused")
            assert dialogs[-1][0] == "confirm" and "Pause batch" in dialogs[-1][1]
            assert (await handle.get_progress()).is_paused

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
            await page.wait_for_url("**done=resumed")
            final = await asyncio.wait_for(handle.result(), 30)
            assert final.num_completed_pages == PAGES and final.num_completed_items == PAGES * 10
            await page.reload()
            await page.wait_for_selector('#batch [data-field="label"]:has-text("COMPLETED")')
            assert await page.eval_on_selector("#progress", "e => e.value") == 100
            await page.screenshot(path=str(ARTIFACTS / "batch-completed.png"), full_page=True)
            assert [kind for kind, _ in dialogs] == ["confirm", "confirm"]  # no injected alert
        finally:
            await browser.close()
