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
from datetime import datetime, timezone
from typing import Any

from .._exceptions import (
    UNKNOWN_PROCESSOR_ERROR_TYPE,
    WORKER_SHUTDOWN_ERROR_TYPE,
)
from .._model import (
    BatchOrchestratorProgress,
    FailurePolicy,
    ItemFailure,
    PageFailure,
    ProcessorSettings,
)
from .admission import Admission
from .budgets import NOTIFY_OUTBOX_BYTES, wire_size
from .continuation import scheduler_from_state
from .controls import Controls
from .events import AttemptFailure, Log, Patched, Patches
from .failure_ledger import FailureLedger
from .flow import FlowControl, FlowState
from .handover import Handover
from .hook_calls import HookCalls
from .hook_errors import HookErrors
from .items import ItemBook, ItemClose, closed_error_type
from .lifecycle import Lifecycle
from .outbox import ITEMS_OUTBOX_LIMIT
from .progress import build_progress, flow_progress, guard_progress, page_failure
from .results import ResultFold
from .run_state import RunState
from .scheduler import Outcome, Scheduler

__all__ = ["BatchEngine"]


class BatchEngine(RunState):
    """The state of one run of a batch and every rule about it.

    Its parts: the scheduler (pages, chains, retries, the failure policy, discovery), flow
    control, the checkpoints, the notifier's outbox, the result, the failure ledger, the hooks'
    outcomes, the operator's controls and the hand-over.
    """

    def __init__(self, raw: dict[str, Any], *, execution: str, log: Log, patched: Patched) -> None:
        super().__init__(raw, execution=execution, log=log, patched=patched)
        self.item_prefix = ""
        """What this batch's item workflow IDs start with (the shell knows its workflow ID)."""
        self.failures = FailureLedger(self)
        self.hooks = HookCalls(self)
        self.handover = Handover(self, self.failures)
        self.controls = Controls(self, self.failures)
        self.admission = Admission(self, self.handover)

    # -- building ------------------------------------------------------------------------------

    def configure(self, patches: Patches, policy: FailurePolicy, carried_input: Any) -> None:
        """The run's patches and failure policy are known: build flow control."""
        self.patches = patches
        if patches.budgets:
            self.handover.input_bytes = wire_size(carried_input)
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
        if inp.max_open_items is not None:
            carried = self.cont.items if self.cont is not None else None
            self.items = ItemBook.restore(inp.max_open_items, carried)

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
        self.hook_errors = HookErrors(cont.hook_errors)
        sched.set_feeding(bool(self.failures.feeds))
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
        self.sched.forget_running(page_num)
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
        opened_items: list[str] | None = None,
    ) -> None:
        """A page's current attempt succeeded.

        Successors it carried in its outcome are enqueued first (a page only enqueues while it is
        in flight); the item workflows it started are open from now (before the page stops
        reserving room for them).
        """
        self.woken = True
        self.checkpoints.drop(page_num)
        if successors:
            self.enqueue(page_num, successors, self.identity.execution)
        if opened_items:
            self._items_opened(page_num, opened_items, now)
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
            self.paused_itself(sched.pause_reason, now, change="paused: canary")
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
            self.paused_itself(reason, now)

    def tell_stall(self, text: str | None) -> None:
        """A stall has just begun: log it and tell the notifier (once per stall)."""
        if text is None:
            return
        self.log.warning("batch stalled: %s", text)
        if self.patches.no_progress:
            self.notice("stalled", text)

    # -- item workflows ------------------------------------------------------------------------

    @property
    def is_finished(self) -> bool:
        """No page is left and no item workflow is open."""
        return self.sched.is_finished and (self.items is None or not self.items.open)

    def _items_opened(self, page_num: int, keys: list[str], now: float) -> None:
        if self.items is None:
            self.log.warning(
                "page %d started %d item workflows but the batch has no max_open_items: they are "
                "not tracked",
                page_num,
                len(keys),
                page_num=page_num,
            )
            return
        for c in self.items.opened(page_num, keys, now):
            self._item_counted(c, now)

    def item_closed(self, c: ItemClose, execution: str, now: float) -> None:
        """An item workflow says it closed."""
        if self.items is None or not self.ours(execution, "an item's close", 0):
            return
        if self.items.close(c):
            self._item_counted(c, now)

    def items_checked(self, found: list[tuple[str, str, str]], now: float) -> None:
        """A check found these (key, status, message) item workflows closed."""
        if self.items is None:
            return
        for key, status, message in found:
            if key not in self.items.open or status == "CONTINUED_AS_NEW":
                continue
            ok = status == "COMPLETED"
            kind = None if ok else closed_error_type(status)
            text = message or f"the item's workflow closed as {status} without telling the batch"
            c = ItemClose(key, ok, kind, text[:500], now)
            if self.items.close(c):
                self._item_counted(c, now)

    def _item_counted(self, c: ItemClose, now: float) -> None:
        """An item workflow's close counts: wake the batch (there is room for a page).

        A failure is an item failure like any other: listed, in the ledger, told, judged.
        """
        self.woken = True
        if c.ok:
            return
        failure = ItemFailure(
            key=c.key,
            page_num=c.page_num,
            error_type=c.error_type or "ItemWorkflowFailed",
            error_message=c.error_message[:500],
            failed_at=datetime.fromtimestamp(c.at or now, tz=timezone.utc),
            key_length=len(c.key),
        )
        self._record_items(1, [failure], now)

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

    def quiet(self) -> bool:
        """Nothing is in flight that a hand-over or the end must wait for.

        No tracker or notifier call, and (with the ledger) every failure written to it and handed
        to the notifier.
        """
        outbox = self.outbox
        if self.tracker_busy or outbox.calling or outbox.notices or outbox.items:
            return False
        return not self.patches.budgets or (self.failures.book.idle and not outbox.failed)

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
            flow_progress(p, self._flow, None if ended else self.admission.throttle)
        p.result, p.num_unreduced_pages = self.results.result, len(self.results.unreduced)
        p.result_error = self.results.error
        p.hook_errors = self.hook_errors.progress()
        book = self.failures.book
        p.num_ledger_records, p.ledger_redrive_record = book.seq, book.base
        p.history = self.history.samples() if history else []
        if self.items is not None:
            it = self.items
            p.max_open_items = it.max_open
            p.num_items_started, p.num_items_open = it.started, len(it.open)
            p.num_items_completed, p.num_items_failed = it.completed, it.failed
            p.item_workflow_prefix = self.item_prefix
        guard_progress(p)
        return p
