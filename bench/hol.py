"""Head-of-line blocking: one chain whose failing pages hold back the rest, or do not.

``python -m bench.hol [--pages 200] [--fail-every 20] [--fail-attempts 3] [--out FILE]``

One embedded dev server, one in-process worker, one chain of ``--pages`` pages (parallelism
``--parallelism``), each page sleeping ``--page-ms``. One page in ``--fail-every`` fails its
first ``--fail-attempts`` attempts, before it could enqueue anything (its fetch fails), and is
retried every second. Four batches, on the same server:

* ``seed``: the seed style: fetch, enqueue the successor, process. A failing page cannot
  enqueue, so the chain waits for its retries (head-of-line blocking).
* ``apart``: the same work, but the successor comes from ``next_page`` (a keys-only query)
  run apart: the chain goes on while the failing page retries.
* ``seed, no failures`` and ``apart, no failures``: what discovery apart costs when nothing
  fails (an extra activity per page).

Printed: seconds to finish each, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    EmbeddedTemporal,
    PageProcessor,
    page_processor,
)

_EVERY_SECOND = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=1.0, maximum_attempts=10
)


def _args(context: BatchProcessorContext) -> dict[str, int]:
    args: dict[str, int] = json.loads(context.args_str)
    return args


def _next(context: BatchProcessorContext) -> BatchPage | None:
    i = int(context.page.cursor_str)
    return BatchPage(str(i + 1), 1) if i + 1 < _args(context)["pages"] else None


async def _fetch(context: BatchProcessorContext) -> None:
    """The page's fetch: fails on one page in ``fail_every`` for its first attempts."""
    a, i = _args(context), int(context.page.cursor_str)
    if (
        a["fail_every"]
        and i % a["fail_every"] == a["fail_every"] // 2
        and (context.attempt <= a["fail_attempts"])
    ):
        raise ConnectionError(f"fetch of page {i} failed")


@page_processor
class HolSeed(PageProcessor):
    """Fetch, enqueue the successor, process (the seed's style)."""

    async def run(self, context: BatchProcessorContext) -> int:
        await _fetch(context)
        nxt = _next(context)
        if nxt is not None:
            await context.enqueue_next_page(nxt)
        await asyncio.sleep(_args(context)["page_ms"] / 1000)
        return 1

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _EVERY_SECOND


@page_processor
class HolApart(PageProcessor):
    """The same work; the successor comes from ``next_page``, found apart."""

    async def next_page(self, context: BatchProcessorContext) -> BatchPage | None:
        return _next(context)

    async def run(self, context: BatchProcessorContext) -> int:
        await _fetch(context)
        await asyncio.sleep(_args(context)["page_ms"] / 1000)
        return 1

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _EVERY_SECOND


async def _one(
    orchestra: BatchOrchestratorClient,
    tq: str,
    processor: str,
    a: argparse.Namespace,
    fail_every: int,
) -> float:
    args = {
        "pages": a.pages,
        "fail_every": fail_every,
        "fail_attempts": a.fail_attempts,
        "page_ms": a.page_ms,
    }
    wid = f"hol-{processor}-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    handle = await orchestra.start(
        BatchOrchestratorInput(
            page_processor=processor,
            page_size=1,
            max_parallelism=a.parallelism,
            args=json.dumps(args),
            first_cursor_str="0",
        ),
        id=wid,
        task_queue=tq,
    )
    p = await handle.result()
    took = time.monotonic() - t0
    if p.num_completed_pages != a.pages or p.num_failed_pages:
        raise RuntimeError(
            f"{processor}: {p.num_completed_pages} pages completed, "
            f"{p.num_failed_pages} failed; expected {a.pages}, 0"
        )
    return took


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--fail-every", type=int, default=20)
    ap.add_argument("--fail-attempts", type=int, default=3)
    ap.add_argument("--page-ms", type=float, default=20.0)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--out", type=Path, help="also write the printed lines to this file")
    a = ap.parse_args()
    logging.getLogger("temporalio").setLevel(logging.ERROR)  # the failing pages' tracebacks
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    failing = len([i for i in range(a.pages) if i % a.fail_every == a.fail_every // 2])
    say(
        f"one chain of {a.pages} pages of {a.page_ms:g} ms, parallelism {a.parallelism}; "
        f"{failing} pages (1 in {a.fail_every}) fail their first {a.fail_attempts} attempts "
        "before they could enqueue, retried every 1 s"
    )
    async with EmbeddedTemporal() as temporal:
        tq = f"hol-{uuid.uuid4().hex[:8]}"
        orchestra = BatchOrchestratorClient(temporal.client)
        async with Worker(temporal.client, task_queue=tq, plugins=[BatchOrchestraPlugin()]):
            times = {}
            for name, processor, every in (
                ("seed", "HolSeed", a.fail_every),
                ("apart", "HolApart", a.fail_every),
                ("seed, no failures", "HolSeed", 0),
                ("apart, no failures", "HolApart", 0),
            ):
                times[name] = t = await _one(orchestra, tq, processor, a, every)
                say(f"  {name:<20} {t:7.2f} s")
    say(
        f"discovery apart finishes {times['seed'] / times['apart']:.1f}x faster with failures "
        f"(seed {times['seed']:.1f} s, apart {times['apart']:.1f} s); without failures it "
        f"takes {times['apart, no failures'] / times['seed, no failures']:.2f}x the seed "
        "style's time (one more activity per page)"
    )
    if a.out is not None:
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
