"""A worker for the migration: ``python -m samples.migrate_postgres.worker``.

Connects to ``TEMPORAL_ADDRESS`` (default ``localhost:7233``) and runs until Ctrl-C (or
SIGTERM). Run as many as you like, on as many machines: each process opens its own connection
pool to PostgreSQL on its first page.
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
from .processor import NormalizeEmails

TASK_QUEUE = "migrate-postgres"
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
        name = NormalizeEmails.__name__
        print(f"worker running {name} on {TASK_QUEUE!r} at {address}; Ctrl-C to stop", flush=True)
        await stop.wait()
        print("stopping the worker (running pages finish first) ...", flush=True)
    await NormalizeEmails.source.dispose()


if __name__ == "__main__":
    asyncio.run(main())
