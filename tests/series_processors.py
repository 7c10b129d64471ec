"""Processors for the series tests: a SQLite table read by SqlSource, steered by a control table.

A worker in another process (tests/worker_main.py) imports this module too, so every switch
lives in the database: a ``control`` row ``fail`` makes pages holding the listed ids fail for
good, ``block`` holds every page (``true``) or those with ids above it (a number) until the
row is removed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio.exceptions import ApplicationError

from batch_orchestra import (
    BatchNotifierContext,
    BatchProcessorContext,
    PageProcessor,
    batch_notifier,
    page_processor,
)
from batch_orchestra.sources import SqlPageProcessor, SqlSource

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("note", sa.String(40), nullable=False),
)


@cache
def _engine(args: str | None) -> sa.Engine:
    db = json.loads(args or "{}")["db"]
    return sa.create_engine(f"sqlite:///{db}", connect_args={"timeout": 30})


def connect(db: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def create_db(db: Path | str) -> None:
    with connect(db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS done (item_id INTEGER NOT NULL, batch TEXT NOT NULL, "
            "low TEXT, high TEXT)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS control (key TEXT PRIMARY KEY, value TEXT)")


def insert(db: Path | str, ids: range | list[int]) -> None:
    with connect(db) as conn:
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in ids])


def control(db: Path | str, key: str, value: Any = None) -> None:
    """Set (value not None) or clear a switch."""
    with connect(db) as conn:
        if value is None:
            conn.execute("DELETE FROM control WHERE key = ?", (key,))
        else:
            conn.execute("INSERT OR REPLACE INTO control VALUES (?, ?)", (key, json.dumps(value)))


def done(db: Path | str) -> list[tuple[int, str, str | None, str | None]]:
    with connect(db) as conn:
        return conn.execute("SELECT item_id, batch, low, high FROM done").fetchall()


def _switch(db: str, key: str) -> Any:
    with connect(db) as conn:
        row = conn.execute("SELECT value FROM control WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def _blocks(block: Any, rows: list[Any]) -> bool:
    if block is None or block is False:
        return False
    if block is True:
        return True
    return any(r.id > block for r in rows)


@page_processor
class SeriesItems(SqlPageProcessor):
    """Copies the ids of its window's rows to ``done``, with the window it saw."""

    source = SqlSource(items, key="id", engine=_engine)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> int:
        db = json.loads(context.args_str)["db"]
        while _blocks(await asyncio.to_thread(_switch, db, "block"), rows):
            await asyncio.sleep(0.05)
        failing = set(await asyncio.to_thread(_switch, db, "fail") or [])
        bad = [r.id for r in rows if r.id in failing]
        if bad:
            raise ApplicationError(f"items {bad} are bad", non_retryable=True)
        w = context.window
        await asyncio.to_thread(self._record, db, [r.id for r in rows], context.batch_id, w)
        return len(rows)

    @staticmethod
    def _record(db: str, ids: list[int], batch: str, w: Any) -> None:
        with connect(db) as conn:
            conn.executemany(
                "INSERT INTO done VALUES (?, ?, ?, ?)",
                [(i, batch, w.low if w else None, w.high if w else None) for i in ids],
            )


@page_processor
class NoWindowEnd(PageProcessor):
    """A processor without ``window_end``: a watermark series over it is refused."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        return 0


@page_processor
class RecordsTimeWindow(PageProcessor):
    """One page that writes the time window it was given to ``done`` (as item 0)."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        w = context.window
        assert w is not None and w.kind == "time" and w.start is not None and w.end is not None
        db = json.loads(context.args_str)["db"]
        await asyncio.to_thread(SeriesItems._record, db, [0], context.batch_id, w)
        return 1


SERIES_EVENTS: list[tuple[str, str | None, str]] = []
"""(event, reason, series) of every series event the notifier below was told, in this process."""


@batch_notifier
async def series_events(context: BatchNotifierContext) -> None:
    if context.event.startswith("series_"):  # the run's or its batch's ID: <series>/...
        SERIES_EVENTS.append((context.event, context.reason, context.workflow_id.split("/")[0]))
