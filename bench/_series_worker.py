"""The series benchmark's processor and its worker process.

``python -m bench._series_worker ADDRESS TASK_QUEUE``

``SeriesRows`` is a ``SqlPageProcessor`` over a SQLite table ``rows(id)``: a series run reads
the rows of its window and writes each id it processed to ``done(id, batch)``, one row per
write, so an id written twice shows as a duplicate and an id never written as a gap. The worker
connects (retrying while the server is down), prints ``ready`` once polling, and runs until
SIGTERM; the benchmark SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchProcessorContext,
    PageProcessor,
    page_processor,
)
from batch_orchestra.sources import SqlPageProcessor, SqlSource

rows = sa.Table(
    "rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)
)


@cache
def _engine(args: str | None) -> sa.Engine:
    return sa.create_engine(
        f"sqlite:///{json.loads(args or '{}')['db']}", connect_args={"timeout": 60}
    )


def connect(db: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def create(db: Path) -> None:
    with connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE IF NOT EXISTS done (id INTEGER NOT NULL, batch TEXT)")


def add(db: Path, n: int) -> int:
    """Append ``n`` rows; the largest id."""
    with connect(db) as conn:
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM rows").fetchone()[0]
        conn.executemany(
            "INSERT INTO rows VALUES (?)", [(i,) for i in range(last + 1, last + n + 1)]
        )
    return int(last + n)


def done_counts(db: Path) -> dict[int, int]:
    with connect(db) as conn:
        return dict(conn.execute("SELECT id, COUNT(*) FROM done GROUP BY id").fetchall())


@page_processor
class SeriesRows(SqlPageProcessor):
    source = SqlSource(rows, key="id", engine=_engine)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, found: list[Any]) -> int:
        db = json.loads(context.args_str)["db"]
        ids = [(r.id, context.batch_id) for r in found]

        def write() -> None:
            with connect(db) as conn:
                conn.executemany("INSERT INTO done VALUES (?, ?)", ids)

        await asyncio.to_thread(write)
        return len(ids)


async def main(address: str, task_queue: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            client = await Client.connect(address)
            break
        except Exception:
            if time.monotonic() > deadline:
                sys.exit(2)
            await asyncio.sleep(0.5)
    async with Worker(client, task_queue=task_queue, plugins=[BatchOrchestraPlugin()]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
