"""SqlSource on real SQLite and a real PostgreSQL: keyset pages, split, lookahead, whole batches."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.common import RetryPolicy

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchProcessorContext,
    InvalidBatchInputError,
    PageProcessor,
    ProcessorDefinitionError,
    page_processor,
)
from batch_orchestra.sources import SqlPageProcessor, SqlSource
from tests.helpers import ManualClock, assert_eventually, batch_id
from tests.postgres import postgres_url  # noqa: F401  (the session's PostgreSQL fixture)

metadata = sa.MetaData()
orders = sa.Table(
    "src_orders",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("note", sa.String(50), nullable=False),
)
events = sa.Table(
    "src_events",
    metadata,
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("uid", sa.Uuid, nullable=False),
    sa.Column("kind", sa.String(10), nullable=True),
    sa.PrimaryKeyConstraint("at", "uid"),
)
processed = sa.Table(
    "src_processed",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("id", sa.Integer, nullable=False),
    sa.Column("page_num", sa.Integer, nullable=False),
)


@dataclass
class Db:
    """One database of a test: its URLs and a sync engine for setting up and checking."""

    name: str
    url: str
    async_url: str
    engine: sa.Engine

    def insert_orders(self, keys: list[tuple[int, int]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                orders.insert(), [{"tenant_id": t, "id": i, "note": f"n{t}-{i}"} for t, i in keys]
            )

    def processed_keys(self) -> list[tuple[int, int]]:
        with self.engine.connect() as conn:
            return [
                tuple(r) for r in conn.execute(sa.select(processed.c.tenant_id, processed.c.id))
            ]  # type: ignore[misc]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        path = tmp_path / "db.sqlite"
        url, async_url = f"sqlite:///{path}", f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        async_url = url.replace("+psycopg:", "+psycopg_async:")
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    try:
        yield Db(request.param, url, async_url, engine)
    finally:
        engine.dispose()


def count_queries(engine: sa.Engine | AsyncEngine) -> list[str]:
    """Every statement the engine runs from now on (SQLite's "OFFSET ?" bound to 0 left out:
    its dialect always writes one)."""
    seen: list[str] = []
    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    def on_execute(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if statement.endswith(" OFFSET ?") and params[-1] == 0:
            statement = statement.removesuffix(" OFFSET ?")
        seen.append(statement)

    sa.event.listen(target, "before_cursor_execute", on_execute)
    return seen


async def drain(
    source: SqlSource, cursors: list[str], size: int, args: str | None = None
) -> list[list[Any]]:
    """Run every chain from ``cursors`` to its end as the orchestrator would; the pages' rows."""
    pages, todo = [], list(cursors)
    while todo:
        assert len(pages) < 1000, "the chain does not end"
        page = await source.read(todo.pop(0), size, args=args)
        assert len(page.items) <= size
        pages.append(page.items)
        todo.extend(page.next_cursors)
    return pages


def keys_of(pages: list[list[Any]]) -> list[tuple[int, int]]:
    return [(r.tenant_id, r.id) for page in pages for r in page]


# A tenant much larger than the others, so composite-key pages cross tenant boundaries.
ORDER_KEYS = [
    (t, i) for t in (1, 2, 3, 5) for i in range(1, 8 if t != 2 else 60, 1 if t != 3 else 3)
]


