"""``StartOrders``: the page processor. It processes no order itself: each page starts one
``ChargeAndShip`` workflow per order and returns; the batch keeps at most ``max_open_items``
of them open and finishes when the last one has closed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor

from .db import Order, orders_after, orders_by_id
from .workflow import ChargeAndShip, OrderInput

__all__ = ["ChargeArgs", "StartOrders", "order_key"]


@dataclass(frozen=True, kw_only=True)
class ChargeArgs:
    """The batch's args (``BatchOrchestratorInput.args``)."""

    db: str
    """The SQLite file of orders (an absolute path: the worker opens it)."""
    warehouse_delay: float = 0.5
    """Seconds each order waits between its charge and its shipment."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, args_str: str) -> ChargeArgs:
        return cls(**json.loads(args_str))


def order_key(order: Order) -> str:
    """The item key of an order: its workflow ID ends with it (``.../order-42``)."""
    return f"order-{order.id}"


@page_processor
class StartOrders(PageProcessor):
    """Pages of orders by id (the cursor is the last id of the page before); each page starts
    a ``ChargeAndShip`` workflow per order."""

    # Starting items is idempotent: a retried page attaches to the workflows it started.
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        args = ChargeArgs.from_json(context.args_str)
        after = int(context.page.cursor_str or 0)
        size = context.page.size
        # One row more than a page tells whether another page follows (no empty last page).
        rows = await asyncio.to_thread(orders_after, args.db, after, size + 1)
        page = rows[:size]
        if len(rows) > size:
            await context.enqueue_next_page(BatchPage(str(page[-1].id), size))
        await self._start(context, args, page)
        return len(page)

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        """A redrive of failed items: read those orders again and start them again."""
        args = ChargeArgs.from_json(context.args_str)
        ids = [int(k.removeprefix("order-")) for k in keys]
        orders = await asyncio.to_thread(orders_by_id, args.db, ids)
        await self._start(context, args, orders)
        return len(orders)

    async def _start(
        self, context: BatchProcessorContext, args: ChargeArgs, orders: list[Order]
    ) -> None:
        await context.start_items(
            orders,
            workflow=ChargeAndShip,
            key=order_key,
            args=lambda o: OrderInput(
                db=args.db,
                order_id=o.id,
                amount_cents=o.amount_cents,
                warehouse_delay=args.warehouse_delay,
            ),
        )
