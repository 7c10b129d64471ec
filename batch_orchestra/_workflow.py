"""BatchOrchestrator: the thin workflow around the Scheduler."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from ._activities import (
        DescribeBatchInput,
        EnqueueRequest,
        PageOutcome,
        PageResult,
        ProcessPageInput,
        TrackerInput,
        describe_batch,
        process_page,
        run_batch_tracker,
    )
    from ._exceptions import INVALID_INPUT_ERROR_TYPE, InvalidBatchInputError
    from ._processor import BatchPage
    from ._scheduler import Attempt, Scheduler
    from ._types import (
        BatchOrchestratorInput,
        BatchOrchestratorProgress,
        ProcessorSettings,
        input_from_wire,
    )

__all__ = ["BatchOrchestrator"]

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
_PAGE_RETRY = RetryPolicy(maximum_attempts=1)  # the workflow itself retries pages
_NO_SETTINGS = ProcessorSettings(
    name="", at_most_once=True, maximum_attempts=1, initial_interval_seconds=1.0,
    backoff_coefficient=1.0, maximum_interval_seconds=1.0, non_retryable_error_types=[],
    use_extended_retries=False, extended_retry_interval_seconds=1.0,
)


# Not sandboxed: the sandbox's work on every activation (its restricted environment, proxied
# module access) was a third of the worker's CPU per page, with a workflow task per page or two
# (BENCHMARKS.md, Hops). This code is the library's own and deterministic by construction: time
# only from workflow.now(), no I/O, no randomness, no mutable module state; tests replay its
# histories (test_replay.py).
@workflow.defn(name="BatchOrchestrator", sandboxed=False)
class BatchOrchestrator:
    """Runs a batch: pages under a parallelism cap, retries, stuck pages, continue-as-new."""

    @workflow.init
    def __init__(self, raw: dict[str, Any]) -> None:
        self._dirty = False
        self._draining = False
        self._finished = False
        self._tracker_busy = False
        self._started_this_run = 0
        self._cancelled = False
        self._updates_this_run = 0
        self._drain_timed_out = False
        self._drain_timer: asyncio.Future[None] | None = None
        self._attempts: dict[int, workflow.ActivityHandle[PageResult]] = {}
        self._settings: ProcessorSettings | None = None
        self._input_error: str | None = None
        self._inp: BatchOrchestratorInput | None = None
        self._tracker_next: float | None = None
        cont = raw.get("continuation") if isinstance(raw, dict) else None
        try:
            self._inp = input_from_wire(raw)
        except InvalidBatchInputError as err:
            self._input_error = str(err)
        if cont:
            self._settings = ProcessorSettings(**cont["settings"])
            self._sched = Scheduler.from_dict(self._settings, cont["scheduler"])
            self._tracker_next = cont.get("tracker_next")
        else:
            # The processor's settings arrive in run(); no page can fail before that.
            parallelism = self._inp.max_parallelism if self._inp else 0
            self._sched = Scheduler(_NO_SETTINGS, parallelism, workflow.now().timestamp())

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> BatchOrchestratorProgress:
        """Run (this run of) the batch. ``raw`` is ``input_to_wire(BatchOrchestratorInput)``."""
        if self._input_error is not None or self._inp is None:
            raise ApplicationError(
                self._input_error or "invalid input", type=INVALID_INPUT_ERROR_TYPE,
                non_retryable=True,
            )
        inp, sched = self._inp, self._sched
        if self._settings is None:
            self._settings = sched.settings = await self._describe(inp)
            cursors = inp.first_cursor_strs or [inp.first_cursor_str]
            sched.enqueue(None, [(c, inp.page_size) for c in cursors])
            workflow.logger.info(
                "batch started: %s, page_size %d, max_parallelism %d, %d chain(s)",
                self._settings.name, inp.page_size, inp.max_parallelism, len(cursors),
                extra=self._extra(),
            )
        settings = self._settings

        background: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._retry_timer())]
        if inp.batch_tracker is not None:
            background.append(asyncio.ensure_future(self._tracker_loop()))

        try:
            await self._drive()
            if self._finished:
                await workflow.wait_condition(lambda: not self._tracker_busy)
        except asyncio.CancelledError:
            await self._cancel(background)
            raise
        if self._drain_timer is not None:
            background.append(self._drain_timer)
        for task in background:
            task.cancel()
        if not self._finished:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(self._continuation(raw, settings))
        if inp.batch_tracker is not None:
            await self._call_tracker(is_final=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        progress = self._progress()
        workflow.logger.info(
            "batch finished: %d pages completed, %d failed",
            progress.num_completed_pages, progress.num_failed_pages, extra=self._extra(),
        )
        return progress

    async def _drive(self) -> None:
        """Start pages as slots free up until the batch is finished or must hand over."""
        sched = self._sched
        while True:
            self._start_runnable()
            if sched.is_finished:
                break
            if not self._draining and self._should_continue_as_new():
                self._draining = True
                self._drain_timer = asyncio.ensure_future(self._drain_deadline())
                workflow.logger.info(
                    "handing over to a new run after %d page attempts; waiting for %d running",
                    self._started_this_run, len(sched.running), extra=self._extra(),
                )
            if self._draining and not self._tracker_busy and (
                not sched.running or self._drain_timed_out
            ):
                break
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False
        self._finished = sched.is_finished
        self._dirty = True

    async def _drain_deadline(self) -> None:
        assert self._inp is not None
        await workflow.sleep(self._inp.handover_wait)
        self._drain_timed_out = self._dirty = True

    async def _cancel(self, background: list[asyncio.Future[Any]]) -> None:
        """The batch was cancelled: start nothing more, cancel running attempts, tell the
        tracker, then let the cancellation close the workflow."""
        self._cancelled = True
        for task in background:
            task.cancel()
        running = list(self._attempts.values())
        for handle in running:
            handle.cancel()
        workflow.logger.warning(
            "batch cancelled with %d page(s) running; they were asked to stop", len(running),
            extra=self._extra(),
        )
        inp = self._inp
        if inp is not None and inp.batch_tracker is not None:
            await self._call_tracker(is_final=True)

    async def _describe(self, inp: BatchOrchestratorInput) -> ProcessorSettings:
        tracker = inp.batch_tracker.name if inp.batch_tracker is not None else None
        try:
            return await workflow.execute_local_activity(
                describe_batch,
                DescribeBatchInput(inp.processor_name(), tracker),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(
                    cause.message, type=cause.type, non_retryable=True
                ) from None
            raise

    def _extra(self, page_num: int | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"batch_id": self._inp.batch_id if self._inp else ""}
        if page_num is not None:
            extra["page_num"] = page_num
        return extra

    def _should_continue_as_new(self) -> bool:
        assert self._inp is not None
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

    def _start_runnable(self) -> None:
        sched, inp = self._sched, self._inp
        assert inp is not None
        if self._draining:
            return
        limit = None
        if inp.pages_per_run is not None:
            limit = max(0, inp.pages_per_run - self._started_this_run)
        for att in sched.take_runnable(limit):
            self._started_this_run += 1
            self._start_attempt(att, inp)

    def _start_attempt(self, att: Attempt, inp: BatchOrchestratorInput) -> None:
        handle = workflow.start_activity(
            process_page,
            ProcessPageInput(
                processor=inp.processor_name(),
                page=BatchPage(att.cursor, att.size),
                page_num=att.page_num,
                attempt=att.attempt,
                args=inp.args,
                batch_id=inp.batch_id,
                successor_enqueued=att.successor_enqueued,
                report_after_seconds=inp.handover_wait.total_seconds() / 2,
            ),
            start_to_close_timeout=inp.page_timeout,
            retry_policy=_PAGE_RETRY,
            activity_id=f"page-{att.page_num}-attempt-{att.attempt}",
            summary=f"page {att.page_num}",
        )
        self._attempts[att.page_num] = handle
        handle.add_done_callback(
            lambda fut: self._on_attempt_done(att.page_num, att.attempt, fut)
        )

    def _on_attempt_done(
        self, page_num: int, attempt: int, fut: asyncio.Future[PageResult]
    ) -> None:
        sched = self._sched
        self._dirty = True
        self._attempts.pop(page_num, None)
        if self._cancelled or fut.cancelled():
            sched.running.discard(page_num)
            return
        if not sched.is_current(page_num, attempt):
            return  # its outcome already arrived by signal
        err = fut.exception()
        if err is None:
            result = fut.result()
            self._complete_page(page_num, result.items, result.successors)
            return
        cause = err.cause if isinstance(err, ActivityError) else err
        if isinstance(cause, ApplicationError):
            kind, message, non_retryable = cause.type or "Error", cause.message, cause.non_retryable
        elif isinstance(cause, TimeoutError):
            kind, message, non_retryable = "Timeout", f"page timed out ({cause.type})", False
        else:
            kind, message, non_retryable = type(cause).__name__, str(cause), False
        self._fail_page(page_num, kind, message, non_retryable)

    def _complete_page(
        self, page_num: int, items: int, successors: list[BatchPage] | None
    ) -> None:
        """A page succeeded; successors it carried in its outcome are enqueued first (a page
        only enqueues while it is in flight)."""
        if successors:
            self._apply_enqueue(EnqueueRequest(page_num, successors))
        self._sched.complete(page_num, items, workflow.now().timestamp())

    def _fail_page(self, page_num: int, kind: str, message: str, non_retryable: bool) -> None:
        outcome = self._sched.fail(
            page_num, kind, message, non_retryable, workflow.now().timestamp()
        )
        log = workflow.logger.error if outcome != "retry" else workflow.logger.warning
        log("page %s: %s: %s", outcome, kind, message, extra=self._extra(page_num))

    @workflow.signal(name="batch_orchestra.page_finished")
    def page_finished(self, outcome: PageOutcome) -> None:
        """A long attempt reports how it ended (it may have been started by an earlier run)."""
        sched = self._sched
        if self._cancelled or not sched.is_current(outcome.page_num, outcome.attempt):
            return
        self._dirty = True
        if outcome.error_type is None:
            self._complete_page(outcome.page_num, outcome.items, outcome.successors)
        else:
            self._fail_page(
                outcome.page_num, outcome.error_type, outcome.error_message, outcome.non_retryable
            )

    async def _retry_timer(self) -> None:
        sched = self._sched
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

    async def _tracker_loop(self) -> None:
        inp = self._inp
        assert inp is not None and inp.batch_tracker is not None
        interval = inp.batch_tracker.interval.total_seconds()
        while True:
            now = workflow.now().timestamp()
            if self._tracker_next is None:
                self._tracker_next = now + interval
            delay = self._tracker_next - now
            if delay > 0:
                await workflow.sleep(timedelta(seconds=delay))
            if self._draining or self._finished:
                return
            self._tracker_next = workflow.now().timestamp() + interval
            await self._call_tracker(is_final=False)

    async def _call_tracker(self, *, is_final: bool) -> None:
        inp = self._inp
        assert inp is not None and inp.batch_tracker is not None
        self._tracker_busy = True
        try:
            await workflow.execute_activity(
                run_batch_tracker,
                TrackerInput(
                    inp.batch_tracker.name, inp.batch_tracker.args, inp.batch_id,
                    self._progress(), is_final,
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            workflow.logger.warning("batch tracker failed: %s", err.cause, extra=self._extra())
        finally:
            self._tracker_busy = False
            self._dirty = True

    def _continuation(self, raw: dict[str, Any], settings: ProcessorSettings) -> dict[str, Any]:
        assert self._inp is not None
        nxt = {k: v for k, v in raw.items() if k != "continuation"}
        nxt["first_cursor_str"], nxt["first_cursor_strs"] = "", None
        nxt["continuation"] = {
            "settings": settings.__dict__,
            # Attempts still running report by signal; past this they count as timed out.
            "scheduler": self._sched.to_dict(
                workflow.now().timestamp() + self._inp.page_timeout.total_seconds()
                + HANDOVER_REPORT_GRACE_SECONDS
            ),
            "tracker_next": self._tracker_next,
        }
        return nxt

    def _progress(self) -> BatchOrchestratorProgress:
        p = self._sched.progress(
            workflow.now().timestamp(), self._inp.total_items if self._inp else None
        )
        p.is_finished = self._finished
        p.is_cancelled = self._cancelled
        return p

    def _apply_enqueue(self, req: EnqueueRequest) -> int:
        sched = self._sched
        result = sched.enqueue(req.parent_page_num, [(p.cursor_str, p.size) for p in req.pages])
        for cursor, why in result.ignored:
            workflow.logger.warning(
                "ignored enqueued cursor %r: %s", cursor, why,
                extra=self._extra(req.parent_page_num),
            )
        if result.added:
            self._dirty = True
        return len(result.added)

    @workflow.signal(name="batch_orchestra.enqueue_pages")
    def enqueue_pages(self, req: EnqueueRequest) -> None:
        """A running page hands over its successor page(s) (fire-and-forget form)."""
        self._apply_enqueue(req)

    @workflow.update(name="batch_orchestra.enqueue")
    def enqueue(self, req: EnqueueRequest) -> int:
        """A running page hands over its successor page(s); returns how many were added.

        The update form is what pages use: an update's workflow task is dispatched with the
        update, while a signal's goes through the history service's transfer queue, which a
        server with Temporal's default config reads only 20 times a second (docs/architecture.md,
        "Why an update and not a signal")."""
        self._updates_this_run += 1
        return self._apply_enqueue(req)

    @workflow.update(name="batch_orchestra.enqueue_many")
    def enqueue_many(self, reqs: list[EnqueueRequest]) -> int:
        """Several pages' enqueues in one update (a worker coalesces them under load)."""
        self._updates_this_run += 1
        return sum(self._apply_enqueue(req) for req in reqs)

    @workflow.query(name="progress")
    def progress(self) -> BatchOrchestratorProgress:
        """The batch's progress now."""
        return self._progress()

    def _set_parallelism(self, sched: Scheduler, n: int) -> BatchOrchestratorProgress:
        sched.set_parallelism(n)
        self._dirty = True
        workflow.logger.info("max_parallelism set to %d", n, extra=self._extra())
        return self._progress()

    @workflow.update(name="pause")
    def pause(self) -> BatchOrchestratorProgress:
        """Set parallelism to 0: running pages finish, no page starts. Returns the progress."""
        sched = self._sched
        return self._set_parallelism(sched, 0) if sched.max_parallelism else self._progress()

    @workflow.update(name="resume")
    def resume(self) -> BatchOrchestratorProgress:
        """Return to the parallelism before the pause. Returns the progress."""
        sched = self._sched
        if sched.max_parallelism == 0:
            self._set_parallelism(sched, sched.previous_parallelism)
        return self._progress()

    @resume.validator
    def _validate_resume(self) -> None:
        if self._sched.max_parallelism == 0 and self._sched.previous_parallelism == 0:
            raise ValueError(
                "the batch was started with max_parallelism=0 and has no earlier parallelism "
                "to resume to; use set_max_parallelism(n)"
            )

    @workflow.update(name="set_max_parallelism")
    def set_max_parallelism(self, n: int) -> BatchOrchestratorProgress:
        """Set the parallelism cap (0 pauses), remembering the old one. Returns the progress."""
        return self._set_parallelism(self._sched, n)

    @set_max_parallelism.validator
    def _validate_set_max_parallelism(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"max_parallelism must be an int >= 0 (0 pauses), got {n!r}")

    @workflow.update(name="restore_max_parallelism")
    def restore_max_parallelism(self) -> BatchOrchestratorProgress:
        """Return to the parallelism cap before the last change. Returns the progress."""
        sched = self._sched
        return self._set_parallelism(sched, sched.previous_parallelism)

    @workflow.signal(name="pause_signal")
    def pause_signal(self) -> None:
        """Fire-and-forget ``pause``."""
        if self._sched.max_parallelism:
            self._set_parallelism(self._sched, 0)

    @workflow.signal(name="resume_signal")
    def resume_signal(self) -> None:
        """Fire-and-forget ``resume`` (ignored when there is nothing to resume to)."""
        sched = self._sched
        if sched.max_parallelism == 0 and sched.previous_parallelism > 0:
            self._set_parallelism(sched, sched.previous_parallelism)

    @workflow.signal(name="set_max_parallelism_signal")
    def set_max_parallelism_signal(self, n: int) -> None:
        """Fire-and-forget ``set_max_parallelism`` (an invalid value is logged and ignored)."""
        try:
            self._validate_set_max_parallelism(n)
        except ValueError as err:
            workflow.logger.warning("ignored set_max_parallelism_signal: %s", err)
            return
        self._set_parallelism(self._sched, n)


def _earlier_due(sched: Scheduler, due: float) -> bool:
    nxt = sched.next_due()
    return nxt is not None and nxt < due
