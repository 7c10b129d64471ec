"""``ChargeAndShip``: the item workflow, one run per order.

Charge, wait for the warehouse, ship, email. When the carrier declines the shipment, the
compensation refunds the charge and the workflow fails with an ``ApplicationError``: the batch
counts the order as a failed item (``progress.failed_items``). ``@reports_to_batch`` tells the
batch the moment the workflow completes or fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from batch_orchestra import reports_to_batch

with workflow.unsafe.imports_passed_through():
    from .activities import OrderStep, charge, refund, send_email, ship

__all__ = ["ChargeAndShip", "OrderInput"]

_TIMEOUT = timedelta(seconds=30)
_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200))


async def _step(activity: Callable[[OrderStep], Awaitable[bool]], step: OrderStep) -> bool:
    return await workflow.execute_activity(
        activity, step, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
    )


@dataclass(frozen=True, kw_only=True)
class OrderInput:
    """The workflow's input: the order, and the database it lives in."""

    db: str
    order_id: int
    amount_cents: int
    warehouse_delay: float = 0.5
    """Seconds between charge and shipment (a durable timer: the workflow holds no worker)."""


@workflow.defn(name="ChargeAndShip")
class ChargeAndShip:
    """Charge the order, ship it, email the customer; refund it if the shipment fails."""

    @workflow.run
    @reports_to_batch
    async def run(self, order: OrderInput) -> str:
        step = OrderStep(db=order.db, order_id=order.order_id)
        await _step(charge, step)
        if order.warehouse_delay > 0:
            await workflow.sleep(timedelta(seconds=order.warehouse_delay))
        try:
            await _step(ship, step)
        except ActivityError as err:
            await _step(refund, step)
            raise ApplicationError(
                f"order {order.order_id} was refunded: {err.cause or err}", type="Refunded"
            ) from err
        await _step(send_email, step)
        return f"order {order.order_id}: charged {order.amount_cents} cents, shipped, emailed"
