"""The benchmark's page processor: N no-op pages split into C chains.

The cursor is the page's index as a string. Chain ``i`` covers indexes
``[i*N//C, (i+1)*N//C)``; a page enqueues ``index + 1`` (if still in its chain) before it
"processes" itself, as the pipelined-pagination contract asks, then optionally sleeps
``page_seconds`` (spread by ``jitter``, see ``bench._baseline.page_duration``). With
C >= max_parallelism the supply of pending pages never limits the batch, so the benchmark
measures the orchestrator; with C = 1 it measures the discovery ceiling of a single chain.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from dataclasses import dataclass
from functools import lru_cache

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor
from bench._baseline import page_duration

PROCESSOR_NAME = "BenchNoopPages"


@dataclass(frozen=True)
class NoopArgs:
    pages: int
    chains: int
    page_seconds: float = 0.0
    jitter: float = 0.0
    lookahead: int = 1

    def to_json(self) -> str:
        return json.dumps(
            {
                "pages": self.pages,
                "chains": self.chains,
                "page_seconds": self.page_seconds,
                "jitter": self.jitter,
                "lookahead": self.lookahead,
            }
        )

    def first_cursors(self) -> list[str]:
        return [str(b) for b in _bounds(self.pages, self.chains)[:-1]]


@lru_cache(maxsize=16)
def _bounds(pages: int, chains: int) -> tuple[int, ...]:
    """Chain start indexes plus ``pages`` at the end (empty chains dropped)."""
    chains = max(1, min(chains, pages))
    return tuple(sorted({i * pages // chains for i in range(chains)} | {pages}))


@lru_cache(maxsize=16)
def _parse(args_str: str) -> NoopArgs:
    return NoopArgs(**json.loads(args_str))


def _chain_start(index: int, pages: int, chains: int) -> int:
    bounds = _bounds(pages, chains)
    return bounds[bisect.bisect_right(bounds, index) - 1]


def chain_end(index: int, pages: int, chains: int) -> int:
    """One past the last index of the chain holding ``index``."""
    bounds = _bounds(pages, chains)
    return bounds[bisect.bisect_right(bounds, index)]


@page_processor
class BenchNoopPages(PageProcessor):
    async def run(self, context: BatchProcessorContext) -> int:
        args = _parse(context.args_str)
        index = int(context.page.cursor_str)
        end = chain_end(index, args.pages, args.chains)
        k = args.lookahead
        if k <= 1:
            if index + 1 < end:
                await context.enqueue_next_page(BatchPage(str(index + 1), context.page.size))
        elif (index - _chain_start(index, args.pages, args.chains)) % k == 0:
            # a leader: enqueue the next k pages at once; the last of them leads the next group
            stop = min(index + k + 1, end)
            nxt = [BatchPage(str(i), context.page.size) for i in range(index + 1, stop)]
            if nxt:
                await context.enqueue_next_pages(nxt)
        seconds = page_duration(index, args.page_seconds, args.jitter)
        if seconds > 0:
            await asyncio.sleep(seconds)
        return 1

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


LAST_PROCESSOR_NAME = "BenchLastPages"


@page_processor
class BenchLastPages(BenchNoopPages):
    """``BenchNoopPages`` that works first and enqueues last: each page returns right after
    its enqueue, so its successor travels in its result (the result delivery path)."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = _parse(context.args_str)
        index = int(context.page.cursor_str)
        seconds = page_duration(index, args.page_seconds, args.jitter)
        if seconds > 0:
            await asyncio.sleep(seconds)
        if index + 1 < chain_end(index, args.pages, args.chains):
            await context.enqueue_next_page(BatchPage(str(index + 1), context.page.size))
        return 1
