"""The batch workflow's calls out besides pages, and the folding of pages' values into the result.

Its calls out are to its tracker, its notifier and its health check.

A mixin of ``BatchOrchestrator`` (``_workflow.py``), kept apart so that the workflow reads in one
sitting; it shares the workflow's state and runs in its event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from ._budgets import NOTIFY_CHUNK_BYTES, NOTIFY_OUTBOX_BYTES, REDUCE_INPUT_BYTES, wire_size
    from ._flow import FlowControl
    from ._health import Health
    from ._hooks import MAX_HOOK_ERROR, HookErrors
    from ._messages import (
        CHECK_HEALTH,
        NOTIFY,
        REDUCE_RESULTS,
        RUN_TRACKER,
        HealthCheckInput,
        NotifyInput,
        ReduceInput,
        TrackerInput,
    )
    from ._scheduler import Scheduler
    from ._types import BatchOrchestratorInput, BatchOrchestratorProgress, ItemFailure, PageFailure

if TYPE_CHECKING:
    from ._workflow import Lifecycle

__all__ = [
    "FAILED_OUTBOX_LIMIT",
    "ITEMS_OUTBOX_LIMIT",
    "ITEMS_OUTBOX_PATCH",
    "ITEMS_PER_NOTICE",
    "SideCalls",
    "notice_chunk",
]

FAILED_OUTBOX_LIMIT = 1_000
"""Failed pages waiting to be handed to the notifier; past it, the oldest are only counted."""

ITEMS_OUTBOX_LIMIT = 10_000
"""Item failures waiting for the notifier; past it, the oldest are dropped from delivery."""
ITEMS_OUTBOX_PATCH = "batch-orchestra-items-outbox-bound"
"""The patch under which the item failures past ``ITEMS_OUTBOX_LIMIT`` are really dropped."""
ITEMS_PER_NOTICE = 500
"""The most item failures one notifier call carries (a call's input stays well under 2 MB)."""

REDUCE_BATCH = 200
"""Fold pages' values into the result once this many wait ..."""
REDUCE_BATCH_BYTES = 128 * 1024
"""... or this many bytes of them ..."""
REDUCE_EVERY = timedelta(seconds=2)
"""... or they have waited this long."""
REDUCE_RETRY_EVERY = timedelta(seconds=30)
"""After a fold failed (its own retries spent), how long until the next try."""
MAX_UNREDUCED_BYTES = 512 * 1024
"""Values waiting for a failing ``reduce`` past this pause the batch (so none is dropped and
the state carried across continue-as-new stays small)."""


class SideCalls:
    """Tracker, notifier and health-check calls of one run of a batch."""

    _inp: BatchOrchestratorInput
    _state: Lifecycle
    _dirty: bool
    _tracker_busy: bool
    _tracker_next: float | None
    _notifying: bool
    _notices: deque[tuple[str, str | None, list[PageFailure]]]
    _failed_outbox: deque[PageFailure]
    _failed_outbox_bytes: int
    _items_outbox: deque[ItemFailure]
    _ledger_on: bool
    _result_bytes: int
    _flow: FlowControl | None
    _sched: Scheduler | None
    _health_busy: bool
    _result: Any
    _result_started: bool
    _unreduced: list[Any]
    _unreduced_bytes: int
    _result_error: str | None
    _reducing: bool
    _hooks: HookErrors
    _no_progress_patched: bool

    def _progress(self, *, history: bool = True) -> BatchOrchestratorProgress:
        raise NotImplementedError

    def _extra(self, page_num: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _hook_progress(self) -> BatchOrchestratorProgress:
        """Progress for a hook's call: without the history.

        It would add up to ``HISTORY_PROGRESS_BYTES`` to every call's event (queries and the
        result have it).
        """
        return self._progress(history=False)

    def _quiet(self) -> bool:
        """No tracker or notifier call is in flight or waiting (before a hand-over or the end)."""
        return (
            not self._tracker_busy
            and not self._notifying
            and not self._notices
            and not self._items_outbox
        )

    def _hook_failed(
        self, kind: str, name: str, err: ActivityError, event: str | None = None
    ) -> str:
        """Record that a call of a hook failed after its retries; the error text."""
        error = _failure_text(err)
        record = self._hooks.failed(kind, name, error, workflow.now().timestamp(), event)
        workflow.logger.warning(
            "batch %s %r failed%s (%d in a row): %s",
            kind.replace("_", " "),
            name,
            f" on {event!r}" if event else "",
            record.consecutive,
            error,
            extra=self._extra(),
        )
        return error

    def _hook_ok(self, kind: str) -> None:
        if self._hooks.succeeded(kind, workflow.now().timestamp()):
            workflow.logger.info(
                "batch %s works again", kind.replace("_", " "), extra=self._extra()
            )

    def _tell_stall(self, text: str | None) -> None:
        """A stall has just begun: log it and tell the notifier (once per stall)."""
        if text is None:
            return
        workflow.logger.warning("batch stalled: %s", text, extra=self._extra())
        if self._no_progress_patched and self._inp.notifier is not None:
            self._notices.append(("stalled", text, []))

    def _queue_failed_page(self, page: PageFailure) -> None:
        """Hand a page that failed for good, whole, to the notifier loop (bounded).

        Past ``FAILED_OUTBOX_LIMIT`` pages or ``NOTIFY_OUTBOX_BYTES``, the oldest waiting are not
        delivered (they stay in the failure ledger).
        """
        if not self._ledger_on:
            if len(self._failed_outbox) >= FAILED_OUTBOX_LIMIT:
                self._failed_outbox.popleft()
            self._failed_outbox.append(page)
            return
        if len(self._failed_outbox) >= FAILED_OUTBOX_LIMIT:
            self._failed_outbox_bytes -= wire_size(self._failed_outbox.popleft())
        self._failed_outbox.append(page)
        self._failed_outbox_bytes += wire_size(page)
        dropped = 0
        while self._failed_outbox_bytes > NOTIFY_OUTBOX_BYTES and len(self._failed_outbox) > 1:
            self._failed_outbox_bytes -= wire_size(self._failed_outbox.popleft())
            dropped += 1
        if dropped:
            workflow.logger.warning(
                "the notifier is %d KB of failed pages behind; the oldest %d are not delivered "
                "(they stay in the failure ledger: batch-orchestra failures ID --all)",
                NOTIFY_OUTBOX_BYTES // 1024,
                dropped,
                extra=self._extra(),
            )

    def _queue_item_failures(self, items: list[ItemFailure]) -> None:
        """Hand item failures to the notifier loop (bounded: the oldest waiting are dropped)."""
        dropped = max(0, len(self._items_outbox) + len(items) - ITEMS_OUTBOX_LIMIT)
        self._items_outbox.extend(items)
        # Before this patch the oldest were only said to be dropped: the outbox grew without
        # bound (runs begun then replay so).
        if dropped and workflow.patched(ITEMS_OUTBOX_PATCH):
            for _ in range(dropped):
                self._items_outbox.popleft()
        if dropped:
            workflow.logger.warning(
                "the notifier is %d item failures behind; the oldest %d are not delivered (they "
                "stay counted in progress)",
                ITEMS_OUTBOX_LIMIT,
                dropped,
                extra=self._extra(),
            )

    async def _tracker_loop(self) -> None:
        assert self._inp.batch_tracker is not None
        interval = self._inp.batch_tracker.interval.total_seconds()
        while True:
            now = workflow.now().timestamp()
            if self._tracker_next is None:
                self._tracker_next = now + interval
            delay = self._tracker_next - now
            if delay > 0:
                await workflow.sleep(timedelta(seconds=delay))
            if self._state.value != "running":
                if not self._ledger_on or self._state.value != "handing_over":
                    return
                # A hand-over that is put off returns to running: the tracker goes on then.
                await workflow.wait_condition(lambda: self._state.value != "handing_over")
                continue
            self._tracker_next = workflow.now().timestamp() + interval
            await self._call_tracker(is_final=False)

    async def _call_tracker(self, *, is_final: bool) -> None:
        tracker = self._inp.batch_tracker
        assert tracker is not None
        self._tracker_busy = True
        try:
            await workflow.execute_activity(
                RUN_TRACKER,
                TrackerInput(
                    tracker.name,
                    tracker.args,
                    self._inp.batch_id,
                    self._hook_progress(),
                    is_final,
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            self._hook_ok("tracker")
        except ActivityError as err:
            if not isinstance(err.cause, TemporalCancelledError):
                self._hook_failed("tracker", tracker.name, err)
        finally:
            self._tracker_busy = False
            self._dirty = True

    async def _notifier_loop(self) -> None:
        """Hand events to the notifier one call at a time; failed pages go in groups.

        With the payload budgets, a group holds at most ``NOTIFY_CHUNK_BYTES`` (pages carry
        their whole cursors).
        """
        while True:
            await workflow.wait_condition(
                lambda: bool(self._notices or self._failed_outbox or self._items_outbox)
            )
            if self._items_outbox and not self._failed_outbox and not self._notices:
                limit = NOTIFY_CHUNK_BYTES if self._ledger_on else None
                items = notice_chunk(self._items_outbox, ITEMS_PER_NOTICE, limit)
                await self._notify("items_failed", None, [], items)
                continue
            if self._failed_outbox:
                if self._ledger_on:
                    failed = notice_chunk(self._failed_outbox, len(self._failed_outbox))
                    self._failed_outbox_bytes = max(
                        0, self._failed_outbox_bytes - sum(wire_size(f) for f in failed)
                    )
                else:
                    failed = list(self._failed_outbox)
                    self._failed_outbox.clear()
                self._notices.appendleft(("pages_failed", None, failed))
            event, reason, pages = self._notices.popleft()
            await self._notify(event, reason, pages)

    async def _notify(
        self,
        event: str,
        reason: str | None,
        pages: list[PageFailure],
        items: list[ItemFailure] | None = None,
    ) -> None:
        notifier = self._inp.notifier
        assert notifier is not None
        self._notifying = True
        try:
            await workflow.execute_activity(
                NOTIFY,
                NotifyInput(
                    notifier.name,
                    notifier.args,
                    self._inp.batch_id,
                    workflow.info().workflow_id,
                    event,
                    reason,
                    pages,
                    self._hook_progress(),
                    items or [],
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            self._hook_ok("notifier")
        except ActivityError as err:
            # After its retries the event is not delivered: progress shows which, and why.
            if not isinstance(err.cause, TemporalCancelledError):
                self._hook_failed("notifier", notifier.name, err, event)
        finally:
            self._notifying = False
            self._dirty = True

    async def _health_loop(self) -> None:
        """Call the health check every ``interval`` while the batch runs."""
        check = self._inp.health_check
        assert check is not None
        while True:
            if self._state.value == "running":
                await self._check_health()
            await workflow.sleep(check.interval)

    async def _check_health(self) -> None:
        check, flow, sched = self._inp.health_check, self._flow, self._sched
        assert check is not None and flow is not None and sched is not None
        self._health_busy = True
        line = None
        try:
            verdict: Health = await workflow.execute_activity(
                CHECK_HEALTH,
                HealthCheckInput(check.name, check.args, self._inp.batch_id, self._hook_progress()),
                result_type=Health,
                start_to_close_timeout=check.timeout,
                retry_policy=RetryPolicy(maximum_attempts=1),  # the next call is the retry
            )
            line = flow.health_verdict(
                verdict.state,
                verdict.reason,
                current=self._current(sched),
                max_parallelism=sched.max_parallelism,
            )
            self._hook_ok("health_check")
        except ActivityError as err:
            error = self._hook_failed("health_check", check.name, err)
            line = flow.health_failed(
                error,
                check.failures_before_unhealthy,
                current=self._current(sched),
                max_parallelism=sched.max_parallelism,
            )
        finally:
            self._health_busy = False
            self._dirty = True
        if line is not None:
            workflow.logger.warning(line, extra=self._extra())
            flow.log_change(line, None, workflow.now().timestamp())

    @staticmethod
    def _current(sched: Scheduler) -> int:
        """The parallelism in force, which "slow down" halves."""
        return sched.effective_parallelism if not sched.paused else sched.max_parallelism

    # -- the batch result ----------------------------------------------------------------------

    def _add_value(self, value: Any) -> None:
        """A completed page's value, to fold into the result.

        Exactly once: only the page's current attempt reports here.
        """
        if value is None:
            return
        self._unreduced.append(value)
        self._unreduced_bytes += len(json.dumps(value, separators=(",", ":")))
        self._dirty = True

    def _fold_due(self) -> bool:
        return len(self._unreduced) >= REDUCE_BATCH or (
            self._unreduced_bytes >= REDUCE_BATCH_BYTES or self._state.value != "running"
        )

    async def _reduce_loop(self) -> None:
        """Fold waiting values into the result in batches while the batch runs."""
        while True:
            await workflow.wait_condition(lambda: bool(self._unreduced))
            if not self._fold_due():
                try:
                    await workflow.wait_condition(self._fold_due, timeout=REDUCE_EVERY)
                except asyncio.TimeoutError:
                    pass
            if not await self._fold():
                await workflow.sleep(REDUCE_RETRY_EVERY)

    async def _fold(self) -> bool:
        """Fold the values waiting now into the result; False if it failed (they wait)."""
        sched = self._sched
        assert sched is not None
        values = list(self._unreduced)
        if self._ledger_on:
            values = notice_chunk(deque(values), len(values), REDUCE_INPUT_BYTES)
        if not values:
            return True
        self._reducing = True
        try:
            result = await workflow.execute_activity(
                REDUCE_RESULTS,
                ReduceInput(self._inp.processor_name(), self._result, values, self._result_started),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            if isinstance(err.cause, TemporalCancelledError):
                raise asyncio.CancelledError() from None  # a hand-over: the values wait
            cause = err.cause if err.cause is not None else err
            self._result_error = f"{getattr(cause, 'message', None) or cause}"[:MAX_HOOK_ERROR]
            self._hook_failed("reduce", self._inp.processor_name(), err)
            workflow.logger.error(
                "folding %d page values into the batch result failed: %s",
                len(values),
                self._result_error,
                extra=self._extra(),
            )
            if self._unreduced_bytes > MAX_UNREDUCED_BYTES and sched.pause(
                f"page values cannot be folded into the batch result ({self._result_error}); "
                "fix reduce, deploy the workers, then resume",
                workflow.now().timestamp(),
            ):
                workflow.logger.error(
                    "batch paused itself: %s", sched.pause_reason, extra=self._extra()
                )
            return False
        finally:
            self._reducing = False
            self._dirty = True
        self._result, self._result_started, self._result_error = result, True, None
        self._hook_ok("reduce")
        self._result_bytes = wire_size(result)
        del self._unreduced[: len(values)]
        self._unreduced_bytes = sum(
            len(json.dumps(v, separators=(",", ":"))) for v in self._unreduced
        )
        return True

    async def _fold_all(self) -> None:
        """At the end: fold every value left (retrying until ``reduce`` works)."""
        await workflow.wait_condition(lambda: not self._reducing)
        while self._unreduced:
            if not await self._fold():
                await workflow.sleep(REDUCE_RETRY_EVERY)


def _failure_text(err: ActivityError) -> str:
    """An activity's failure as "Type: message" (its last attempt's), cut to MAX_HOOK_ERROR."""
    cause = err.cause if err.cause is not None else err
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    message = getattr(cause, "message", None) or str(cause)
    return f"{kind or type(cause).__name__}: {message}"[:MAX_HOOK_ERROR]


def notice_chunk(
    queue: deque[Any], count: int, max_bytes: int | None = NOTIFY_CHUNK_BYTES
) -> list[Any]:
    """Take up to ``count`` entries off the front of ``queue``.

    At most ``max_bytes`` of them as sent (at least one).
    """
    out: list[Any] = []
    size = 0
    while queue and len(out) < count:
        if max_bytes is not None:
            cost = wire_size(queue[0])
            if out and size + cost > max_bytes:
                break
            size += cost
        out.append(queue.popleft())
    return out
