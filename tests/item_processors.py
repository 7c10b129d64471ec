"""The page processor of the item-workflow tests (kept apart from the item workflow, which the
worker's sandbox imports afresh, and from the tests, so a worker process can import it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor
from tests.item_workflows import ChargeItem, SilentItem


def _item(args: dict[str, Any], i: int) -> dict[str, Any]:
    return {
        "tag": args["tag"],
        "key": f"o{i}",
        "hold": i in args.get("hold", []),
        "fail": i in args.get("fail", []),
        "ms": args.get("ms", 200),
    }


@page_processor
class StartOrderItems(PageProcessor):
    """Pages of order numbers 0..n-1; each page starts a ChargeItem workflow per order."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        start = int(context.page.cursor_str or 0)
        end = min(args["n"], start + context.page.size)
        if end < args["n"]:
            await context.enqueue_next_page(BatchPage(str(end), context.page.size))
        orders = list(range(start, end))
        item = SilentItem if args.get("silent") else ChargeItem
        gate = args.get("gate_at")
        if gate is not None and start == gate and context.attempt == 1:
            # Start half the page's items, say so, and hang: the test kills this worker now.
            half = orders[: len(orders) // 2]
            await context.start_items(
                half, workflow=item, key=lambda i: f"o{i}", args=lambda i: _item(args, i)
            )
            Path(args["gate_file"]).write_text("started half")
            await asyncio.sleep(3600)
        await context.start_items(
            orders, workflow=item, key=lambda i: f"o{i}", args=lambda i: _item(args, i)
        )
        if start in args.get("fail_after_start", []) and context.attempt == 1:
            raise RuntimeError(f"page at {start} fails after starting its items")
        return len(orders)

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        args = dict(json.loads(context.args_str), hold=[], fail=[])
        orders = [int(k[1:]) for k in keys]
        await context.start_items(
            orders, workflow=ChargeItem, key=lambda i: f"o{i}", args=lambda i: _item(args, i)
        )
        return len(orders)
