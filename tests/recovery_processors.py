"""Processors for the recovery tests (discovery apart, retry and skip one page), scripted by
their args (JSON) like ``tests.processors``.

Items are the ints [cursor, cursor + size) below args["n"]. args["fail"] maps a page number to
how many of its first attempts fail (before any enqueue); args["discovery_fail"] maps a page
number to how many of its first discoveries fail; args["discover_sleep"] maps a page number to
how long its first discovery takes.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.common import RetryPolicy

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor
from tests.processors import script


@dataclass
class Record:
    """What happened to one batch in this process."""

    done: dict[int, float] = field(default_factory=dict)  # page -> when it completed
    items: list[int] = field(default_factory=list)
    attempts: list[tuple[int, int]] = field(default_factory=list)
    discoveries: list[tuple[int, int]] = field(default_factory=list)


RECORDS: dict[str, Record] = defaultdict(Record)

_SLOW_RETRY = RetryPolicy(
    initial_interval=timedelta(hours=1), backoff_coefficient=1.0, maximum_attempts=5
)
_ONE_SECOND = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=1.0, maximum_attempts=10
)


def _end(context: BatchProcessorContext) -> int:
    """Where the page's chain ends: args["n"], or with args["chain_len"] the end of the
    cursor's range [k * chain_len, (k + 1) * chain_len)."""
    args, start = script(context), int(context.page.cursor_str or 0)
    chain_len = args.get("chain_len")
    return (start // chain_len + 1) * chain_len if chain_len else int(args.get("n", 100))


def _successor(context: BatchProcessorContext) -> BatchPage | None:
    start, n = int(context.page.cursor_str or 0), _end(context)
    end = min(start + context.page.size, n)
    return BatchPage(str(end), context.page.size) if end < n else None


async def _process(context: BatchProcessorContext, *, enqueue: bool) -> int:
    args, rec = script(context), RECORDS[context.batch_id]
    rec.attempts.append((context.page_num, context.attempt))
    fails = args.get("fail", {}).get(str(context.page_num), 0)
    if context.attempt <= fails:
        raise ValueError(f"boom on page {context.page_num}")
    nxt = _successor(context)
    if enqueue and nxt is not None:
        await context.enqueue_next_page(nxt)
    if args.get("sleep"):
        await asyncio.sleep(args["sleep"])
    start = int(context.page.cursor_str or 0)
    end = min(start + context.page.size, _end(context))
    rec.items.extend(range(start, end))
    rec.done[context.page_num] = time.monotonic()
    return end - start


async def _discover(context: BatchProcessorContext) -> BatchPage | None:
    args, rec = script(context), RECORDS[context.batch_id]
    rec.discoveries.append((context.page_num, context.attempt))
    sleep = args.get("discover_sleep", {})
    if sleep.get(str(context.page_num)) and context.attempt == 1:
        await asyncio.sleep(sleep[str(context.page_num)])
    if context.attempt <= args.get("discovery_fail", {}).get(str(context.page_num), 0):
        raise ConnectionError(f"keys query failed for page {context.page_num}")
    return _successor(context)


@page_processor
class ApartOneSecond(PageProcessor):
    """Discovers apart; a failed page is retried every second. ``run`` also enqueues (as a
    processor moving from the seed style might): that enqueue must be ignored."""

    async def next_page(self, context: BatchProcessorContext) -> BatchPage | None:
        return await _discover(context)

    async def run(self, context: BatchProcessorContext) -> int:
        return await _process(context, enqueue=True)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _ONE_SECOND


@page_processor
class ApartAtMostOnce(PageProcessor):
    """Discovers apart with a plain ``def next_page``; one attempt per page."""

    def next_page(self, context: BatchProcessorContext) -> list[BatchPage]:
        nxt = _successor(context)
        RECORDS[context.batch_id].discoveries.append((context.page_num, context.attempt))
        return [nxt] if nxt is not None else []

    async def run(self, context: BatchProcessorContext) -> int:
        return await _process(context, enqueue=False)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_MOST_ONCE


@page_processor
class ApartSlowRetry(PageProcessor):
    """Discovers apart; a failed page waits an hour for its retry (an operator steps in)."""

    async def next_page(self, context: BatchProcessorContext) -> BatchPage | None:
        return await _discover(context)

    async def run(self, context: BatchProcessorContext) -> int:
        return await _process(context, enqueue=False)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _SLOW_RETRY


@page_processor
class SeedSlowRetry(PageProcessor):
    """The seed style (enqueue in ``run``, after a failure point); a failed page waits an hour
    for its retry."""

    async def run(self, context: BatchProcessorContext) -> int:
        return await _process(context, enqueue=True)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _SLOW_RETRY
