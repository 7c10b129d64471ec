"""The worker follows the item workflows it started and tells their batch when they close.

A page that starts items (``context.start_items``) hands each started workflow to this worker's
``ItemFollower``: one task per item waits for the workflow's close (the same long-poll a client's
``handle.result()`` makes), and the closes of one batch execution go to the batch together, in
one ``ItemsClosed`` signal per burst (up to ``MAX_CLOSES_PER_SIGNAL``), not one per item.

This is what makes an item cheap for the server: the item workflow itself sends nothing (no
signal of its own, no second workflow task to see it delivered), and the batch wakes once per
burst of closes. Nothing depends on it for correctness: if this worker dies or is shut down, the
items it followed are found by the batch's checks (``item_check_interval``), or told at once by
``@reports_to_batch`` on the item workflow; the batch counts each key once whoever tells it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
)
from temporalio.exceptions import TimeoutError as WorkflowTimeoutError
from temporalio.service import RPCError, RPCStatusCode

from .._engine.items import closed_error_type
from .._model.messages import (
    ITEMS_CLOSED_SIGNAL,
    MAX_CLOSES_PER_SIGNAL,
    MAX_ERROR_TYPE,
    ItemClosed,
    ItemsClosed,
)
from .._result_wait import wait_for_result

__all__ = ["ItemFollower"]

log = logging.getLogger(__name__)

FLUSH_AFTER_S = 0.2
"""A close waits about this long for others of its batch to go in the same signal; one worker
sends a batch at most one signal in this time unless a full signal's worth waits."""
_SIGNAL_ATTEMPTS = 10
"""A signal is tried for about two minutes (0.5 s doubling to 15 s between tries)."""
_TRANSIENT = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNKNOWN,
)
"""Errors worth waiting out (``wait_for_result`` already polls again on DEADLINE_EXCEEDED)."""
_CLOSED_AS = (
    (TerminatedError, "TERMINATED", "the item's workflow was terminated"),
    (WorkflowTimeoutError, "TIMED_OUT", "the item's workflow timed out"),
    (CancelledError, "CANCELED", "the item's workflow was cancelled"),
)
_GIVE_UP_AFTER_S = 600.0
_CLOSE_WAIT_S = 5.0


@dataclass
class _Batch:
    """The closes waiting to be told to one batch execution."""

    workflow_id: str
    execution: str
    pending: list[ItemClosed] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None


