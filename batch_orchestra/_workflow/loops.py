"""The batch workflow's background tasks: timers and the calls it makes besides pages.

Each waits for what the engine says (a retry due, flow control's next moment, values to fold,
an event for the notifier, records to write, a ledger to read), makes its call through
``Calls`` and tells the engine how it went. They run in the workflow's event loop, in the order
``start`` creates them: the order of their commands in a workflow task is part of what a replay
checks.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from .._engine.budgets import LEDGER_RECORDS_IN_FLIGHT, LEDGER_RECORDS_PER_TASK
    from .._engine.engine import BatchEngine
    from .._engine.ledger import LedgerFeed, ReadLedgerResult
    from .._engine.lifecycle import Lifecycle
    from .._engine.results import REDUCE_EVERY, REDUCE_RETRY_EVERY
    from .._engine.scheduler import Scheduler
    from .calls import READ_AGAIN_AFTER, Calls, classify

__all__ = ["Background"]


def _now() -> float:
    return workflow.now().timestamp()


def _raise_if_stopped(err: ActivityError) -> None:
    """A loop's call failed because the loop was stopped (a hand-over, the end): stop the loop.

    The cancellation reaches the loop as the activity's failure, not as a CancelledError; a
    loop that went on would issue a command after the run's last one (continue-as-new), which
    fails the workflow task.
    """
    if isinstance(err.cause, TemporalCancelledError):
        raise asyncio.CancelledError() from err


class Background:
    """The background tasks of one run of a batch."""

    def __init__(self, engine: BatchEngine, calls: Calls) -> None:
        self._engine, self._calls = engine, calls
        self.tasks: list[asyncio.Future[Any]] = []

    def start(self) -> None:
        engine, inp = self._engine, self._engine.inp
        loops = [self._retry_timer(), self._flow_timer()]
        if inp.health_check is not None:
            loops.append(self._health_loop())
        if engine.settings is not None and engine.settings.has_reduce:
            loops.append(self._reduce_loop())
        if inp.batch_tracker is not None:
            loops.append(self._tracker_loop())
        if inp.notifier is not None:
            loops.append(self._notifier_loop())
        if engine.patches.budgets:
            loops.append(self._ledger_loop())
            loops.append(self._feed_loop())
        if engine.items is not None:  # only batches with item workflows: others replay as before
            loops.append(self._item_check_loop())
        self.tasks = [asyncio.ensure_future(c) for c in loops]

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    # -- timers --------------------------------------------------------------------------------

    async def _retry_timer(self) -> None:
        sched = self._engine.sched
        while True:
            due = sched.next_due()
            if due is None:
                await workflow.wait_condition(lambda: sched.has_due)
                continue
            delay = due - _now()
            if delay > 0:
                earlier = functools.partial(_earlier_due, sched, due)
                try:
                    await workflow.wait_condition(earlier, timeout=timedelta(seconds=delay))
                    continue
                except asyncio.TimeoutError:
                    pass
            if sched.release_due(_now()):
                self._engine.woken = True

    async def _flow_timer(self) -> None:
        """Wake the batch when flow control may let more pages start (one timer at a time)."""
        engine = self._engine
        while True:
            await workflow.wait_condition(lambda: engine.admission.flow_wake is not None)
            assert engine.admission.flow_wake is not None
            delay = engine.admission.flow_wake - _now()
            engine.admission.flow_wake = None
            if delay > 0:
                await workflow.sleep(timedelta(seconds=delay))
            engine.woken = True

    async def _item_check_loop(self) -> None:
        """Find item workflows that closed without telling (terminated, timed out, silent).

        Every ``item_check_interval`` the longest unchecked open ones are described.
        """
        engine = self._engine
        items = engine.items
        assert items is not None
        while True:
            await workflow.sleep(engine.inp.item_check_interval)
            keys = items.to_check(_now(), engine.inp.item_check_interval.total_seconds())
            if not keys:
                continue
            try:
                found = await self._calls.check_items(keys)
            except ActivityError as err:
                _raise_if_stopped(err)
                engine.log.warning("checking %d open item workflows failed: %s", len(keys), err)
                continue
            engine.items_checked([(c.key, c.status, c.message) for c in found.closed], _now())

    # -- tracker, notifier, health check -------------------------------------------------------

    async def _tracker_loop(self) -> None:
        engine = self._engine
        assert engine.inp.batch_tracker is not None
        interval = engine.inp.batch_tracker.interval.total_seconds()
        while True:
            now = _now()
            if engine.tracker_next is None:
                engine.tracker_next = now + interval
            delay = engine.tracker_next - now
            if delay > 0:
                await workflow.sleep(timedelta(seconds=delay))
            if engine.state is not Lifecycle.RUNNING:
                if not engine.patches.budgets or engine.state is not Lifecycle.HANDING_OVER:
                    return
                # A hand-over that is put off returns to running: the tracker goes on then.
                await workflow.wait_condition(lambda: engine.state is not Lifecycle.HANDING_OVER)
                continue
            engine.tracker_next = _now() + interval
            await self.call_tracker(is_final=False)

    async def call_tracker(self, *, is_final: bool) -> None:
        engine = self._engine
        tracker = engine.inp.batch_tracker
        assert tracker is not None
        engine.tracker_busy = True
        try:
            await self._calls.track(is_final)
            engine.hooks.ok("tracker", _now())
        except ActivityError as err:
            failure = classify(err)
            if not failure.cancelled:
                engine.hooks.failed("tracker", tracker.name, failure.text, _now())
        finally:
            engine.tracker_busy = False
            engine.woken = True

    async def _notifier_loop(self) -> None:
        """Hand events to the notifier one call at a time; failed pages go in groups."""
        outbox = self._engine.outbox
        while True:
            await workflow.wait_condition(lambda: outbox.has_work)
            notice = outbox.take(budgets=self._engine.patches.budgets)
            await self.notify(notice.event, notice.reason, notice.pages, notice.items)

    async def notify(
        self, event: str, reason: str | None, pages: list[Any], items: list[Any] | None = None
    ) -> None:
        engine = self._engine
        notifier = engine.inp.notifier
        assert notifier is not None
        engine.outbox.calling = True
        try:
            await self._calls.notify(event, reason, pages, items or [])
            engine.hooks.ok("notifier", _now())
        except ActivityError as err:
            # After its retries the event is not delivered: progress shows which, and why.
            failure = classify(err)
            if not failure.cancelled:
                engine.hooks.failed("notifier", notifier.name, failure.text, _now(), event)
        finally:
            engine.outbox.calling = False
            engine.woken = True

    async def _health_loop(self) -> None:
        """Call the health check every ``interval`` while the batch runs."""
        engine = self._engine
        check = engine.inp.health_check
        assert check is not None
        while True:
            if engine.state is Lifecycle.RUNNING:
                try:
                    verdict = await self._calls.check_health()
                except ActivityError as err:
                    _raise_if_stopped(err)
                    error = classify(err).text
                    engine.hooks.health_failed(
                        check.name, error, check.failures_before_unhealthy, _now()
                    )
                else:
                    engine.hooks.health_verdict(verdict.state, verdict.reason, _now())
            await workflow.sleep(check.interval)

    # -- the batch result ----------------------------------------------------------------------

    async def _reduce_loop(self) -> None:
        """Fold waiting values into the result in batches while the batch runs."""
        engine, results = self._engine, self._engine.results

        def due() -> bool:
            return results.due(engine.state is Lifecycle.RUNNING)

        while True:
            await workflow.wait_condition(lambda: bool(results.unreduced))
            if not due():
                try:
                    await workflow.wait_condition(due, timeout=REDUCE_EVERY)
                except asyncio.TimeoutError:
                    pass
            if not await self._fold():
                await workflow.sleep(REDUCE_RETRY_EVERY)

    async def _fold(self) -> bool:
        """Fold the values waiting now into the result; False if it failed (they wait)."""
        engine, results = self._engine, self._engine.results
        values = results.take(budgets=engine.patches.budgets)
        if not values:
            return True
        results.folding = True
        try:
            result = await self._calls.reduce(values)
        except ActivityError as err:
            failure = classify(err)
            if failure.cancelled:
                raise asyncio.CancelledError() from None  # a hand-over: the values wait
            engine.hooks.fold_failed(len(values), failure.detail, failure.text, _now())
            return False
        finally:
            results.folding = False
            engine.woken = True
        results.folded(result, len(values))
        engine.hooks.ok("reduce", _now())
        return True

    async def fold_all(self) -> None:
        """At the end: fold every value left (retrying until ``reduce`` works)."""
        results = self._engine.results
        await workflow.wait_condition(lambda: not results.folding)
        while results.unreduced:
            if not await self._fold():
                await workflow.sleep(REDUCE_RETRY_EVERY)

    # -- the failure ledger --------------------------------------------------------------------

    async def _ledger_loop(self) -> None:
        """Write the ledger's records: when the buffer is full, old enough, or the run is ending."""
        engine = self._engine
        ledger = engine.failures
        book = ledger.book
        while True:
            await workflow.wait_condition(lambda: not book.idle)
            due = book.due_at()
            if not book.sealed and due is not None and engine.state is Lifecycle.RUNNING:
                delay = due - _now()
                if delay > 0:
                    try:
                        await workflow.wait_condition(
                            lambda: bool(book.sealed) or engine.state is not Lifecycle.RUNNING,
                            timeout=timedelta(seconds=delay),
                        )
                    except asyncio.TimeoutError:
                        pass
            book.seal()
            sent = 0
            while book.sealed:
                # Temporal's pending-activity limit, and the size of one task's completion.
                if ledger.records_in_flight >= LEDGER_RECORDS_IN_FLIGHT:
                    await workflow.wait_condition(
                        lambda: ledger.records_in_flight < LEDGER_RECORDS_IN_FLIGHT
                    )
                elif sent >= LEDGER_RECORDS_PER_TASK:
                    await workflow.sleep(timedelta(milliseconds=10))
                    sent = 0
                record = book.take()
                if record is not None:
                    self._calls.write_record(record).add_done_callback(self._record_done)
                    ledger.records_in_flight += 1
                    sent += 1
            engine.woken = True  # the run may be quiet now (a hand-over waits for this)

    def _record_done(self, fut: asyncio.Future[Any]) -> None:
        self._engine.failures.records_in_flight -= 1
        if not fut.cancelled():
            fut.exception()  # a record that timed out is still in history: nothing to do

    async def _feed_loop(self) -> None:
        """Read the ledgers being fed into the batch, a chunk at a time."""
        ledger = self._engine.failures
        while True:
            await workflow.wait_condition(ledger.wanted)
            feed = ledger.feeds[0]
            ledger.reading = True
            # A hand-over does not wait for the read: its result is then dropped, and the next
            # run reads the same chunk again from the same position.
            handle = self._calls.read_ledger(feed)
            handle.add_done_callback(functools.partial(self._on_read, feed))
            await workflow.wait_condition(lambda: not ledger.reading)

    def _on_read(self, feed: LedgerFeed, fut: asyncio.Future[ReadLedgerResult]) -> None:
        engine = self._engine
        ledger = engine.failures
        ledger.reading = False
        engine.woken = True
        if fut.cancelled() or engine.state is Lifecycle.CANCELLED or feed not in ledger.feeds:
            return
        err = fut.exception()
        if err is not None:
            ledger.read_failed(feed, classify(err).detail, _now())

            async def later() -> None:
                await workflow.sleep(READ_AGAIN_AFTER)
                ledger.reading = False

            asyncio.ensure_future(later())
            return
        ledger.apply_read(feed, fut.result(), _now())


def _earlier_due(sched: Scheduler, due: float) -> bool:
    nxt = sched.next_due()
    return nxt is not None and nxt < due
