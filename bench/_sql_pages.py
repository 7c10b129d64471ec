"""The sweep's page processors: one chain through ``SqlSource`` over a SQLite file.

The batch's args name the database file and how long a page works (``{"url": ..., "page_seconds":
...}``). ``BenchSqlPages`` leaves ``lookahead`` at its default (found by itself);
``BenchSqlPagesLa1`` fixes it at 1, as the sources did before.
"""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from batch_orchestra import BatchProcessorContext, PageProcessor, page_processor
from batch_orchestra.sources import SqlPageProcessor, SqlSource

SQL_PROCESSOR = "BenchSqlPages"
SQL_LA1_PROCESSOR = "BenchSqlPagesLa1"

metadata = sa.MetaData()
rows = sa.Table(
    "bench_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("payload", sa.String(40), nullable=False),
)


def create_rows(url: str, n: int) -> None:
    """A fresh table of ``n`` rows at ``url``."""
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(rows.insert(), [{"id": i, "payload": f"row {i}"} for i in range(n)])
    engine.dispose()


@lru_cache(maxsize=64)
def _args(args: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(args)
    return parsed


def _url(args: str | None) -> str:
    assert args is not None
    return str(_args(args)["url"])


@page_processor
class BenchSqlPages(SqlPageProcessor):
    source = SqlSource(rows, key="id", engine=_url)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, page: list[Any]) -> int:
        seconds = float(_args(context.args_str)["page_seconds"])
        if seconds > 0:
            await asyncio.sleep(seconds)
        return len(page)


@page_processor
class BenchSqlPagesLa1(BenchSqlPages):
    source = SqlSource(rows, key="id", engine=_url, lookahead=1)
