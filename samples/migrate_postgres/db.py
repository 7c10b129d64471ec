"""The sample's table: customers whose emails a migration normalises."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["TARGET_VERSION", "create_customers", "customers", "metadata"]

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_normalized", sa.Text, nullable=True),
    sa.Column("schema_version", sa.Integer, nullable=False, server_default="1"),
)
"""Customers; rows at ``schema_version`` 1 still need ``email_normalized`` filled."""

TARGET_VERSION = 2
"""The schema version the migration brings each row to."""


def create_customers(url: str, n: int) -> None:
    """(Re)create ``customers`` with ``n`` rows of messy emails, in batches of 10,000."""
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for start in range(0, n, 10_000):
                conn.execute(
                    customers.insert(),
                    [
                        {"id": i, "email": f"  User.{i}@Example.COM ", "schema_version": 1}
                        for i in range(start + 1, min(n, start + 10_000) + 1)
                    ],
                )
    finally:
        engine.dispose()
