"""Item workflows, the worker's side: a page starts a workflow per item, the workflow reports back.

``ItemStarter`` is what ``context.start_items`` runs: for each item, a workflow whose ID is the
batch execution's prefix and the item's key, started with a conflict policy that makes a second
start of the same key attach to the first (a retried page, a redelivered task, a redrive of the
page) and a reuse policy that refuses to run a closed one again (a redrive of failed *items*
runs a failed one again, never a completed one). The keys go back to the batch in the page's
result; the batch counts each once.

``reports_to_batch`` wraps an item workflow's ``run``: when it returns or fails, it signals the
batch (whose workflow ID and execution the item's memo carries). An item that closes otherwise
(terminated, timed out, a workflow without the decorator) is found by the batch's checks, which
``check_items`` answers by describing the workflows.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._engine.items import MAX_ITEM_WORKFLOW_KEY
from .._exceptions import ProcessorUsageError
from .._model.messages import (
    CANCEL_ITEMS,
    CHECK_ITEMS,
    ITEM_CLOSED_SIGNAL,
    CheckItemsInput,
    CheckItemsResult,
    ClosedItem,
    ItemClosed,
)
from .item_follower import ItemFollower

__all__ = ["ITEM_MEMO", "ItemActivities", "ItemStarter", "ItemStarts", "reports_to_batch"]

ITEM_MEMO = "batch_orchestra"
"""The memo key of an item workflow: ``{"batch": workflow ID, "execution": ..., "key": ...}``."""
_CONCURRENT_STARTS = 20
_CONCURRENT_CHECKS = 20

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass
class ItemStarts:
    """What one ``start_items`` call did."""

    started: int = 0
    """Workflows started by this call (or found running from an earlier attempt)."""
    closed_before: int = 0
    """Keys whose workflow had already closed (an earlier attempt of the page started it)."""
    keys: list[str] = field(default_factory=list)
    """The items' keys, in the order given."""


@dataclass
class ItemStarter:
    """Starts one page attempt's item workflows and remembers their keys for the page's result."""

    batch_workflow_id: str
    execution: str
    prefix: str
    page_size: int
    rerun_failed: bool = False
    """A redrive of failed items: a failed item's workflow runs again (never a completed one)."""
    follower: ItemFollower | None = None
    """This worker's follower: it tells the batch when each started item closes."""
    opened: dict[str, None] = field(default_factory=dict)

    async def start(
        self,
        items: Iterable[Any],
        *,
        workflow: Any,
        key: Callable[[Any], object] | str,
        args: Callable[[Any], Any] | None = None,
        task_queue: str | None = None,
    ) -> ItemStarts:
        items = list(items)
        if len(self.opened) + len(items) > self.page_size:
            raise ProcessorUsageError(
                f"start_items: this page would start {len(self.opened) + len(items)} item "
                f"workflows, more than its size ({self.page_size}); a page reserves room for at "
                "most its size under max_open_items. Start at most page.size items per page"
            )
        keys = [_key_of(item, key) for item in items]
        run = getattr(workflow, "run", None)
        target = workflow if isinstance(workflow, str) else getattr(run, "__func__", run)
        if target is None:
            raise ProcessorUsageError(
                f"start_items: workflow={workflow!r} is neither a workflow's name nor a "
                "@workflow.defn class"
            )
        client = activity.client()
        queue = task_queue or activity.info().task_queue
        reuse = (
            WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            if self.rerun_failed
            else WorkflowIDReusePolicy.REJECT_DUPLICATE
        )
        outcome = ItemStarts(keys=keys)
        gate = asyncio.Semaphore(_CONCURRENT_STARTS)

        async def start_one(item: Any, k: str) -> None:
            async with gate:
                try:
                    await client.start_workflow(
                        target,
                        args(item) if args is not None else item,
                        id=self.prefix + k,
                        task_queue=queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        id_reuse_policy=reuse,
                        memo={
                            ITEM_MEMO: {
                                "batch": self.batch_workflow_id,
                                "execution": self.execution,
                                "key": k,
                            }
                        },
                    )
                    outcome.started += 1
                except WorkflowAlreadyStartedError:  # closed already: counted once told
                    outcome.closed_before += 1
            self.opened[k] = None
            if self.follower is not None:  # a closed one too: its close is told at once
                self.follower.follow(
                    client, self.batch_workflow_id, self.execution, self.prefix + k, k
                )

        await asyncio.gather(*(start_one(item, k) for item, k in zip(items, keys, strict=True)))
        return outcome


