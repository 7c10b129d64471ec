"""Page processors used by the tests. A batch's behaviour is scripted through its args (JSON).

Records are kept per batch_id in this process (or in a SQLite file for multi-process tests).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from batch_orchestra import (
    BatchNotifierContext,
    BatchPage,
    BatchProcessorContext,
    BatchTrackerContext,
    PageProcessor,
    batch_notifier,
    batch_tracker,
    page_processor,
)


@dataclass
class Record:
    """What happened to one batch in this process."""

    items: list[int] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)
    attempts: list[tuple[int, int]] = field(default_factory=list)
    enqueued: list[tuple[int, int]] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    started: list[float] = field(default_factory=list)
    trackers: list[tuple[int, bool]] = field(default_factory=list)


RECORDS: dict[str, Record] = defaultdict(Record)


def script(context: BatchProcessorContext) -> dict[str, Any]:
    return json.loads(context.args_str) if context.has_args() else {}


async def run_script(context: BatchProcessorContext) -> int:
    """Items are the ints [cursor, cursor + size) below args["n"] (or, with args["chain_len"],
    below the end of the chain's range [k * chain_len, (k + 1) * chain_len))."""
    args = script(context)
    rec = RECORDS[context.batch_id]
    rec.attempts.append((context.page_num, context.attempt))
    rec.started.append(asyncio.get_running_loop().time())
    rec.running += 1
    rec.max_running = max(rec.max_running, rec.running)
    try:
        start = int(context.page.cursor_str or 0)
        chain_len = args.get("chain_len")
        n = (start // chain_len + 1) * chain_len if chain_len else args.get("n", 100)
        end = min(start + context.page.size, n)
        fail = args.get("fail", {}).get(str(context.page_num))
        if fail and fail.get("before_enqueue") and context.attempt <= fail["attempts"]:
            raise ValueError(fail.get("message", f"boom on page {context.page_num}"))
        if end < n:
            if args.get("double_enqueue"):
                await context.enqueue_next_page(BatchPage(str(end), context.page.size))
            await context.enqueue_next_page(BatchPage(str(end), context.page.size))
            if not context.enqueued_successor:
                raise AssertionError("enqueue did not take")
            rec.enqueued.append((context.page_num, context.attempt))
        if args.get("sleep"):
            await asyncio.sleep(args["sleep"])
        if fail and context.attempt <= fail["attempts"]:
            raise ValueError(fail.get("message", f"boom on page {context.page_num}"))
        if args.get("read_missing_args"):
            _ = context.args_str
        rec.items.extend(range(start, end))
        rec.pages.append(context.page_num)
        context.logger.info("processed %d items", end - start)
        return end - start
    finally:
        rec.running -= 1


_FAST = RetryPolicy(
    initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=3
)


@page_processor
class Scripted(PageProcessor):
    """At least once, 3 fast initial attempts, extended retries every second."""

    async def run(self, context: BatchProcessorContext) -> int:
        return await run_script(context)

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _FAST

    @property
    def extended_retry_interval_seconds(self) -> int:
        return 1


@page_processor
class ScriptedNoExtended(Scripted):
    """At least once, 3 fast attempts, then the page fails."""

    @property
    def use_extended_retries(self) -> bool:
        return False


@page_processor
class ScriptedNonRetryable(Scripted):
    """ValueError is non-retryable."""

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=100),
            maximum_attempts=3,
            non_retryable_error_types=["ValueError"],
        )


@page_processor
class ScriptedAtMostOnce(Scripted):
    """One attempt per page."""

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_MOST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(maximum_attempts=1)

    @property
    def use_extended_retries(self) -> bool:
        return False


@page_processor
class Looping(PageProcessor):
    """Enqueues its own cursor forever, unless the window catches it."""

    async def run(self, context: BatchProcessorContext) -> None:
        RECORDS[context.batch_id].pages.append(context.page_num)
        await context.enqueue_next_page(BatchPage(context.page.cursor_str, context.page.size))

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@batch_tracker
async def record_tracker(context: BatchTrackerContext) -> None:
    RECORDS[context.batch_id].trackers.append(
        (context.progress.num_completed_pages, context.is_final)
    )


HISTORY_SEEN: dict[str, list[int]] = defaultdict(list)
"""The length of ``progress.history`` each call of ``history_tracker`` was given, by batch."""


@batch_tracker
async def history_tracker(context: BatchTrackerContext) -> None:
    HISTORY_SEEN[context.batch_id].append(len(context.progress.history))


