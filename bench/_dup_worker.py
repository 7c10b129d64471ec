"""The worker process of ``bench.duplicates``: three processors calling the bench's local API.

``python -m bench._dup_worker --address HOST:PORT --task-queue Q --api URL [--throttle-ms MS]``

Prints ``ready`` once polling; stops on SIGTERM or SIGINT (or dies on SIGKILL, which is the
point of the bench's last mode).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from batch_orchestra import BatchOrchestraPlugin, BatchProcessorContext, page_processor
from batch_orchestra.sources import FilePageProcessor, FileSource
from bench._serve import run_and_exit, serve_until_signal

PER_ROW = RetryPolicy(
    maximum_attempts=6,
    initial_interval=timedelta(milliseconds=50),
    maximum_interval=timedelta(seconds=1),
    non_retryable_error_types=["Refused"],
)


class Refused(Exception):
    """A 4xx: the row is refused for good."""


async def call(context: BatchProcessorContext, row: dict[str, Any]) -> None:
    """One API call for one row, with an idempotency key from the batch and the row."""
    response = await context.resource("http").post(
        "/call", json=row, headers={"Idempotency-Key": f"{context.batch_id}/{row['id']}"}
    )
    if 400 <= response.status_code < 500:
        raise Refused(f"{response.status_code} for row {row['id']}")
    response.raise_for_status()


class _Dup(FilePageProcessor):
    source = FileSource(lambda args: json.loads(args or "{}")["path"], key="id")
    retry_mode = FilePageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class DupRaise(_Dup):
    """(a) What the docs showed first: call each row, raise on an error (the page is retried)."""

    async def process(self, context: BatchProcessorContext, records: list[Any]) -> None:
        for row in records:
            await call(context, row)


@page_processor
class DupCheckpoint(_Dup):
    """(b) The same, through ``context.items``: a retried page resumes at the row that failed."""

    async def process(self, context: BatchProcessorContext, records: list[Any]) -> None:
        async for row in context.items(records, key=lambda r: r["id"]):
            await call(context, row)


@page_processor
class DupItemRetries(_Dup):
    """(c) Checkpoints and per-item retries: a failing row is retried on its own."""

    async def process(self, context: BatchProcessorContext, records: list[Any]) -> None:
        async def one(row: dict[str, Any]) -> None:
            await call(context, row)

        await context.process_items(records, one, key=lambda r: r["id"], retry=PER_ROW)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--throttle-ms", type=float, default=None)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    client = await Client.connect(opts.address)
    plugin = BatchOrchestraPlugin(
        resources={"http": lambda: httpx.AsyncClient(base_url=opts.api, timeout=30)}
    )
    extra: dict[str, Any] = {}
    if opts.throttle_ms is not None:
        extra["max_heartbeat_throttle_interval"] = timedelta(milliseconds=opts.throttle_ms)
    worker = Worker(client, task_queue=opts.task_queue, plugins=[plugin], **extra)
    await serve_until_signal(worker)


if __name__ == "__main__":
    run_and_exit(main)