def _key_of(item: Any, key: Callable[[Any], object] | str) -> str:
    if isinstance(key, str):
        value = item[key] if isinstance(item, dict) else getattr(item, key)
    else:
        value = key(item)
    k = str(value)
    if not k or len(k) > MAX_ITEM_WORKFLOW_KEY:
        raise ProcessorUsageError(
            f"start_items: item key {k[:80]!r} is {len(k)} characters; a key is 1 to "
            f"{MAX_ITEM_WORKFLOW_KEY} characters (it is part of the item workflow's ID and of "
            "the batch's hand-over). Use a shorter key, e.g. the row's id"
        )
    return k


# -- the item workflow's side -----------------------------------------------------------------


def reports_to_batch(run: F) -> F:
    """Make an item workflow tell its batch at once when it returns or fails.

    Put it under ``@workflow.run``, on the run method.

    Without it the batch still finds the item closed, at its next check (seconds to minutes
    later, docs/item-workflows.md). A workflow started otherwise than by a batch is unaffected.
    """

    @functools.wraps(run)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await run(*args, **kwargs)
        except FailureError as err:  # the workflow fails (any other error fails only its task)
            kind = err.type if isinstance(err, ApplicationError) and err.type else None
            await _tell_batch(False, kind or type(err).__name__, str(err))
            raise
        await _tell_batch(True, None, "")
        return result

    return wrapped  # type: ignore[return-value]


async def _tell_batch(ok: bool, error_type: str | None, message: str) -> None:
    memo = workflow.memo_value(ITEM_MEMO, default=None)
    if not isinstance(memo, dict) or "batch" not in memo:
        return
    handle = workflow.get_external_workflow_handle(memo["batch"])
    closed = ItemClosed(
        execution=str(memo.get("execution", "")),
        key=str(memo.get("key", "")),
        ok=ok,
        error_type=error_type,
        error_message=message[:500],
    )
    try:
        await handle.signal(ITEM_CLOSED_SIGNAL, closed)
    except Exception as err:  # the batch ended or is gone: its check would have counted it
        workflow.logger.warning("could not tell batch %s this item closed: %s", memo["batch"], err)


# -- the batch's checks -----------------------------------------------------------------------

_STATUS = {
    WorkflowExecutionStatus.COMPLETED: "COMPLETED",
    WorkflowExecutionStatus.FAILED: "FAILED",
    WorkflowExecutionStatus.CANCELED: "CANCELED",
    WorkflowExecutionStatus.TERMINATED: "TERMINATED",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
    WorkflowExecutionStatus.TIMED_OUT: "TIMED_OUT",
}


class ItemActivities:
    """``check_items`` and ``cancel_items``."""

    def all(self) -> list[Any]:
        return [self.check_items, self.cancel_items]

    @activity.defn(name=CHECK_ITEMS)
    async def check_items(self, inp: CheckItemsInput) -> CheckItemsResult:
        """Describe the item workflows; return those that are closed (or missing)."""
        client = activity.client()
        gate = asyncio.Semaphore(_CONCURRENT_CHECKS)
        found: list[ClosedItem] = []

        async def check(key: str) -> None:
            async with gate:
                closed = await _describe(client, inp.prefix + key, key)
            if closed is not None:
                found.append(closed)

        await asyncio.gather(*(check(k) for k in inp.keys))
        return CheckItemsResult(found)

    @activity.defn(name=CANCEL_ITEMS)
    async def cancel_items(self, inp: CheckItemsInput) -> None:
        """Ask the item workflows to cancel (one already closed is left as it is)."""
        client = activity.client()
        gate = asyncio.Semaphore(_CONCURRENT_CHECKS)

        async def cancel(key: str) -> None:
            async with gate:
                try:
                    await client.get_workflow_handle(inp.prefix + key).cancel()
                except RPCError as err:
                    gone = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
                    if err.status not in gone:
                        raise

        await asyncio.gather(*(cancel(k) for k in inp.keys))


async def _describe(client: Client, workflow_id: str, key: str) -> ClosedItem | None:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return ClosedItem(key, "NOT_FOUND", f"no workflow has the item's ID {workflow_id!r}")
        raise
    if desc.status is None or desc.status == WorkflowExecutionStatus.RUNNING:
        return None
    status = _STATUS.get(desc.status, desc.status.name)
    message = ""
    if status in ("FAILED", "TIMED_OUT", "TERMINATED", "CANCELED"):
        message = f"the item's workflow {workflow_id!r} closed as {status}"
    return ClosedItem(key, status, message)
