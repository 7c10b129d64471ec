"""A worker for the inflate-prices batch: ``python -m samples.inflate_prices.worker``.

Connects to ``TEMPORAL_ADDRESS`` (default ``localhost:7233``) and runs until Ctrl-C (or
SIGTERM), then shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from batch_orchestra import BatchOrchestraPlugin

# Importing the module registers the @page_processor this worker runs.
from .processor import InflateProductPrices

TASK_QUEUE = "inflate-prices"
"""The task queue the sample's worker polls and its starter starts batches on."""


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    client = await Client.connect(address, namespace=namespace)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with Worker(client, task_queue=TASK_QUEUE, plugins=[BatchOrchestraPlugin()]):
        print(
            f"worker running {InflateProductPrices.__name__} on task queue {TASK_QUEUE!r} "
            f"at {address}; Ctrl-C to stop",
            flush=True,
        )
        await stop.wait()
        print("\nstopping the worker (running pages finish first) ...", flush=True)
    print("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
