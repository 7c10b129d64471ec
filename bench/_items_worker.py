"""The worker of ``bench.items``: a trivial item workflow, the three ways to run it at scale.

* ``BenchItem``: the item workflow (one workflow task, returns). Decorated with
  ``reports_to_batch``, which does nothing when no batch started it.
* ``BenchFollowedItem``: the same without the decorator (the worker that starts it follows it).
* ``BenchItemPages``: our page processor: pages of item numbers, each page starting its items
  (``BenchFollowedItem``, or ``BenchItem`` with ``"reports": true`` in its args).
* ``SlidingWindow``: Temporal's sliding-window pattern: a parent keeps at most ``window``
  children open, each child signals the parent when done, and the parent continues as new every
  ``per_run`` children, carrying the open set.

    python -m bench._items_worker --address HOST:PORT --task-queue Q
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    page_processor,
    reports_to_batch,
)
from bench._serve import run_and_exit, serve_until_signal

ITEM_WORKFLOW = "BenchItem"
FOLLOWED_ITEM_WORKFLOW = "BenchFollowedItem"
ITEM_QUEUE_SUFFIX = "-items"
PROCESSOR = "BenchItemPages"
WINDOW_WORKFLOW = "BenchSlidingWindow"
DONE_SIGNAL = "bench_child_done"


@workflow.defn(name=ITEM_WORKFLOW, sandboxed=False)
class BenchItem:
    @workflow.run
    @reports_to_batch
    async def run(self, item: dict[str, Any]) -> int:
        parent = item.get("parent")
        if parent:  # a sliding-window child tells its parent
            await workflow.get_external_workflow_handle(parent).signal(DONE_SIGNAL, item["i"])
        return int(item["i"])


@workflow.defn(name=FOLLOWED_ITEM_WORKFLOW, sandboxed=False)
class BenchFollowedItem:
    """The same item without ``reports_to_batch``: the worker that started it tells the batch."""

    @workflow.run
    async def run(self, item: dict[str, Any]) -> int:
        return int(item["i"])


@page_processor
class BenchItemPages(PageProcessor):
    """Pages of item numbers (cursor: the first number); each page starts its items."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        n = args["n"]
        item = BenchItem if args.get("reports", False) else BenchFollowedItem
        start = int(context.page.cursor_str or 0)
        end = min(n, start + context.page.size)
        if end < n:
            await context.enqueue_next_page(BatchPage(str(end), context.page.size))
        await context.start_items(
            range(start, end),
            workflow=item,
            key=lambda i: f"i{i}",
            args=lambda i: {"i": i},
            task_queue=args.get("item_queue"),
        )
        return end - start


@dataclass
class WindowInput:
    n: int
    window: int
    per_run: int
    next_index: int = 0
    open: list[int] = field(default_factory=list)
    done: int = 0


@workflow.defn(name=WINDOW_WORKFLOW, sandboxed=False)
class SlidingWindow:
    @workflow.init
    def __init__(self, inp: WindowInput) -> None:
        # From the input, before any signal: a continued run's first task delivers the signals
        # that reached it before ``run`` starts, and a child carried in the open set would
        # otherwise be dropped as unknown (and the parent wait for it forever).
        self._open: set[int] = set(inp.open)
        self._done = inp.done

    @workflow.run
    async def run(self, inp: WindowInput) -> int:
        started, nxt = 0, inp.next_index
        me = workflow.info().workflow_id
        while nxt < inp.n and started < inp.per_run:
            await workflow.wait_condition(lambda: len(self._open) < inp.window)
            # Open before the start returns: the child can finish, and its signal arrive, in the
            # same activation that resolves the start.
            self._open.add(nxt)
            await workflow.start_child_workflow(
                BenchItem.run,
                {"i": nxt, "parent": me},
                id=f"{me}/c{nxt}",
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            nxt, started = nxt + 1, started + 1
        if nxt < inp.n:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(
                WindowInput(inp.n, inp.window, inp.per_run, nxt, sorted(self._open), self._done)
            )
        await workflow.wait_condition(lambda: not self._open, timeout=timedelta(hours=1))
        return self._done

    @workflow.signal(name=DONE_SIGNAL)
    def child_done(self, i: int) -> None:
        if i in self._open:
            self._open.discard(i)
            self._done += 1


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--address", required=True)
    ap.add_argument("--task-queue", required=True)
    opts = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    client = await Client.connect(opts.address)
    worker = Worker(
        client,
        task_queue=opts.task_queue,
        plugins=[BatchOrchestraPlugin()],
        workflows=[BenchItem, BenchFollowedItem, SlidingWindow],
        max_concurrent_workflow_tasks=200,
    )
    # The items' own queue (``ITEM_QUEUE_SUFFIX``), polled by this process too: for the rows that
    # start their items there, away from the batch's workflow tasks.
    items_worker = Worker(
        client,
        task_queue=opts.task_queue + ITEM_QUEUE_SUFFIX,
        workflows=[BenchItem, BenchFollowedItem],
        max_concurrent_workflow_tasks=200,
    )
    async with items_worker:
        await serve_until_signal(worker)


if __name__ == "__main__":
    run_and_exit(main)
