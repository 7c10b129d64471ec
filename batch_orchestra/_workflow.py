"""BatchOrchestrator: the thin workflow around the Scheduler."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
from collections import deque
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from ._budgets import HANDOVER_BYTES, START_BYTES_PER_TASK, text_size, wire_size
    from ._continuation import (
        BatchContinuation,
        continuation_from_wire,
        continuation_to_wire,
        scheduler_from_state,
        scheduler_to_state,
    )
    from ._exceptions import (
        INVALID_INPUT_ERROR_TYPE,
        UNKNOWN_PROCESSOR_ERROR_TYPE,
        WORKER_SHUTDOWN_ERROR_TYPE,
        InvalidBatchInputError,
    )
    from ._flow import FlowControl, FlowState, rates_text
    from ._history import History
    from ._hooks import HookErrors
    from ._ledger import LedgerBook
    from ._messages import (
        BATCH_WORKFLOW_TYPE,
        DESCRIBE_BATCH,
        ENQUEUE_MANY_UPDATE,
        ENQUEUE_SIGNAL,
        ENQUEUE_UPDATE,
        LIFECYCLE_QUERY,
        PAGE_FINISHED_SIGNAL,
        PAGE_RUNNING_SIGNAL,
        PROCESS_PAGE,
        PROGRESS_QUERY,
        SET_RATE_LIMIT_UPDATE,
        DescribeBatchInput,
        EnqueueRequest,
        PageOutcome,
        PageResult,
        ProcessPageInput,
    )
    from ._processor import BatchPage
    from ._progress import build_progress, flow_progress, guard_progress, page_failure
    from ._scheduler import Attempt, Outcome, Scheduler
    from ._types import (
        BatchOrchestratorInput,
        BatchOrchestratorProgress,
        FailurePolicy,
        ItemFailure,
        PageFailure,
        ProcessorSettings,
        check_rate,
        input_from_wire,
    )
    from ._wire import WireError
    from ._workflow_checkpoints import CheckpointBook
    from ._workflow_ledger import ITEM_PAGE_BYTES, LEDGER_PATCH, LedgerCalls, item_pages
    from ._workflow_recovery import Recovery
    from ._workflow_side import SideCalls

__all__ = ["ITEM_PAGE_BYTES", "BatchOrchestrator", "Lifecycle"]

HISTORY_EVENTS_PER_RUN = 10_000
"""A run continues as new at this many history events (Temporal's hard limit is 51,200)."""
HISTORY_BYTES_PER_RUN = 8 * 1024 * 1024
"""... or at this much history (Temporal's hard limit is 50 MB)."""
UPDATES_PER_RUN = 1_500
"""A run continues as new after accepting this many enqueue updates (Temporal refuses more than
2,000 per run by default; pages fall back to signals, but updates make shorter hops)."""
HANDOVER_REPORT_GRACE_SECONDS = 10.0
"""How long past ``page_timeout`` a run waits for an attempt handed over while running to
report, before counting it as timed out."""
HANDOVER_CONFIRM_GRACE_SECONDS = 15.0
"""How long past ``heartbeat_timeout`` an attempt handed over at a hand-over has to say it had
started before the next run counts it as never started."""
AT_MOST_ONCE_MIN_START_WAIT = timedelta(seconds=10)
"""An at-most-once attempt waits at least this long (or ``handover_wait``) for a worker slot."""
AT_MOST_ONCE_START_GRACE = timedelta(seconds=2)
"""At a hand-over of an at-most-once batch, how long past the attempts' schedule-to-start
timeout the run waits, so that no attempt it hands over is still waiting for a slot."""
STARTS_PER_TASK = 500
"""The most attempts one workflow task starts (and ``START_BYTES_PER_TASK`` of their inputs);
more wait a moment for the next task."""
MAX_HANDOVER_BYTES = HANDOVER_BYTES
"""A hand-over is put off while the state it would carry is bigger than this (Temporal refuses a
continue-as-new input over 2 MB, which would fail every workflow task)."""
HANDOVER_STATE_BYTES = 96 * 1024
"""What a hand-over carries besides held pages, the input and the result, as estimated before it
is measured (recent cursors, errors, failed-page previews, item failures, the change log, the
history of samples)."""
FOREIGN_EXECUTIONS_LOGGED = 32
"""A run logs the first ignored message of each other execution; it remembers this many (past
it, the oldest is forgotten and would be logged again)."""
_PAGE_RETRY = RetryPolicy(maximum_attempts=1)  # the workflow itself retries pages
_DEFAULT_POLICY_PATCH = "batch-orchestra-default-failure-policy"
_NO_PROGRESS_PATCH = "batch-orchestra-no-progress"  # the no-progress pause, "stalled" notices
_FIRST_TASK_PATCH = "batch-orchestra-first-task-messages"  # pages' messages wait for the scheduler
_EXACT_CORE_PATCH = "batch-orchestra-exact-core"
"""The pure core's fixes found by its property tests (``Scheduler.exact``, ``FlowControl.exact``):
a run begun before them replays without."""


class Lifecycle(enum.Enum):
    """Where one run of a batch is."""

    STARTING = "starting"
    """The processor's settings are being read; no page has started."""
    RUNNING = "running"
    """Pages start as slots free up."""
    HANDING_OVER = "handing_over"
    """No page starts; the run waits (briefly) for running pages, then continues as new."""
    FINISHED = "finished"
    """No page is left: the batch is over."""
    CANCELLED = "cancelled"
    """The batch was cancelled: no page starts any more."""


# Not sandboxed: the sandbox's work on every activation (its restricted environment, proxied
# module access) was a third of the worker's CPU per page, with a workflow task per page or two
# (BENCHMARKS.md, Hops). This code is the library's own and deterministic by construction: time
# only from workflow.now(), no I/O, no randomness, no mutable module state; tests replay its
# histories, including those recorded from released versions (test_replay.py).
@workflow.defn(name=BATCH_WORKFLOW_TYPE, sandboxed=False)
class BatchOrchestrator(SideCalls, Recovery, LedgerCalls):
    """Runs a batch: pages under a parallelism cap, retries, stuck pages, continue-as-new."""

    @workflow.init
    def __init__(self, raw: dict[str, Any]) -> None:
        self._state = Lifecycle.STARTING
        self._dirty = False
        self._tracker_busy = False
        self._started_this_run = 0
        self._updates_this_run = 0
        self._drain_timed_out = False
        self._drain_timer: asyncio.Future[None] | None = None
        self._handover_put_off = False
        self._attempts: dict[tuple[int, int], workflow.ActivityHandle[PageResult]] = {}
        self._execution = workflow.info().first_execution_run_id
        self._foreign: dict[str, None] = {}  # other executions whose messages were logged
        self._input_error: str | None = None
        self._tracker_next: float | None = None
        self._sched: Scheduler | None = None
        self._settings: ProcessorSettings | None = None
        self._cont: BatchContinuation | None = None
        self._notices: deque[tuple[str, str | None, list[PageFailure]]] = deque()
        self._failed_outbox: deque[PageFailure] = deque()
        self._failed_outbox_bytes = 0
        self._items_outbox: deque[ItemFailure] = deque()
        self._notifying = False
        self._flow: FlowControl | None = None
        self._flow_wake: float | None = None
        self._throttle: str | None = None
        self._health_busy = False
        self._result: Any = None
        self._result_started = False
        self._unreduced: list[Any] = []
        self._unreduced_bytes = 0
        self._result_error: str | None = None
        self._reducing = False
        self._hooks = HookErrors()
        self._no_progress_patched = False
        self._ledger_on = False
        self._feeds = []
        self._feed_reading = False
        self._records_in_flight = 0
        self._handover_correction = 0
        self._input_bytes = 0
        self._result_bytes = 0
        cont = raw.get("continuation") if isinstance(raw, dict) else None
        try:
            self._inp = input_from_wire(raw, strict=not cont)
            if cont:
                self._cont = continuation_from_wire(cont)
        except (InvalidBatchInputError, WireError) as err:
            self._input_error = str(err)
            self._inp = BatchOrchestratorInput(page_processor="?", page_size=1, max_parallelism=0)
        ledger = self._cont.ledger if self._cont is not None else None
        self._book = LedgerBook(self._execution, ledger)
        if ledger is not None:
            self._feeds = list(ledger.feeds)
        self._run_items = bool(self._inp.item_keys) or bool(self._cont and self._cont.run_items)
        self._history = History(self._cont.history if self._cont is not None else None)
        self._checkpoints = CheckpointBook(self._cont.checkpoints if self._cont else None)

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> BatchOrchestratorProgress:
        """Run (this run of) the batch. ``raw`` is ``input_to_wire(BatchOrchestratorInput)``."""
        if self._input_error is not None:
            raise ApplicationError(
                self._input_error, type=INVALID_INPUT_ERROR_TYPE, non_retryable=True
            )
        inp = self._inp
        # The failure ledger, and the payload budgets that change which commands a run issues
        # (how many attempts a task starts, notifier chunks, when it hands over), are on for runs
        # begun by this version; a run begun before replays without them.
        self._ledger_on = workflow.patched(LEDGER_PATCH)
        if self._ledger_on:
            self._input_bytes = wire_size(self._carried_input(raw))
        policy = inp.failure_policy or (
            FailurePolicy() if workflow.patched(_DEFAULT_POLICY_PATCH) else FailurePolicy.disabled()
        )
        self._no_progress_patched = workflow.patched(_NO_PROGRESS_PATCH)
        if not self._no_progress_patched:  # a history from before it: replay as recorded
            policy = dataclasses.replace(policy, no_progress_attempts=None)
        flow_state = self._cont.flow if self._cont is not None else None
        self._flow = FlowControl(
            flow_state
            or FlowState(
                max_pages_per_second=inp.max_pages_per_second,
                max_items_per_second=inp.max_items_per_second,
            ),
            ramp_up=inp.ramp_up.total_seconds() if inp.ramp_up is not None else None,
            adaptive=inp.adaptive,
            target_latency=(
                inp.target_page_latency.total_seconds()
                if inp.target_page_latency is not None
                else None
            ),
            canary_pages=inp.canary_pages,
        )
        exact = workflow.patched(_EXACT_CORE_PATCH)
        self._flow.exact = exact
        if self._cont is not None:
            self._settings = self._cont.settings
            self._sched = scheduler_from_state(
                self._settings, policy, self._cont.scheduler, exact=exact
            )
            self._tracker_next = self._cont.tracker_next
            self._result, self._result_started = self._cont.result, self._cont.result_started
            self._hooks = HookErrors(self._cont.hook_errors)
            self._result_bytes = wire_size(self._result)
            for value in self._cont.unreduced:
                self._add_value(value)
            self._sched.feeding = bool(self._feeds)
            now = workflow.now().timestamp()
            for page in list(self._sched.failed):
                if not page.recorded:  # kept whole by a version before the ledger: record it
                    self._record_failed_page(self._sched, page, now)
        else:
            self._settings = await self._describe(inp)
            self._sched = Scheduler(
                self._settings, inp.max_parallelism, workflow.now().timestamp(), policy
            )
            self._sched.exact = exact
            cursors = inp.first_cursor_strs or [inp.first_cursor_str]
            if inp.redrive_source is not None:
                cursors = []
                self._start_feed()  # its pages come from the old batch's ledger as it goes
            elif inp.redrive_pages:
                cursors = self._enqueue_redrive_pages(self._sched, inp)
            elif inp.item_keys:
                cursors = self._enqueue_item_pages(self._sched, inp)
            elif inp.window is not None and inp.window.is_empty():
                cursors = []  # nothing can be in the window: the batch ends with 0 pages
            else:
                self._sched.enqueue(None, [(c, inp.page_size) for c in cursors])
            if not self._sched.paused:
                self._flow.start(workflow.now().timestamp())
            workflow.logger.info(
                "batch started: %s, page_size %d, max_parallelism %d, %d chain(s)",
                self._settings.name,
                inp.page_size,
                inp.max_parallelism,
                len(cursors),
                extra=self._extra(),
            )
        self._state = Lifecycle.RUNNING
        self._dirty = True

        background: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._retry_timer()),
            asyncio.ensure_future(self._flow_timer()),
        ]
        if inp.health_check is not None:
            background.append(asyncio.ensure_future(self._health_loop()))
        if self._settings.has_reduce:
            background.append(asyncio.ensure_future(self._reduce_loop()))
        if inp.batch_tracker is not None:
            background.append(asyncio.ensure_future(self._tracker_loop()))
        if inp.notifier is not None:
            background.append(asyncio.ensure_future(self._notifier_loop()))
        if self._ledger_on:
            background.append(asyncio.ensure_future(self._ledger_loop()))
            background.append(asyncio.ensure_future(self._feed_loop()))

        nxt: dict[str, Any] | None = None
        try:
            while True:
                await self._drive()
                await workflow.wait_condition(self._quiet)
                if self._state is Lifecycle.FINISHED or not self._ledger_on:
                    break
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._quiet():
                    continue  # a handler began something: drain again
                nxt = self._continuation(raw)
                if self._fits(nxt):
                    break
                nxt = None
        except asyncio.CancelledError:
            await self._cancel(background)
            raise
        if self._drain_timer is not None:
            background.append(self._drain_timer)
        for task in background:
            task.cancel()
        if self._state is not Lifecycle.FINISHED:
            if nxt is None:  # a run begun before the payload budgets: as it did then
                await workflow.wait_condition(workflow.all_handlers_finished)
                nxt = self._continuation(raw)
            workflow.continue_as_new(nxt)
        if self._settings.has_reduce:
            await self._fold_all()
        if inp.batch_tracker is not None:
            await self._call_tracker(is_final=True)
        if inp.notifier is not None:
            await self._notify("finished", None, [])
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._history.observe(workflow.now().timestamp(), self._scheduler, force=True)
        progress = self._progress()
        workflow.logger.info(
            "batch finished: %d pages completed, %d failed",
            progress.num_completed_pages,
            progress.num_failed_pages,
            extra=self._extra(),
        )
        return progress

    async def _drive(self) -> None:
        """Start pages as slots free up until the batch is finished or must hand over."""
        sched = self._scheduler
        while True:
            self._history.observe(workflow.now().timestamp(), sched)  # no timer: when it wakes
            more = self._start_runnable()
            if sched.is_finished:
                break
            if self._state is Lifecycle.HANDING_OVER and self._too_big_to_hand_over():
                # Pages enqueued while the run drained made its state too big to carry: run
                # on (pages run and release their cursors) until it fits.
                self._state = Lifecycle.RUNNING
                if self._drain_timer is not None:
                    self._drain_timer.cancel()
                self._drain_timer, self._drain_timed_out = None, False
            if self._state is Lifecycle.RUNNING and self._should_continue_as_new():
                if self._too_big_to_hand_over():
                    if not self._handover_put_off:
                        self._handover_put_off = True
                        workflow.logger.warning(
                            "hand-over put off: the unfinished pages' cursors (%d KB) are more "
                            "than a new run's input can carry; pages run on until they fit",
                            self._held_bytes() // 1024,
                            extra=self._extra(),
                        )
                else:
                    self._handover_put_off = False
                    self._state = Lifecycle.HANDING_OVER
                    self._drain_timer = asyncio.ensure_future(self._drain_deadline())
                    workflow.logger.info(
                        "handing over to a new run after %d page attempts; waiting for %d running",
                        self._started_this_run,
                        len(sched.running),
                        extra=self._extra(),
                    )

            if (
                self._state is Lifecycle.HANDING_OVER
                and self._quiet()
                and (not (sched.running or sched.discovery_running) or self._drain_timed_out)
            ):
                break
            if more:  # the rest start in the next workflow task
                await workflow.sleep(timedelta(milliseconds=10))
                continue
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False
        if sched.is_finished:
            self._state = Lifecycle.FINISHED
        self._dirty = True

    @property
    def _scheduler(self) -> Scheduler:
        if self._sched is None:
            raise ApplicationError("the batch's scheduler is not built yet")
        return self._sched

    async def _drain_deadline(self) -> None:
        wait = self._inp.handover_wait
        if self._settings is not None and self._settings.at_most_once:
            # Every attempt still waiting for a worker slot by now has timed out
            # (schedule-to-start) and is ready again: those still pending have started.
            wait = max(wait, self._start_timeout() + AT_MOST_ONCE_START_GRACE)
        await workflow.sleep(wait)
        self._drain_timed_out = self._dirty = True

    async def _cancel(self, background: list[asyncio.Future[Any]]) -> None:
        """The batch was cancelled: start nothing more, cancel running attempts, tell the tracker.

        Then let the cancellation close the workflow.
        """
        self._state = Lifecycle.CANCELLED
        for task in background:
            task.cancel()
        running = list(self._attempts.values())
        for handle in running:
            handle.cancel()
        workflow.logger.warning(
            "batch cancelled with %d page(s) running; they were asked to stop",
            len(running),
            extra=self._extra(),
        )
        if self._inp.batch_tracker is not None and self._sched is not None:
            await self._call_tracker(is_final=True)

    async def _describe(self, inp: BatchOrchestratorInput) -> ProcessorSettings:
        tracker = inp.batch_tracker.name if inp.batch_tracker is not None else None
        notifier = inp.notifier.name if inp.notifier is not None else None
        health = inp.health_check.name if inp.health_check is not None else None
        try:
            settings: ProcessorSettings = await workflow.execute_local_activity(
                DESCRIBE_BATCH,
                DescribeBatchInput(inp.processor_name(), tracker, notifier, health, inp.args),
                result_type=ProcessorSettings,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            return settings
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise

    def _quiet(self) -> bool:
        """Nothing is in flight that a hand-over or the end must wait for.

        No tracker or notifier call, and (with the ledger) every failure written to it and handed
        to the notifier.
        """
        if not SideCalls._quiet(self):
            return False
        return not self._ledger_on or (self._book.idle and not self._failed_outbox)

    def _extra(self, page_num: int | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"batch_id": self._inp.batch_id}
        if page_num is not None:
            extra["page_num"] = page_num
        return extra

    def _held_bytes(self) -> int:
        """About what the next run's input would carry.

        Held pages' cursors and values waiting for ``reduce`` (the page table is compressed);
        with the payload budgets, also the input, the result, the rest of the state and what the
        last measurement found the estimate to miss. The hand-over itself is measured
        (``_fits``).
        """
        held = self._scheduler.held_bytes + self._unreduced_bytes + self._checkpoints.held_bytes
        if not self._ledger_on:
            return held
        return (
            held
            + self._input_bytes
            + self._result_bytes
            + HANDOVER_STATE_BYTES
            + self._handover_correction
        )

    def _too_big_to_hand_over(self) -> bool:
        return self._held_bytes() > MAX_HANDOVER_BYTES

    def _fits(self, nxt: dict[str, Any]) -> bool:
        """Whether the next run's input, measured as it would be sent, is within its budget.

        If not, the hand-over is put off: the run goes on (pages run and release their cursors)
        and tries again once the estimate, corrected by what this measurement found, fits.
        """
        size = wire_size(nxt)
        if size <= MAX_HANDOVER_BYTES:
            return True
        self._handover_correction += max(0, size - self._held_bytes()) + 64 * 1024
        sched = self._scheduler
        for n in sched.running:  # still running here: no hand-over deadline after all
            if n not in sched.handed_over:
                sched.pages[n].report_deadline = sched.pages[n].confirm_by = None
        self._state = Lifecycle.RUNNING
        self._handover_put_off = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._drain_timer, self._drain_timed_out = None, False
        workflow.logger.warning(
            "hand-over put off: the next run's input would be %d KB (at most %d KB); pages run "
            "on until it fits",
            size // 1024,
            MAX_HANDOVER_BYTES // 1024,
            extra=self._extra(),
        )
        return False

    def _should_continue_as_new(self) -> bool:
        per_run = self._inp.pages_per_run
        if per_run is not None and self._started_this_run >= per_run:
            return True
        # Temporal's own suggestion comes at a few thousand events. Every hand-over costs a
        # drain of the running pages, so runs go on to a budget well inside the hard limits;
        # the workflow's state is small, so a longer history only costs replay time after a
        # cache eviction.
        info = workflow.info()
        return (
            self._updates_this_run >= UPDATES_PER_RUN
            or info.get_current_history_length() >= HISTORY_EVENTS_PER_RUN
            or info.get_current_history_size() >= HISTORY_BYTES_PER_RUN
        )

    def _start_runnable(self) -> bool:
        """Start what may start now; True if more would have, past this task's budget."""
        if self._state is not Lifecycle.RUNNING:
            return False
        inp, sched, flow = self._inp, self._scheduler, self._flow_control
        now = workflow.now().timestamp()
        per_attempt = 600 + len(inp.args or "") + len(inp.batch_id) + len(inp.processor_name())
        budget = min(STARTS_PER_TASK, max(1, START_BYTES_PER_TASK // per_attempt))
        # With the payload budgets, each attempt's cursor counts too (16 KB cursors would
        # otherwise make one task's completion 8 MB).
        limit = budget
        if inp.pages_per_run is not None and not self._handover_put_off:
            limit = min(limit, max(0, inp.pages_per_run - self._started_this_run))
        sched.flow_cap, cap_reason = flow.cap(sched.max_parallelism, now)
        per_page = self._items_per_page()
        allowance = flow.allowance(now, per_page)
        if allowance is not None:
            limit = min(limit, allowance)
        if self._ledger_on:
            attempts = sched.take_runnable(
                limit, START_BYTES_PER_TASK, per_attempt, self._checkpoints.size_of
            )
        else:
            attempts = sched.take_runnable(limit)
        limited = sched.bytes_limited
        flow.started([a.page_num for a in attempts], now, per_page)
        for att in attempts:
            self._started_this_run += 1
            self._start_attempt(att, inp)
        if self._ledger_on:
            spent = sum(
                per_attempt + text_size(a.cursor) + self._checkpoints.size_of(a.page_num)
                for a in attempts
            )
            more_discoveries = self._start_discoveries(
                budget - len(attempts), max(0, START_BYTES_PER_TASK - spent), per_attempt
            )
        else:
            more_discoveries = self._start_discoveries(budget - len(attempts))
        # Is flow control (not a lack of pages or slots) what holds pages back now?
        waiting = bool(sched.ready) and not sched.paused
        room = len(sched.running) < sched.effective_parallelism
        by_rate = waiting and room and allowance is not None and len(attempts) == allowance
        by_cap = waiting and not room and sched.flow_cap is not None
        self._throttle = self._rate_reason() if by_rate else cap_reason if by_cap else None
        if by_rate or by_cap:
            self._flow_wake = flow.wake_at(now, per_page, by_rate=by_rate, by_cap=by_cap)
        return more_discoveries or (
            (len(attempts) == budget or limited)
            and bool(sched.ready)
            and len(sched.running) < sched.effective_parallelism
        )

    @property
    def _flow_control(self) -> FlowControl:
        if self._flow is None:
            raise ApplicationError("the batch's flow control is not built yet")
        return self._flow

    def _items_per_page(self) -> float:
        """Items one page is expected to hold.

        The average of the completed pages' reports, or the page size until pages report.
        """
        sched = self._scheduler
        if sched.num_completed and sched.num_completed_items:
            return max(1.0, sched.num_completed_items / sched.num_completed)
        return float(self._inp.page_size)

    def _rate_reason(self) -> str:
        s = self._flow_control.state
        return "rate limit: " + rates_text(s.max_pages_per_second, s.max_items_per_second)

    async def _flow_timer(self) -> None:
        """Wake the batch when flow control may let more pages start (one timer at a time)."""
        while True:
            await workflow.wait_condition(lambda: self._flow_wake is not None)
            assert self._flow_wake is not None
            delay = self._flow_wake - workflow.now().timestamp()
            self._flow_wake = None
            if delay > 0:
                await workflow.sleep(timedelta(seconds=delay))
            self._dirty = True

    def _start_timeout(self) -> timedelta:
        """How long an at-most-once attempt may wait for a worker slot before it is taken back.

        It is then started again. A hand-over waits this long, so it never leaves one waiting.
        """
        return max(self._inp.handover_wait, AT_MOST_ONCE_MIN_START_WAIT)

    def _start_attempt(self, att: Attempt, inp: BatchOrchestratorInput) -> None:
        handle = workflow.start_activity(
            PROCESS_PAGE,
            ProcessPageInput(
                processor=inp.processor_name(),
                page=BatchPage(att.cursor, att.size),
                page_num=att.page_num,
                attempt=att.attempt,
                args=inp.args,
                batch_id=inp.batch_id,
                successor_enqueued=att.successor_enqueued,
                report_after_seconds=inp.handover_wait.total_seconds() / 2,
                execution=self._execution,
                discovered_apart=bool(self._settings and self._settings.discovers_apart),
                run_items=self._run_items,
                window=inp.window,
                checkpoint=self._checkpoints.get(att.page_num),
            ),
            result_type=PageResult,
            start_to_close_timeout=inp.page_timeout,
            # At most once: an attempt a hand-over might leave waiting for a slot must end
            # first, so that one never runs after Temporal dropped it with its closed run.
            schedule_to_start_timeout=(
                self._start_timeout() if self._settings and self._settings.at_most_once else None
            ),
            heartbeat_timeout=inp.heartbeat_timeout,
            retry_policy=_PAGE_RETRY,
            activity_id=f"page-{att.page_num}-attempt-{att.attempt}",
            summary=f"page {att.page_num}",
        )
        key = (att.page_num, att.attempt)
        self._attempts[key] = handle
        handle.add_done_callback(lambda fut: self._on_attempt_done(key, fut))

    def _on_attempt_done(self, key: tuple[int, int], fut: asyncio.Future[PageResult]) -> None:
        sched = self._scheduler
        page_num, attempt = key
        self._dirty = True
        self._attempts.pop(key, None)
        if self._state is Lifecycle.CANCELLED or fut.cancelled():
            sched.running.discard(page_num)
            self._flow_control.forget(page_num)
            return
        if not sched.is_current(page_num, attempt):
            return  # its outcome already arrived by signal
        err = fut.exception()
        if err is None:
            result = fut.result()
            self._checkpoints.drop(page_num)
            self._complete_page(
                page_num, result.items, result.successors, result.seconds, result.value
            )
            self._record_items(result.num_failed_items, result.failed_items)
            return
        cause = err.cause if isinstance(err, ActivityError) else err
        self._checkpoints.keep_from_error(page_num, cause)
        if isinstance(cause, ApplicationError):
            kind, message, non_retryable = cause.type or "Error", cause.message, cause.non_retryable
        elif isinstance(cause, TimeoutError):
            name = cause.type.name.lower() if cause.type is not None else "unknown"
            kind, message, non_retryable = "Timeout", f"page timed out ({name})", False
            if name == "schedule_to_start":  # no worker took it: it did no work
                sched.not_started(page_num, attempt)
                self._flow_control.forget(page_num)
                return
            if name == "heartbeat":
                message = (
                    "the page's worker stopped heartbeating (it died or its event loop blocked)"
                )
                self._fail_page(page_num, kind, message, non_retryable, worker_lost=True)
                return
        else:
            kind, message, non_retryable = type(cause).__name__, str(cause), False
        self._fail_page(page_num, kind, message, non_retryable)

    def _complete_page(
        self,
        page_num: int,
        items: int,
        successors: list[BatchPage] | None,
        seconds: float | None = None,
        value: Any = None,
    ) -> None:
        """A page succeeded.

        Successors it carried in its outcome are enqueued first (a page only enqueues while it is in
        flight).
        """
        if successors:
            self._apply_enqueue(EnqueueRequest(page_num, successors, self._execution))
        sched, flow, now = self._scheduler, self._flow_control, workflow.now().timestamp()
        flow.finished(
            page_num,
            now,
            ok=True,
            in_use=len(sched.running),
            max_parallelism=sched.max_parallelism,
            latency=seconds,
        )
        sched.complete(page_num, items, now)
        if self._settings is not None and self._settings.has_reduce:
            self._add_value(value)
        if flow.canary_due(sched.num_completed) and sched.pause(
            f"canary: {sched.num_completed} pages completed (canary_pages="
            f"{flow.canary_pages}); check their results, then resume the batch",
            now,
        ):
            workflow.logger.warning(
                "batch paused itself: %s", sched.pause_reason, extra=self._extra()
            )
            flow.log_change("paused: canary", None, now)
            if self._inp.notifier is not None:
                self._notices.append(("paused", sched.pause_reason, []))

    def _record_items(self, count: int, items: list[ItemFailure] | None) -> None:
        """A completed page recorded failed items.

        Count them, hand them to the notifier and let the failure policy judge.
        """
        if not count:
            return
        sched, now = self._scheduler, workflow.now().timestamp()
        if self._ledger_on:
            items = self._clean_items(items)
        sched.record_item_failures(count, items)
        if items:
            self._record_failed_items(items, now)
        if items and self._inp.notifier is not None:
            self._queue_item_failures(items)
        reason = sched.check_policy(now)
        if reason is not None:
            workflow.logger.error("batch paused itself: %s", reason, extra=self._extra())
            if self._inp.notifier is not None:
                self._notices.append(("paused", reason, []))

    @staticmethod
    def _enqueue_redrive_pages(sched: Scheduler, inp: BatchOrchestratorInput) -> list[str]:
        """A redrive batch starts with the failed pages of the batch it redrives.

        Those that had enqueued their successors keep that mark, so they do not enqueue them again.
        """
        pages = inp.redrive_pages or []
        added = sched.enqueue(None, [(p.cursor_str, p.size) for p in pages]).added
        by_cursor = {p.cursor_str: p for p in pages}
        for num in added:
            state = sched.pages[num]
            state.successor_enqueued = by_cursor[state.cursor].successor_enqueued
        return [p.cursor_str for p in pages]

    @staticmethod
    def _enqueue_item_pages(sched: Scheduler, inp: BatchOrchestratorInput) -> list[str]:
        """A batch of item keys: pages of up to ``page_size`` keys, none with a successor.

        Each page's cursor is a JSON list of its keys, of at most ``ITEM_PAGE_BYTES``.
        """
        cursors = item_pages(inp.item_keys or [], inp.page_size)
        for num in sched.enqueue(None, [(c, inp.page_size) for c in cursors]).added:
            sched.pages[num].successor_enqueued = True
        return cursors

    def _fail_page(
        self,
        page_num: int,
        kind: str,
        message: str,
        non_retryable: bool,
        worker_lost: bool = False,
    ) -> None:
        sched, now = self._scheduler, workflow.now().timestamp()
        # A lost worker is not a failing downstream: the failure policy does not count it.
        worker_lost = worker_lost or kind == WORKER_SHUTDOWN_ERROR_TYPE
        unrun = kind == UNKNOWN_PROCESSOR_ERROR_TYPE
        self._flow_control.finished(
            page_num,
            now,
            ok=False,
            in_use=len(sched.running),
            max_parallelism=sched.max_parallelism,
            congestion=not (worker_lost or unrun),
        )
        outcome = sched.fail(
            page_num,
            kind,
            message,
            non_retryable=non_retryable,
            did_not_run=unrun,
            worker_lost=worker_lost,
            now=now,
        )
        log = (
            workflow.logger.warning
            if outcome in (Outcome.RETRY, Outcome.NOT_RUN)
            else (workflow.logger.error)
        )
        log("page %s: %s: %s", outcome.value, kind, message[:500], extra=self._extra(page_num))
        if outcome is Outcome.FAILED:
            page = sched.failed[-1]
            if self._inp.notifier is not None:
                self._queue_failed_page(page_failure(sched, page, whole=True))
            self._record_failed_page(sched, page, now)
        reason = sched.check_policy(now)
        if reason is not None:
            workflow.logger.error("batch paused itself: %s", reason, extra=self._extra())
            if self._inp.notifier is not None:
                self._notices.append(("paused", reason, []))
        self._tell_stall(sched.check_stall(now))

    async def _page_scheduler(self, execution: str, what: str, page_num: int) -> Scheduler | None:
        """The scheduler for a page's message, or None if the message is to be ignored.

        A message can reach a run in its first workflow task, before the run has built its
        scheduler (a continued run builds it from its input, a new one once the processor's
        settings are read): it waits for it. Runs begun before this patch dropped it (a lost
        successor, a page run again), and replay so.
        """
        if self._sched is None and self._ours(execution, what, page_num):
            if not workflow.patched(_FIRST_TASK_PATCH):
                return None
            await workflow.wait_condition(lambda: self._sched is not None)
        if self._sched is None or not self._ours(execution, what, page_num):
            return None
        return self._sched

    @workflow.signal(name=PAGE_FINISHED_SIGNAL)
    async def page_finished(self, outcome: PageOutcome) -> None:
        """A long attempt reports how it ended (it may have been started by an earlier run)."""
        sched = await self._page_scheduler(outcome.execution, "page_finished", outcome.page_num)
        if sched is None or self._state is Lifecycle.CANCELLED:
            return
        if not sched.is_current(outcome.page_num, outcome.attempt):
            return
        self._dirty = True
        if outcome.error_type is None:
            self._checkpoints.drop(outcome.page_num)
            self._complete_page(
                outcome.page_num,
                outcome.items,
                outcome.successors,
                outcome.seconds,
                outcome.value,
            )
            self._record_items(outcome.num_failed_items, outcome.failed_items)
        else:
            self._checkpoints.keep(outcome.page_num, outcome.checkpoint)
            self._fail_page(
                outcome.page_num, outcome.error_type, outcome.error_message, outcome.non_retryable
            )

    @workflow.signal(name=PAGE_RUNNING_SIGNAL)
    async def page_running(self, outcome: PageOutcome) -> None:
        """An attempt handed over at a hand-over says it had started and still runs."""
        sched = await self._page_scheduler(outcome.execution, "page_running", outcome.page_num)
        if sched is not None:
            sched.confirm_started(outcome.page_num, outcome.attempt)

    def _ours(self, execution: str, what: str, page_num: int) -> bool:
        """Whether a message comes from an attempt this batch execution started."""
        if not execution or execution == self._execution:
            return True
        if execution not in self._foreign:  # one line per execution, not one per message
            if len(self._foreign) >= FOREIGN_EXECUTIONS_LOGGED:
                del self._foreign[next(iter(self._foreign))]
            self._foreign[execution] = None
            workflow.logger.warning(
                "ignored %s from page %d of another batch execution (%s) that used this "
                "workflow ID; its further messages are ignored without a log line",
                what,
                page_num,
                execution,
                extra=self._extra(page_num),
            )
        return False

    async def _retry_timer(self) -> None:
        sched = self._scheduler
        while True:
            due = sched.next_due()
            if due is None:
                await workflow.wait_condition(lambda: sched.has_due)
                continue
            delay = due - workflow.now().timestamp()
            if delay > 0:
                earlier = functools.partial(_earlier_due, sched, due)
                try:
                    await workflow.wait_condition(earlier, timeout=timedelta(seconds=delay))
                    continue
                except asyncio.TimeoutError:
                    pass
            if sched.release_due(workflow.now().timestamp()):
                self._dirty = True

    @staticmethod
    def _carried_input(raw: dict[str, Any]) -> dict[str, Any]:
        """The batch's input as every hand-over carries it.

        What the first run consumed (first cursors, redrive pages, item keys, the redrive source)
        is dropped.
        """
        nxt = {k: v for k, v in raw.items() if k != "continuation"}
        nxt["first_cursor_str"], nxt["first_cursor_strs"] = "", None
        for key in ("redrive_pages", "item_keys", "redrive_source"):
            if key in nxt:
                nxt[key] = None
        return nxt

    def _continuation(self, raw: dict[str, Any]) -> dict[str, Any]:
        assert self._settings is not None
        nxt = self._carried_input(raw)
        # Attempts still running report by signal; past this they count as timed out.
        deadline = (
            workflow.now().timestamp()
            + self._inp.page_timeout.total_seconds()
            + HANDOVER_REPORT_GRACE_SECONDS
        )
        # An attempt that had started heartbeats into this closed run and says so by signal
        # within (the SDK sends a heartbeat at most every 0.8 heartbeat timeout); one that does
        # not never started, since Temporal drops the tasks of a closed run.
        # At-most-once pages are never run again on that guess (a late start would run them
        # twice): theirs count as timed out at the report deadline, visibly.
        beat = self._inp.heartbeat_timeout
        confirm_by = (
            workflow.now().timestamp() + beat.total_seconds() + HANDOVER_CONFIRM_GRACE_SECONDS
            if beat is not None and not self._settings.at_most_once
            else None
        )
        nxt["continuation"] = continuation_to_wire(
            BatchContinuation(
                settings=self._settings,
                scheduler=scheduler_to_state(self._scheduler, deadline, confirm_by),
                tracker_next=self._tracker_next,
                flow=self._flow_control.state,
                result=self._result,
                result_started=self._result_started,
                unreduced=list(self._unreduced),
                hook_errors=self._hooks.records(),
                ledger=self._book.state(self._feeds),
                run_items=self._run_items,
                history=self._history.state(),
                checkpoints=self._checkpoints.state(self._scheduler.pages),
            )
        )
        return nxt

    def _progress(self, *, history: bool = True) -> BatchOrchestratorProgress:
        if self._sched is None:
            return BatchOrchestratorProgress(max_parallelism=self._inp.max_parallelism)
        ended = self._state in (Lifecycle.FINISHED, Lifecycle.CANCELLED)
        p = build_progress(
            self._sched, workflow.now().timestamp(), self._inp.total_items, ended=ended
        )
        p.is_finished = self._state is Lifecycle.FINISHED
        p.is_cancelled = self._state is Lifecycle.CANCELLED
        p.redrive_of = self._inp.redrive_of
        p.window = self._inp.window
        if self._flow is not None:
            flow_progress(p, self._flow, None if ended else self._throttle)
        p.result, p.num_unreduced_pages = self._result, len(self._unreduced)
        p.result_error = self._result_error
        p.hook_errors = self._hooks.progress()
        p.num_ledger_records, p.ledger_redrive_record = self._book.seq, self._book.base
        p.history = self._history.samples() if history else []
        guard_progress(p)
        return p

    def _apply_enqueue(self, req: EnqueueRequest) -> int:
        sched = self._sched
        if sched is None or not self._ours(req.execution, "an enqueue", req.parent_page_num):
            return 0
        result = sched.enqueue(req.parent_page_num, [(p.cursor_str, p.size) for p in req.pages])
        for cursor, why in result.ignored:
            workflow.logger.warning(
                "ignored enqueued cursor %r: %s",
                cursor,
                why,
                extra=self._extra(req.parent_page_num),
            )
        if result.added:
            self._dirty = True
        return len(result.added)

    async def _enqueue_when_started(self, req: EnqueueRequest) -> int:
        """``_apply_enqueue`` once the run has its scheduler (see ``_page_scheduler``)."""
        if self._sched is None:
            await self._page_scheduler(req.execution, "an enqueue", req.parent_page_num)
        return self._apply_enqueue(req)

    @workflow.signal(name=ENQUEUE_SIGNAL)
    async def enqueue_pages(self, req: EnqueueRequest) -> None:
        """A running page hands over its successor page(s) (fire-and-forget form)."""
        await self._enqueue_when_started(req)

    @workflow.update(name=ENQUEUE_UPDATE)
    async def enqueue(self, req: EnqueueRequest) -> int:
        """A running page hands over its successor page(s); returns how many were added.

        The update form is what pages use: an update's workflow task is dispatched with the
        update, while a signal's goes through the history service's transfer queue, which a
        server with Temporal's default config reads only 20 times a second (docs/architecture.md,
        "Why an update and not a signal").
        """
        self._updates_this_run += 1
        return await self._enqueue_when_started(req)

    @workflow.update(name=ENQUEUE_MANY_UPDATE)
    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> int:
        """Several pages' enqueues in one update (a worker coalesces them under load)."""
        self._updates_this_run += 1
        return sum([await self._enqueue_when_started(req) for req in reqs])

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> BatchOrchestratorProgress:
        """The batch's progress now."""
        return self._progress()

    @workflow.query(name=LIFECYCLE_QUERY)
    def lifecycle(self) -> str:
        """Where this run is ("running", "handing_over", "cancelled", ...).

        A page whose attempt is cancelled asks, to tell a hand-over from a cancelled batch.
        """
        return self._state.value

    async def _control(self) -> Scheduler:
        """The scheduler, once the batch has started.

        A control made while the processor's settings are read waits for them.
        """
        await workflow.wait_condition(lambda: self._sched is not None)
        self._dirty = True
        return self._scheduler

    def _changed(self, change: str, by: str | None) -> None:
        """Log a control change with who asked, and keep it for progress."""
        now = workflow.now().timestamp()
        self._flow_control.log_change(change, by, now)
        workflow.logger.info("%s (asked by %s)", change, by or "unknown", extra=self._extra())

    def _resumed(self, sched: Scheduler, was_paused: bool) -> None:
        if was_paused and not sched.paused:
            self._flow_control.start(workflow.now().timestamp())  # ramp up again

    async def _pause(self, by: str | None = None) -> BatchOrchestratorProgress:
        sched = await self._control()
        if sched.pause("paused by an operator", workflow.now().timestamp()):
            self._changed("paused", by)
        return self._progress()

    async def _resume(self, by: str | None = None) -> BatchOrchestratorProgress:
        sched = await self._control()
        if sched.resume(workflow.now().timestamp()):
            self._resumed(sched, True)
            self._changed(f"resumed at max_parallelism {sched.max_parallelism}", by)
        return self._progress()

    async def _set_parallelism(self, n: int, by: str | None = None) -> BatchOrchestratorProgress:
        sched = await self._control()
        was_paused = sched.paused
        old = sched.set_parallelism(n, workflow.now().timestamp())
        self._resumed(sched, was_paused)
        self._changed(f"max_parallelism {old} -> {n}", by)
        return self._progress()

    @workflow.update(name="pause")
    async def pause(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Pause: running pages finish, no page starts until ``resume``.

        ``by``: who asks (for the log). Returns the progress.
        """
        return await self._pause(by)

    @workflow.update(name="resume")
    async def resume(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Resume a paused batch at its parallelism cap (ramping up again if it has a ``ramp_up``).

        Returns the progress.
        """
        return await self._resume(by)

    @resume.validator
    def _validate_resume(self, by: str | None = None) -> None:
        sched = self._sched
        if sched is not None and sched.paused and sched.max_parallelism == 0:
            raise ValueError(
                "the batch was started with max_parallelism=0 and has no parallelism to resume "
                "to; use set_max_parallelism(n)"
            )

    @workflow.update(name="set_max_parallelism")
    async def set_max_parallelism(self, n: int, by: str | None = None) -> BatchOrchestratorProgress:
        """Set the parallelism cap (0 pauses), remembering the old one.

        A batch paused by ``pause`` or by its failure policy stays paused; ``resume`` then returns
        to ``n``. Returns the progress.
        """
        return await self._set_parallelism(n, by)

    @set_max_parallelism.validator
    def _validate_set_max_parallelism(self, n: int, by: str | None = None) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"max_parallelism must be an int >= 0 (0 pauses), got {n!r}")

    @workflow.update(name="restore_max_parallelism")
    async def restore_max_parallelism(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Return to the parallelism cap before the last change. Returns the progress."""
        sched = await self._control()
        return await self._set_parallelism(sched.previous_parallelism, by)

    @workflow.update(name=SET_RATE_LIMIT_UPDATE)
    async def set_rate_limit(
        self, limits: dict[str, float | None], by: str | None = None
    ) -> BatchOrchestratorProgress:
        """Set or lift (None) ``max_pages_per_second`` and ``max_items_per_second``.

        A key left out keeps its limit. Returns the progress.
        """
        return await self._set_rates(limits, by)

    async def _set_rates(
        self, limits: dict[str, float | None], by: str | None = None
    ) -> BatchOrchestratorProgress:
        await self._control()
        flow, now = self._flow_control, workflow.now().timestamp()
        s = flow.state
        pages = limits.get("max_pages_per_second", s.max_pages_per_second)
        items = limits.get("max_items_per_second", s.max_items_per_second)
        old = (s.max_pages_per_second, s.max_items_per_second)
        flow.set_rates(pages, items, now)
        self._changed(f"rate limit {rates_text(*old)} -> {rates_text(pages, items)}", by)
        return self._progress()

    @set_rate_limit.validator
    def _validate_set_rate_limit(
        self, limits: dict[str, float | None], by: str | None = None
    ) -> None:
        if not isinstance(limits, dict):
            raise ValueError(f"set_rate_limit takes an object of limits, got {limits!r}")
        unknown = sorted(set(limits) - {"max_pages_per_second", "max_items_per_second"})
        if unknown:
            raise ValueError(
                f"unknown rate limit(s) {unknown}; known: max_pages_per_second, "
                "max_items_per_second"
            )
        for key, value in limits.items():
            try:
                check_rate(value, key)
            except InvalidBatchInputError as err:
                raise ValueError(str(err)) from None

    def _redrive_refusal(self) -> str | None:
        if self._state in (Lifecycle.STARTING, Lifecycle.RUNNING, Lifecycle.HANDING_OVER):
            return None
        return (
            f"the batch is {self._state.value}: only a running batch takes a redrive; redrive "
            "a finished batch with BatchOrchestratorClient.redrive (it starts a new batch)"
        )

    @workflow.signal(name="pause_signal")
    async def pause_signal(self) -> None:
        """Fire-and-forget ``pause``."""
        await self._pause()

    @workflow.signal(name="resume_signal")
    async def resume_signal(self) -> None:
        """Fire-and-forget ``resume`` (ignored when there is nothing to resume to)."""
        sched = await self._control()
        if sched.max_parallelism > 0:
            await self._resume()

    @workflow.signal(name="set_max_parallelism_signal")
    async def set_max_parallelism_signal(self, n: int) -> None:
        """Fire-and-forget ``set_max_parallelism`` (an invalid value is logged and ignored)."""
        try:
            self._validate_set_max_parallelism(n)
        except ValueError as err:
            workflow.logger.warning("ignored set_max_parallelism_signal: %s", err)
            return
        await self._set_parallelism(n)

    @workflow.signal(name="set_rate_limit_signal")
    async def set_rate_limit_signal(self, limits: dict[str, float | None]) -> None:
        """Fire-and-forget ``set_rate_limit`` (an invalid value is logged and ignored)."""
        try:
            self._validate_set_rate_limit(limits)
        except ValueError as err:
            workflow.logger.warning("ignored set_rate_limit_signal: %s", err)
            return
        await self._set_rates(limits)


def _earlier_due(sched: Scheduler, due: float) -> bool:
    nxt = sched.next_due()
    return nxt is not None and nxt < due