@page_processor
class SqliteRecorded(PageProcessor):
    """Writes each processed item to a SQLite file (args: {"db": path, "n": N, "sleep": s}).

    Used by tests that run workers in other processes."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        n = args["n"]
        start = int(context.page.cursor_str or 0)
        end = min(start + context.page.size, n)
        if end < n:
            await context.enqueue_next_page(BatchPage(str(end), context.page.size))
        await asyncio.sleep(args.get("sleep", 0))
        await asyncio.to_thread(_record_items, args["db"], context.page_num, start, end)
        return end - start

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=0)


def _record_items(db: str, page_num: int, start: int, end: int) -> None:
    with sqlite3.connect(db, timeout=30) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS done (item INTEGER, page INTEGER)")
        conn.executemany(
            "INSERT INTO done VALUES (?, ?)", [(i, page_num) for i in range(start, end)]
        )


@page_processor
class Lookahead(PageProcessor):
    """Leader pages enqueue the next k pages in one call (args: n, k, fail_leader_once)."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = script(context)
        rec = RECORDS[context.batch_id]
        rec.attempts.append((context.page_num, context.attempt))
        cursor = json.loads(context.page.cursor_str or '{"s": 0, "lead": true}')
        start, size, n, k = cursor["s"], context.page.size, args["n"], args["k"]
        if cursor["lead"]:
            starts = [start + size * i for i in range(1, k + 1) if start + size * i < n]
            await context.enqueue_next_pages(
                [BatchPage(json.dumps({"s": s, "lead": s == starts[-1]}), size) for s in starts]
            )
            if args.get("fail_leader_once") and context.attempt == 1:
                raise RuntimeError("leader failed after enqueueing its lookahead")
        end = min(start + size, n)
        rec.items.extend(range(start, end))
        rec.pages.append(context.page_num)
        return end - start

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _FAST


OUTAGE: dict[str, bool] = {}
"""batch_id -> whether the downstream of `Outage` pages is down."""


@page_processor
class Outage(PageProcessor):
    """Enqueues its successor, then fails while OUTAGE[batch_id] (args: n)."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = script(context)
        start, size = int(context.page.cursor_str or 0), context.page.size
        end = min(start + size, args["n"])
        if end < args["n"]:
            await context.enqueue_next_page(BatchPage(str(end), size))
        if OUTAGE.get(context.batch_id):
            raise ConnectionError(f"could not connect to the database (page {context.page_num})")
        RECORDS[context.batch_id].items.extend(range(start, end))
        RECORDS[context.batch_id].pages.append(context.page_num)
        return end - start

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _FAST

    @property
    def extended_retry_interval_seconds(self) -> int:
        return 1


@page_processor
class SyncSqlite(PageProcessor):
    """A plain `def run` over a synchronous driver, enqueueing without await (args: db, n)."""

    def run(self, context: BatchProcessorContext) -> int:  # type: ignore[override]
        args = json.loads(context.args_str)
        start, size = int(context.page.cursor_str or 0), context.page.size
        end = min(start + size, args["n"])
        if end < args["n"]:
            context.enqueue_next_page(BatchPage(str(end), size))
        _record_items(args["db"], context.page_num, start, end)
        return end - start  # type: ignore[no-any-return]

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class ForgetsAwait(PageProcessor):
    """Calls enqueue_next_page without await (args: n); returns a float item count."""

    async def run(self, context: BatchProcessorContext) -> float:  # type: ignore[override]
        args = script(context)
        start, size = int(context.page.cursor_str or 0), context.page.size
        end = min(start + size, args["n"])
        if end < args["n"]:
            context.enqueue_next_page(BatchPage(str(end), size))  # no await
        await asyncio.sleep(0.01)
        RECORDS[context.batch_id].items.extend(range(start, end))
        return float(end - start)

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class LateEnqueue(PageProcessor):
    """Sleeps, then enqueues its successor (args: n, sleep, tag): its messages arrive late."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = script(context)
        start, size = int(context.page.cursor_str.rsplit(":", 1)[-1]), context.page.size
        RECORDS[args["tag"]].attempts.append((context.page_num, context.attempt))
        try:
            await asyncio.sleep(args.get("sleep", 0))
        finally:
            end = min(start + size, args["n"])
            if end < args["n"]:
                await context.enqueue_next_page(BatchPage(f"{args['tag']}:{end}", size))
        RECORDS[args["tag"]].pages.append(context.page_num)
        return end - start

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


NOTICES: dict[str, list[tuple[str, str | None, list[int]]]] = defaultdict(list)


@batch_notifier
async def record_notifier(context: BatchNotifierContext) -> None:
    NOTICES[context.batch_id].append(
        (context.event, context.reason, [p.page_num for p in context.failed_pages])
    )
