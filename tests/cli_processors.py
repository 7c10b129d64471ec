"""Page processors for the CLI tests, registered when this module is imported.

Both walk cursors "0", "1", ... up to ``args["pages"]`` and enqueue their successor before doing
their work, so pages of one chain can run in parallel up to the batch's cap.
"""

from __future__ import annotations

import asyncio
import json
import time

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor

STARTS: dict[str, list[float]] = {}
"""``args["key"]`` -> ``time.monotonic()`` of every page attempt that started, in order."""


async def _walk(context: BatchProcessorContext) -> tuple[int, dict[str, object]]:
    args = json.loads(context.args_str)
    STARTS.setdefault(str(args.get("key", "")), []).append(time.monotonic())
    num = int(context.page.cursor_str or 0)
    if num + 1 < int(args["pages"]):
        await context.enqueue_next_page(BatchPage(str(num + 1), context.page.size))
    await asyncio.sleep(float(args.get("sleep", 0)))
    return num, args


@page_processor
class CliSleepy(PageProcessor):
    """Sleeps ``args["sleep"]`` seconds per page; each page counts ``page.size`` items."""

    async def run(self, context: BatchProcessorContext) -> int:
        await _walk(context)
        return context.page.size

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class CliFailing(PageProcessor):
    """Fails page ``args["fail_page"]`` with a recognizable message; never retried."""

    async def run(self, context: BatchProcessorContext) -> int:
        num, args = await _walk(context)
        if num == args["fail_page"]:
            raise RuntimeError(f"boom: page {num} is broken")
        return context.page.size

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_MOST_ONCE
