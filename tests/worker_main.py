"""A worker process for multi-process tests: python -m tests.worker_main ADDRESS TASK_QUEUE."""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

import tests.checkpoint_processors  # noqa: F401
import tests.item_processors  # noqa: F401
import tests.processors  # noqa: F401  (registers the processors)
import tests.series_processors  # noqa: F401
from batch_orchestra import BatchOrchestraPlugin
from tests.item_workflows import ChargeItem, SilentItem, item_enter, item_leave


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=task_queue,
        plugins=[BatchOrchestraPlugin()],
        workflows=[ChargeItem, SilentItem],
        activities=[item_enter, item_leave],
    )
    print("worker ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
