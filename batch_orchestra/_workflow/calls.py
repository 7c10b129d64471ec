"""Every activity the batch workflow calls, with its options, and the one reading of a failure.

One place knows each activity's name, input, timeouts and retries: pages, discoveries
(``next_page``), reading the processor's settings, the tracker, the notifier, the health check,
``reduce``, the failure ledger's records and reads. ``classify`` turns any activity's failure
into what the engine needs to know about it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from .._engine.budgets import LEDGER_READ_BYTES
    from .._engine.discovery import Discovery
    from .._engine.engine import BatchEngine
    from .._engine.events import AttemptFailure
    from .._engine.hook_errors import MAX_HOOK_ERROR
    from .._engine.ledger import LedgerFeed, LedgerRecord, ReadLedgerInput, ReadLedgerResult
    from .._engine.scheduler import Attempt
    from .._model import BatchOrchestratorInput, ProcessorSettings
    from .._model.messages import (
        CANCEL_ITEMS,
        CHECK_HEALTH,
        CHECK_ITEMS,
        DESCRIBE_BATCH,
        DISCOVER_PAGE,
        NOTIFY,
        PROCESS_PAGE,
        READ_LEDGER,
        RECORD_FAILURES,
        REDUCE_RESULTS,
        RUN_TRACKER,
        CheckItemsInput,
        CheckItemsResult,
        DescribeBatchInput,
        DiscoverPageInput,
        DiscoverPageResult,
        HealthCheckInput,
        NotifyInput,
        PageResult,
        ProcessPageInput,
        ReduceInput,
        TrackerInput,
        item_workflow_prefix,
    )
    from .._worker.checkpoint import checkpoint_of_details
    from .._worker.health import Health
    from .._worker.page import BatchPage

__all__ = [
    "AT_MOST_ONCE_MIN_START_WAIT",
    "READ_AGAIN_AFTER",
    "Calls",
    "classify",
]

AT_MOST_ONCE_MIN_START_WAIT = timedelta(seconds=10)
"""An at-most-once attempt waits at least this long (or ``handover_wait``) for a worker slot."""
READ_AGAIN_AFTER = timedelta(minutes=1)
"""After a read of a ledger failed (its retries spent), how long until the next try."""
_ONCE = RetryPolicy(maximum_attempts=1)  # pages and discoveries: the workflow retries, visibly
_HOOK_RETRY = RetryPolicy(maximum_attempts=3)
_HOOK_TIMEOUT = timedelta(minutes=1)
_READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)


def classify(err: BaseException, subject: str = "page") -> AttemptFailure:
    """What an activity's failure was: its kind, message, retryability, timeout, checkpoint.

    ``subject`` names what timed out in a timeout's message ("page", "next_page").
    """
    cause: BaseException = err
    if isinstance(err, ActivityError) and err.cause is not None:
        cause = err.cause
    details: Any = None
    timeout = None
    if isinstance(cause, ApplicationError):
        kind, message, non_retryable = cause.type or "Error", cause.message, cause.non_retryable
        details = cause.details
    elif isinstance(cause, TimeoutError):
        timeout = cause.type.name.lower() if cause.type is not None else "unknown"
        kind, message, non_retryable = "Timeout", f"{subject} timed out ({timeout})", False
        details = cause.last_heartbeat_details  # a lost worker: its last heartbeat's
    else:
        kind, message, non_retryable = type(cause).__name__, str(cause), False
    detail = getattr(cause, "message", None) or str(cause)
    named = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    return AttemptFailure(
        kind=kind,
        message=message,
        non_retryable=non_retryable,
        timeout=timeout,
        checkpoint=checkpoint_of_details(details),
        text=f"{named or type(cause).__name__}: {detail}"[:MAX_HOOK_ERROR],
        detail=detail,
        cancelled=isinstance(cause, TemporalCancelledError),
    )


class Calls:
    """Starts the batch's activities; keeps the page attempts in flight (to cancel them)."""

    def __init__(self, engine: BatchEngine) -> None:
        self._engine = engine
        self.attempts: dict[tuple[int, int], workflow.ActivityHandle[PageResult]] = {}

    @property
    def _inp(self) -> BatchOrchestratorInput:
        return self._engine.inp

    def start_timeout(self) -> timedelta:
        """How long an at-most-once attempt may wait for a worker slot before it is taken back.

        It is then started again. A hand-over waits this long, so it never leaves one waiting.
        """
        return max(self._inp.handover_wait, AT_MOST_ONCE_MIN_START_WAIT)

    async def describe(self) -> ProcessorSettings:
        """The processor's settings (and a check that its hooks exist), read once per batch."""
        inp = self._inp
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

    def start_page(self, att: Attempt) -> workflow.ActivityHandle[PageResult]:
        inp, engine = self._inp, self._engine
        settings = engine.settings
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
                execution=engine.identity.execution,
                discovered_apart=bool(settings and settings.discovers_apart),
                run_items=engine.run_items,
                item_prefix=self.item_prefix() if engine.items is not None else "",
                window=inp.window,
                checkpoint=engine.checkpoints.get(att.page_num),
            ),
            result_type=PageResult,
            start_to_close_timeout=inp.page_timeout,
            # At most once: an attempt a hand-over might leave waiting for a slot must end
            # first, so that one never runs after Temporal dropped it with its closed run.
            schedule_to_start_timeout=(
                self.start_timeout() if settings and settings.at_most_once else None
            ),
            heartbeat_timeout=inp.heartbeat_timeout,
            retry_policy=_ONCE,
            activity_id=f"page-{att.page_num}-attempt-{att.attempt}",
            summary=f"page {att.page_num}",
        )
        self.attempts[(att.page_num, att.attempt)] = handle
        return handle

    def start_discovery(self, d: Discovery) -> workflow.ActivityHandle[DiscoverPageResult]:
        inp = self._inp
        return workflow.start_activity(
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
            retry_policy=_ONCE,
            activity_id=f"discover-{d.page_num}-attempt-{d.attempts}",
            summary=f"next_page of page {d.page_num}",
        )

    async def track(self, is_final: bool) -> None:
        tracker = self._inp.batch_tracker
        assert tracker is not None
        await workflow.execute_activity(
            RUN_TRACKER,
            TrackerInput(
                tracker.name, tracker.args, self._inp.batch_id, self._hook_progress(), is_final
            ),
            start_to_close_timeout=_HOOK_TIMEOUT,
            retry_policy=_HOOK_RETRY,
        )

    async def notify(
        self, event: str, reason: str | None, pages: list[Any], items: list[Any]
    ) -> None:
        notifier = self._inp.notifier
        assert notifier is not None
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
                items,
            ),
            start_to_close_timeout=_HOOK_TIMEOUT,
            retry_policy=_HOOK_RETRY,
        )

    async def check_health(self) -> Health:
        check = self._inp.health_check
        assert check is not None
        verdict: Health = await workflow.execute_activity(
            CHECK_HEALTH,
            HealthCheckInput(check.name, check.args, self._inp.batch_id, self._hook_progress()),
            result_type=Health,
            start_to_close_timeout=check.timeout,
            retry_policy=_ONCE,  # the next call is the retry
        )
        return verdict

    async def reduce(self, values: list[Any]) -> Any:
        results = self._engine.results
        return await workflow.execute_activity(
            REDUCE_RESULTS,
            ReduceInput(self._inp.processor_name(), results.result, values, results.started),
            start_to_close_timeout=_HOOK_TIMEOUT,
            retry_policy=_HOOK_RETRY,
        )

    def write_record(self, record: LedgerRecord) -> workflow.ActivityHandle[Any]:
        """Schedule the no-op activity whose input is ``record``.

        The record is durable once the command is in history; the activity only needs to exist.
        A hand-over never waits for it (its result is ignored, and it may even time out).
        """
        what = (
            "redrive marker"
            if record.redrive
            else (f"{len(record.pages)} failed page(s), {len(record.items)} failed item(s)")
        )
        return workflow.start_activity(
            RECORD_FAILURES,
            record,
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(seconds=30),
            retry_policy=_ONCE,  # nothing to retry: the input is the record
            activity_id=f"ledger-{record.seq}",
            summary=f"failure ledger record {record.seq}: {what}",
        )

    def read_ledger(self, feed: LedgerFeed) -> workflow.ActivityHandle[ReadLedgerResult]:
        return workflow.start_activity(
            READ_LEDGER,
            ReadLedgerInput(
                workflow_id=feed.workflow_id,
                execution=feed.execution,
                items=feed.items,
                from_record=feed.from_record,
                to_record=feed.to_record,
                position=feed.position,
                max_bytes=LEDGER_READ_BYTES,
            ),
            result_type=ReadLedgerResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=_READ_RETRY,
            summary=f"read the failure ledger of {feed.workflow_id}",
        )

    def item_prefix(self) -> str:
        """What every item workflow ID of this batch starts with.

        A redrive's items keep the IDs of the batch it redrives: a page run again attaches to
        the workflows its first run started instead of starting them twice.
        """
        source = self._inp.redrive_source
        if source is not None:
            return item_workflow_prefix(source.workflow_id, source.first_run_id)
        return item_workflow_prefix(workflow.info().workflow_id, self._engine.identity.execution)

    async def check_items(self, keys: list[str]) -> CheckItemsResult:
        """Describe these open item workflows: those found closed come back."""
        result: CheckItemsResult = await workflow.execute_activity(
            CHECK_ITEMS,
            CheckItemsInput(self._engine.item_prefix, keys),
            result_type=CheckItemsResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=_HOOK_RETRY,
            summary=f"check {len(keys)} open item workflow(s)",
        )
        return result

    async def cancel_items(self, keys: list[str]) -> None:
        """Ask these item workflows to cancel (a cancelled batch's open items)."""
        await workflow.execute_activity(
            CANCEL_ITEMS,
            CheckItemsInput(self._engine.item_prefix, keys),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=_HOOK_RETRY,
            summary=f"cancel {len(keys)} open item workflow(s)",
        )

    def cancel_attempts(self) -> int:
        """Ask every running attempt to stop; how many there were."""
        running = list(self.attempts.values())
        for handle in running:
            handle.cancel()
        return len(running)

    def _hook_progress(self) -> Any:
        """Progress for a hook's call: without the history.

        It would add up to ``HISTORY_PROGRESS_BYTES`` to every call's event (queries and the
        result have it).
        """
        return self._engine.progress(workflow.now().timestamp(), history=False)
