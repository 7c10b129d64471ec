"""A worker for the charge-orders batch: ``python -m samples.charge_orders.worker``.

It runs the batch (its pages, through ``BatchOrchestraPlugin``) and the item workflows
(``ChargeAndShip`` and its activities) on one task queue. Connects to ``TEMPORAL_ADDRESS``
(default ``localhost:7233``) and runs until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from batch_orchestra import BatchOrchestraPlugin

from .activities import ACTIVITIES
from .processor import StartOrders  # importing it registers the processor
from .workflow import ChargeAndShip

TASK_QUEUE = "charge-orders"
"""The task queue of the sample's worker, batches and item workflows."""


def worker_options() -> dict[str, Any]:
    """What a worker registers besides the plugin: the item workflow and its activities."""
    return {"workflows": [ChargeAndShip], "activities": ACTIVITIES}


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    client = await Client.connect(
        address, namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client, task_queue=TASK_QUEUE, plugins=[BatchOrchestraPlugin()], **worker_options()
    ):
        print(
            f"worker running {StartOrders.__name__} and {ChargeAndShip.__name__} on task queue "
            f"{TASK_QUEUE!r} at {address}",
            flush=True,
        )
        await stop.wait()
    print("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