class ItemFollower:
    """Per worker: the item workflows being followed and the closes waiting to be told."""

    def __init__(self) -> None:
        self._following: dict[str, asyncio.Task[None]] = {}
        self._batches: dict[tuple[str, str], _Batch] = {}

    def follow(
        self, client: Client, batch_workflow_id: str, execution: str, workflow_id: str, key: str
    ) -> None:
        """Follow this item workflow until it closes (once, however often a page starts it)."""
        if workflow_id in self._following:
            return
        task = asyncio.ensure_future(
            self._follow(client, batch_workflow_id, execution, workflow_id, key)
        )
        self._following[workflow_id] = task
        task.add_done_callback(lambda _: self._following.pop(workflow_id, None))

    async def close(self) -> None:
        """Stop following (the batches' checks find what is left); pending closes are told."""
        following = list(self._following.values())
        for task in following:
            task.cancel()
        await asyncio.gather(*following, return_exceptions=True)
        flushers = [b.flusher for b in self._batches.values() if b.flusher is not None]
        if flushers:  # a few seconds for them, not a signal's whole two minutes of retries
            _, late = await asyncio.wait(flushers, timeout=_CLOSE_WAIT_S)
            for task in late:
                task.cancel()

    async def _follow(
        self, client: Client, batch_workflow_id: str, execution: str, workflow_id: str, key: str
    ) -> None:
        closed = await _wait_for_close(client, workflow_id, key)
        if closed is None:
            return
        slot = (batch_workflow_id, execution)
        batch = self._batches.get(slot)
        if batch is None:
            batch = self._batches[slot] = _Batch(batch_workflow_id, execution)
        batch.pending.append(closed)
        if batch.flusher is None or batch.flusher.done():
            batch.flusher = asyncio.ensure_future(self._flush(client, slot, batch))

    async def _flush(self, client: Client, slot: tuple[str, str], batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(FLUSH_AFTER_S)
        while batch.pending:
            began = loop.time()
            chunk = batch.pending[:MAX_CLOSES_PER_SIGNAL]
            del batch.pending[:MAX_CLOSES_PER_SIGNAL]
            await _tell(client, batch, chunk)
            if batch.pending and len(batch.pending) < MAX_CLOSES_PER_SIGNAL:
                # Paced: at most one signal per FLUSH_AFTER_S to a batch from this worker unless
                # a full one waits. Back to back, each signal would carry only the closes of the
                # last round trip, and a batch handing over meets more signals that arrive while
                # its last workflow task runs (Temporal then refuses the continue-as-new, and the
                # run replays its history before it tries again).
                await asyncio.sleep(max(0.0, FLUSH_AFTER_S - (loop.time() - began)))
        if self._batches.get(slot) is batch:
            del self._batches[slot]


async def _wait_for_close(client: Client, workflow_id: str, key: str) -> ItemClosed | None:
    """How the item's workflow closed; None when it cannot be told (the checks will find it).

    A server out of reach (restarting, overloaded) is waited for, up to about ten minutes.
    """
    handle = client.get_workflow_handle(workflow_id)
    delay, waited = 1.0, 0.0
    while True:
        try:
            await wait_for_result(handle, follow_runs=True)
            return ItemClosed(execution="", key=key, ok=True)
        except WorkflowFailureError as err:
            error_type, message = _failure(err.cause)
            return ItemClosed(
                execution="", key=key, ok=False, error_type=error_type, error_message=message[:500]
            )
        except RPCError as err:
            if err.status not in _TRANSIENT or waited >= _GIVE_UP_AFTER_S:
                log.debug("stopped following item workflow %s: %s", workflow_id, err)
                return None
        except asyncio.CancelledError:
            raise
        except Exception as err:  # an unreadable result and the like: leave it to the checks
            log.debug("stopped following item workflow %s: %s", workflow_id, err)
            return None
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 30.0)


def _failure(cause: BaseException | None) -> tuple[str, str]:
    """The error type and message the batch records for an item workflow that did not complete.

    The same types as ``@reports_to_batch`` (an ``ApplicationError``'s type) and the checks
    (``ItemWorkflowTerminated`` and the like) give, so a failure reads alike whoever found it.
    """
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type[:MAX_ERROR_TYPE], str(cause)
    for kind, status, text in _CLOSED_AS:
        if isinstance(cause, kind):
            return closed_error_type(status), str(cause) or text
    if cause is None:
        return closed_error_type("FAILED"), "the item's workflow failed"
    return type(cause).__name__, str(cause)


async def _tell(client: Client, batch: _Batch, chunk: list[ItemClosed]) -> None:
    msg = ItemsClosed(execution=batch.execution, closed=chunk)
    handle = client.get_workflow_handle(batch.workflow_id)
    delay = 0.5
    for attempt in range(1, _SIGNAL_ATTEMPTS + 1):
        try:
            await handle.signal(ITEMS_CLOSED_SIGNAL, msg)
            return
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # the batch has ended: nothing to tell
                return
            if attempt == _SIGNAL_ATTEMPTS:
                _not_told(batch, chunk, err)
                return
        except Exception as err:  # e.g. the data converter refused it: retrying will not help
            _not_told(batch, chunk, err)
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 15.0)


def _not_told(batch: _Batch, chunk: list[ItemClosed], err: BaseException) -> None:
    log.warning(
        "could not tell batch %s that %d item workflow(s) closed (%s); its checks will find them",
        batch.workflow_id,
        len(chunk),
        err,
    )
