"""SqlSource inside a series' window, and the verdict and budgets of a run (no Temporal)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from batch_orchestra import BatchOrchestratorProgress, BatchWindow, InvalidBatchInputError
from batch_orchestra._engine.budgets import MAX_ARGS_BYTES
from batch_orchestra._model import MAX_MARK_CHARS
from batch_orchestra._series.messages import ClaimReply, iso
from batch_orchestra._series.run import _verdict
from batch_orchestra._series.state import MAX_CLAIMS, MAX_RUN_LOG, SeriesBook, book_to_wire
from batch_orchestra.sources import SqlSource

meta = sa.MetaData()
events = sa.Table(
    "ev",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime, nullable=False),
)
pairs = sa.Table(
    "pairs",
    meta,
    sa.Column("a", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("b", sa.Integer, primary_key=True, autoincrement=False),
)
T0 = dt.datetime(2026, 5, 1, 3, 0, 0)


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ev.db'}")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            events.insert(), [{"id": i, "at": T0 + dt.timedelta(minutes=i)} for i in range(1, 21)]
        )
    return engine


async def _ids(source: SqlSource, window: BatchWindow | None, size: int = 3) -> list[int]:
    """Every id a batch over ``window`` reads, following the cursors."""
    found, cursors = [], [""]
    while cursors:
        page = await source.read(cursors.pop(0), size, window=window)
        found += [r.id for r in page.items]
        cursors += page.next_cursors
    return found


async def test_a_watermark_window_on_the_key(engine: sa.Engine) -> None:
    source = SqlSource(events, key="id", engine=engine, lookahead=2)
    assert await source.window_end(None) == "20"
    assert await source.window_end("15") == "20"
    assert await source.window_end("20") is None  # nothing new: an empty window
    assert await _ids(source, BatchWindow(low="4", high="11")) == list(range(5, 12))
    assert await _ids(source, BatchWindow(low=None, high="3")) == [1, 2, 3]
    assert await _ids(source, None) == list(range(1, 21))
    with pytest.raises(InvalidBatchInputError, match="'x' is not a int value"):
        await source.window_end("x")


async def test_a_window_column_with_a_lag_and_a_time_window(engine: sa.Engine) -> None:
    source = SqlSource(events, key="id", engine=engine, window_column="at")
    assert await source.window_end(None) == (T0 + dt.timedelta(minutes=20)).isoformat()
    cutoff = T0 + dt.timedelta(minutes=12, seconds=30)
    newest = await source.window_end((T0 + dt.timedelta(minutes=5)).isoformat(), cutoff=cutoff)
    assert newest == (T0 + dt.timedelta(minutes=12)).isoformat()
    w = BatchWindow(low=(T0 + dt.timedelta(minutes=5)).isoformat(), high=newest)
    assert await _ids(source, w) == list(range(6, 13))
    t = BatchWindow(
        kind="time",
        low=iso((T0 + dt.timedelta(minutes=2)).replace(tzinfo=dt.timezone.utc).timestamp()),
        high=iso((T0 + dt.timedelta(minutes=6)).replace(tzinfo=dt.timezone.utc).timestamp()),
    )
    assert await _ids(source, t) == [2, 3, 4, 5]  # [low, high)


async def test_a_composite_key_needs_a_window_column(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    meta.create_all(engine)
    source = SqlSource(pairs, key=("a", "b"), engine=engine)
    with pytest.raises(InvalidBatchInputError, match="pass window_column"):
        await source.window_end(None)
    assert (
        await SqlSource(pairs, key=("a", "b"), engine=engine, window_column="a").window_end(None)
        is None
    )


def _claim(on_failure: str = "hold") -> ClaimReply:
    return ClaimReply(
        run_id="s/tick-1",
        batch_id="s/1/0..5",
        window=BatchWindow(low="0", high="5"),
        on_failure=on_failure,
    )


def test_the_verdict_of_a_run() -> None:
    ok = BatchOrchestratorProgress(num_completed_pages=3, is_finished=True)
    assert _verdict(_claim(), "COMPLETED", ok, None) == ("completed", None)
    failed = BatchOrchestratorProgress(
        num_completed_pages=2, num_failed_pages=1, num_failed_items=4
    )
    verdict, why = _verdict(_claim(), "COMPLETED", failed, None)
    assert verdict == "held" and "covers (0, 5] again" in (why or "")
    verdict, why = _verdict(_claim("advance"), "COMPLETED", failed, None)
    assert verdict == "advanced" and "batch-orchestra redrive s/1/0..5" in (why or "")
    items_only = BatchOrchestratorProgress(num_completed_pages=3, num_failed_items=4)
    assert _verdict(_claim(), "COMPLETED", items_only, None)[0] == "completed"
    for status in ("FAILED", "CANCELED", "TERMINATED", "FOREIGN"):
        verdict, why = _verdict(_claim("advance"), status, None, "boom")
        assert verdict == "failed" and "boom" in (why or "")


def test_the_book_fits_its_budget_at_the_worst_case() -> None:
    """The book travels in the continue-as-new input with the template (args up to 256 KB):
    with every claim and run at its largest it stays far inside Temporal's 2 MB."""
    book = SeriesBook()
    mark = "m" * MAX_MARK_CHARS
    for i in range(MAX_CLAIMS + 10):
        run = f"{'n' * 100}/tick-2026-05-01T03:00:{i:06d}Z"
        book.claim(
            run_id=run,
            kind="scheduled",
            nominal=float(i),
            low=mark,
            high=mark[:-1] + str(i % 10),
            version=None,
            batch_id=f"{'n' * 100}/x/{mark}..{mark}",
            now=float(i),
        )
        book.commit(
            run_id=run,
            outcome="held",
            reason="r" * 5_000,
            pages=1,
            failed_pages=1,
            items=1,
            failed_items=0,
            now=float(i),
        )
        book.set_mark(mark, "u" * 300, "r" * 5_000, float(i))
    size = len(json.dumps(book_to_wire(book.state())))
    assert len(book.runs) == MAX_RUN_LOG
    assert size + MAX_ARGS_BYTES < 1_000_000, size
