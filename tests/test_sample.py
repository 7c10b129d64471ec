"""The inflate-prices sample (samples/inflate_prices) end to end on the real server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    BatchProcessorContext,
    page_processor,
)
from samples.inflate_prices.db import (
    MyDB,
    ProductDBCursor,
    connect,
    create_products,
    inflated_price,
)
from samples.inflate_prices.processor import ConfigArgs, InflateProductPrices

N_PRODUCTS = 2_000
PAGE_SIZE = 50
PARALLELISM = 4
PERCENT = 10
# query_page fetches one row more than a page to know whether another page follows, so the
# last page (exactly 50 rows here) enqueues nothing: no trailing empty page. 2000 / 50 = 40.
EXPECTED_PAGES = 40


def _rows(db: MyDB) -> list[tuple[int, int, int, int, int]]:
    conn = connect(db.path)
    try:
        return conn.execute(
            "SELECT id, price_cents, original_price_cents, inflation_count, migration_version"
            " FROM products ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


@page_processor
class InflateProductPricesThenCrash(InflateProductPrices):
    """Commits its page's update, then fails the first attempt of every fifth page."""

    async def run(self, context: BatchProcessorContext) -> int:
        updated = await super().run(context)
        if context.page_num % 5 == 2 and context.attempt == 1:
            raise RuntimeError(f"simulated crash after updating page {context.page_num}")
        return updated


async def _run_batch(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    args: ConfigArgs,
    processor: type[InflateProductPrices] = InflateProductPrices,
) -> BatchOrchestratorProgress:
    handle = await orchestra.start(
        BatchOrchestratorInput(
            page_processor=processor,
            page_size=PAGE_SIZE,
            max_parallelism=PARALLELISM,
            args=args.to_json(),
            total_items=N_PRODUCTS,
        ),
        id=f"inflate-prices-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    return await handle.result()


def _assert_migrated_once(db: MyDB) -> None:
    rows = _rows(db)
    assert len(rows) == N_PRODUCTS
    assert [r[0] for r in rows] == list(range(1, N_PRODUCTS + 1))
    assert {r[3] for r in rows} == {1}, "every product inflated exactly once"
    assert {r[4] for r in rows} == {1}, "every product at migration_version 1"
    wrong = [r for r in rows if r[1] != inflated_price(r[2], PERCENT)]
    assert wrong == []
    assert db.check_migrated(PERCENT, 1) == []


@pytest.fixture
def db(tmp_path: Path) -> MyDB:
    return create_products(tmp_path / "products.db", N_PRODUCTS)


@pytest.fixture
def args(db: MyDB) -> ConfigArgs:
    # A longer simulated I/O delay than the default so that pages visibly overlap.
    return ConfigArgs(db_path=db.path, percent=PERCENT, migration_version=1, simulated_io_delay=0.2)


async def test_inflate_prices_migrates_every_product_exactly_once(
    db: MyDB,
    args: ConfigArgs,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    async with new_worker():
        progress = await _run_batch(orchestra, task_queue, args)

    assert progress.is_finished
    assert progress.num_completed_pages == EXPECTED_PAGES
    assert progress.num_completed_items == N_PRODUCTS
    assert progress.num_failed_pages == 0 and progress.num_stuck_pages == 0
    assert progress.num_processing_pages == 0 and progress.num_pending_pages == 0
    assert 2 <= progress.max_parallelism_achieved <= PARALLELISM
    _assert_migrated_once(db)


async def test_inflate_prices_second_batch_changes_nothing(
    db: MyDB,
    args: ConfigArgs,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    async with new_worker():
        first = await _run_batch(orchestra, task_queue, args)
        rows_after_first = _rows(db)
        second = await _run_batch(orchestra, task_queue, args)

    assert first.num_completed_items == N_PRODUCTS
    # The second batch walks the same pages but its UPDATE matches no row.
    assert second.num_completed_pages == EXPECTED_PAGES
    assert second.num_completed_items == 0
    assert second.num_failed_pages == 0 and second.num_stuck_pages == 0
    assert _rows(db) == rows_after_first
    _assert_migrated_once(db)


async def test_inflate_prices_retried_pages_do_not_inflate_twice(
    db: MyDB,
    args: ConfigArgs,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    async with new_worker():
        progress = await _run_batch(orchestra, task_queue, args, InflateProductPricesThenCrash)

    crashed = len([n for n in range(EXPECTED_PAGES) if n % 5 == 2])
    assert progress.num_completed_pages == EXPECTED_PAGES  # retries add no page
    assert progress.num_failed_pages == 0 and progress.num_stuck_pages == 0
    # A retry finds its rows already migrated: it updates (and reports) none of them.
    assert progress.num_completed_items == N_PRODUCTS - crashed * PAGE_SIZE
    _assert_migrated_once(db)


@pytest.mark.parametrize(
    ("n", "size", "pages"),
    [
        (0, 50, 1),
        (1, 50, 1),
        (49, 50, 1),
        (50, 50, 1),
        (51, 50, 2),
        (2_000, 50, 40),
        (2_010, 50, 41),
    ],
)
def test_query_page_walks_the_table_once_without_an_empty_last_page(
    tmp_path: Path, n: int, size: int, pages: int
) -> None:
    db = create_products(tmp_path / "p.db", n)
    cursor_str: str | None = ""
    seen: list[int] = []
    sizes: list[int] = []
    while cursor_str is not None:
        products, cursor_str = db.query_page(ProductDBCursor.from_json(cursor_str), results=size)
        seen += [p.id for p in products]
        sizes.append(len(products))
    assert seen == list(range(1, n + 1))
    assert len(sizes) == pages
    assert all(s == size for s in sizes[:-1])
    assert n == 0 or sizes[-1] > 0


def test_inflate_prices_update_is_idempotent(db: MyDB) -> None:
    ids = list(range(1, 11))
    assert db.inflate_prices(ids, PERCENT, 1) == 10
    assert db.inflate_prices(ids, PERCENT, 1) == 0
    assert db.inflate_prices(ids, PERCENT, 2) == 10  # a later migration applies again
    rows = _rows(db)[:10]
    assert {r[3] for r in rows} == {2}
    assert all(r[1] == inflated_price(inflated_price(r[2], PERCENT), PERCENT) for r in rows)


def test_cursor_round_trips() -> None:
    assert ProductDBCursor.from_json("") == ProductDBCursor(after_id=0)
    assert ProductDBCursor.from_json(ProductDBCursor(after_id=7).to_json()).after_id == 7
    args = ConfigArgs(db_path="/x.db", percent=5, migration_version=3)
    assert ConfigArgs.from_json(args.to_json()) == args
