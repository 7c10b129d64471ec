"""The benchmark's worker process.

``python -m bench._worker --address HOST:PORT --task-queue Q [--max-concurrent-activities M]``

Runs one Worker with ``BatchOrchestraPlugin()`` plus the raw baseline workflows and activities
(``bench._baseline``), prints ``ready`` once polling, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os

from temporalio.client import Client
from temporalio.worker import Worker

import bench._noop  # noqa: F401  (registers BenchNoopPages, BenchLastPages)
import bench._sql_pages  # noqa: F401  (registers the sweep's SqlSource processors)
from batch_orchestra import BatchOrchestraPlugin, WorkerSettings
from bench._baseline import PlainChain, RawBaseline, plain_chain_page, raw_noop, raw_noop_signal
from bench._serve import run_and_exit, serve_until_signal


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--max-concurrent-activities", type=int, default=200)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    client = await Client.connect(opts.address, namespace=opts.namespace)
    worker = Worker(
        client,
        task_queue=opts.task_queue,
        plugins=[
            BatchOrchestraPlugin(
                settings=WorkerSettings(
                    enqueue_by_signal=os.environ.get("BATCH_ORCHESTRA_ENQUEUE_BY_SIGNAL") == "1",
                    # 0: a quick page's enqueue goes out by update at once (no result path)
                    defer_grace=float(os.environ.get("BATCH_ORCHESTRA_DEFER_GRACE", "0.002")),
                    # 0: a quick page's successors always travel in its result
                    choose_path=os.environ.get("BATCH_ORCHESTRA_CHOOSE_PATH", "1") != "0",
                )
            )
        ],
        workflows=[RawBaseline, PlainChain],
        activities=[raw_noop, raw_noop_signal, plain_chain_page],
        max_concurrent_activities=opts.max_concurrent_activities,
    )
    await serve_until_signal(worker)


if __name__ == "__main__":
    run_and_exit(main)
