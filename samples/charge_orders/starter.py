"""Start the charge-orders batch and follow it: ``python -m samples.charge_orders.starter``.

Run ``python -m samples.charge_orders.worker`` beside it. The batch pages through the orders
(10 a page) and starts a ``ChargeAndShip`` workflow per order, at most 50 open at once; it
prints a progress line every second until the last order's workflow has closed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
)

from .processor import ChargeArgs, StartOrders
from .worker import TASK_QUEUE


def batch_input(
    db: Path, *, page_size: int = 10, max_open_items: int = 50, warehouse_delay: float = 0.5
) -> BatchOrchestratorInput:
    """The batch: pages of ``page_size`` orders, at most ``max_open_items`` orders in flight."""
    return BatchOrchestratorInput(
        page_processor=StartOrders,
        page_size=page_size,
        max_parallelism=4,
        max_open_items=max_open_items,
        # A terminated or timed-out order (it cannot tell the batch) is found within 5 s.
        item_check_interval=timedelta(seconds=5),
        args=ChargeArgs(db=str(db.resolve()), warehouse_delay=warehouse_delay).to_json(),
    )


def format_progress(p: BatchOrchestratorProgress) -> str:
    """One line: pages done, then the orders' workflows (open of the cap, started, ...)."""
    return (
        f"pages {p.num_completed_pages:3d} | orders open {p.num_items_open:3d} of "
        f"{p.max_open_items or '?'} | started {p.num_items_started:4d} | completed "
        f"{p.num_items_completed:4d} | failed {p.num_items_failed:3d}"
    )


async def follow(
    handle: BatchOrchestratorHandle, interval: float = 1.0
) -> BatchOrchestratorProgress:
    """Print the batch's progress every ``interval`` seconds until it is done; its result."""
    final = None
    async for final in handle.watch(timedelta(seconds=interval)):
        print(format_progress(final), flush=True)
    assert final is not None
    return final


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=Path("orders.db"))
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--max-open-items", type=int, default=50)
    opts = parser.parse_args()
    if not opts.db.exists():
        raise SystemExit(f"{opts.db} does not exist: python -m samples.charge_orders.orders create")
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    client = await Client.connect(
        address, namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )
    handle = await BatchOrchestratorClient(client).start(
        batch_input(opts.db, page_size=opts.page_size, max_open_items=opts.max_open_items),
        id=f"charge-orders-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        task_queue=TASK_QUEUE,
    )
    print(f"started batch {handle.id} on task queue {TASK_QUEUE!r}", flush=True)
    p = await follow(handle)
    failed = ", ".join(f.key for f in p.failed_items[:3]) + (
        ", ..." if p.num_items_failed > 3 else ""
    )
    print(
        f"done: {p.num_items_completed} orders charged, shipped and emailed; "
        f"{p.num_items_failed} failed (refunded){f': {failed}' if failed else ''}"
    )
    if p.num_items_failed:
        print(f"run them again with: batch-orchestra redrive {handle.id} --items")


if __name__ == "__main__":
    asyncio.run(main())
