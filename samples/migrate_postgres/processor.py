"""The page processor: a few lines over ``SqlSource``."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, update

from batch_orchestra import BatchProcessorContext, PageProcessor, page_processor
from batch_orchestra.sources import SqlPageProcessor, SqlSource

from .db import TARGET_VERSION, customers

__all__ = ["NormalizeEmails", "database_url"]


def database_url(args: str | None) -> str:
    """The batch's database, from its args: ``{"database_url": "postgresql+psycopg://..."}``.

    Called once per worker process (per batch args): the source keeps the engine it makes.
    """
    return str(json.loads(args or "{}")["database_url"])


@page_processor
class NormalizeEmails(SqlPageProcessor):
    """Fills ``customers.email_normalized`` and moves each row to ``TARGET_VERSION``, once."""

    source = SqlSource(
        customers,
        key="id",
        where=customers.c.schema_version < TARGET_VERSION,  # a rerun skips migrated rows
        engine=database_url,
    )
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE  # safe: the UPDATE is idempotent

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> int:
        return await self.source.write(
            update(customers)
            .where(customers.c.id.in_([row.id for row in rows]))
            .where(customers.c.schema_version < TARGET_VERSION)
            .values(
                email_normalized=func.lower(func.trim(customers.c.email)),
                schema_version=TARGET_VERSION,
            ),
            args=context.args_str,
        )
