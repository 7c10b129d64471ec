"""The flow-control benchmark's worker process (``BenchFlowPages``).

``python -m bench._flow_worker --address HOST:PORT --task-queue Q [--max-concurrent-activities M]``

Prints ``ready`` once polling; stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

import bench._flow_pages  # noqa: F401  (registers BenchFlowPages)
from batch_orchestra import BatchOrchestraPlugin


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--max-concurrent-activities", type=int, default=200)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    client = await Client.connect(opts.address, namespace=opts.namespace)
    worker = Worker(
        client,
        task_queue=opts.task_queue,
        plugins=[BatchOrchestraPlugin()],
        max_concurrent_activities=opts.max_concurrent_activities,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
    # Skip interpreter finalisation, where the SDK's native threads can abort the process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
