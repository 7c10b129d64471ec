"""How a worker hands pages' successors to their batch: updates, coalesced, with fallbacks.

All state lives in one ``EnqueueTransport`` per ``BatchOrchestraPlugin`` (so per worker), keyed
by namespace, workflow ID and batch execution: two workers or two clients in one process never
share it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle

from .._engine.budgets import MAX_ENQUEUE_BYTES, enqueue_size
from .._model.messages import ENQUEUE_MANY_UPDATE, ENQUEUE_SIGNAL, ENQUEUE_UPDATE, EnqueueRequest
from .page import BatchPage
from .paths import PathChooser

__all__ = ["EnqueueTransport", "PageEnqueue", "WorkerSettings"]


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Tuning knobs of a worker's page transport (``BatchOrchestraPlugin(settings=...)``)."""

    max_updates_in_flight: int = 3
    """Enqueue updates one worker keeps in flight per batch. Enqueues made while that many are
    in flight go together in the next one (Temporal refuses more than 10 in-flight updates per
    workflow by default, and every update costs a workflow task)."""
    defer_grace: float = 0.002
    """Seconds a quick page's enqueue is held, hoping to travel in the page's result."""
    prefer_signal_for: float = 30.0
    """Seconds a batch's enqueues go by signal after Temporal refused an update."""
    choose_path: bool = True
    """Let a quick page's successors go by update instead of in its result, per batch, when this
    worker measures that hop clearly shorter (``batch_orchestra._worker.paths``). False: always
    in the result."""
    enqueue_by_signal: bool = False
    """Send every enqueue by signal (for benchmarks comparing the two)."""
    follow_items: bool = True
    """Follow the item workflows this worker's pages start and tell their batch when they close,
    many closes in one signal (``item_follower``). False: the batch learns of a close from
    ``@reports_to_batch`` or its checks only."""


_QUICK_WEIGHT = 0.125
_MAX_TRACKED = 1_000


class EnqueueTransport:
    """A worker's page transport.

    Per worker: enqueue senders per batch, batches preferring signals, and per processor whether its
    pages are quick.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._senders: dict[tuple[str, str, str], _Sender] = {}
        self._prefer_signal_until: dict[tuple[str, str], float] = {}
        self._quick: dict[str, float] = {}
        self.paths = PathChooser()
        """The measured hop of each path, per batch."""

    def is_quick(self, processor: str) -> bool:
        """Whether this worker finds the processor's pages end right after enqueueing."""
        return self._quick.get(processor, 0.0) >= 0.5

    def learn(self, processor: str, quick: bool) -> None:
        """Fold one page into the processor's moving average of quickness."""
        q = self._quick.get(processor, 0.0)
        self._quick[processor] = q + _QUICK_WEIGHT * ((1.0 if quick else 0.0) - q)

    def send(
        self,
        namespace: str,
        handle: WorkflowHandle[Any, Any],
        request: EnqueueRequest,
        attempt: int,
    ) -> asyncio.Future[None]:
        """Hand a page attempt's successors to its batch; the future resolves once delivered.

        ``namespace`` is the batch's (that of the client ``handle`` came from).
        """
        key = (namespace, handle.id, request.execution)
        sender = self._senders.get(key)
        if sender is None:
            sender = self._senders[key] = _Sender(self, key, handle)
        return sender.submit(request, attempt)

    def _forget(self, key: tuple[str, str, str], sender: _Sender) -> None:
        if self._senders.get(key) is sender:
            del self._senders[key]

    async def deliver(
        self,
        namespace: str,
        handle: WorkflowHandle[Any, Any],
        requests: list[tuple[EnqueueRequest, int]],
    ) -> None:
        """Deliver page attempts' enqueues by update, or by signal when an update cannot be used.

        By update (its workflow task is dispatched at once, so the hop is short) or, when the server
        refuses updates (10 in flight, a few thousand per run) or a run closes under one, by signal.
        The workflow ignores a second enqueue from the same page, so a fallback after an update that
        did land is harmless.
        """
        now, key = time.monotonic(), (namespace, handle.id)
        if not self.settings.enqueue_by_signal and now >= self._prefer_signal_until.get(key, 0.0):
            try:
                if len(requests) == 1:
                    request, attempt = requests[0]
                    await handle.execute_update(
                        ENQUEUE_UPDATE, request, id=_enqueue_update_id(request, attempt)
                    )
                else:
                    await handle.execute_update(
                        ENQUEUE_MANY_UPDATE,
                        [request for request, _ in requests],
                        id=_enqueue_many_update_id(*requests[0]),
                    )
                return
            except Exception as err:  # refused or aborted: the signal below is always accepted
                if len(self._prefer_signal_until) > _MAX_TRACKED:
                    self._prefer_signal_until.clear()
                self._prefer_signal_until[key] = now + self.settings.prefer_signal_for
                activity.logger.debug("enqueue update refused (%s); using a signal", err)
        for request, _ in requests:
            await handle.signal(ENQUEUE_SIGNAL, request)


# Temporal answers an update whose ID its run has seen with that update's outcome, without
# running the handler. An enqueue's ID therefore names the batch execution as well as the page
# and attempt: an old execution's late enqueue, delivered to a new batch under the same workflow
# ID (and ignored there), must not answer the new batch's own enqueue from that page number
# (docs/architecture.md, "Messages know their batch").
def _enqueue_update_id(request: EnqueueRequest, attempt: int) -> str:
    """The update ID of one page attempt's enqueue: execution, page and attempt."""
    return f"enqueue-{request.execution}-{request.parent_page_num}-{attempt}"


