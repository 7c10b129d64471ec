"""Processors of the checkpoint tests (also run by the worker process that test_checkpoints kills).

Each records what it did per (attempt, item), in memory, or in SQLite when args name a ``db``
(the killed worker is another process).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor

DONE: dict[str, list[tuple[int, int]]] = defaultdict(list)
"""batch_id -> [(attempt, item), ...] in the order the items' side effects happened."""
CALLS: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
RESUMED: dict[str, list[Any]] = defaultdict(list)


def _record(context: BatchProcessorContext, item: int) -> None:
    args = json.loads(context.args_str)
    if "db" in args:
        with sqlite3.connect(args["db"], timeout=30) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS done (attempt INT, item INT)")
            conn.execute("INSERT INTO done VALUES (?, ?)", (context.attempt, item))
    else:
        DONE[context.batch_id].append((context.attempt, item))


class _Retried(PageProcessor):
    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=timedelta(seconds=0.2), maximum_attempts=5)


@page_processor
class FailsAfterSeven(_Retried):
    """Ten items through ``context.items``; the first attempt records item 2 as failed and
    raises on item 7 (or, with ``hang``, waits forever there for its worker to be killed)."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        i = int(context.page.cursor_str or 0)
        if i + 1 < args.get("pages", 1):
            await context.enqueue_next_page(BatchPage(str(i + 1), 10))
        rows = context.items(range(10), key=lambda n: f"row-{n}")
        RESUMED[context.batch_id].append((context.attempt, rows.skipped))
        async for n in rows:
            if context.attempt == 1 and n == 7:
                if args.get("hang"):
                    await asyncio.Event().wait()
                raise ConnectionError("the API went away at item 7")
            _record(context, n)
            if n == 2 and context.attempt == 1:
                context.record_failure(f"row-{n}", ValueError("row 2 is malformed"))
        return 10  # not added: context.items counted the items


@page_processor
class ManualCheckpoint(_Retried):
    """Its own checkpoint: ``{"next": n}`` after each item; the first attempt fails at item 7."""

    async def run(self, context: BatchProcessorContext) -> None:
        RESUMED[context.batch_id].append(context.resumed_from)
        start = (context.resumed_from or {}).get("next", 0)
        for n in range(start, 10):
            if context.attempt == 1 and n == 7:
                raise ConnectionError("the API went away at item 7")
            _record(context, n)
            context.add_completed_items(1)
            context.checkpoint({"next": n + 1})


class BadRow(Exception):
    """A row the API refuses for good: retrying it cannot help."""


@page_processor
class RetriesEachItem(_Retried):
    """Ten items, each retried on its own: item 4 always fails, item 6 fails twice then
    succeeds, item 8 raises a non-retryable error."""

    async def run(self, context: BatchProcessorContext) -> None:
        i = int(context.page.cursor_str or 0)
        if i + 1 < json.loads(context.args_str).get("pages", 1):
            await context.enqueue_next_page(BatchPage(str(i + 1), 10))
        calls = CALLS[context.batch_id]

        async def call(n: int) -> None:
            calls[n] += 1
            if n == 4:
                raise ConnectionError("503 from the API")
            if n == 6 and calls[n] <= 2:
                raise TimeoutError("the API was slow")
            if n == 8:
                raise BadRow("the API refused row 8")
            _record(context, n)

        await context.process_items(
            range(10),
            call,
            key=lambda n: f"row-{n}",
            retry=RetryPolicy(
                maximum_attempts=3,
                initial_interval=timedelta(milliseconds=10),
                non_retryable_error_types=["BadRow"],
            ),
        )
