"""The dashboard's series page in a real browser (Playwright driving Debian's Chromium).

The series list links to the series; its page shows schedule, state and mark; "Run now" starts
a run whose committed window shows in the recent runs, linked to its batch, whose page names
the series and the window; pause and resume flip the schedule. Screenshots go to
``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    EmbeddedTemporal,
    SeriesSpec,
    Watermark,
)
from batch_orchestra.dashboard import DashboardServer, create_app
from batch_orchestra.testing import free_port
from tests import series_processors as sp
from tests.helpers import assert_eventually
from tests.test_dashboard_browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, async_playwright

try:
    from playwright.async_api import Dialog
except ImportError:  # pragma: no cover - the import above skipped this module already
    pass


async def test_series_page_in_a_browser(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    tmp_path: Path,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "items.db"
    sp.create_db(db)
    sp.insert(db, range(1, 9))
    name = f"dash-{uuid.uuid4().hex[:8]}"
    app = create_app(temporal.client)
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    async with (
        new_worker(),
        DashboardServer(app, port=free_port()) as server,
        async_playwright() as pw,
    ):
        series = await orchestra.create_series(
            SeriesSpec(
                batch=BatchOrchestratorInput(
                    page_processor="SeriesItems",
                    page_size=4,
                    max_parallelism=2,
                    args=json.dumps({"db": str(db)}),
                ),
                every=timedelta(hours=1),
                window=Watermark(initial="0"),
            ),
            id=name,
            task_queue=task_queue,
        )
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", on_dialog)
            await page.goto(server.url.rstrip("/") + "/series")
            link = page.get_by_role("link", name=name)
            await link.wait_for()
            await link.click()
            assert await page.text_content("#series-name") == name
            assert await page.text_content("#series-state") == "ACTIVE"
            assert "0" in (await page.text_content('[data-field="mark"]') or "")

            # Run now: the run commits its window; the page lists it, linked to its batch.
            await page.click("#series-trigger-button")
            await page.wait_for_url("**done=triggered")
            assert "Start a run of series" in dialogs[-1]

            async def committed() -> None:
                assert (await series.describe()).mark == "8"

            await assert_eventually(committed, timeout=30)
            await page.reload()
            assert (await page.text_content('[data-field="mark"]') or "").startswith("8")
            row = page.locator("#series-runs tbody tr").first
            assert "committed" in (await row.text_content() or "")
            assert "(0, 8]" in (await row.text_content() or "")
            await page.screenshot(path=str(ARTIFACTS / "series.png"), full_page=True)
            await row.get_by_role("link").click()
            await page.wait_for_selector("#batch-window")
            assert await page.text_content("#batch-window") == "(0, 8]"
            assert await page.text_content("#series-link") == name
            await page.screenshot(path=str(ARTIFACTS / "series-batch.png"), full_page=True)

            # Pause and resume from the page: the schedule follows.
            await page.click("#series-link")
            await page.click("#series-pause-button")
            await page.wait_for_url("**done=paused")
            assert await page.text_content("#series-state") == "PAUSED"
            assert (await series.describe()).paused
            await page.click("#series-resume-button")
            await page.wait_for_url("**done=resumed")
            assert await page.text_content("#series-state") == "ACTIVE"
            assert not (await series.describe()).paused
            assert len(dialogs) == 3
        finally:
            await browser.close()
            await series.delete()