@pytest.mark.parametrize("row_values", [True, False], ids=["row-values", "expanded-or"])
async def test_composite_key_pages_cover_the_table_once_in_key_order(
    db: Db, row_values: bool
) -> None:
    db.insert_orders(list(reversed(ORDER_KEYS)))
    source = SqlSource(
        orders, key=("tenant_id", "id"), engine=db.url, row_values=row_values, lookahead=1
    )
    seen = count_queries(source.engine())
    pages = await drain(source, [""], 7)
    assert keys_of(pages) == sorted(ORDER_KEYS)
    assert [len(p) for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert len(pages) == -(-len(ORDER_KEYS) // 7)
    assert len(seen) == len(pages)  # one query a page: the extra row says whether more follow
    assert all("OFFSET" not in q.upper() for q in seen)

    # A SELECT with a where clause, and the where= argument, read the same subset.
    subset = sorted(k for k in ORDER_KEYS if k[0] != 2 and k[1] % 2)
    query = sa.select(orders.c.tenant_id, orders.c.id).where(orders.c.tenant_id != 2)
    source = SqlSource(query, key=("tenant_id", "id"), engine=db.url, where=orders.c.id % 2 == 1)
    assert keys_of(await drain(source, [""], 3)) == subset
    await source.dispose()


async def test_datetime_and_uuid_keys_round_trip_through_cursors(db: Db) -> None:
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    rows = [
        {"at": start + timedelta(seconds=i // 3), "uid": uuid.UUID(int=i * 7919), "kind": "k"}
        for i in range(40)
    ]
    with db.engine.begin() as conn:
        conn.execute(events.insert(), rows)
    source = SqlSource(events, key=("at", "uid"), engine=db.url)
    pages = await drain(source, await source.split(3), 4)
    got = [(r.at, r.uid) for page in pages for r in page]
    assert sorted(got) == sorted((r["at"], r["uid"]) for r in rows)
    assert len(set(got)) == len(rows)
    await source.dispose()


async def test_nullable_key_column_is_refused_naming_it(db: Db) -> None:
    with pytest.raises(ProcessorDefinitionError, match=r"key column src_events\.kind is nullable"):
        SqlSource(events, key=("kind", "uid"), engine=db.url)
    with pytest.raises(ProcessorDefinitionError, match="'nope' is not a column of src_orders"):
        SqlSource(orders, key="nope", engine=db.url)
    # Allowed explicitly, a NULL met while reading still fails, naming the column.
    with db.engine.begin() as conn:
        conn.execute(
            events.insert(),
            [{"at": datetime.datetime(2026, 1, 1), "uid": uuid.uuid4(), "kind": None}],
        )
    source = SqlSource(events, key=("kind", "uid"), engine=db.url, allow_nullable_key=True)
    with pytest.raises(InvalidBatchInputError, match=r"src_events\.kind.*holds NULL"):
        await drain(source, [""], 10)
    with pytest.raises(InvalidBatchInputError, match="is not a SqlSource cursor"):
        await source.read("42", 10)
    await source.dispose()


@pytest.mark.parametrize("k", [1, 3, 8, 500])
async def test_split_ranges_cover_every_row_once_with_even_counts(db: Db, k: int) -> None:
    db.insert_orders(ORDER_KEYS)
    source = SqlSource(orders, key=("tenant_id", "id"), engine=db.url)
    cursors = await source.split(k)
    assert len(cursors) == min(k, len(ORDER_KEYS))
    chains = [keys_of(await drain(source, [c], 5)) for c in cursors]
    assert sorted(sum(chains, [])) == sorted(ORDER_KEYS)  # every row once, none twice
    sizes = [len(c) for c in chains]
    assert max(sizes) - min(sizes) <= 1
    await source.dispose()


async def test_lookahead_enqueues_several_pages_from_a_keys_only_query(db: Db) -> None:
    keys = [(1, i) for i in range(103)]
    db.insert_orders(keys)
    source = SqlSource(orders, key=("tenant_id", "id"), engine=db.url, lookahead=4)
    seen = count_queries(source.engine())
    first = await source.read("", 5)
    assert len(first.items) == 5 and len(first.next_cursors) == 4
    keys_query = seen[-1]
    assert "note" not in keys_query.split("FROM")[0]  # only the key columns are fetched
    pages = await drain(source, [""], 5)
    assert keys_of(pages) == keys
    assert len(pages) == 21 and all(len(p) == 5 for p in pages[:-1])
    # Two queries for a page that looks ahead, one for the others.
    assert len(seen) - 2 <= len(pages) + -(-len(pages) // 4)
    await source.dispose()


# --- whole batches on the dev server ---------------------------------------------------------

_gates: dict[str, asyncio.Event] = {}
_events: dict[str, int] = {}  # per batch: pages that waited at the gate, or failed on purpose


def _url_of(args: str | None) -> str:
    assert args is not None
    return str(json.loads(args)["url"])


async def _record(source: SqlSource, context: BatchProcessorContext, rows: list[Any]) -> None:
    values = [{"tenant_id": r.tenant_id, "id": r.id, "page_num": context.page_num} for r in rows]
    if values:
        await source.write(processed.insert().values(values), args=context.args_str)


class _FailFast:
    """A failing page fails the batch at once instead of retrying until the test times out."""

    initial_retry_policy = RetryPolicy(maximum_attempts=1)
    use_extended_retries = False


@page_processor
class SqlSourceGated(_FailFast, SqlPageProcessor):
    """Records each row; pages from ``gate_page`` on wait for the test's gate after enqueueing."""

    source = SqlSource(orders, key=("tenant_id", "id"), engine=_url_of)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> None:
        args = json.loads(context.args_str)
        if context.page_num >= args["gate_page"]:
            _events[context.batch_id] = _events.get(context.batch_id, 0) + 1
            await _gates[context.batch_id].wait()
        await _record(self.source, context, rows)


@page_processor
class SqlSourceLookahead(SqlPageProcessor):
    """Records each row; enqueues two pages at a time; the first attempt at page 1 fails after
    enqueueing (its retry must not enqueue again nor record twice)."""

    source = SqlSource(orders, key=("tenant_id", "id"), engine=_url_of, lookahead=2)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = RetryPolicy(
        maximum_attempts=2, initial_interval=timedelta(milliseconds=50)
    )
    use_extended_retries = False

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> None:
        if context.page_num == 1 and context.attempt == 1:
            _events[context.batch_id] = _events.get(context.batch_id, 0) + 1
            raise RuntimeError("first attempt at page 1 fails after enqueueing")
        await _record(self.source, context, rows)


@pytest_asyncio.fixture
async def started(
    orchestra: BatchOrchestratorClient, task_queue: str
) -> AsyncIterator[Callable[..., Any]]:
    async def start(proc: type[SqlPageProcessor], args: dict[str, Any], **kwargs: Any) -> Any:
        bid = batch_id()
        inp = BatchOrchestratorInput(
            page_processor=proc,
            args=json.dumps(args),
            batch_id=bid,
            page_timeout=timedelta(seconds=30),
            **kwargs,
        )
        return await orchestra.start(inp, id=bid, task_queue=task_queue)

    yield start
    for proc in (SqlSourceGated, SqlSourceLookahead):
        await proc.source.dispose()


async def test_rows_inserted_or_deleted_during_a_batch(
    db: Db, new_worker: Any, started: Any
) -> None:
    original = [(1, i) for i in range(2, 122, 2)]  # pages of 5: page 5 starts after (1, 50)
    db.insert_orders(original)
    async with new_worker():
        handle = await started(
            SqlSourceGated, {"url": db.url, "gate_page": 3}, page_size=5, max_parallelism=2
        )
        _gates[handle.id] = asyncio.Event()

        async def pages_3_and_4_wait() -> None:
            assert _events.get(handle.id) == 2

        await assert_eventually(pages_3_and_4_wait)
        # Pages 0-4 have read their rows (up to (1, 50)); page 5 is enqueued, not yet read.
        behind, ahead = [(1, 1), (1, 15), (1, 33)], [(1, 51), (1, 77), (1, 123), (1, 125)]
        deleted_ahead, deleted_behind = [(1, 60), (1, 80), (1, 120)], [(1, 4)]
        db.insert_orders(behind + ahead)
        with db.engine.begin() as conn:
            for t, i in deleted_ahead + deleted_behind:
                conn.execute(orders.delete().where(orders.c.tenant_id == t, orders.c.id == i))
        _gates[handle.id].set()
        progress = await handle.result()
    assert progress.num_failed_pages == 0
    expected = sorted(set(original) - set(deleted_ahead) | set(ahead))
    got = db.processed_keys()
    assert sorted(got) == expected  # each once; nothing behind the cursor, nothing deleted ahead
    assert progress.num_completed_items == len(expected)


@pytest.mark.parametrize("driver", ["sync", "async"])
async def test_split_batch_with_lookahead_on_the_dev_server(
    db: Db, new_worker: Any, started: Any, driver: str
) -> None:
    keys = [(t, i) for t in range(1, 5) for i in range(t * 40)]
    db.insert_orders(keys)
    url = db.url if driver == "sync" else db.async_url
    cursors = await SqlSourceLookahead.source.split(4, args=json.dumps({"url": url}))
    async with new_worker():
        handle = await started(
            SqlSourceLookahead,
            {"url": url},
            first_cursor_strs=cursors,
            page_size=7,
            max_parallelism=6,
        )
        progress = await handle.result()
    assert progress.num_failed_pages == 0
    assert _events[handle.id] == 1  # page 1 failed once ...
    assert sorted(db.processed_keys()) == sorted(keys)  # ... and yet no row is read twice
    assert progress.num_completed_items == len(keys)


async def test_sample_migrates_a_postgres_table(
    postgres_url: str,  # noqa: F811
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    from samples.migrate_postgres.db import create_customers, customers
    from samples.migrate_postgres.processor import NormalizeEmails

    create_customers(postgres_url, 500)
    args = json.dumps({"database_url": postgres_url})
    totals = []
    async with new_worker():
        for _ in range(2):  # the second run finds nothing left to migrate
            bid = batch_id()
            handle = await orchestra.start(
                BatchOrchestratorInput(
                    page_processor=NormalizeEmails,
                    args=args,
                    batch_id=bid,
                    page_size=40,
                    max_parallelism=4,
                    first_cursor_strs=await NormalizeEmails.source.split(3, args=args),
                ),
                id=bid,
                task_queue=task_queue,
            )
            totals.append((await handle.result()).num_completed_items)
    await NormalizeEmails.source.dispose()
    assert totals == [500, 0]
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(customers.c.id, customers.c.email_normalized, customers.c.schema_version)
        ).all()
    engine.dispose()
    assert {
        (r.email_normalized, r.schema_version) == (f"user.{r.id}@example.com", 2) for r in rows
    } == {True}


# --- lookahead by itself ---------------------------------------------------------------------


async def test_adaptive_lookahead_grows_while_the_next_leader_starts_at_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    keys = [(1, i) for i in range(2000)]
    Db("sqlite", url, url, engine).insert_orders(keys)
    source = SqlSource(orders, key=("tenant_id", "id"), engine=url)
    assert source.lookahead is None
    source.pacer.clock = ManualClock()  # every hand-over instant, every scan free
    pages = await drain(source, [""], 5)
    # Every row once, in key order, in full pages: the boundaries found ahead are exact.
    assert keys_of(pages) == keys
    assert all(len(p) == 5 for p in pages)
    learned = source.pacer.learned(("", None, 5))
    assert learned is not None and learned[0] == 32  # doubled on every quick hand-over, up to 32
    first = await source.read("", 5)
    assert len(first.next_cursors) == 32
    await source.dispose()
    engine.dispose()


async def test_adaptive_lookahead_falls_when_the_next_leader_waited(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    Db("sqlite", url, url, engine).insert_orders([(1, i) for i in range(3000)])
    source = SqlSource(orders, key=("tenant_id", "id"), engine=url)
    source.pacer.clock = clock = ManualClock()
    cursor, depths = "", []
    for hop in range(12):
        page = await source.read(cursor, 5)
        cursor = page.next_cursors[-1]  # the next leader
        # The first hops are handed over at once; then the leader waits, as behind a full cap.
        if hop >= 6:
            clock.advance(0.06)
        learned = source.pacer.learned(("", None, 5))
        assert learned is not None
        depths.append(learned[0])
    await source.read(cursor, 5)
    final = source.pacer.learned(("", None, 5))
    assert depths[:6] == [2, 4, 8, 16, 32, 32]  # doubled while handed over at once
    assert final is not None and final[0] == 32 - 6  # one less for each of the 6 waits
    await source.dispose()
    engine.dispose()


async def test_an_explicit_lookahead_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    Db("sqlite", url, url, engine).insert_orders([(1, i) for i in range(500)])
    source = SqlSource(orders, key=("tenant_id", "id"), engine=url, lookahead=3)
    pages = await drain(source, [""], 5)
    assert len(pages) == 100
    assert len((await source.read("", 5)).next_cursors) == 3
    with pytest.raises(ProcessorDefinitionError, match="lookahead must be None"):
        SqlSource(orders, key=("tenant_id", "id"), engine=url, lookahead=0)
    await source.dispose()
    engine.dispose()


def test_a_slow_boundary_scan_keeps_the_lookahead_low() -> None:
    from batch_orchestra.sources._lookahead import LookaheadPacer

    pacer, key = LookaheadPacer(None), ("wf", None, 10)
    for i in range(10):
        # Each page ahead costs 5 ms to find, and a hand-over takes 10 ms: 3 pages ahead at most.
        pacer.found(key, f"c{i}", pacer.depth(key, 100), 0.005 * (pacer.depth(key, 100) - 1))
        pacer._waiting[f"c{i}"] = (pacer._waiting[f"c{i}"][0] - 0.01, key)
        pacer.arrived(f"c{i}")
    learned = pacer.learned(key)
    assert learned is not None and 2 <= learned[0] <= 3
    # Huge cursors: the enqueue's budget bounds the depth whatever was learned.
    assert pacer.depth(key, 200_000) == 1


SHORT_PAGE_SECONDS = 0.03


@page_processor
class SqlSourceShortPages(_FailFast, SqlPageProcessor):
    """Records each row after 30 ms of work; no lookahead set."""

    source = SqlSource(orders, key=("tenant_id", "id"), engine=_url_of)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> None:
        await asyncio.sleep(SHORT_PAGE_SECONDS)
        await _record(self.source, context, rows)


async def test_one_chain_of_short_pages_fills_the_cap_without_lookahead_set(
    tmp_path: Path, new_worker: Any, started: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    keys = [(1, i) for i in range(400)]
    Db("sqlite", url, url, engine).insert_orders(keys)
    async with new_worker():
        handle = await started(SqlSourceShortPages, {"url": url}, page_size=2, max_parallelism=40)
        progress = await handle.result()
    await SqlSourceShortPages.source.dispose()
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(sa.select(processed.c.tenant_id, processed.c.id))]
    engine.dispose()
    assert sorted(got) == keys  # each row once
    assert progress.num_failed_pages == 0 and progress.num_completed_pages == 200
    # One page found per hop keeps about 30 ms / hop (2-3) pages running; found ahead, the
    # chain keeps far more.
    assert progress.max_parallelism_achieved >= 10
