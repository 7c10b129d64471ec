"""Start the inflate-prices batch and follow it: ``python -m samples.inflate_prices.starter``.

Run ``python -m samples.inflate_prices.worker`` beside it. With ``--create N`` the database is
(re)created with N products first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput

from .db import MyDB, create_products
from .processor import ConfigArgs, InflateProductPrices
from .progress import wait_printing_progress
from .worker import TASK_QUEUE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="products.db", help="SQLite file (default: %(default)s)")
    parser.add_argument(
        "--create", type=int, metavar="N", help="(re)create the database with N products first"
    )
    parser.add_argument("--percent", type=int, default=10, help="price rise in percent")
    parser.add_argument("--migration-version", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=8)
    return parser.parse_args()


async def main() -> None:
    opts = parse_args()
    db_path = Path(opts.db).resolve()  # the worker may run from another directory
    if opts.create is not None:
        create_products(db_path, opts.create)
        print(f"created {db_path} with {opts.create} products")
    elif not db_path.exists():
        raise SystemExit(f"{db_path} does not exist; pass --create N to create it")
    total = MyDB(db_path).count()

    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    client = await Client.connect(address, namespace=namespace)
    args = ConfigArgs(
        db_path=str(db_path), percent=opts.percent, migration_version=opts.migration_version
    )
    handle = await BatchOrchestratorClient(client).start(
        BatchOrchestratorInput(
            page_processor=InflateProductPrices,
            page_size=opts.page_size,
            max_parallelism=opts.parallelism,
            args=args.to_json(),
            total_items=total,
        ),
        id=f"inflate-prices-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        task_queue=TASK_QUEUE,
    )
    print(f"started batch {handle.id} over {total} products on task queue {TASK_QUEUE!r}")
    print(f"(with `temporal server start-dev`, watch it at {_ui_url(address, handle.id)})")
    progress = await wait_printing_progress(handle)
    print(
        f"done: {progress.num_completed_items} products updated in "
        f"{progress.num_completed_pages} pages ({progress.num_failed_pages} failed)"
    )


def _ui_url(address: str, workflow_id: str) -> str:
    # start-dev serves its Web UI on the gRPC port + 1000 (7233 -> 8233) unless told otherwise.
    host, _, port = address.rpartition(":")
    ui = f"http://{host or 'localhost'}:{int(port) + 1000}" if port.isdigit() else "the Web UI"
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    return f"{ui}/namespaces/{namespace}/workflows/{workflow_id}"


if __name__ == "__main__":
    asyncio.run(main())
