"""The sample's tables: ``orders`` (grows all day) and ``warehouse_orders`` (the copy).

``warehouse_orders.copies`` counts how many times an order was written, so ``check`` can tell
"synced exactly once" from "synced twice".
"""

from __future__ import annotations

import json
import random
import sqlite3
from functools import cache
from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer", sa.String(40), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
)
warehouse_orders = sa.Table(
    "warehouse_orders",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer", sa.String(40), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("copies", sa.Integer, nullable=False),
)


@cache
def engine_for(args: str | None) -> sa.Engine:
    """The engine of the database named in the series' args (one per worker process)."""
    path = json.loads(args or "{}")["db"]
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return engine


def create(path: Path) -> None:
    """Create both tables (empty)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()


def add_orders(path: Path, n: int) -> range:
    """Append ``n`` orders after the last one; the ids they got."""
    with sqlite3.connect(path, timeout=30) as conn:
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM orders").fetchone()[0]
        ids = range(last + 1, last + n + 1)
        rng = random.Random(last)
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(i, f"customer-{rng.randrange(100)}", rng.randrange(100, 100_000)) for i in ids],
        )
    return ids


def counts(path: Path) -> tuple[int, int, int, int]:
    """(orders, orders in the warehouse, orders missing from it, orders copied more than once)."""
    with sqlite3.connect(path, timeout=30) as conn:
        total = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        synced = conn.execute("SELECT COUNT(*) FROM warehouse_orders").fetchone()[0]
        missing = conn.execute(
            "SELECT COUNT(*) FROM orders WHERE id NOT IN (SELECT order_id FROM warehouse_orders)"
        ).fetchone()[0]
        twice = conn.execute("SELECT COUNT(*) FROM warehouse_orders WHERE copies > 1").fetchone()[0]
    return total, synced, missing, twice
