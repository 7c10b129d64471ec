"""The item workflow's steps, each an activity that writes one row per order.

Each step may run more than once for an order (Temporal retries an activity whose worker died
or whose reply was lost), so each is idempotent: ``db.record`` writes the order's row once and
only counts a repeat. ``charge`` even simulates the lost reply: for every ``LOST_REPLY_EVERY``-th
order its first attempt charges, then fails, and the retry finds the charge already made.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from . import db

__all__ = ["ACTIVITIES", "LOST_REPLY_EVERY", "OrderStep", "charge", "refund", "send_email", "ship"]

LOST_REPLY_EVERY = 7
"""The first charge of every 7th order "loses its reply" after charging (a retry follows)."""


@dataclass(frozen=True, kw_only=True)
class OrderStep:
    """One step's input: which order, in which database."""

    db: str
    """The SQLite file (the worker must be able to open it)."""
    order_id: int


@activity.defn(name="charge_orders_charge")
async def charge(step: OrderStep) -> bool:
    """Charge the order (once, whatever the attempt); True if this attempt charged it."""
    charged = await asyncio.to_thread(db.record, step.db, "charges", step.order_id)
    if activity.info().attempt == 1 and step.order_id % LOST_REPLY_EVERY == 0:
        raise RuntimeError(f"simulated: the reply to order {step.order_id}'s charge was lost")
    return charged


@activity.defn(name="charge_orders_ship")
async def ship(step: OrderStep) -> bool:
    """Hand the order to the carrier; a declined address fails for good (no retry helps)."""
    if await asyncio.to_thread(db.is_declined, step.db, step.order_id):
        raise ApplicationError(
            f"the carrier declines order {step.order_id}'s address",
            type="AddressDeclined",
            non_retryable=True,
        )
    return await asyncio.to_thread(db.record, step.db, "shipments", step.order_id)


@activity.defn(name="charge_orders_send_email")
async def send_email(step: OrderStep) -> bool:
    """Tell the customer the order is on its way."""
    return await asyncio.to_thread(db.record, step.db, "emails", step.order_id)


@activity.defn(name="charge_orders_refund")
async def refund(step: OrderStep) -> bool:
    """Give the charge back (the compensation of a shipment that failed)."""
    return await asyncio.to_thread(db.record, step.db, "refunds", step.order_id)


ACTIVITIES = [charge, ship, send_email, refund]
"""The activities a worker of this sample registers."""
