"""The chaos benchmark's page processor and its worker process.

``python -m bench._chaos_worker --address HOST:PORT --task-queue Q [--namespace NS]``

``ChaosPages`` is an at-least-once processor over N pages split into C chains (the cursor is
the page's index, as in ``bench._noop``). Page ``p`` owns the items
``[p * size, (p + 1) * size)``: it enqueues its successor first (pipelined pagination), sleeps
``page_ms``, then writes its items to a SQLite file in one transaction, one row per item with
the page, the attempt and the writer's pid. A page written twice (a retried attempt whose
earlier attempt had already written) leaves duplicate rows; a lost page leaves missing items.

The worker process connects (retrying while the server is down, for a restart mid-batch),
prints ``ready`` once polling, and stops on SIGTERM or SIGINT. The chaos driver SIGKILLs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    page_processor,
)
from bench._noop import NoopArgs, chain_end
from bench._serve import run_and_exit, serve_until_signal

PROCESSOR_NAME = "ChaosPages"
CONNECT_SECONDS = 60.0
"""How long a worker keeps trying to reach the server before it gives up (and exits 2)."""


@dataclass(frozen=True)
class ChaosArgs:
    """The batch's args: where to write, and the shape of the page space."""

    db: str
    pages: int
    chains: int
    page_ms: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "db": self.db,
                "pages": self.pages,
                "chains": self.chains,
                "page_ms": self.page_ms,
            }
        )

    def first_cursors(self) -> list[str]:
        return NoopArgs(pages=self.pages, chains=self.chains).first_cursors()


@lru_cache(maxsize=16)
def _parse(args_str: str) -> ChaosArgs:
    return ChaosArgs(**json.loads(args_str))


def create_table(db: str) -> None:
    """Create the items table in WAL mode (several worker processes write at once)."""
    with sqlite3.connect(db, timeout=60) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS items "
            "(item INTEGER NOT NULL, page INTEGER NOT NULL, attempt INTEGER NOT NULL, "
            "pid INTEGER NOT NULL)"
        )


def _write_items(db: str, page: int, attempt: int, start: int, end: int) -> None:
    pid = os.getpid()
    conn = sqlite3.connect(db, timeout=60)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?)",
                [(i, page, attempt, pid) for i in range(start, end)],
            )
    finally:
        conn.close()


_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=10,
)


@page_processor
class ChaosPages(PageProcessor):
    """At least once: 10 attempts 0.2-2 s apart, then extended retries every 2 s."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = _parse(context.args_str)
        index = int(context.page.cursor_str)
        if index + 1 < chain_end(index, args.pages, args.chains):
            await context.enqueue_next_page(BatchPage(str(index + 1), context.page.size))
        if args.page_ms > 0:
            await asyncio.sleep(args.page_ms / 1000)
        size = context.page.size
        await asyncio.to_thread(
            _write_items, args.db, index, context.attempt, index * size, (index + 1) * size
        )
        return size

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _RETRY

    @property
    def extended_retry_interval_seconds(self) -> int:
        return 2


async def _connect(address: str, namespace: str) -> Client:
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument(
        "--sticky-timeout",
        type=float,
        default=None,
        help="the Worker's sticky_queue_schedule_to_start_timeout in seconds (SDK default: 10)",
    )
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    client = await _connect(opts.address, opts.namespace)
    extra = {}
    if opts.sticky_timeout is not None:
        extra["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=opts.sticky_timeout)
    worker = Worker(client, task_queue=opts.task_queue, plugins=[BatchOrchestraPlugin()], **extra)
    await serve_until_signal(worker)


if __name__ == "__main__":
    run_and_exit(main)