def _enqueue_many_update_id(first: EnqueueRequest, attempt: int) -> str:
    """The update ID of coalesced enqueues: the first one's execution, page and attempt.

    And a random part: no other update carries the same set.
    """
    return (
        f"enqueue-many-{first.execution}-{first.parent_page_num}-{attempt}-{uuid.uuid4().hex[:12]}"
    )


class _Sender:
    """One batch's enqueues from this worker.

    Sent at once while fewer than ``max_updates_in_flight`` updates are in flight, otherwise
    coalesced into the next one.
    """

    def __init__(
        self,
        transport: EnqueueTransport,
        key: tuple[str, str, str],
        handle: WorkflowHandle[Any, Any],
    ) -> None:
        self._transport, self._key, self._handle = transport, key, handle
        self._queue: list[tuple[EnqueueRequest, int, asyncio.Future[None]]] = []
        self._in_flight = 0

    def submit(self, request: EnqueueRequest, attempt: int) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A page cancelled while its enqueue was in flight (its batch ended) never reads the
        # outcome: mark an error read so asyncio does not print "exception never retrieved".
        done.add_done_callback(_retrieve)
        self._queue.append((request, attempt, done))
        if self._in_flight < self._transport.settings.max_updates_in_flight:
            self._send_queued()
        return done

    def _send_queued(self) -> None:
        """Send queued enqueues in one update.

        At most ``MAX_ENQUEUE_BYTES`` of them (at least one); the rest wait for the next.
        """
        size, n = 0, 0
        for request, _, _ in self._queue:
            cost = enqueue_size(request.pages)
            if n and size + cost > MAX_ENQUEUE_BYTES:
                break
            size, n = size + cost, n + 1
        batch, self._queue = self._queue[:n], self._queue[n:]
        self._in_flight += 1
        asyncio.ensure_future(self._send(batch))

    async def _send(self, batch: list[tuple[EnqueueRequest, int, asyncio.Future[None]]]) -> None:
        try:
            await self._transport.deliver(self._key[0], self._handle, [(r, a) for r, a, _ in batch])
        except BaseException as err:
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(err)
        else:
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)
        finally:
            self._in_flight -= 1
            if self._queue:
                self._send_queued()
            elif not self._in_flight:
                self._transport._forget(self._key, self)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class PageEnqueue:
    """One attempt's enqueue (a page enqueues once per run).

    It is sent at once, or, while this worker finds the processor's pages quick, held back for a
    moment. A page that finishes right after it enqueues hands its successors over in its result,
    one message instead of two; if the page is still running after the grace, the enqueue goes out
    on its own.
    """

    def __init__(
        self,
        transport: EnqueueTransport,
        workflow_id: str,
        page_num: int,
        processor: str,
        execution: str,
        attempt: int,
    ) -> None:
        self._transport = transport
        self._workflow_id, self._page_num, self._processor = workflow_id, page_num, processor
        self.execution = execution
        """The batch execution that started this attempt."""
        self._attempt = attempt
        self._request: EnqueueRequest | None = None
        self._namespace = ""
        self._handle: WorkflowHandle[Any, Any] | None = None
        self._enqueued_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._held: asyncio.Future[None] | None = None
        self._send: asyncio.Future[None] | None = None

    def __call__(self, pages: list[BatchPage]) -> asyncio.Future[None]:
        """Enqueue now (on the event loop); the future resolves once the batch has the pages."""
        self._request = EnqueueRequest(self._page_num, pages, self.execution)
        client = activity.client()
        self._namespace, self._handle = (
            client.namespace,
            client.get_workflow_handle(self._workflow_id),
        )
        self._enqueued_at = time.monotonic()
        transport = self._transport
        if transport.is_quick(self._processor) and (
            not transport.settings.choose_path or transport.paths.by_result(self._workflow_id)
        ):
            self._held = asyncio.get_running_loop().create_future()
            self._held.add_done_callback(_retrieve)
            self._timer = asyncio.get_running_loop().call_later(
                self._transport.settings.defer_grace, self._send_now
            )
            return self._held
        self._send_now()
        assert self._send is not None
        return self._send

    def _send_now(self) -> None:
        assert self._request is not None and self._handle is not None
        self._timer = None
        self._handed(by_result=False)
        self._send = self._transport.send(
            self._namespace, self._handle, self._request, self._attempt
        )
        if self._held is not None:
            held = self._held
            self._send.add_done_callback(lambda f: _settle(held, f))

    def _take_held(self) -> bool:
        """Stop the grace timer; whether an enqueue was still held."""
        if self._timer is None:
            return False
        self._timer.cancel()
        self._timer = None
        return True

    async def page_failed(self) -> None:
        """Send a held enqueue now and wait for it (an enqueue's error gives way to the page's)."""
        if self._take_held():
            self._send_now()
        if self._send is not None:
            await asyncio.gather(self._send, return_exceptions=True)

    async def page_finished(self) -> list[BatchPage] | None:
        """Learn how quick the page was, then settle the page's enqueue.

        Returns the successors to carry in the result if the enqueue was still held; else waits for
        it to be delivered.
        """
        if self._request is None:
            return None
        self._transport.learn(
            self._processor,
            time.monotonic() - self._enqueued_at < self._transport.settings.defer_grace,
        )
        if self._take_held():
            if self._held is not None and not self._held.done():
                self._held.set_result(None)  # delivered with the result
            self._handed(by_result=True)
            return self._request.pages
        if self._send is not None:
            await self._send
        return None

    def _handed(self, *, by_result: bool) -> None:
        """Time this hand-over, for the path chooser (quick processors only)."""
        assert self._request is not None
        if self._request.pages and self._transport.is_quick(self._processor):
            cursor = self._request.pages[0].cursor_str
            self._transport.paths.handed(self._workflow_id, cursor, by_result)


def _settle(target: asyncio.Future[None], source: asyncio.Future[None]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(None)
