"""An item workflow for the item-workflow tests: records how many run at once (in this process).

Kept apart from the test module: the worker's sandbox imports it afresh, with only what a user's
workflow module would import.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from batch_orchestra import reports_to_batch

OPEN: dict[str, set[str]] = {}
"""Per test (its ``tag``): the items between their enter and leave activities."""
MOST: dict[str, int] = {}
"""Per test: the most items seen between enter and leave at once."""
RUNS: dict[str, list[str]] = {}
"""Per test: every item run that entered, in order (a key twice means it ran twice)."""


@activity.defn(name="test_item_enter")
async def item_enter(tag: str, key: str) -> None:
    now = OPEN.setdefault(tag, set())
    now.add(key)
    MOST[tag] = max(MOST.get(tag, 0), len(now))
    RUNS.setdefault(tag, []).append(key)


@activity.defn(name="test_item_leave")
async def item_leave(tag: str, key: str) -> None:
    OPEN.setdefault(tag, set()).discard(key)


@workflow.defn(name="TestChargeItem")
class ChargeItem:
    """Enter, wait a moment (or until released, for a held item), leave."""

    def __init__(self) -> None:
        self._released = False

    @workflow.run
    @reports_to_batch
    async def run(self, item: dict[str, Any]) -> str:
        return await self.charge(item)

    async def charge(self, item: dict[str, Any]) -> str:
        opts = {"start_to_close_timeout": timedelta(seconds=30)}
        await workflow.execute_activity(item_enter, args=[item["tag"], item["key"]], **opts)
        if item.get("hold"):
            await workflow.wait_condition(lambda: self._released)
        await workflow.sleep(timedelta(milliseconds=item.get("ms", 200)))
        await workflow.execute_activity(item_leave, args=[item["tag"], item["key"]], **opts)
        if item.get("fail"):
            raise ApplicationError(f"charge of {item['key']} declined", type="Declined")
        return item["key"]

    @workflow.signal
    def release(self) -> None:
        self._released = True


@workflow.defn(name="TestSilentItem")
class SilentItem(ChargeItem):
    """``ChargeItem`` without ``reports_to_batch``: it tells its batch nothing itself."""

    @workflow.run
    async def run(self, item: dict[str, Any]) -> str:
        return await self.charge(item)
