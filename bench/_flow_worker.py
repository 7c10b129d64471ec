"""The flow-control benchmark's worker process (``BenchFlowPages``).

``python -m bench._flow_worker --address HOST:PORT --task-queue Q [--max-concurrent-activities M]``

Prints ``ready`` once polling; stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging

from temporalio.client import Client
from temporalio.worker import Worker

import bench._flow_pages  # noqa: F401  (registers BenchFlowPages)
from batch_orchestra import BatchOrchestraPlugin
from bench._serve import run_and_exit, serve_until_signal


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
    await serve_until_signal(worker)


if __name__ == "__main__":
    run_and_exit(main)
