"""BatchOrchestrator: the thin workflow around the batch engine.

The engine (``batch_orchestra._engine``) holds the batch's state and rules. This class turns
Temporal's events (an activity ended, a message arrived) into the engine's events, and the
engine's decisions into commands: it starts the attempts and discoveries ``take_starts`` gives,
waits for the engine to be woken, and hands over or finishes when it says so. Its background
tasks and every activity call are in ``loops.py`` and ``calls.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from .._engine.controls import Controls
    from .._engine.engine import BatchEngine
    from .._engine.events import Patches
    from .._engine.items import ItemClose
    from .._engine.lifecycle import Lifecycle
    from .._exceptions import INVALID_INPUT_ERROR_TYPE, InvalidBatchInputError
    from .._model import BatchOrchestratorProgress, FailurePolicy, check_rate
    from .._model.messages import (
        BATCH_WORKFLOW_TYPE,
        ENQUEUE_MANY_UPDATE,
        ENQUEUE_SIGNAL,
        ENQUEUE_UPDATE,
        FAILURE_DETAILS_QUERY,
        ITEM_CLOSED_SIGNAL,
        ITEMS_CLOSED_SIGNAL,
        LIFECYCLE_QUERY,
        PAGE_FINISHED_SIGNAL,
        PAGE_RUNNING_SIGNAL,
        PAUSE_SIGNAL,
        PAUSE_UPDATE,
        PROGRESS_QUERY,
        REDRIVE_UPDATE,
        RESTORE_MAX_PARALLELISM_UPDATE,
        RESUME_SIGNAL,
        RESUME_UPDATE,
        RETRY_PAGE_UPDATE,
        SET_MAX_PARALLELISM_SIGNAL,
        SET_MAX_PARALLELISM_UPDATE,
        SET_RATE_LIMIT_SIGNAL,
        SET_RATE_LIMIT_UPDATE,
        SKIP_PAGE_UPDATE,
        EnqueueRequest,
        FailureDetails,
        FailureDetailsRequest,
        ItemClosed,
        ItemsClosed,
        PageOutcome,
    )
    from .calls import Calls
    from .details import failure_details
    from .drive import Driver
    from .log import WorkflowLog
    from .loops import Background

__all__ = ["INVALID_PAGE_ACTION_ERROR_TYPE", "LEDGER_PATCH", "BatchOrchestrator"]

INVALID_PAGE_ACTION_ERROR_TYPE = "BatchOrchestraInvalidPageAction"
"""The type of the error a ``retry_page`` or ``skip_page`` that cannot apply fails with."""
LEDGER_PATCH = "batch-orchestra-ledger-and-payload-budgets"
"""Runs begun before the failure ledger and the payload budgets existed replay without them."""
_DEFAULT_POLICY_PATCH = "batch-orchestra-default-failure-policy"
_NO_PROGRESS_PATCH = "batch-orchestra-no-progress"  # the no-progress pause, "stalled" notices
_FIRST_TASK_PATCH = "batch-orchestra-first-task-messages"  # pages' messages wait for the engine
_EXACT_CORE_PATCH = "batch-orchestra-exact-core"
"""The pure core's fixes found by its property tests (``Scheduler.exact``, ``FlowControl.exact``):
a run begun before them replays without."""


def _now() -> float:
    return workflow.now().timestamp()


# Not sandboxed: the sandbox's work on every activation (its restricted environment, proxied
# module access) was a third of the worker's CPU per page, with a workflow task per page or two
# (BENCHMARKS.md, Hops). This code is the library's own and deterministic by construction: time
# only from workflow.now(), no I/O, no randomness, no mutable module state; tests replay its
# histories, including those recorded from released versions (test_replay.py).
@workflow.defn(name=BATCH_WORKFLOW_TYPE, sandboxed=False)
class BatchOrchestrator:
    """Runs a batch: pages under a parallelism cap, retries, stuck pages, continue-as-new."""

    @workflow.init
    def __init__(self, raw: dict[str, Any]) -> None:
        execution = workflow.info().first_execution_run_id
        log = WorkflowLog(raw.get("batch_id", "") if isinstance(raw, dict) else "")
        self._engine = BatchEngine(raw, execution=execution, log=log, patched=workflow.patched)
        log.batch_id = self._engine.inp.batch_id
        self._calls = Calls(self._engine)
        self._background = Background(self._engine, self._calls)
        self._driver = Driver(self._engine, self._calls, self._background)

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> BatchOrchestratorProgress:
        """Run (this run of) the batch. ``raw`` is ``input_to_wire(BatchOrchestratorInput)``."""
        engine = self._engine
        if engine.input_error is not None:
            raise ApplicationError(
                engine.input_error, type=INVALID_INPUT_ERROR_TYPE, non_retryable=True
            )
        inp = engine.inp
        # The failure ledger, and the payload budgets that change which commands a run issues
        # (how many attempts a task starts, notifier chunks, when it hands over), are on for runs
        # begun by this version; a run begun before replays without them.
        budgets = workflow.patched(LEDGER_PATCH)
        policy = inp.failure_policy or (
            FailurePolicy() if workflow.patched(_DEFAULT_POLICY_PATCH) else FailurePolicy.disabled()
        )
        no_progress = workflow.patched(_NO_PROGRESS_PATCH)
        exact = workflow.patched(_EXACT_CORE_PATCH)
        patches = Patches(budgets=budgets, no_progress=no_progress, exact=exact)
        engine.configure(patches, policy, engine.handover.carried_input(raw))
        engine.item_prefix = self._calls.item_prefix()
        if engine.cont is not None:
            engine.resume_run(_now())
        else:
            chains = engine.begin_run(await self._calls.describe(), _now())
            assert engine.settings is not None
            engine.log.info(
                "batch started: %s, page_size %d, max_parallelism %d, %d chain(s)",
                engine.settings.name,
                inp.page_size,
                inp.max_parallelism,
                chains,
            )
        engine.state = Lifecycle.RUNNING
        engine.woken = True
        self._background.start()

        nxt: dict[str, Any] | None = None
        try:
            while True:
                await self._driver.drive()
                await workflow.wait_condition(engine.quiet)
                if engine.state is Lifecycle.FINISHED or not budgets:
                    break
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not engine.quiet():
                    continue  # a handler began something: drain again
                nxt = self._driver.continuation(raw)
                if self._driver.fits(nxt):
                    break
                nxt = None
        except asyncio.CancelledError:
            await self._driver.cancel()
            raise
        if self._driver.drain_timer is not None:
            self._background.tasks.append(self._driver.drain_timer)
        self._background.stop()
        if engine.state is not Lifecycle.FINISHED:
            if nxt is None:  # a run begun before the payload budgets: as it did then
                await workflow.wait_condition(workflow.all_handlers_finished)
                nxt = self._driver.continuation(raw)
            workflow.continue_as_new(nxt)
        if engine.settings is not None and engine.settings.has_reduce:
            await self._background.fold_all()
        if inp.batch_tracker is not None:
            await self._background.call_tracker(is_final=True)
        if inp.notifier is not None:
            await self._background.notify("finished", None, [])
        await workflow.wait_condition(workflow.all_handlers_finished)
        engine.history.observe(_now(), engine.sched, force=True)
        progress = engine.progress(_now())
        engine.log.info(
            "batch finished: %d pages completed, %d failed",
            progress.num_completed_pages,
            progress.num_failed_pages,
        )
        return progress

    # -- pages' messages -----------------------------------------------------------------------

    async def _engine_for(self, execution: str, what: str, page_num: int) -> bool:
        """Whether a page's message applies (it is ours and the engine is built).

        A message can reach a run in its first workflow task, before the run has built its
        scheduler (a continued run builds it from its input, a new one once the processor's
        settings are read): it waits for it. Runs begun before this patch dropped it (a lost
        successor, a page run again), and replay so.
        """
        engine = self._engine
        if not engine.started and engine.ours(execution, what, page_num):
            if not workflow.patched(_FIRST_TASK_PATCH):
                return False
            await workflow.wait_condition(lambda: engine.started)
        return engine.started and engine.ours(execution, what, page_num)

    async def _enqueue(self, req: EnqueueRequest) -> int:
        """Apply a page's enqueue once the run has its scheduler (see ``_engine_for``)."""
        engine = self._engine
        if not engine.started:
            await self._engine_for(req.execution, "an enqueue", req.parent_page_num)
        pages = [(p.cursor_str, p.size) for p in req.pages]
        return engine.enqueue(req.parent_page_num, pages, req.execution)

    @workflow.signal(name=ENQUEUE_SIGNAL)
    async def enqueue_pages(self, req: EnqueueRequest) -> None:
        """A running page hands over its successor page(s) (fire-and-forget form)."""
        await self._enqueue(req)

    @workflow.update(name=ENQUEUE_UPDATE)
    async def enqueue(self, req: EnqueueRequest) -> int:
        """A running page hands over its successor page(s); returns how many were added.

        The update form is what pages use: an update's workflow task is dispatched with the
        update, while a signal's goes through the history service's transfer queue, which a
        server with Temporal's default config reads only 20 times a second (docs/architecture.md,
        "Why an update and not a signal").
        """
        self._engine.handover.updates_this_run += 1
        return await self._enqueue(req)

    @workflow.update(name=ENQUEUE_MANY_UPDATE)
    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> int:
        """Several pages' enqueues in one update (a worker coalesces them under load)."""
        self._engine.handover.updates_this_run += 1
        return sum([await self._enqueue(req) for req in reqs])

    @workflow.signal(name=PAGE_FINISHED_SIGNAL)
    async def page_finished(self, outcome: PageOutcome) -> None:
        """A long attempt reports how it ended (it may have been started by an earlier run)."""
        engine = self._engine
        n = outcome.page_num
        if not await self._engine_for(outcome.execution, "page_finished", n):
            return
        if engine.state is Lifecycle.CANCELLED or not engine.sched.is_current(n, outcome.attempt):
            return
        if outcome.error_type is None:
            successors = [(p.cursor_str, p.size) for p in outcome.successors or []]
            engine.attempt_succeeded(
                n,
                outcome.items,
                successors,
                outcome.seconds,
                outcome.value,
                (outcome.num_failed_items, outcome.failed_items),
                _now(),
                outcome.opened_items,
            )
        else:
            engine.woken = True
            engine.checkpoints.keep(n, outcome.checkpoint)
            engine.fail_page(
                n, outcome.error_type, outcome.error_message, outcome.non_retryable, now=_now()
            )

    @workflow.signal(name=PAGE_RUNNING_SIGNAL)
    async def page_running(self, outcome: PageOutcome) -> None:
        """An attempt handed over at a hand-over says it had started and still runs."""
        if await self._engine_for(outcome.execution, "page_running", outcome.page_num):
            self._engine.sched.confirm_started(outcome.page_num, outcome.attempt)

    @workflow.signal(name=ITEM_CLOSED_SIGNAL)
    async def item_closed(self, msg: ItemClosed) -> None:
        """An item workflow this batch started has closed (``reports_to_batch``)."""
        if not await self._engine_for(msg.execution, "an item's close", 0):
            return
        self._count_closes([msg], msg.execution)

    @workflow.signal(name=ITEMS_CLOSED_SIGNAL)
    async def items_closed(self, msg: ItemsClosed) -> None:
        """Item workflows this batch started have closed (told by the worker that follows them)."""
        if await self._engine_for(msg.execution, "items' closes", 0):
            self._count_closes(msg.closed, msg.execution)

    def _count_closes(self, closed: list[ItemClosed], execution: str) -> None:
        now = _now()
        for c in closed:
            close = ItemClose(c.key, c.ok, c.error_type, c.error_message[:500], now)
            self._engine.item_closed(close, execution, now)

    # -- queries -------------------------------------------------------------------------------

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> BatchOrchestratorProgress:
        """The batch's progress now."""
        return self._engine.progress(_now())

    @workflow.query(name=LIFECYCLE_QUERY)
    def lifecycle(self) -> str:
        """Where this run is ("running", "handing_over", "cancelled", ...).

        A page whose attempt is cancelled asks, to tell a hand-over from a cancelled batch.
        """
        return self._engine.state.value

    @workflow.query(name=FAILURE_DETAILS_QUERY)
    def failure_details(self, req: FailureDetailsRequest) -> FailureDetails:
        """Whole cursors and keys of failing pages and items the batch holds in memory.

        "stuck", "retrying" and "discovering": the pages it holds (progress shows previews);
        "failed" and "items": those not yet written to the ledger. At most ``max_bytes`` (and
        ``FAILURE_DETAILS_BYTES``) per answer; ``next_after`` says where the next page starts.
        """
        return failure_details(self._engine, req)

    # -- operators' controls -------------------------------------------------------------------

    async def _control(self) -> Controls:
        """The engine's controls, once the batch has started (a control made before waits)."""
        engine = self._engine
        await workflow.wait_condition(lambda: engine.started)
        engine.woken = True
        return engine.controls

    @workflow.update(name=PAUSE_UPDATE)
    async def pause(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Pause: running pages finish, no page starts until ``resume``.

        ``by``: who asks (for the log). Returns the progress.
        """
        (await self._control()).pause(by, _now())
        return self._engine.progress(_now())

    @workflow.update(name=RESUME_UPDATE)
    async def resume(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Resume a paused batch at its parallelism cap (ramping up again if it has a ``ramp_up``).

        Returns the progress.
        """
        (await self._control()).resume(by, _now())
        return self._engine.progress(_now())

    @resume.validator
    def _validate_resume(self, by: str | None = None) -> None:
        refusal = self._engine.controls.refuse_resume()
        if refusal is not None:
            raise ValueError(refusal)

    @workflow.update(name=SET_MAX_PARALLELISM_UPDATE)
    async def set_max_parallelism(self, n: int, by: str | None = None) -> BatchOrchestratorProgress:
        """Set the parallelism cap (0 pauses), remembering the old one.

        A batch paused by ``pause`` or by its failure policy stays paused; ``resume`` then returns
        to ``n``. Returns the progress.
        """
        (await self._control()).set_parallelism(n, by, _now())
        return self._engine.progress(_now())

    @set_max_parallelism.validator
    def _validate_set_max_parallelism(self, n: int, by: str | None = None) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"max_parallelism must be an int >= 0 (0 pauses), got {n!r}")

    @workflow.update(name=RESTORE_MAX_PARALLELISM_UPDATE)
    async def restore_max_parallelism(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Return to the parallelism cap before the last change. Returns the progress."""
        await self._control()
        previous = self._engine.sched.previous_parallelism
        (await self._control()).set_parallelism(previous, by, _now())
        return self._engine.progress(_now())

    @workflow.update(name=SET_RATE_LIMIT_UPDATE)
    async def set_rate_limit(
        self, limits: dict[str, float | None], by: str | None = None
    ) -> BatchOrchestratorProgress:
        """Set or lift (None) ``max_pages_per_second`` and ``max_items_per_second``.

        A key left out keeps its limit. Returns the progress.
        """
        (await self._control()).set_rates(limits, by, _now())
        return self._engine.progress(_now())

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

    @workflow.signal(name=PAUSE_SIGNAL)
    async def pause_signal(self) -> None:
        """Fire-and-forget ``pause``."""
        (await self._control()).pause(None, _now())

    @workflow.signal(name=RESUME_SIGNAL)
    async def resume_signal(self) -> None:
        """Fire-and-forget ``resume`` (ignored when there is nothing to resume to)."""
        await self._control()
        if self._engine.sched.max_parallelism > 0:
            (await self._control()).resume(None, _now())

    @workflow.signal(name=SET_MAX_PARALLELISM_SIGNAL)
    async def set_max_parallelism_signal(self, n: int) -> None:
        """Fire-and-forget ``set_max_parallelism`` (an invalid value is logged and ignored)."""
        try:
            self._validate_set_max_parallelism(n)
        except ValueError as err:
            workflow.logger.warning("ignored set_max_parallelism_signal: %s", err)
            return
        (await self._control()).set_parallelism(n, None, _now())

    @workflow.signal(name=SET_RATE_LIMIT_SIGNAL)
    async def set_rate_limit_signal(self, limits: dict[str, float | None]) -> None:
        """Fire-and-forget ``set_rate_limit`` (an invalid value is logged and ignored)."""
        try:
            self._validate_set_rate_limit(limits)
        except ValueError as err:
            workflow.logger.warning("ignored set_rate_limit_signal: %s", err)
            return
        (await self._control()).set_rates(limits, None, _now())

    # -- recovery: one page, or every failed page ----------------------------------------------

    def _page_action(self, page_num: int, action: str) -> Controls:
        controls = self._engine.controls
        why = controls.refuse_page_action(page_num, action)
        if why is not None:
            raise ApplicationError(why, type=INVALID_PAGE_ACTION_ERROR_TYPE, non_retryable=True)
        return controls

    @workflow.update(name=RETRY_PAGE_UPDATE)
    def retry_page(
        self, page_num: int, reason: str | None = None, by: str | None = None
    ) -> BatchOrchestratorProgress:
        """Start a pending, retrying or stuck page now, first in line.

        It does not wait for its next scheduled retry. ``reason`` and ``by`` (who asks) go to the
        log. Returns the progress.
        """
        self._page_action(page_num, "retry").retry_page(page_num, reason, by, _now())
        return self._engine.progress(_now())

    @retry_page.validator
    def _validate_retry_page(
        self, page_num: int, reason: str | None = None, by: str | None = None
    ) -> None:
        why = self._engine.controls.refuse_page_action(page_num, "retry")
        if why is not None:
            raise ValueError(why)

    @workflow.update(name=SKIP_PAGE_UPDATE)
    def skip_page(
        self, page_num: int, reason: str, by: str | None = None
    ) -> BatchOrchestratorProgress:
        """Let a pending, retrying or stuck page go without processing it.

        It counts as skipped (not failed). Its chain goes on if its successors are known or its
        processor finds them apart (``next_page``, then run for it now). Returns the progress.
        """
        self._page_action(page_num, "skip").skip_page(page_num, reason, by, _now())
        return self._engine.progress(_now())

    @skip_page.validator
    def _validate_skip_page(self, page_num: int, reason: str, by: str | None = None) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(
                f"give a reason to skip page {page_num} (it is logged), got {reason!r}"
            )
        why = self._engine.controls.refuse_page_action(page_num, "skip")
        if why is not None:
            raise ValueError(why)

    @workflow.update(name=REDRIVE_UPDATE)
    async def redrive(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Queue every failed page again with a fresh retry budget.

        Every one: those in the batch's memory now, the others as they are read back from its
        failure ledger (they count as pending meanwhile). ``num_failed_pages`` goes to 0. A paused
        batch stays paused (resume it to run them). Returns the progress.
        """
        controls = await self._control()
        refusal = controls.refuse_redrive()
        if refusal is not None:  # it finished while the update waited for the scheduler
            raise ApplicationError(refusal, non_retryable=True)
        controls.redrive(workflow.info().workflow_id, by, _now())
        return self._engine.progress(_now())

    @redrive.validator
    def _validate_redrive(self, by: str | None = None) -> None:
        refusal = self._engine.controls.refuse_redrive()
        if refusal is not None:
            raise ValueError(refusal)
