"""``SyncOrders``: copy a series run's new orders into the warehouse table.

The processor never mentions the window: ``SqlSource`` reads only the rows of the run's window
``(last synced id, newest id when the run started]`` and, as a ``SqlPageProcessor``, tells the
series where the next window ends (the largest id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.sqlite import insert

from batch_orchestra import BatchProcessorContext, PageProcessor, page_processor
from batch_orchestra.sources import SqlPageProcessor, SqlSource

from .db import engine_for, orders, warehouse_orders


@page_processor
class SyncOrders(SqlPageProcessor):
    source = SqlSource(orders, key="id", engine=engine_for)
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE  # the upsert is idempotent

    async def process(self, context: BatchProcessorContext, rows: list[Any]) -> int:
        stmt = insert(warehouse_orders).values(
            [
                {
                    "order_id": r.id,
                    "customer": r.customer,
                    "amount_cents": r.amount_cents,
                    "copies": 1,
                }
                for r in rows
            ]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["order_id"],
            set_={"copies": warehouse_orders.c.copies + 1},
        )
        await self.source.write(stmt, args=context.args_str)
        return len(rows)
