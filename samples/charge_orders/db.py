"""The sample's tables: ``orders``, and what the item workflows write: ``charges``,
``shipments``, ``emails`` and ``refunds``.

Each of the four has one row per order at most (its primary key is the order's id), and every
write is an upsert that counts the requests in ``requests``: an activity retried after its
write went through finds the row and changes nothing else, so an order is charged at most once
however often the charge is asked for, and ``check`` can show how many repeats were absorbed.

Every function here blocks; the activities run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DECLINED_EVERY",
    "STEPS",
    "Order",
    "Report",
    "check",
    "connect",
    "create",
    "is_declined",
    "orders_after",
    "orders_by_id",
    "record",
]

DECLINED_EVERY = 50
"""Every 50th order has an address the carrier declines: it is charged, then refunded."""
STEPS = ("charges", "shipments", "emails", "refunds")
"""The tables the item workflows write, one row per order."""

_SCHEMA = """
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    declined INTEGER NOT NULL
);
""" + "".join(
    f"""
CREATE TABLE {table} (
    order_id INTEGER PRIMARY KEY REFERENCES orders (id),
    requests INTEGER NOT NULL
);"""
    for table in STEPS
)


@dataclass(frozen=True)
class Order:
    """One row of ``orders``."""

    id: int
    customer: str
    amount_cents: int
    declined: bool


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection in WAL mode that waits up to 30 s for a lock, in autocommit mode."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def create(path: Path, n: int) -> None:
    """(Re)create the database with orders 1..n; every ``DECLINED_EVERY``-th is declined."""
    path.unlink(missing_ok=True)
    rng = random.Random(n)
    with closing(connect(path)) as conn:
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                (
                    i,
                    f"customer-{rng.randrange(100)}",
                    rng.randrange(100, 100_000),
                    int(i % DECLINED_EVERY == 0),
                )
                for i in range(1, n + 1)
            ],
        )
        conn.execute("COMMIT")


def orders_after(path: str, after_id: int, limit: int) -> list[Order]:
    """Up to ``limit`` orders with ids above ``after_id``, by id (one keyset page)."""
    with closing(connect(path)) as conn:
        rows = conn.execute(
            "SELECT id, customer, amount_cents, declined FROM orders WHERE id > ? ORDER BY id "
            "LIMIT ?",
            (after_id, limit),
        ).fetchall()
    return [Order(i, c, a, bool(d)) for i, c, a, d in rows]


def orders_by_id(path: str, ids: Sequence[int]) -> list[Order]:
    """The orders with these ids (those that exist), by id."""
    marks = ",".join("?" * len(ids))
    with closing(connect(path)) as conn:
        rows = conn.execute(
            "SELECT id, customer, amount_cents, declined FROM orders "
            f"WHERE id IN ({marks}) ORDER BY id",
            list(ids),
        ).fetchall()
    return [Order(i, c, a, bool(d)) for i, c, a, d in rows]


def is_declined(path: str, order_id: int) -> bool:
    """Whether the carrier declines this order's address."""
    with closing(connect(path)) as conn:
        row = conn.execute("SELECT declined FROM orders WHERE id = ?", (order_id,)).fetchone()
    return bool(row and row[0])


def record(path: str, table: str, order_id: int) -> bool:
    """Write the order's row in ``table`` once; True if this call wrote it (False: a repeat)."""
    if table not in STEPS:
        raise ValueError(f"table must be one of {STEPS}, got {table!r}")
    with closing(connect(path)) as conn:
        cur = conn.execute(
            f"INSERT INTO {table} (order_id, requests) VALUES (?, 1) "
            "ON CONFLICT (order_id) DO UPDATE SET requests = requests + 1 RETURNING requests",
            (order_id,),
        )
        (requests,) = cur.fetchone()
    return bool(requests == 1)


@dataclass(frozen=True)
class Report:
    """What ``check`` found."""

    orders: int
    declined: int
    done: int
    """Orders not declined that were charged, shipped and emailed, and not refunded."""
    refunded: int
    """Declined orders that were charged and refunded, and neither shipped nor emailed."""
    repeats: int
    """Requests that found their row written already (retried activities), all absorbed."""
    problems: list[str]


def check(path: Path) -> Report:
    """Every order's rows against what it should have: the sample's invariants."""
    with closing(connect(path)) as conn:
        rows = conn.execute(
            "SELECT o.id, o.declined, "
            + ", ".join(f"COALESCE({t}.requests, 0)" for t in STEPS)
            + " FROM orders o "
            + " ".join(f"LEFT JOIN {t} ON {t}.order_id = o.id" for t in STEPS)
        ).fetchall()
        dupes = sum(
            conn.execute(
                f"SELECT COUNT(*) FROM (SELECT order_id FROM {t} GROUP BY order_id "
                "HAVING COUNT(*) > 1)"
            ).fetchone()[0]
            for t in STEPS
        )
    problems = [f"{dupes} orders have two rows in a table"] if dupes else []
    done = refunded = repeats = declined = 0
    for order_id, is_declined_, *requests in rows:
        charged, shipped, emailed, refund = (r > 0 for r in requests)
        repeats += sum(max(r - 1, 0) for r in requests)
        if is_declined_:
            declined += 1
            if charged and refund and not shipped and not emailed:
                refunded += 1
            else:
                problems.append(
                    f"declined order {order_id}: charged={charged} refunded={refund} "
                    f"shipped={shipped} emailed={emailed} (want charged, refunded, not shipped)"
                )
        elif charged and shipped and emailed and not refund:
            done += 1
        else:
            problems.append(
                f"order {order_id}: charged={charged} shipped={shipped} emailed={emailed} "
                f"refunded={refund} (want charged, shipped and emailed)"
            )
    return Report(len(rows), declined, done, refunded, repeats, problems)
