"""Page processors for the CLI tests, registered when this module is imported.

They walk cursors "0", "1", ... up to ``args["pages"]`` and enqueue their successor before doing
their work, so pages of one chain can run in parallel up to the batch's cap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta

from temporalio.common import RetryPolicy

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor

STARTS: dict[str, list[float]] = {}
"""``args["key"]`` -> ``time.monotonic()`` of every page attempt that started, in order."""


async def _walk(context: BatchProcessorContext) -> tuple[int, dict[str, object]]:
    args = json.loads(context.args_str)
    STARTS.setdefault(str(args.get("key", "")), []).append(time.monotonic())
    num = int(context.page.cursor_str or 0)
    # What a processor's HTTP client logs for every request, and what the processor says: the
    # worker command shows the second, not the first (tests/test_cli.py).
    logging.getLogger("httpx").info("HTTP Request: GET https://api.example/items/%d", num)
    context.logger.info("walking page %d", num)
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


@page_processor
class CliFlaky(PageProcessor):
    """Page ``args["fail_page"]`` fails its first ``args["fail_attempts"]`` attempts with a
    multi-line message (an HTTP error with the response's body), then succeeds."""

    async def run(self, context: BatchProcessorContext) -> int:
        num, args = await _walk(context)
        if num == args["fail_page"] and context.attempt <= int(args["fail_attempts"]):
            raise ConnectionError(
                f"HTTP 503 from https://api.example/items/{num}\n<html>busy</html>"
            )
        return context.page.size

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0)
