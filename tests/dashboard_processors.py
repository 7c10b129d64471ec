"""A page processor whose pages the dashboard tests steer (registered when imported).

``Operable`` walks cursors "0".."pages-1", enqueueing each successor first. Through its args a
test makes pages stuck (``args["stuck"]``: an HTTP 500-like error until the test lets the page
pass) or failed for good (``args["broken"]``, non-retryable, until let pass), records a failed
item for every page in ``args["bad_items"]``, and holds the last page until ``release(wid)``. The
worker runs in the test's process, so these module-level gates steer it deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor

PASS: dict[str, set[int]] = defaultdict(set)
"""Workflow ID -> stuck or broken pages that succeed from now on."""
ITEMS_RUN: dict[str, list[str]] = defaultdict(list)
"""Workflow ID -> item keys its ``run_items`` processed (a redrive of items)."""
_HOLD: dict[str, asyncio.Event] = {}


def hold(wid: str) -> None:
    """Make the last page of batch ``wid`` wait until ``release(wid)``."""
    _HOLD[wid] = asyncio.Event()


def release(wid: str) -> None:
    """Let the last page of batch ``wid`` finish."""
    _HOLD.setdefault(wid, asyncio.Event()).set()


@contextlib.asynccontextmanager
async def holding(wid: str) -> AsyncIterator[None]:
    """Hold the last page of batch ``wid`` until the block ends, however it ends (so that a
    failing test does not leave its worker waiting for the page at shutdown)."""
    hold(wid)
    try:
        yield
    finally:
        release(wid)


def _wid() -> str:
    return activity.info().workflow_id or ""


@page_processor
class Operable(PageProcessor):
    """See the module's docstring; every page counts ``page.size`` items."""

    async def run(self, context: BatchProcessorContext) -> int:
        wid, args = _wid(), json.loads(context.args_str)
        num = int(context.page.cursor_str or 0)
        if num + 1 < args["pages"]:
            await context.enqueue_next_page(BatchPage(str(num + 1), context.page.size))
        await asyncio.sleep(float(args.get("sleep", 0)))
        passes = num in PASS[wid]
        if num in args.get("stuck", []) and not passes:
            raise ConnectionError(
                f"HTTP 500 Internal Server Error for https://api.example/items/{num}?try="
                f"{context.attempt}\n<html><body>upstream failed</body></html>"
            )
        if num in args.get("broken", []) and not passes:
            raise ApplicationError(f"page {num} has a row that cannot be read", non_retryable=True)
        if num in args.get("bad_items", []):
            context.record_failure(f"item-{num}", ValueError(f"price of item {num} is negative"))
        if num == args["pages"] - 1 and wid in _HOLD:
            await _HOLD[wid].wait()
        return context.page.size

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        ITEMS_RUN[_wid()].extend(keys)
        return len(keys)

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=100),
            backoff_coefficient=1.0,
            maximum_attempts=2,
        )

    @property
    def extended_retry_interval_seconds(self) -> int:
        return 3600  # a stuck page waits for the operator (retry-page), not for the clock
