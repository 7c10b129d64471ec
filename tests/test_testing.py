"""batch_orchestra.testing: run_locally and check_idempotent on real SQLite processors."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.common import RetryPolicy

from batch_orchestra import (
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    args_str,
    page_processor,
)
from batch_orchestra.testing import (
    check_idempotent,
    interruption_point,
    run_locally,
    snapshot_diff,
)
from tests.processors import Scripted

_FAST = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=5)


@dataclass
class Db:
    path: str
    n: int = 40
    flaky_page: int = -1


def page_of_ids(context: BatchProcessorContext) -> tuple[sqlite3.Connection, list[int], Db]:
    """Ids after the cursor (the previous page's last id); enqueues the next page."""
    db = context.args(Db)
    conn = sqlite3.connect(db.path, isolation_level=None)
    after = int(context.page.cursor_str or 0)
    ids = list(range(after + 1, min(after + context.page.size, db.n) + 1))
    if ids and ids[-1] < db.n:
        context.enqueue_next_page(BatchPage(str(ids[-1]), context.page.size))
    return conn, ids, db


class SqliteProcessor(PageProcessor):
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _FAST


@page_processor
class UpsertDoubles(SqliteProcessor):
    """Idempotent: an UPSERT per id, in two steps with an interruption point between."""

    def run(self, context: BatchProcessorContext) -> int:
        conn, ids, db = page_of_ids(context)
        if context.page_num == db.flaky_page and context.attempt == 1:
            raise RuntimeError("flaky first attempt")
        conn.executemany(
            "INSERT INTO out(id, v) VALUES (?, 0) ON CONFLICT(id) DO NOTHING", [(i,) for i in ids]
        )
        interruption_point()
        conn.executemany("UPDATE out SET v = ? WHERE id = ?", [(2 * i, i) for i in ids])
        return len(ids)


@page_processor
class IncrementOnePage(SqliteProcessor):
    """Not idempotent for ids over 30 (page 3 of 10-id pages): v = v + 1."""

    def run(self, context: BatchProcessorContext) -> int:
        conn, ids, _ = page_of_ids(context)
        for i in ids:
            if i > 30:
                conn.execute(
                    "INSERT INTO out(id, v) VALUES (?, 1) ON CONFLICT(id) DO UPDATE SET v = v + 1",
                    (i,),
                )
            else:
                conn.execute("INSERT OR REPLACE INTO out(id, v) VALUES (?, 1)", (i,))
        return len(ids)


@page_processor
class MarkerFirst(SqliteProcessor):
    """Marks the page done before its work: a crash between the two loses the page."""

    def run(self, context: BatchProcessorContext) -> int:
        conn, ids, _ = page_of_ids(context)
        if conn.execute("SELECT 1 FROM done WHERE page = ?", (context.page.cursor_str,)).fetchone():
            return 0
        conn.execute("INSERT INTO done(page) VALUES (?)", (context.page.cursor_str,))
        interruption_point()
        conn.executemany("INSERT OR REPLACE INTO out(id, v) VALUES (?, 1)", [(i,) for i in ids])
        return len(ids)


class Table:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def reset(self) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.executescript(
                "DROP TABLE IF EXISTS out; DROP TABLE IF EXISTS done;"
                "CREATE TABLE out(id INTEGER PRIMARY KEY, v INTEGER);"
                "CREATE TABLE done(page TEXT PRIMARY KEY);"
            )

    def state(self) -> dict[int, int]:
        with sqlite3.connect(self.path) as conn:
            return dict(conn.execute("SELECT id, v FROM out"))


@pytest.fixture
def table(tmp_path: Path) -> Table:
    t = Table(tmp_path / "t.db")
    t.reset()
    return t


async def test_run_locally_reports_every_page(client: Any, table: Table) -> None:
    result = await run_locally(
        UpsertDoubles,
        args=args_str(Db(table.path, n=45, flaky_page=2)),
        page_size=10,
        max_parallelism=3,
        client=client,
        pages_per_run=2,  # continue-as-new every 2 attempts
    )
    assert result.progress.is_finished and result.progress.num_failed_pages == 0
    assert result.cursors == ["", "10", "20", "30", "40"]
    assert [p.items for p in result.pages] == [10, 10, 10, 10, 5]
    assert result.items == result.progress.num_completed_items == 45
    assert len(result.attempts) == 6
    flaky = [(a.attempt, a.items, a.error) for a in result.attempts if a.page_num == 2]
    assert flaky == [(1, None, "RuntimeError: flaky first attempt"), (2, 10, None)]
    assert table.state() == {i: 2 * i for i in range(1, 46)}


async def test_check_idempotent_passes_an_upsert(client: Any, table: Table) -> None:
    reference = await check_idempotent(
        UpsertDoubles,
        state=table.state,
        reset=table.reset,
        args=args_str(Db(table.path)),
        page_size=10,
        client=client,
    )
    assert reference.cursors == ["", "10", "20", "30"]
    assert all(p.interruption_points == 1 for p in reference.pages)


async def test_check_idempotent_names_the_page_that_is_not(client: Any, table: Table) -> None:
    with pytest.raises(AssertionError) as info:
        await check_idempotent(
            IncrementOnePage,
            state=table.state,
            reset=table.reset,
            page_size=10,
            args=args_str(Db(table.path)),
            client=client,
        )
    message = str(info.value)
    assert "IncrementOnePage is not idempotent: page 3 (cursor '30') run twice" in message
    assert "10 keys differ:\n  31: 1 once, 2 after the rerun\n  32:" in message
    assert "40: 1 once, 2 after the rerun" in message and "30:" not in message


async def test_check_idempotent_interrupts_a_page_between_its_writes(
    client: Any, table: Table
) -> None:
    with pytest.raises(AssertionError) as info:
        await check_idempotent(
            MarkerFirst,
            state=table.state,
            reset=table.reset,
            page_size=10,
            args=args_str(Db(table.path, n=20)),
            client=client,
        )
    message = str(info.value)
    assert "MarkerFirst is not idempotent: page 0 (cursor '')" in message
    assert "interrupted at interruption_point() #1 and run again" in message
    assert "10 keys differ" in message and "\n  1: 1 once, '<missing>' after the rerun" in message


def test_snapshot_diff_is_compact() -> None:
    assert snapshot_diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == (
        "2 keys differ:\n  'b': 2 once, 3 after the rerun\n  'c': '<missing>' once, 0 after the rerun"
    )
    assert snapshot_diff([1, 2, 2], [2, 2, 2, 3]) == (
        "3 elements differ:\n  - 1 (missing after the rerun)\n  + 2 (extra after the rerun)\n"
        "  + 3 (extra after the rerun)"
    )
    assert snapshot_diff([1, 2], [2, 1]) == "the same elements in another order: [2, 1]"
    assert snapshot_diff("x", "y").splitlines()[-2:] == ["  -'x'", "  +'y'"]


async def test_run_locally_gives_up_on_a_stuck_batch(client: Any) -> None:
    args = json.dumps({"n": 10, "fail": {"0": {"attempts": 1000}}})
    with pytest.raises(
        TimeoutError, match=r"did not finish within 0:00:03: 0 pages completed.*1 stuck"
    ):
        await run_locally(
            Scripted, args=args, page_size=10, client=client, timeout=timedelta(seconds=3)
        )


def test_testing_exports_are_pinned() -> None:
    import batch_orchestra.testing as testing

    assert testing.__all__ == [
        "EmbeddedTemporal",
        "LocalRun",
        "PageRun",
        "SimulatedCrash",
        "check_idempotent",
        "free_port",
        "interruption_point",
        "run_locally",
        "snapshot_diff",
    ]
    interruption_point()  # a no-op outside check_idempotent
