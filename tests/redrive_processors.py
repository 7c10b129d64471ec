"""Processors and a notifier for the item-failure and redrive tests (registered on import).

Records are keyed by the workflow ID, since a redrive batch shares its ``batch_id`` label with
the batch it redrives.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from batch_orchestra import (
    BatchNotifierContext,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    batch_notifier,
    page_processor,
)


@dataclass
class Runs:
    """What the pages of one batch (workflow ID) did."""

    attempts: list[tuple[str, int]] = field(default_factory=list)  # (cursor, attempt)
    completed: list[str] = field(default_factory=list)  # cursors
    enqueued: list[str] = field(default_factory=list)  # cursors whose successor was sent


RUNS: dict[str, Runs] = defaultdict(Runs)
BROKEN: dict[str, set[int]] = {}
"""Workflow ID -> cursors whose pages fail (non-retryably) until the test removes them."""
HOLD: dict[str, asyncio.Event] = {}
"""Workflow ID -> the last page of the chain waits for this event (keeps the batch running)."""

_FAST = RetryPolicy(
    initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=3
)


def _wid() -> str:
    return activity.info().workflow_id or ""


@page_processor
class ItemsFlaky(PageProcessor):
    """Cursors "0".."pages-1", ``page.size`` items each (keys cursor*size + i); items whose
    key is a multiple of ``args["every"]`` are recorded as failed. Page ``args["flaky_page"]``
    records its failures, then fails its first attempt (those must not count)."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        num = int(context.page.cursor_str or 0)
        RUNS[_wid()].attempts.append((context.page.cursor_str, context.attempt))
        if num + 1 < args["pages"]:
            await context.enqueue_next_page(BatchPage(str(num + 1), context.page.size))
        ok = 0
        for i in range(context.page.size):
            key = num * context.page.size + i
            if key % args["every"] == 0:
                context.record_failure(f"item-{key}", ValueError(f"bad item {key}"))
            else:
                ok += 1
        await asyncio.sleep(args.get("sleep", 0))
        if num == args.get("flaky_page") and context.attempt == 1:
            context.record_failure("ghost", "recorded by an attempt that then failed")
            raise RuntimeError("flaky page")
        return ok

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _FAST


@page_processor
class ItemsSync(PageProcessor):
    """A plain ``def run``: every page records ``args["bad"]`` failed items at once."""

    def run(self, context: BatchProcessorContext) -> int:  # type: ignore[override]
        args = json.loads(context.args_str)
        num = int(context.page.cursor_str or 0)
        if num + 1 < args["pages"]:
            context.enqueue_next_page(BatchPage(str(num + 1), context.page.size))
        context.record_failures([(f"{num}-{i}", KeyError(i)) for i in range(args["bad"])])
        return context.page.size - args["bad"]

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class Redrivable(PageProcessor):
    """Cursors "0".."pages-1". A page in ``BROKEN[wid]`` fails for good, after enqueueing its
    successor when ``args["fail_after_enqueue"]`` lists it (else before). The last page waits
    for ``HOLD[wid]`` if there is one. Each page records one failed item when
    ``args["item_failures"]``."""

    async def run(self, context: BatchProcessorContext) -> int:
        wid, args = _wid(), json.loads(context.args_str)
        num = int(context.page.cursor_str or 0)
        runs = RUNS[wid]
        runs.attempts.append((context.page.cursor_str, context.attempt))
        broken = num in BROKEN.get(wid, set())
        if broken and num not in args.get("fail_after_enqueue", []):
            raise ApplicationError(f"page {num} is broken", non_retryable=True)
        if num + 1 < args["pages"]:
            already = context.enqueued_successor  # by an earlier attempt, or the redriven page
            await context.enqueue_next_page(BatchPage(str(num + 1), context.page.size))
            if not already:
                runs.enqueued.append(context.page.cursor_str)
        if broken:
            raise ApplicationError(f"page {num} is broken", non_retryable=True)
        if args.get("item_failures"):
            context.record_failure(f"key-{num}", f"item of page {num} is bad")
        if num == args["pages"] - 1 and wid in HOLD:
            await HOLD[wid].wait()
        runs.completed.append(context.page.cursor_str)
        return context.page.size

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        RUNS[_wid()].completed.extend(f"item:{k}" for k in keys)
        return len(keys)

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


DEAD_LETTERS: dict[str, str] = {}
"""Batch ID -> the SQLite file the ``dead_letter`` notifier writes."""
NOTIFIER_CALLS: dict[str, list[tuple[str, int]]] = defaultdict(list)
"""Batch ID -> (event, number of failed items) of every notifier call."""


@batch_notifier
async def dead_letter(context: BatchNotifierContext) -> None:
    """Store failed items in a SQLite dead-letter table, once each (delivery is at least once:
    the primary key drops a repeat)."""
    NOTIFIER_CALLS[context.batch_id].append((context.event, len(context.failed_items)))
    if context.event != "items_failed":
        return
    path = DEAD_LETTERS[context.batch_id]
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letter (workflow_id TEXT, page_num INTEGER, "
            "item_key TEXT, error TEXT, failed_at TEXT, "
            "PRIMARY KEY (workflow_id, page_num, item_key))"
        )
        db.executemany(
            "INSERT OR IGNORE INTO dead_letter VALUES (?, ?, ?, ?, ?)",
            [
                (
                    context.workflow_id,
                    f.page_num,
                    f.key,
                    f"{f.error_type}: {f.error_message}",
                    f.failed_at.isoformat(),
                )
                for f in context.failed_items
            ],
        )


def dead_letter_rows(path: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT page_num, item_key, error FROM dead_letter ORDER BY 1, 2"))
