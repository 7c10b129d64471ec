"""The sample's data: a SQLite ``products`` table, its keyset cursor, and a small DB helper.

Every function here blocks; the page processor runs them with ``asyncio.to_thread`` so that
the pages of a batch really do run side by side in one worker.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MyDB",
    "Product",
    "ProductDBCursor",
    "connect",
    "create_products",
    "inflated_price",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    original_price_cents INTEGER NOT NULL,
    inflation_count INTEGER NOT NULL DEFAULT 0,
    migration_version INTEGER NOT NULL DEFAULT 0
)
"""

_ADJECTIVES = ("Small", "Large", "Red", "Blue", "Organic", "Vintage", "Smart", "Wooden")
_NOUNS = ("Teapot", "Lamp", "Backpack", "Notebook", "Chair", "Kettle", "Scarf", "Bicycle")


def inflated_price(price_cents: int, percent: int) -> int:
    """``price_cents`` raised by ``percent`` percent, rounded half up to a whole cent.

    The same integer arithmetic as the SQL in ``MyDB.inflate_prices``, so tests and the demo
    can check every row exactly.
    """
    return (price_cents * (100 + percent) + 50) // 100


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection that waits up to 30 s for a lock, in WAL mode (readers never block the
    writer), in autocommit mode (each statement is its own transaction)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


@dataclass(frozen=True)
class Product:
    """One row of ``products``."""

    id: int
    name: str
    price_cents: int
    original_price_cents: int
    inflation_count: int
    migration_version: int


@dataclass(frozen=True)
class ProductDBCursor:
    """Where a page of products starts: after the product with id ``after_id``.

    Keyset pagination: the cursor is the last id of the previous page, so pages stay right
    even while rows are inserted or deleted, and each page is one index range scan.
    """

    after_id: int = 0
    """Pages start at the first product whose id is greater than this."""

    def to_json(self) -> str:
        """The cursor as the string Batch Orchestra carries around."""
        return json.dumps({"after_id": self.after_id})

    @classmethod
    def from_json(cls, cursor_str: str) -> ProductDBCursor:
        """Parse ``to_json()``'s output; "" (the batch's first cursor) is the beginning."""
        if not cursor_str:
            return cls()
        return cls(after_id=int(json.loads(cursor_str)["after_id"]))


class MyDB:
    """The products table of one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)

    def query_page(self, cursor: ProductDBCursor, results: int) -> tuple[list[Product], str | None]:
        """Up to ``results`` products after ``cursor``, and the next page's cursor as JSON.

        One extra row is fetched to know whether another page exists, so the next cursor is
        None exactly when this is the last page: a batch never runs a final empty page.
        """
        with closing(connect(self.path)) as conn:
            rows = conn.execute(
                "SELECT id, name, price_cents, original_price_cents, inflation_count,"
                " migration_version FROM products WHERE id > ? ORDER BY id LIMIT ?",
                (cursor.after_id, results + 1),
            ).fetchall()
        products = [Product(*row) for row in rows[:results]]
        if len(rows) > results:
            return products, ProductDBCursor(after_id=products[-1].id).to_json()
        return products, None

    def inflate_prices(self, ids: Sequence[int], percent: int, migration_version: int) -> int:
        """Raise the price of the products ``ids`` by ``percent`` and mark them migrated to
        ``migration_version``; returns how many rows changed.

        Idempotent: a product already at ``migration_version`` (or later) is left alone, so a
        retried page, or a second batch, never inflates a price twice.
        """
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with closing(connect(self.path)) as conn:
            cur = conn.execute(
                "UPDATE products SET price_cents = (price_cents * (100 + ?) + 50) / 100,"
                " migration_version = ?, inflation_count = inflation_count + 1"
                f" WHERE id IN ({marks}) AND migration_version < ?",
                (percent, migration_version, *ids, migration_version),
            )
            return cur.rowcount

    def count(self) -> int:
        """How many products there are."""
        with closing(connect(self.path)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM products").fetchone()[0])

    def check_migrated(self, percent: int, migration_version: int) -> list[str]:
        """What is wrong with the table after one migration to ``migration_version`` by
        ``percent``; an empty list when every product was migrated exactly once."""
        checks = [
            (
                f"not at migration_version {migration_version}",
                "migration_version != ?",
                (migration_version,),
            ),
            ("inflated more than once", "inflation_count > 1", ()),
            ("never inflated", "inflation_count < 1", ()),
            (
                "with a wrong price",
                "price_cents != (original_price_cents * (100 + ?) + 50) / 100",
                (percent,),
            ),
        ]
        problems = []
        with closing(connect(self.path)) as conn:
            for label, where, params in checks:
                n, sample = conn.execute(
                    f"SELECT COUNT(*), group_concat(id) FROM"
                    f" (SELECT id FROM products WHERE {where} ORDER BY id)",
                    params,
                ).fetchone()
                if n:
                    ids = ",".join(str(sample).split(",")[:5])
                    problems.append(f"{n} product(s) {label} (ids {ids}...)")
        return problems


def create_products(path: str | os.PathLike[str], n: int, *, seed: int = 42) -> MyDB:
    """Create the ``products`` table at ``path`` (replacing the file) with ``n`` products."""
    p = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{p}{suffix}").unlink(missing_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        price = rng.randint(99, 99_999)
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} #{i}"
        rows.append((i, name, price, price))
    with closing(connect(p)) as conn:
        conn.execute(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO products (id, name, price_cents, original_price_cents)"
            " VALUES (?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    return MyDB(p)
