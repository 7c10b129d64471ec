"""Driving one run of a batch: starting what the engine says, handing over, cancelling.

``Driver.drive`` starts the attempts and discoveries the engine's ``take_starts`` gives, waits
until the engine is woken (an attempt ended, pages were enqueued, a timer fired, an operator
acted) and goes on until the batch is finished or the run must hand over. The hand-over's drain
deadline, its measured size and the end of attempts and discoveries are here too.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .._engine.budgets import wire_size
    from .._engine.engine import BatchEngine
    from .._engine.handover import MAX_HANDOVER_BYTES
    from .._engine.items import ITEM_CHECK_BATCH
    from .._engine.lifecycle import Lifecycle
    from .._model.messages import PageResult
    from .calls import Calls, classify
    from .loops import Background

__all__ = ["AT_MOST_ONCE_START_GRACE", "Driver"]

AT_MOST_ONCE_START_GRACE = timedelta(seconds=2)
"""At a hand-over of an at-most-once batch, how long past the attempts' schedule-to-start
timeout the run waits, so that no attempt it hands over is still waiting for a slot."""


def _now() -> float:
    return workflow.now().timestamp()


class Driver:
    """Runs the engine's decisions for one run of a batch."""

    def __init__(self, engine: BatchEngine, calls: Calls, background: Background) -> None:
        self._engine, self._calls, self._background = engine, calls, background
        self.drain_timer: asyncio.Future[None] | None = None

    async def drive(self) -> None:
        """Start pages as slots free up until the batch is finished or must hand over."""
        engine = self._engine
        sched = engine.sched
        while True:
            engine.history.observe(_now(), sched)  # no timer: when it wakes
            more = self._start_runnable()
            if engine.is_finished:
                break
            if engine.state is Lifecycle.HANDING_OVER and engine.handover.too_big_to_carry():
                # Pages enqueued while the run drained made its state too big to carry: run
                # on (pages run and release their cursors) until it fits.
                engine.state = Lifecycle.RUNNING
                self._stop_drain()
            if engine.state is Lifecycle.RUNNING and self._should_hand_over():
                if engine.handover.too_big_to_carry():
                    if not engine.handover.put_off:
                        engine.handover.put_off = True
                        engine.log.warning(
                            "hand-over put off: the unfinished pages' cursors (%d KB) are more "
                            "than a new run's input can carry; pages run on until they fit",
                            engine.handover.held_bytes() // 1024,
                        )
                else:
                    engine.handover.put_off = False
                    engine.state = Lifecycle.HANDING_OVER
                    self.drain_timer = asyncio.ensure_future(self._drain_deadline())
                    engine.log.info(
                        "handing over to a new run after %d page attempts; waiting for %d running",
                        engine.handover.started_this_run,
                        len(sched.running),
                    )
            if (
                engine.state is Lifecycle.HANDING_OVER
                and engine.quiet()
                and (
                    not (sched.running or sched.discovery_running)
                    or engine.handover.drain_timed_out
                )
            ):
                break
            if more:  # the rest start in the next workflow task
                await workflow.sleep(timedelta(milliseconds=10))
                continue
            await workflow.wait_condition(lambda: engine.woken)
            engine.woken = False
        if engine.is_finished:
            engine.state = Lifecycle.FINISHED
        engine.woken = True

    def _start_runnable(self) -> bool:
        """Start what the engine says may start now; True if more would have (next task)."""
        engine = self._engine
        starts = engine.admission.take(_now())
        for att in starts.attempts:
            key = (att.page_num, att.attempt)
            done = functools.partial(self._on_attempt_done, key)
            self._calls.start_page(att).add_done_callback(done)
        for d in starts.discoveries:
            found = functools.partial(self._on_discovery_done, (d.page_num, d.attempts))
            self._calls.start_discovery(d).add_done_callback(found)
        return starts.more

    def _should_hand_over(self) -> bool:
        info = workflow.info()
        return self._engine.handover.should_hand_over(
            info.get_current_history_length(), info.get_current_history_size()
        )

    def _stop_drain(self) -> None:
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        self.drain_timer, self._engine.handover.drain_timed_out = None, False

    async def _drain_deadline(self) -> None:
        engine = self._engine
        wait = engine.inp.handover_wait
        if engine.settings is not None and engine.settings.at_most_once:
            # Every attempt still waiting for a worker slot by now has timed out
            # (schedule-to-start) and is ready again: those still pending have started.
            wait = max(wait, self._calls.start_timeout() + AT_MOST_ONCE_START_GRACE)
        await workflow.sleep(wait)
        engine.handover.drain_timed_out = engine.woken = True

    async def cancel(self) -> None:
        """The batch was cancelled: start nothing more, cancel running attempts, tell the tracker.

        Then let the cancellation close the workflow.
        """
        engine = self._engine
        engine.state = Lifecycle.CANCELLED
        self._background.stop()
        running = self._calls.cancel_attempts()
        engine.log.warning(
            "batch cancelled with %d page(s) running; they were asked to stop", running
        )
        if engine.items is not None and engine.items.open and engine.inp.cancel_open_items:
            await self._cancel_items(list(engine.items.open))
        if engine.inp.batch_tracker is not None and engine.started:
            await self._background.call_tracker(is_final=True)

    async def _cancel_items(self, keys: list[str]) -> None:
        """Cancel a cancelled batch's open item workflows, ``ITEM_CHECK_BATCH`` per call."""
        engine = self._engine
        engine.log.warning("cancelling the batch's %d open item workflow(s)", len(keys))
        for i in range(0, len(keys), ITEM_CHECK_BATCH):
            try:
                await self._calls.cancel_items(keys[i : i + ITEM_CHECK_BATCH])
            except Exception as err:  # the batch is cancelled all the same; say what is left
                engine.log.warning("cancelling %d item workflow(s) failed: %s", len(keys) - i, err)
                return

    def continuation(self, raw: dict[str, Any]) -> dict[str, Any]:
        engine = self._engine
        beat = engine.inp.heartbeat_timeout
        return engine.handover.continuation(
            engine.handover.carried_input(raw),
            _now(),
            beat.total_seconds() if beat is not None else None,
        )

    def fits(self, nxt: dict[str, Any]) -> bool:
        """Whether the next run's input, measured as it would be sent, is within its budget.

        If not, the hand-over is put off: the run goes on (pages run and release their cursors)
        and tries again once the estimate, corrected by what this measurement found, fits.
        """
        size = wire_size(nxt)
        if size <= MAX_HANDOVER_BYTES:
            return True
        self._stop_drain()
        self._engine.handover.too_big(size)
        return False

    # -- attempts and discoveries ending -------------------------------------------------------

    def _on_attempt_done(self, key: tuple[int, int], fut: asyncio.Future[PageResult]) -> None:
        engine = self._engine
        page_num, attempt = key
        engine.woken = True
        self._calls.attempts.pop(key, None)
        if engine.state is Lifecycle.CANCELLED or fut.cancelled():
            engine.attempt_cancelled(page_num)
            return
        if not engine.sched.is_current(page_num, attempt):
            return  # its outcome already arrived by signal
        err = fut.exception()
        if err is None:
            r = fut.result()
            successors = [(p.cursor_str, p.size) for p in r.successors or []]
            engine.attempt_succeeded(
                page_num,
                r.items,
                successors,
                r.seconds,
                r.value,
                (r.num_failed_items, r.failed_items),
                _now(),
                r.opened_items,
            )
            return
        engine.attempt_failed(page_num, attempt, classify(err), _now())

    def _on_discovery_done(self, key: tuple[int, int], fut: asyncio.Future[Any]) -> None:
        engine = self._engine
        page_num, attempt = key
        if not engine.started:
            return
        if fut.cancelled():
            engine.discovery_done(page_num, attempt, None, None, True, _now())
            return
        err = fut.exception()
        if err is None:
            found = [(p.cursor_str, p.size) for p in fut.result().pages]
            engine.discovery_done(page_num, attempt, found, None, False, _now())
        else:
            engine.discovery_done(
                page_num, attempt, None, classify(err, "next_page"), False, _now()
            )
