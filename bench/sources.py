"""SqlSource against a hand-written processor and a plain loop, on a real PostgreSQL table.

    python -m bench.sources                       # 200,000 rows (a few minutes on 2 shared cores)
    python -m bench.sources --rows 1000000        # the full run
    python -m bench.sources --url postgresql+psycopg://user@host/db   # an existing server

Three ways to do the same migration (``UPDATE ... SET value = value + 1`` for every row, one
UPDATE per page of ``--page-size`` rows), on the same table, one after another:

* ``source``: a ``SqlPageProcessor`` over ``SqlSource`` (key ``id``), ``--chains`` chains from
  ``source.split()``, at most ``--parallelism`` pages at once;
* ``hand-written``: a ``PageProcessor`` doing its own keyset query, cursor (``KeyRange``) and
  enqueue, the same chains (``split_int_range`` over the id range) and cap;
* ``plain loop``: one thread paging through the table by keyset and updating, no Temporal.

Each gets its own sync engine (psycopg), with a SQLAlchemy ``before_cursor_execute`` hook counting
the statements it runs: queries per page. rows/s = rows / wall time from start to result. The
dev server, the worker (in this process) and PostgreSQL share the machine: compare ratios.

PostgreSQL: ``--url``, else ``BATCH_ORCHESTRA_TEST_POSTGRES_URL``, else a throwaway cluster made
like the tests' (``initdb`` in a temp dir, removed at the end). Temporal: the embedded dev server,
or ``TEMPORAL_ADDRESS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    EmbeddedTemporal,
    KeyRange,
    PageProcessor,
    page_processor,
    split_int_range,
)
from batch_orchestra.sources import SqlPageProcessor, SqlSource

metadata = sa.MetaData()
rows_table = sa.Table(
    "bench_rows",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)


def _bump(ids: list[int]) -> sa.Update:
    return (
        sa.update(rows_table).where(rows_table.c.id.in_(ids)).values(value=rows_table.c.value + 1)
    )


def _url(args: str | None) -> str:
    return str(json.loads(args or "{}")["url"])


def _counting_engine(url: str, counter: dict[str, int]) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=16)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        kind = "select" if statement.lstrip().upper().startswith("SELECT") else "write"
        counter[kind] = counter.get(kind, 0) + 1

    return engine


_SOURCE_COUNTS: dict[str, int] = {}
_HAND_COUNTS: dict[str, int] = {}


@page_processor
class BenchSqlSourceMigrate(SqlPageProcessor):
    """The migration over SqlSource: the few lines a user writes."""

    source = SqlSource(
        rows_table, key="id", engine=lambda args: _counting_engine(_url(args), _SOURCE_COUNTS)
    )
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> None:
        await self.source.write(_bump([r.id for r in rows]), args=context.args_str)


class _HandEngines:
    """The hand-written processor's engine, one per process, as a careful user would keep it."""

    engine: sa.Engine | None = None


