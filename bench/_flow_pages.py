"""The flow-control benchmark's page processor: one downstream request per page, many chains.

The cursor is ``"<chain>:<index>"``; chain ``c`` runs indexes ``0 .. pages_per_chain - 1``. A
page enqueues its successor first (so with many chains there are always more pages ready than
any parallelism being tested), then makes one ``GET /work`` to the simulated downstream
(``bench._downstream``) and raises ``DownstreamError`` on anything but ``200``: the page fails
and is retried, as a page calling an overloaded service would. It returns ``page.size`` items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from temporalio.common import RetryPolicy

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor
from bench._downstream import DownstreamError, http_get

PROCESSOR_NAME = "BenchFlowPages"

# Short retries: a refused request is retried soon (the downstream is only busy), and never
# becomes "stuck" within a benchmark run.
_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=50,
)


@dataclass(frozen=True)
class FlowArgs:
    port: int
    chains: int = 64
    pages_per_chain: int = 1_000_000
    host: str = "127.0.0.1"

    def to_json(self) -> str:
        return json.dumps(
            {
                "port": self.port,
                "chains": self.chains,
                "pages_per_chain": self.pages_per_chain,
                "host": self.host,
            }
        )

    def first_cursors(self) -> list[str]:
        return [f"{c}:0" for c in range(self.chains)]


@lru_cache(maxsize=16)
def _parse(args_str: str) -> FlowArgs:
    return FlowArgs(**json.loads(args_str))


@page_processor
class BenchFlowPages(PageProcessor):
    async def run(self, context: BatchProcessorContext) -> int:
        args = _parse(context.args_str)
        chain, _, index = context.page.cursor_str.partition(":")
        nxt = int(index) + 1
        if nxt < args.pages_per_chain:
            await context.enqueue_next_page(BatchPage(f"{chain}:{nxt}", context.page.size))
        status, _ = await http_get(
            args.host, args.port, f"/work?p={context.page.cursor_str}&a={context.attempt}"
        )
        if status != 200:
            raise DownstreamError(f"downstream replied {status} to page {context.page.cursor_str}")
        return context.page.size

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _RETRY
