"""Create the ``nightly-sync`` series: ``python -m samples.nightly_sync.starter --db orders.db``.

Every tick of its schedule runs one batch of ``SyncOrders`` over the orders added since the
last completed run. Nightly by default (``--cron "0 3 * * *"``); ``--every 5`` (seconds) for a
demo.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, SeriesSpec, Watermark

from .worker import TASK_QUEUE

SERIES = "nightly-sync"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=Path("orders.db"))
    parser.add_argument("--cron", default="0 3 * * *", help="when it runs (default 03:00)")
    parser.add_argument("--time-zone", default="UTC")
    parser.add_argument("--every", type=float, help="run every this many seconds instead")
    opts = parser.parse_args()
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    client = await Client.connect(
        address, namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )
    every = timedelta(seconds=opts.every) if opts.every else None
    series = await BatchOrchestratorClient(client).create_series(
        SeriesSpec(
            batch=BatchOrchestratorInput(
                page_processor="SyncOrders",
                page_size=100,
                max_parallelism=4,
                args=json.dumps({"db": str(opts.db.resolve())}),
                page_timeout=timedelta(minutes=2),
            ),
            every=every,
            cron=None if every else opts.cron,
            time_zone=None if every else opts.time_zone,
            window=Watermark(initial="0"),  # the first run takes every order after id 0
        ),
        id=SERIES,
        task_queue=TASK_QUEUE,
    )
    d = await series.describe()
    print(
        f"created series {SERIES!r}: {d.schedule}; next run {d.next_runs[0]:%Y-%m-%d %H:%M:%S} UTC"
    )
    print(f"follow it with: batch-orchestra series status {SERIES}")


if __name__ == "__main__":
    asyncio.run(main())
