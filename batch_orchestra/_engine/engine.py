"""BatchEngine: one run of a batch as a pure state machine.

Events come in as method calls with the time as a number (an attempt succeeded or failed, pages
were enqueued, an operator paused, a health verdict arrived); the engine's decisions come out as
return values (the attempts and discoveries to start now, the notifier's next event, whether to
hand over) and as its ``woken`` flag, which tells the shell to ask again. The shell
(``batch_orchestra._workflow``) owns everything Temporal: activity handles, timers, handlers.

Which Temporal patches are on is told to the engine (``Patches``), and the few decided lazily
(the first time a path is taken) are asked through ``patched``, so that a replay takes the same
decisions as the run it replays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .._budgets import (
    HANDOVER_BYTES,
    NOTIFY_OUTBOX_BYTES,
    START_BYTES_PER_TASK,
    text_size,
    wire_size,
)
from .._continuation import (
    BatchContinuation,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_from_state,
    scheduler_to_state,
)
from .._discovery import MAX_RUNNING_DISCOVERIES
from .._exceptions import (
    UNKNOWN_PROCESSOR_ERROR_TYPE,
    WORKER_SHUTDOWN_ERROR_TYPE,
    InvalidBatchInputError,
)
from .._flow import FlowControl, FlowState, rates_text
from .._history import History
from .._hooks import HookErrors
from .._progress import build_progress, flow_progress, guard_progress, page_failure
from .._scheduler import Attempt, Outcome, Scheduler
from .._types import (
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    FailurePolicy,
    ItemFailure,
    PageFailure,
    ProcessorSettings,
    input_from_wire,
)
from .._wire import WireError
from .checkpoints import CheckpointBook
from .failures import FailureLedger
from .identity import Identity
from .lifecycle import Lifecycle
from .outbox import ITEMS_OUTBOX_LIMIT, NotifierOutbox
from .results import ResultFold

__all__ = [
    "HANDOVER_STATE_BYTES",
    "HISTORY_BYTES_PER_RUN",
    "HISTORY_EVENTS_PER_RUN",
    "UPDATES_PER_RUN",
    "MAX_HANDOVER_BYTES",
    "STARTS_PER_TASK",
    "AttemptFailure",
    "BatchEngine",
    "Log",
    "Patched",
    "Patches",
    "Starts",
]

HISTORY_EVENTS_PER_RUN = 10_000
"""A run continues as new at this many history events (Temporal's hard limit is 51,200)."""
HISTORY_BYTES_PER_RUN = 8 * 1024 * 1024
"""... or at this much history (Temporal's hard limit is 50 MB)."""
UPDATES_PER_RUN = 1_500
"""A run continues as new after accepting this many enqueue updates (Temporal refuses more than
2,000 per run by default; pages fall back to signals, but updates make shorter hops)."""
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
HANDOVER_REPORT_GRACE_SECONDS = 10.0
"""How long past ``page_timeout`` a run waits for an attempt handed over while running to
report, before counting it as timed out."""
HANDOVER_CONFIRM_GRACE_SECONDS = 15.0
"""How long past ``heartbeat_timeout`` an attempt handed over at a hand-over has to say it had
started before the next run counts it as never started."""


class Log(Protocol):
    """Where the engine's log lines go (the shell adds the batch's ID and the page number)."""

    def info(self, msg: str, *args: Any, page_num: int | None = None) -> None: ...

    def warning(self, msg: str, *args: Any, page_num: int | None = None) -> None: ...

    def error(self, msg: str, *args: Any, page_num: int | None = None) -> None: ...


Patched = Callable[[str], bool]
"""Whether a Temporal patch is on for this run (asked the first time a path is taken)."""


@dataclass(kw_only=True)
class Patches:
    """The patches the shell decided when the run began (see ``_workflow``)."""

    budgets: bool = True
    """The failure ledger and the payload budgets."""
    no_progress: bool = True
    """The no-progress pause and "stalled" notices."""
    exact: bool = True
    """The pure core's fixes (``Scheduler.exact``, ``FlowControl.exact``)."""


@dataclass(kw_only=True)
class AttemptFailure:
    """How an attempt (or a discovery) failed, as ``classify`` in the shell read it."""

    kind: str
    message: str
    non_retryable: bool = False
    timeout: str | None = None
    """The timeout's kind ("start_to_close", "heartbeat", "schedule_to_start"), if it timed out."""
    checkpoint: str | None = None
    """The checkpoint the attempt left (in its error's details or its last heartbeat)."""
    text: str = ""
    """"Type: message" as hooks' failures show it."""
    detail: str = ""
    """The error's message alone."""
    cancelled: bool = False
    """The activity was cancelled (a hand-over, or the batch was)."""


@dataclass(kw_only=True)
class Starts:
    """What to start in this workflow task."""

    attempts: list[Attempt]
    discoveries: list[Any]
    more: bool
    """More would have started past this task's budget: start them in the next task."""


class BatchEngine:
    """The state of one run of a batch and every rule about it."""

    def __init__(self, raw: dict[str, Any], *, execution: str, log: Log, patched: Patched) -> None:
        self.log, self.patched = log, patched
        self.state = Lifecycle.STARTING
        self.woken = False
        """Something changed that may let pages start: the shell drives again."""
        self.identity = Identity(execution)
        self.input_error: str | None = None
        self.cont: BatchContinuation | None = None
        cont = raw.get("continuation") if isinstance(raw, dict) else None
        try:
            self.inp = input_from_wire(raw, strict=not cont)
            if cont:
                self.cont = continuation_from_wire(cont)
        except (InvalidBatchInputError, WireError) as err:
            self.input_error = str(err)
            self.inp = BatchOrchestratorInput(page_processor="?", page_size=1, max_parallelism=0)
        self.patches = Patches()
        self._sched: Scheduler | None = None
        self._flow: FlowControl | None = None
        self.settings: ProcessorSettings | None = None
        self.failures = FailureLedger(self)
        self.run_items = bool(self.inp.item_keys) or bool(self.cont and self.cont.run_items)
        self.history = History(self.cont.history if self.cont is not None else None)
        self.checkpoints = CheckpointBook(
            self.cont.checkpoints if self.cont else None, max_bytes=4 * 1024, patched=patched
        )
        self.outbox = NotifierOutbox(patched)
        self.results = ResultFold()
        self.hooks = HookErrors()
        self.tracker_busy = False
        self.tracker_next: float | None = None
        self.throttle: str | None = None
        self.flow_wake: float | None = None
        self.started_this_run = 0
        self.updates_this_run = 0
        self.handover_put_off = False
        self.drain_timed_out = False
        self._handover_correction = 0
        self._input_bytes = 0

    # -- building ------------------------------------------------------------------------------

    @property
    def sched(self) -> Scheduler:
        if self._sched is None:
            raise RuntimeError("the batch's scheduler is not built yet")
        return self._sched

    @property
    def started(self) -> bool:
        """The scheduler is built: pages' messages and operators' controls apply."""
        return self._sched is not None

    @property
    def flow(self) -> FlowControl:
        if self._flow is None:
            raise RuntimeError("the batch's flow control is not built yet")
        return self._flow

    def configure(self, patches: Patches, policy: FailurePolicy, carried_input: Any) -> None:
        """The run's patches and failure policy are known: build flow control."""
        self.patches = patches
        if patches.budgets:
            self._input_bytes = wire_size(carried_input)
        if not patches.no_progress:  # a history from before it: replay as recorded
            policy = dataclasses.replace(policy, no_progress_attempts=None)
        self._policy = policy
        inp = self.inp
        flow_state = self.cont.flow if self.cont is not None else None
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
        self._flow.exact = patches.exact

    def resume_run(self, now: float) -> None:
        """A continued run: rebuild the state the last run handed over."""
        cont = self.cont
        assert cont is not None
        self.settings = cont.settings
        sched = scheduler_from_state(
            self.settings, self._policy, cont.scheduler, exact=self.patches.exact
        )
        self._sched = sched
        self.tracker_next = cont.tracker_next
        self.results = ResultFold.carried(cont.result, cont.result_started, cont.unreduced)
        self.hooks = HookErrors(cont.hook_errors)
        sched.feeding = bool(self.failures.feeds)
        for page in list(sched.failed):
            if not page.recorded:  # kept whole by a version before the ledger: record it
                self.failures.record_page(page, now)

    def begin_run(self, settings: ProcessorSettings, now: float) -> int:
        """The batch's first run: its first pages. Returns how many chains it starts with."""
        inp = self.inp
        self.settings = settings
        sched = Scheduler(settings, inp.max_parallelism, now, self._policy)
        sched.exact = self.patches.exact
        self._sched = sched
        cursors = inp.first_cursor_strs or [inp.first_cursor_str]
        if inp.redrive_source is not None:
            cursors = []
            self.failures.start_feed()  # its pages come from the old batch's ledger as it goes
        elif inp.redrive_pages:
            cursors = self.failures.enqueue_redrive_pages()
        elif inp.item_keys:
            cursors = self.failures.enqueue_item_pages(inp.item_keys)
        elif inp.window is not None and inp.window.is_empty():
            cursors = []  # nothing can be in the window: the batch ends with 0 pages
        else:
            sched.enqueue(None, [(c, inp.page_size) for c in cursors])
        if not sched.paused:
            self.flow.start(now)
        return len(cursors)

    # -- pages ---------------------------------------------------------------------------------

    def ours(self, execution: str, what: str, page_num: int) -> bool:
        """Whether a message comes from an attempt this batch execution started."""
        ours, tell = self.identity.judge(execution)
        if tell:
            self.log.warning(
                "ignored %s from page %d of another batch execution (%s) that used this "
                "workflow ID; its further messages are ignored without a log line",
                what,
                page_num,
                execution,
                page_num=page_num,
            )
        return ours

    def enqueue(self, parent: int | None, pages: list[tuple[str, int]], execution: str) -> int:
        """A page hands over its successors; how many were added."""
        sched = self._sched
        if sched is None or not self.ours(execution, "an enqueue", parent or 0):
            return 0
        result = sched.enqueue(parent, pages)
        for cursor, why in result.ignored:
            self.log.warning("ignored enqueued cursor %r: %s", cursor, why, page_num=parent)
        if result.added:
            self.woken = True
        return len(result.added)

    def attempt_cancelled(self, page_num: int) -> None:
        """An attempt was cancelled (the batch was, or the attempt's own handle)."""
        self.sched.running.discard(page_num)
        self.flow.forget(page_num)

    def attempt_succeeded(
        self,
        page_num: int,
        items: int,
        successors: list[tuple[str, int]] | None,
        seconds: float | None,
        value: Any,
        failed_items: tuple[int, list[ItemFailure] | None],
        now: float,
    ) -> None:
        """A page's current attempt succeeded.

        Successors it carried in its outcome are enqueued first (a page only enqueues while it is
        in flight).
        """
        self.woken = True
        self.checkpoints.drop(page_num)
        if successors:
            self.enqueue(page_num, successors, self.identity.execution)
        sched, flow = self.sched, self.flow
        flow.finished(
            page_num,
            now,
            ok=True,
            in_use=len(sched.running),
            max_parallelism=sched.max_parallelism,
            latency=seconds,
        )
        sched.complete(page_num, items, now)
        if self.settings is not None and self.settings.has_reduce and self.results.add(value):
            self.woken = True
        if flow.canary_due(sched.num_completed) and sched.pause(
            f"canary: {sched.num_completed} pages completed (canary_pages="
            f"{flow.canary_pages}); check their results, then resume the batch",
            now,
        ):
            self.log.warning("batch paused itself: %s", sched.pause_reason)
            flow.log_change("paused: canary", None, now)
            self.notice("paused", sched.pause_reason)
        self._record_items(*failed_items, now)

    def _record_items(self, count: int, items: list[ItemFailure] | None, now: float) -> None:
        """A completed page recorded failed items: count them, tell, let the policy judge."""
        if not count:
            return
        sched = self.sched
        if self.patches.budgets:
            items = self.failures.clean_items(items)
        sched.record_item_failures(count, items)
        if items:
            self.failures.record_items(items, now)
        if items and self.inp.notifier is not None:
            dropped = self.outbox.item_failures(items)
            if dropped:
                self.log.warning(
                    "the notifier is %d item failures behind; the oldest %d are not delivered "
                    "(they stay counted in progress)",
                    ITEMS_OUTBOX_LIMIT,
                    dropped,
                )
        self._check_policy(now)

    def attempt_failed(
        self, page_num: int, attempt: int, failure: AttemptFailure, now: float
    ) -> None:
        """A page's current attempt failed (or timed out, or never started)."""
        self.woken = True
        self.checkpoints.keep(page_num, failure.checkpoint)
        kind, message, worker_lost = failure.kind, failure.message, False
        if failure.timeout == "schedule_to_start":  # no worker took it: it did no work
            self.sched.not_started(page_num, attempt)
            self.flow.forget(page_num)
            return
        if failure.timeout == "heartbeat":
            message = "the page's worker stopped heartbeating (it died or its event loop blocked)"
            worker_lost = True
        self.fail_page(
            page_num, kind, message, failure.non_retryable, worker_lost=worker_lost, now=now
        )

    def fail_page(
        self,
        page_num: int,
        kind: str,
        message: str,
        non_retryable: bool,
        *,
        worker_lost: bool = False,
        now: float,
    ) -> None:
        sched = self.sched
        # A lost worker is not a failing downstream: the failure policy does not count it.
        worker_lost = worker_lost or kind == WORKER_SHUTDOWN_ERROR_TYPE
        unrun = kind == UNKNOWN_PROCESSOR_ERROR_TYPE
        self.flow.finished(
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
        log = self.log.warning if outcome in (Outcome.RETRY, Outcome.NOT_RUN) else self.log.error
        log("page %s: %s: %s", outcome.value, kind, message[:500], page_num=page_num)
        if outcome is Outcome.FAILED:
            page = sched.failed[-1]
            if self.inp.notifier is not None:
                self._queue_failed_page(page_failure(sched, page, whole=True))
            self.failures.record_page(page, now)
        self._check_policy(now)
        self.tell_stall(sched.check_stall(now))

    def _queue_failed_page(self, page: PageFailure) -> None:
        """Hand a page that failed for good, whole, to the notifier (bounded)."""
        dropped = self.outbox.failed_page(page, budgets=self.patches.budgets)
        if dropped:
            self.log.warning(
                "the notifier is %d KB of failed pages behind; the oldest %d are not delivered "
                "(they stay in the failure ledger: batch-orchestra failures ID --all)",
                NOTIFY_OUTBOX_BYTES // 1024,
                dropped,
            )

    def _check_policy(self, now: float) -> None:
        """The failure policy judges the batch: it may pause it (and the notifier is told)."""
        reason = self.sched.check_policy(now)
        if reason is not None:
            self.log.error("batch paused itself: %s", reason)
            self.notice("paused", reason)

    def notice(self, event: str, reason: str | None) -> None:
        """Queue an event for the notifier, if the batch has one."""
        if self.inp.notifier is not None:
            self.outbox.event(event, reason)

    def tell_stall(self, text: str | None) -> None:
        """A stall has just begun: log it and tell the notifier (once per stall)."""
        if text is None:
            return
        self.log.warning("batch stalled: %s", text)
        if self.patches.no_progress:
            self.notice("stalled", text)

    # -- starting pages ------------------------------------------------------------------------

    def take_starts(self, now: float) -> Starts:
        """The attempts and discoveries to start now (this workflow task's share).

        Also says whether flow control (not a lack of pages or slots) holds pages back, and when
        it may let more start (``throttle``, ``flow_wake``).
        """
        if self.state is not Lifecycle.RUNNING:
            return Starts(attempts=[], discoveries=[], more=False)
        inp, sched, flow = self.inp, self.sched, self.flow
        per_attempt = 600 + len(inp.args or "") + len(inp.batch_id) + len(inp.processor_name())
        budget = min(STARTS_PER_TASK, max(1, START_BYTES_PER_TASK // per_attempt))
        # With the payload budgets, each attempt's cursor counts too (16 KB cursors would
        # otherwise make one task's completion 8 MB).
        limit = budget
        if inp.pages_per_run is not None and not self.handover_put_off:
            limit = min(limit, max(0, inp.pages_per_run - self.started_this_run))
        sched.flow_cap, cap_reason = flow.cap(sched.max_parallelism, now)
        per_page = self._items_per_page()
        allowance = flow.allowance(now, per_page)
        if allowance is not None:
            limit = min(limit, allowance)
        budgets = self.patches.budgets
        if budgets:
            attempts = sched.take_runnable(
                limit, START_BYTES_PER_TASK, per_attempt, self.checkpoints.size_of
            )
        else:
            attempts = sched.take_runnable(limit)
        limited = sched.bytes_limited
        flow.started([a.page_num for a in attempts], now, per_page)
        self.started_this_run += len(attempts)
        if budgets:
            spent = sum(
                per_attempt + text_size(a.cursor) + self.checkpoints.size_of(a.page_num)
                for a in attempts
            )
            discoveries, more_discoveries = self._take_discoveries(
                budget - len(attempts), max(0, START_BYTES_PER_TASK - spent), per_attempt
            )
        else:
            discoveries, more_discoveries = self._take_discoveries(budget - len(attempts))
        waiting = bool(sched.ready) and not sched.paused
        room = len(sched.running) < sched.effective_parallelism
        by_rate = waiting and room and allowance is not None and len(attempts) == allowance
        by_cap = waiting and not room and sched.flow_cap is not None
        self.throttle = self._rate_reason() if by_rate else cap_reason if by_cap else None
        if by_rate or by_cap:
            self.flow_wake = flow.wake_at(now, per_page, by_rate=by_rate, by_cap=by_cap)
        more = more_discoveries or (
            (len(attempts) == budget or limited)
            and bool(sched.ready)
            and len(sched.running) < sched.effective_parallelism
        )
        return Starts(attempts=attempts, discoveries=discoveries, more=more)

    def _take_discoveries(
        self, budget: int, max_bytes: int | None = None, per_item: int = 0
    ) -> tuple[list[Any], bool]:
        """The discoveries that may start now, at most ``budget``; and whether more would have.

        ``budget`` is what is left of this workflow task's budget: each discovery carries the
        batch's args.
        """
        sched = self.sched
        if not sched.discovery_ready:
            return [], False
        budget = max(0, budget)
        taken = sched.take_discoveries(budget, max_bytes, per_item)
        more = (
            (len(taken) == budget or sched.bytes_limited)
            and bool(sched.discovery_ready)
            and not sched.paused
            and (len(sched.discovery_running) < MAX_RUNNING_DISCOVERIES)
        )
        return taken, more

    def _items_per_page(self) -> float:
        """Items one page is expected to hold.

        The average of the completed pages' reports, or the page size until pages report.
        """
        sched = self.sched
        if sched.num_completed and sched.num_completed_items:
            return max(1.0, sched.num_completed_items / sched.num_completed)
        return float(self.inp.page_size)

    def _rate_reason(self) -> str:
        s = self.flow.state
        return "rate limit: " + rates_text(s.max_pages_per_second, s.max_items_per_second)

    # -- discovery apart -----------------------------------------------------------------------

    def discovery_done(
        self,
        page_num: int,
        attempt: int,
        found: list[tuple[str, int]] | None,
        failure: AttemptFailure | None,
        cancelled: bool,
        now: float,
    ) -> None:
        """A discovery (``next_page``) ended: found pages, failed, or was cancelled."""
        sched = self.sched
        if not sched.is_current_discovery(page_num, attempt):
            return
        self.woken = True
        if cancelled or self.state is Lifecycle.CANCELLED:
            sched.discovery_not_run(page_num)
            return
        if failure is None:
            result = sched.discovered(page_num, found or [])
            for cursor, why in result.ignored:
                self.log.warning(
                    "ignored cursor %r from next_page: %s", cursor, why, page_num=page_num
                )
            return
        delay = sched.discovery_failed(page_num, failure.kind, failure.message, now)
        self.log.warning(
            "finding page %d's successors failed (attempt %d), retrying in %gs: %s: %s",
            page_num,
            attempt,
            delay,
            failure.kind,
            failure.message,
            page_num=page_num,
        )

    # -- quiet, hand-over and the end ----------------------------------------------------------

    def quiet(self) -> bool:
        """Nothing is in flight that a hand-over or the end must wait for.

        No tracker or notifier call, and (with the ledger) every failure written to it and handed
        to the notifier.
        """
        outbox = self.outbox
        if self.tracker_busy or outbox.calling or outbox.notices or outbox.items:
            return False
        return not self.patches.budgets or (self.failures.book.idle and not outbox.failed)

    def held_bytes(self) -> int:
        """About what the next run's input would carry.

        Held pages' cursors and values waiting for ``reduce`` (the page table is compressed);
        with the payload budgets, also the input, the result, the rest of the state and what the
        last measurement found the estimate to miss. The hand-over itself is measured (``fits``).
        """
        held = self.sched.held_bytes + self.results.unreduced_bytes + self.checkpoints.held_bytes
        if not self.patches.budgets:
            return held
        return (
            held
            + self._input_bytes
            + self.results.result_bytes
            + HANDOVER_STATE_BYTES
            + self._handover_correction
        )

    def too_big_to_hand_over(self) -> bool:
        return self.held_bytes() > MAX_HANDOVER_BYTES

    def put_off(self, size: int) -> None:
        """The next run's input, measured, is ``size`` bytes: too big. The run goes on.

        Pages run and release their cursors; the hand-over is tried again once the estimate,
        corrected by what this measurement found, fits.
        """
        self._handover_correction += max(0, size - self.held_bytes()) + 64 * 1024
        sched = self.sched
        for n in sched.running:  # still running here: no hand-over deadline after all
            if n not in sched.handed_over:
                sched.pages[n].report_deadline = sched.pages[n].confirm_by = None
        self.state = Lifecycle.RUNNING
        self.handover_put_off = True
        self.drain_timed_out = False
        self.log.warning(
            "hand-over put off: the next run's input would be %d KB (at most %d KB); pages run "
            "on until it fits",
            size // 1024,
            MAX_HANDOVER_BYTES // 1024,
        )

    def continuation(
        self, carried_input: dict[str, Any], now: float, heartbeat_seconds: float | None
    ) -> dict[str, Any]:
        """The next run's input: the batch's input and the state it carries over."""
        assert self.settings is not None
        nxt = dict(carried_input)
        # Attempts still running report by signal; past this they count as timed out.
        deadline = now + self.inp.page_timeout.total_seconds() + HANDOVER_REPORT_GRACE_SECONDS
        # An attempt that had started heartbeats into this closed run and says so by signal
        # within (the SDK sends a heartbeat at most every 0.8 heartbeat timeout); one that does
        # not never started, since Temporal drops the tasks of a closed run.
        # At-most-once pages are never run again on that guess (a late start would run them
        # twice): theirs count as timed out at the report deadline, visibly.
        confirm_by = (
            now + heartbeat_seconds + HANDOVER_CONFIRM_GRACE_SECONDS
            if heartbeat_seconds is not None and not self.settings.at_most_once
            else None
        )
        results = self.results
        nxt["continuation"] = continuation_to_wire(
            BatchContinuation(
                settings=self.settings,
                scheduler=scheduler_to_state(self.sched, deadline, confirm_by),
                tracker_next=self.tracker_next,
                flow=self.flow.state,
                result=results.result,
                result_started=results.started,
                unreduced=list(results.unreduced),
                hook_errors=self.hooks.records(),
                ledger=self.failures.book.state(self.failures.feeds),
                run_items=self.run_items,
                history=self.history.state(),
                checkpoints=self.checkpoints.state(self.sched.pages),
            )
        )
        return nxt

    def progress(self, now: float, *, history: bool = True) -> BatchOrchestratorProgress:
        """The batch's progress now (bounded: ``guard_progress``)."""
        if self._sched is None:
            return BatchOrchestratorProgress(max_parallelism=self.inp.max_parallelism)
        ended = self.state in (Lifecycle.FINISHED, Lifecycle.CANCELLED)
        p = build_progress(self._sched, now, self.inp.total_items, ended=ended)
        p.is_finished = self.state is Lifecycle.FINISHED
        p.is_cancelled = self.state is Lifecycle.CANCELLED
        p.redrive_of = self.inp.redrive_of
        p.window = self.inp.window
        if self._flow is not None:
            flow_progress(p, self._flow, None if ended else self.throttle)
        p.result, p.num_unreduced_pages = self.results.result, len(self.results.unreduced)
        p.result_error = self.results.error
        p.hook_errors = self.hooks.progress()
        book = self.failures.book
        p.num_ledger_records, p.ledger_redrive_record = book.seq, book.base
        p.history = self.history.samples() if history else []
        guard_progress(p)
        return p

    def should_hand_over(self, history_events: int, history_bytes: int) -> bool:
        """Whether this run has done enough to continue as new."""
        per_run = self.inp.pages_per_run
        if per_run is not None and self.started_this_run >= per_run:
            return True
        # Temporal's own suggestion comes at a few thousand events. Every hand-over costs a
        # drain of the running pages, so runs go on to a budget well inside the hard limits;
        # the workflow's state is small, so a longer history only costs replay time after a
        # cache eviction.
        return (
            self.updates_this_run >= UPDATES_PER_RUN
            or history_events >= HISTORY_EVENTS_PER_RUN
            or history_bytes >= HISTORY_BYTES_PER_RUN
        )

    @staticmethod
    def carried_input(raw: dict[str, Any]) -> dict[str, Any]:
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

    # -- hooks: tracker, notifier, health check, reduce ----------------------------------------

    def hook_failed(
        self, kind: str, name: str, error: str, now: float, event: str | None = None
    ) -> None:
        """A call of a hook failed after its retries (``error``: "Type: message")."""
        record = self.hooks.failed(kind, name, error, now, event)
        self.log.warning(
            "batch %s %r failed%s (%d in a row): %s",
            kind.replace("_", " "),
            name,
            f" on {event!r}" if event else "",
            record.consecutive,
            error,
        )

    def hook_ok(self, kind: str, now: float) -> None:
        if self.hooks.succeeded(kind, now):
            self.log.info("batch %s works again", kind.replace("_", " "))

    def _current(self) -> int:
        """The parallelism in force, which "slow down" halves."""
        sched = self.sched
        return sched.effective_parallelism if not sched.paused else sched.max_parallelism

    def health_verdict(self, state: str, reason: str | None, now: float) -> None:
        """The health check answered."""
        line = self.flow.health_verdict(
            state, reason, current=self._current(), max_parallelism=self.sched.max_parallelism
        )
        self.hook_ok("health_check", now)
        self._health_line(line, now)

    def health_failed(self, name: str, error: str, failures_before: int, now: float) -> None:
        """The health check's call failed."""
        self.hook_failed("health_check", name, error, now)
        line = self.flow.health_failed(
            error,
            failures_before,
            current=self._current(),
            max_parallelism=self.sched.max_parallelism,
        )
        self._health_line(line, now)

    def _health_line(self, line: str | None, now: float) -> None:
        self.woken = True
        if line is not None:
            self.log.warning(line)
            self.flow.log_change(line, None, now)

    def fold_failed(self, values: int, error: str, hook_error: str, now: float) -> None:
        """A fold of ``values`` waiting values failed after its retries: they wait."""
        results, sched = self.results, self.sched
        results.error = error
        self.hook_failed("reduce", self.inp.processor_name(), hook_error, now)
        self.log.error(
            "folding %d page values into the batch result failed: %s", values, results.error
        )
        if results.too_much_waiting and sched.pause(
            f"page values cannot be folded into the batch result ({results.error}); "
            "fix reduce, deploy the workers, then resume",
            now,
        ):
            self.log.error("batch paused itself: %s", sched.pause_reason)

    # -- operators' controls -------------------------------------------------------------------

    def changed(self, change: str, by: str | None, now: float) -> None:
        """Log a control change with who asked, and keep it for progress."""
        self.flow.log_change(change, by, now)
        self.log.info("%s (asked by %s)", change, by or "unknown")

    def _resumed(self, was_paused: bool, now: float) -> None:
        if was_paused and not self.sched.paused:
            self.flow.start(now)  # ramp up again

    def pause(self, by: str | None, now: float) -> None:
        if self.sched.pause("paused by an operator", now):
            self.changed("paused", by, now)

    def resume(self, by: str | None, now: float) -> None:
        sched = self.sched
        if sched.resume(now):
            self._resumed(True, now)
            self.changed(f"resumed at max_parallelism {sched.max_parallelism}", by, now)

    def refuse_resume(self) -> str | None:
        sched = self._sched
        if sched is not None and sched.paused and sched.max_parallelism == 0:
            return (
                "the batch was started with max_parallelism=0 and has no parallelism to resume "
                "to; use set_max_parallelism(n)"
            )
        return None

    def set_parallelism(self, n: int, by: str | None, now: float) -> None:
        sched = self.sched
        was_paused = sched.paused
        old = sched.set_parallelism(n, now)
        self._resumed(was_paused, now)
        self.changed(f"max_parallelism {old} -> {n}", by, now)

    def set_rates(self, limits: dict[str, float | None], by: str | None, now: float) -> None:
        flow = self.flow
        s = flow.state
        pages = limits.get("max_pages_per_second", s.max_pages_per_second)
        items = limits.get("max_items_per_second", s.max_items_per_second)
        old = (s.max_pages_per_second, s.max_items_per_second)
        flow.set_rates(pages, items, now)
        self.changed(f"rate limit {rates_text(*old)} -> {rates_text(pages, items)}", by, now)

    def refuse_redrive(self) -> str | None:
        if self.state in (Lifecycle.STARTING, Lifecycle.RUNNING, Lifecycle.HANDING_OVER):
            return None
        return (
            f"the batch is {self.state.value}: only a running batch takes a redrive; redrive "
            "a finished batch with BatchOrchestratorClient.redrive (it starts a new batch)"
        )

    def refuse_page_action(self, page_num: int, action: str) -> str | None:
        """Why ``action`` ("retry", "skip") cannot be done to ``page_num`` now, or None."""
        sched = self._sched
        if sched is None:
            return (
                "the batch has not started yet (its processor's settings are being read); "
                "try again in a moment"
            )
        if self.state in (Lifecycle.FINISHED, Lifecycle.CANCELLED):
            return f"the batch is {self.state.value}; there is no page to {action}"
        return sched.refuse_page_action(page_num, action)

    def retry_page(self, page_num: int, reason: str | None, by: str | None, now: float) -> None:
        """Start a pending, retrying or stuck page now, first in line."""
        sched = self.sched
        self.woken = True
        was = sched.retry_now(page_num)
        note = "; the batch is paused: it starts when the batch resumes" if sched.paused else ""
        why = f": {reason}" if reason else ""
        self.changed(f"page {page_num} retried now (it was {was}){why}{note}", by, now)

    def skip_page(self, page_num: int, reason: str, by: str | None, now: float) -> None:
        """Let a pending, retrying or stuck page go without processing it."""
        sched = self.sched
        self.woken = True
        was, goes_on = sched.skip(page_num)
        note = (
            ""
            if goes_on
            else (
                "; its chain ends here (its successors were never enqueued, and the processor has "
                "no next_page to find them)"
            )
        )
        self.changed(f"page {page_num} skipped (it was {was}): {reason}{note}", by, now)
