"""The batch workflow's calls out besides pages: its tracker, its notifier and its health check.

A mixin of ``BatchOrchestrator`` (``_workflow.py``), kept apart so that the workflow reads in one
sitting; it shares the workflow's state and runs in its event loop.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from ._flow import FlowControl
    from ._health import Health
    from ._messages import (
        CHECK_HEALTH,
        NOTIFY,
        RUN_TRACKER,
        HealthCheckInput,
        NotifyInput,
        TrackerInput,
    )
    from ._scheduler import Scheduler
    from ._types import BatchOrchestratorInput, BatchOrchestratorProgress, PageFailure

if TYPE_CHECKING:
    from ._workflow import Lifecycle

__all__ = ["SideCalls"]


class SideCalls:
    """Tracker, notifier and health-check calls of one run of a batch."""

    _inp: BatchOrchestratorInput
    _state: Lifecycle
    _dirty: bool
    _tracker_busy: bool
    _tracker_next: float | None
    _notifying: bool
    _notices: deque[tuple[str, str | None, list[PageFailure]]]
    _failed_outbox: list[PageFailure]
    _flow: FlowControl | None
    _sched: Scheduler | None
    _health_busy: bool

    def _progress(self) -> BatchOrchestratorProgress:
        raise NotImplementedError

    def _extra(self, page_num: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _quiet(self) -> bool:
        """No tracker or notifier call is in flight or waiting (before a hand-over or the end)."""
        return not self._tracker_busy and not self._notifying and not self._notices

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
                return
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
                    tracker.name, tracker.args, self._inp.batch_id, self._progress(), is_final,
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            workflow.logger.warning("batch tracker failed: %s", err.cause, extra=self._extra())
        finally:
            self._tracker_busy = False
            self._dirty = True

    async def _notifier_loop(self) -> None:
        """Hand events to the notifier one call at a time; failed pages go in groups."""
        while True:
            await workflow.wait_condition(lambda: bool(self._notices or self._failed_outbox))
            if self._failed_outbox:
                failed, self._failed_outbox = self._failed_outbox, []
                self._notices.appendleft(("pages_failed", None, failed))
            event, reason, pages = self._notices.popleft()
            await self._notify(event, reason, pages)

    async def _notify(self, event: str, reason: str | None, pages: list[PageFailure]) -> None:
        notifier = self._inp.notifier
        assert notifier is not None
        self._notifying = True
        try:
            await workflow.execute_activity(
                NOTIFY,
                NotifyInput(
                    notifier.name, notifier.args, self._inp.batch_id, workflow.info().workflow_id,
                    event, reason, pages, self._progress(),
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            workflow.logger.warning(
                "batch notifier failed on %s: %s", event, err.cause, extra=self._extra()
            )
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
                HealthCheckInput(check.name, check.args, self._inp.batch_id, self._progress()),
                result_type=Health,
                start_to_close_timeout=check.timeout,
                retry_policy=RetryPolicy(maximum_attempts=1),  # the next call is the retry
            )
            line = flow.health_verdict(
                verdict.state, verdict.reason, current=self._current(sched),
                max_parallelism=sched.max_parallelism, now=workflow.now().timestamp(),
            )
        except ActivityError as err:
            cause = err.cause if err.cause is not None else err
            error = f"{type(cause).__name__}: {cause}"
            workflow.logger.warning("health check failed: %s", error, extra=self._extra())
            line = flow.health_failed(
                error, check.failures_before_unhealthy, current=self._current(sched),
                max_parallelism=sched.max_parallelism, now=workflow.now().timestamp(),
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