@page_processor
class BenchHandWrittenMigrate(PageProcessor):
    """The same migration with the keyset query, cursor and enqueue written by hand."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        if _HandEngines.engine is None:
            _HandEngines.engine = _counting_engine(_url(context.args_str), _HAND_COUNTS)
        engine = _HandEngines.engine
        page = context.page
        rng = KeyRange.from_cursor(page.cursor_str)
        query = (
            sa.select(rows_table)
            .where(rows_table.c.id >= rng.lo)
            .order_by(rows_table.c.id)
            .limit(page.size + 1)
        )
        if rng.hi is not None:
            query = query.where(rows_table.c.id < rng.hi)

        def fetch() -> list[Any]:
            with engine.connect() as conn:
                return list(conn.execute(query).all())

        rows = await asyncio.to_thread(fetch)
        if len(rows) > page.size:
            nxt = rng.starting_at(rows[page.size].id)
            await context.enqueue_next_page(BatchPage(nxt.to_cursor(), page.size))
            rows = rows[: page.size]

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(_bump([r.id for r in rows]))

        await asyncio.to_thread(write)
        return len(rows)


def plain_loop(url: str, page_size: int, counter: dict[str, int]) -> tuple[int, int]:
    """A single-threaded keyset loop: (rows, pages)."""
    engine = _counting_engine(url, counter)
    last, total, pages = None, 0, 0
    try:
        while True:
            query = sa.select(rows_table).order_by(rows_table.c.id).limit(page_size)
            if last is not None:
                query = query.where(rows_table.c.id > last)
            with engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return total, pages
            with engine.begin() as conn:
                conn.execute(_bump([r.id for r in rows]))
            last, total, pages = rows[-1].id, total + len(rows), pages + 1
    finally:
        engine.dispose()


def create_table(url: str, n: int) -> None:
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bench_rows (id, value, payload) "
                "SELECT g, 0, md5(g::text) FROM generate_series(1, :n) AS g"
            ),
            {"n": n},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE bench_rows"))
    engine.dispose()


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    url = url or os.environ.get("BATCH_ORCHESTRA_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.postgres import MISSING, PostgresCluster, find_binaries

    binaries = find_binaries()
    if binaries is None:
        raise SystemExit(MISSING.replace("PostgreSQL tests skipped", "cannot benchmark"))
    with PostgresCluster(*binaries) as cluster:
        yield cluster.url


async def run_batch(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    processor: type[PageProcessor],
    cursors: list[str],
    opts: argparse.Namespace,
    url: str,
) -> tuple[float, int, int]:
    bid = f"bench-sources-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    handle = await orchestra.start(
        BatchOrchestratorInput(
            page_processor=processor,
            page_size=opts.page_size,
            max_parallelism=opts.parallelism,
            args=json.dumps({"url": url}),
            first_cursor_strs=cursors,
            page_timeout=timedelta(minutes=2),
            batch_id=bid,
        ),
        id=bid,
        task_queue=task_queue,
    )
    progress = await handle.result()
    return time.monotonic() - started, progress.num_completed_items, progress.num_completed_pages


def _line(
    name: str, seconds: float, rows: int, pages: int, counts: dict[str, int]
) -> dict[str, Any]:
    queries = sum(counts.values())
    result = {
        "name": name,
        "seconds": round(seconds, 2),
        "rows": rows,
        "pages": pages,
        "rows_per_s": round(rows / seconds),
        "queries_per_page": round(queries / max(pages, 1), 3),
        "selects_per_page": round(counts.get("select", 0) / max(pages, 1), 3),
    }
    print(
        f"{name:>13}: {result['rows_per_s']:>8} rows/s  {rows} rows in {pages} pages, "
        f"{seconds:.1f} s; {result['queries_per_page']} queries/page "
        f"({result['selects_per_page']} SELECT)",
        flush=True,
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of the two batches, alternating their order (median)",
    )
    parser.add_argument("--url", help="SQLAlchemy URL of a PostgreSQL database to use")
    parser.add_argument("--json", help="also write the figures to this file")
    opts = parser.parse_args()

    with postgres(opts.url) as url:
        t = time.monotonic()
        create_table(url, opts.rows)
        print(f"bench_rows: {opts.rows} rows created in {time.monotonic() - t:.1f} s", flush=True)
        results = []
        async with EmbeddedTemporal() as server:
            orchestra = BatchOrchestratorClient(server.client)
            task_queue = f"bench-sources-{uuid.uuid4().hex[:8]}"
            async with Worker(
                server.client,
                task_queue=task_queue,
                plugins=[BatchOrchestraPlugin()],
                max_concurrent_activities=max(opts.parallelism, 8),
            ):
                args = json.dumps({"url": url})
                t = time.monotonic()
                cursors = await BenchSqlSourceMigrate.source.split(opts.chains, args=args)
                print(f"split({opts.chains}): {time.monotonic() - t:.2f} s, 2 queries")
                hand_cursors = split_int_range(1, opts.rows + 1, opts.chains)
                phases = [
                    ("source", BenchSqlSourceMigrate, cursors, _SOURCE_COUNTS),
                    ("hand-written", BenchHandWrittenMigrate, hand_cursors, _HAND_COUNTS),
                ]
                for r in range(opts.repeat):
                    for name, proc, first, counts in phases[:: 1 if r % 2 == 0 else -1]:
                        counts.clear()
                        seconds, rows, pages = await run_batch(
                            orchestra, task_queue, proc, first, opts, url
                        )
                        results.append(_line(name, seconds, rows, pages, counts))
            await BenchSqlSourceMigrate.source.dispose()
            if _HandEngines.engine is not None:
                _HandEngines.engine.dispose()

        plain_counts: dict[str, int] = {}
        t = time.monotonic()
        rows, pages = await asyncio.to_thread(plain_loop, url, opts.page_size, plain_counts)
        results.append(_line("plain loop", time.monotonic() - t, rows, pages, plain_counts))

    def median(name: str) -> float:
        values = sorted(r["rows_per_s"] for r in results if r["name"] == name)
        return float(
            values[len(values) // 2]
            if len(values) % 2
            else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
        )

    source, hand, plain = median("source"), median("hand-written"), median("plain loop")
    print(f"median rows/s: source {source:.0f}, hand-written {hand:.0f}, plain loop {plain:.0f}")
    print(
        f"source / hand-written: {source / hand:.2f}x rows/s "
        f"(the source's overhead: {100 * (1 - source / hand):+.1f}%)"
    )
    print(f"source / plain loop:   {source / plain:.2f}x rows/s")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"options": vars(opts), "results": results}, f, indent=2)


if __name__ == "__main__":
    asyncio.run(main())
