"""The batch workflow's recovery side: discovery apart, and the operator's retry and skip of a page.

A mixin of ``BatchOrchestrator`` (``_workflow.py``), kept apart so that the workflow reads in one
sitting; it shares the workflow's state and runs in its event loop. The bookkeeping is in
``_discovery.py`` (pure); this module starts the ``discover_page`` activities and handles the
``retry_page`` and ``skip_page`` updates.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from ._discovery import MAX_RUNNING_DISCOVERIES, Discovery
    from ._messages import (
        DISCOVER_PAGE,
        RETRY_PAGE_UPDATE,
        SKIP_PAGE_UPDATE,
        DiscoverPageInput,
        DiscoverPageResult,
    )
    from ._processor import BatchPage
    from ._scheduler import Scheduler
    from ._types import BatchOrchestratorInput, BatchOrchestratorProgress, ProcessorSettings

if TYPE_CHECKING:
    from ._workflow import Lifecycle

__all__ = ["INVALID_PAGE_ACTION_ERROR_TYPE", "Recovery"]

INVALID_PAGE_ACTION_ERROR_TYPE = "BatchOrchestraInvalidPageAction"
"""The type of the error a ``retry_page`` or ``skip_page`` that cannot apply fails with."""
_DISCOVERY_RETRY = RetryPolicy(maximum_attempts=1)  # the workflow retries, visibly


class Recovery:
    """Discovery apart and the operator's page actions, for one run of a batch."""

    _inp: BatchOrchestratorInput
    _state: Lifecycle
    _dirty: bool
    _sched: Scheduler | None
    _settings: ProcessorSettings | None

    def _extra(self, page_num: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _progress(self) -> BatchOrchestratorProgress:
        raise NotImplementedError

    def _changed(self, change: str, by: str | None) -> None:
        raise NotImplementedError

    # -- discovery apart ---------------------------------------------------------------------

    def _start_discoveries(
        self, budget: int, max_bytes: int | None = None, per_item: int = 0
    ) -> bool:
        """Start the discoveries that may start now, at most ``budget``; True if more would have.

        ``budget`` is what is left of this workflow task's budget: each discovery carries the
        batch's args.
        """
        sched = self._sched
        if sched is None or not sched.discovery_ready:
            return False
        budget = max(0, budget)
        taken = sched.take_discoveries(budget, max_bytes, per_item)
        for d in taken:
            self._start_discovery(d)
        return (
            (len(taken) == budget or sched.bytes_limited)
            and bool(sched.discovery_ready)
            and not sched.paused
            and (len(sched.discovery_running) < MAX_RUNNING_DISCOVERIES)
        )

    def _start_discovery(self, d: Discovery) -> None:
        inp = self._inp
        handle = workflow.start_activity(
            DISCOVER_PAGE,
            DiscoverPageInput(
                processor=inp.processor_name(),
                page=BatchPage(d.cursor, d.size),
                page_num=d.page_num,
                attempt=d.attempts,
                args=inp.args,
                batch_id=inp.batch_id,
                window=inp.window,
            ),
            result_type=DiscoverPageResult,
            start_to_close_timeout=inp.page_timeout,
            heartbeat_timeout=inp.heartbeat_timeout,
            retry_policy=_DISCOVERY_RETRY,
            activity_id=f"discover-{d.page_num}-attempt-{d.attempts}",
            summary=f"next_page of page {d.page_num}",
        )
        key = (d.page_num, d.attempts)
        handle.add_done_callback(lambda fut: self._on_discovery_done(key, fut))

    def _on_discovery_done(
        self, key: tuple[int, int], fut: asyncio.Future[DiscoverPageResult]
    ) -> None:
        sched = self._sched
        page_num, attempt = key
        if sched is None or not sched.is_current_discovery(page_num, attempt):
            return
        self._dirty = True
        if fut.cancelled() or self._state.value == "cancelled":
            sched.discovery_not_run(page_num)
            return
        err = fut.exception()
        if err is None:
            found = fut.result().pages
            result = sched.discovered(page_num, [(p.cursor_str, p.size) for p in found])
            for cursor, why in result.ignored:
                workflow.logger.warning(
                    "ignored cursor %r from next_page: %s",
                    cursor,
                    why,
                    extra=self._extra(page_num),
                )
            return
        cause = err.cause if isinstance(err, ActivityError) else err
        if isinstance(cause, ApplicationError):
            kind, message = cause.type or "Error", cause.message
        elif isinstance(cause, TimeoutError):
            name = cause.type.name.lower() if cause.type is not None else "unknown"
            kind, message = "Timeout", f"next_page timed out ({name})"
        else:
            kind, message = type(cause).__name__, str(cause)
        delay = sched.discovery_failed(page_num, kind, message, workflow.now().timestamp())
        workflow.logger.warning(
            "finding page %d's successors failed (attempt %d), retrying in %gs: %s: %s",
            page_num,
            attempt,
            delay,
            kind,
            message,
            extra=self._extra(page_num),
        )

    # -- retry or skip one page --------------------------------------------------------------

    def _refuse_page_action(self, page_num: int, action: str) -> str | None:
        """Why ``action`` cannot be done to ``page_num`` now, or None."""
        sched = self._sched
        if sched is None:
            return (
                "the batch has not started yet (its processor's settings are being read); "
                "try again in a moment"
            )
        if self._state.value in ("finished", "cancelled"):
            return f"the batch is {self._state.value}; there is no page to {action}"
        return sched.refuse_page_action(page_num, action)

    def _page_action_scheduler(self, page_num: int, action: str) -> Scheduler:
        why = self._refuse_page_action(page_num, action)
        if why is not None or self._sched is None:
            raise ApplicationError(
                why or "the batch has not started yet",
                type=INVALID_PAGE_ACTION_ERROR_TYPE,
                non_retryable=True,
            )
        self._dirty = True
        return self._sched

    @workflow.update(name=RETRY_PAGE_UPDATE)
    def retry_page(
        self, page_num: int, reason: str | None = None, by: str | None = None
    ) -> BatchOrchestratorProgress:
        """Start a pending, retrying or stuck page now, first in line.

        It does not wait for its next scheduled retry. ``reason`` and ``by`` (who asks) go to the
        log. Returns the progress.
        """
        sched = self._page_action_scheduler(page_num, "retry")
        was = sched.retry_now(page_num)
        note = "; the batch is paused: it starts when the batch resumes" if sched.paused else ""
        why = f": {reason}" if reason else ""
        self._changed(f"page {page_num} retried now (it was {was}){why}{note}", by)
        return self._progress()

    @retry_page.validator
    def _validate_retry_page(
        self, page_num: int, reason: str | None = None, by: str | None = None
    ) -> None:
        why = self._refuse_page_action(page_num, "retry")
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
        sched = self._page_action_scheduler(page_num, "skip")
        was, goes_on = sched.skip(page_num)
        note = (
            ""
            if goes_on
            else (
                "; its chain ends here (its successors were never enqueued, and the processor has "
                "no next_page to find them)"
            )
        )
        self._changed(f"page {page_num} skipped (it was {was}): {reason}{note}", by)
        return self._progress()

    @skip_page.validator
    def _validate_skip_page(self, page_num: int, reason: str, by: str | None = None) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(
                f"give a reason to skip page {page_num} (it is logged), got {reason!r}"
            )
        why = self._refuse_page_action(page_num, "skip")
        if why is not None:
            raise ValueError(why)
