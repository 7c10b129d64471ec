"""A worker for the nightly sync: ``python -m samples.nightly_sync.worker``.

Connects to ``TEMPORAL_ADDRESS`` (default ``localhost:7233``) and runs the series' runs and
their batches until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from batch_orchestra import BatchOrchestraPlugin

from .processor import SyncOrders  # importing it registers the processor

TASK_QUEUE = "nightly-sync"
"""The task queue of the sample's worker, series and batches."""


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
    async with Worker(client, task_queue=TASK_QUEUE, plugins=[BatchOrchestraPlugin()]):
        print(
            f"worker running {SyncOrders.__name__} on task queue {TASK_QUEUE!r} at {address}",
            flush=True,
        )
        await stop.wait()
    print("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
