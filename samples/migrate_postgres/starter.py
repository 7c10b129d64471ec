"""Start the migration and wait for it: ``python -m samples.migrate_postgres.starter``.

Run ``python -m samples.migrate_postgres.worker`` beside it. ``--create N`` (re)creates the
table with N rows first. The database URL comes from ``--database-url`` or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid

from temporalio.client import Client

from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput

from .db import create_customers
from .processor import NormalizeEmails
from .worker import TASK_QUEUE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@localhost/postgres"),
        help="SQLAlchemy URL of the database (default: $DATABASE_URL or %(default)s)",
    )
    parser.add_argument("--create", type=int, metavar="N", help="(re)create customers with N rows")
    parser.add_argument("--chains", type=int, default=4, help="key ranges read in parallel")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=8)
    return parser.parse_args()


async def main() -> None:
    opts = parse_args()
    if opts.create is not None:
        create_customers(opts.database_url, opts.create)
        print(f"created customers with {opts.create} rows")
    args = json.dumps({"database_url": opts.database_url})
    # k first cursors from the table's key distribution: one chain each.
    cursors = await NormalizeEmails.source.split(opts.chains, args=args)
    await NormalizeEmails.source.dispose()

    client = await Client.connect(
        os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"),
        namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
    )
    handle = await BatchOrchestratorClient(client).start(
        BatchOrchestratorInput(
            page_processor=NormalizeEmails,
            page_size=opts.page_size,
            max_parallelism=opts.parallelism,
            args=args,
            first_cursor_strs=cursors,
        ),
        id=f"migrate-postgres-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        task_queue=TASK_QUEUE,
    )
    print(f"started {handle.id}: {len(cursors)} chains on task queue {TASK_QUEUE!r}")
    progress = await handle.result()
    print(
        f"done: {progress.num_completed_items} rows migrated in {progress.num_completed_pages} "
        f"pages ({progress.num_failed_pages} failed)"
    )


if __name__ == "__main__":
    asyncio.run(main())
