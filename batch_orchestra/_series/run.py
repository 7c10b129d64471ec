"""``BatchSeriesRun``: one run of a series (a tick of its schedule, or a backfill).

The schedule starts it on every tick (workflow ID ``<series>/tick-<nominal time>``); a backfill
starts it with its claim. It claims a window (an activity, so the window's end is fixed once
and recorded in its history), runs the batch over it as a child workflow under an ID derived
from the series and the tick, whose one claim fixes the window (a retried run finds the same
batch and waits for it instead of starting another), tells the notifier what went wrong, and
commits the outcome to the series' book (``_series_workflow.BatchSeries``). It imports and runs
no user code.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from .._model import BatchOrchestratorProgress
    from .._model.messages import BATCH_WORKFLOW_TYPE, NOTIFY, NotifyInput
    from .messages import (
        CLAIM_ATTEMPTS,
        SERIES_AWAIT_BATCH,
        SERIES_CLAIM,
        SERIES_COMMIT,
        SERIES_RUN_WORKFLOW_TYPE,
        AwaitedBatch,
        AwaitInput,
        ClaimInput,
        ClaimReply,
        CommitInput,
        CommitReply,
        CommitRequest,
        SeriesRunInput,
        SeriesRunResult,
    )

__all__ = ["BatchSeriesRun"]

_SCHEDULED_AT = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
_CLAIM_RETRY = RetryPolicy(maximum_attempts=CLAIM_ATTEMPTS, maximum_interval=timedelta(seconds=30))
_COMMIT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
_NOTIFY_RETRY = RetryPolicy(maximum_attempts=3)
_AWAIT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
_STATUS_OF = {
    "CancelledError": "CANCELED",
    "TerminatedError": "TERMINATED",
    "TimeoutError": "TIMED_OUT",
}


# Not sandboxed, like BatchOrchestrator: the library's own deterministic code; tests replay it.
@workflow.defn(name=SERIES_RUN_WORKFLOW_TYPE, sandboxed=False)
class BatchSeriesRun:
    """One run of a series: claim a window, run its batch, commit the outcome."""

    @workflow.run
    async def run(self, inp: SeriesRunInput) -> SeriesRunResult:
        """Run (the schedule passes ``SeriesRunInput(series=...)``; a backfill its claim)."""
        info = workflow.info()
        claim = inp.claim
        if claim is None:
            scheduled = info.typed_search_attributes.get(_SCHEDULED_AT)
            nominal = (scheduled or info.start_time).timestamp()
            claim = await workflow.execute_activity(
                SERIES_CLAIM,
                ClaimInput(
                    series=inp.series, run_id=info.workflow_id, nominal=nominal, window=inp.window
                ),
                result_type=ClaimReply,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=_CLAIM_RETRY,
            )
        if claim.skipped:
            await self._notify(
                claim,
                "series_skipped",
                f"{claim.skipped} tick(s) of series {inp.series} were skipped: the previous run "
                "was still running (its next run covers their data)",
                None,
            )
        if claim.failed or claim.empty or claim.batch_id is None or claim.batch_input is None:
            outcome = "failed" if claim.failed else "empty"
            return SeriesRunResult(run_id=claim.run_id, outcome=outcome, window=claim.window)
        status, progress, failure = await self._run_batch(claim)
        verdict, reason = _verdict(claim, status, progress, failure)
        if verdict in ("held", "failed"):
            event = "series_held" if verdict == "held" else "series_failed"
            error = await self._notify(claim, event, reason, progress)
            if error:
                reason = f"{reason}; the notifier failed: {error}"
        p = progress or BatchOrchestratorProgress()
        reply: CommitReply = await workflow.execute_activity(
            SERIES_COMMIT,
            CommitInput(
                series=inp.series,
                request=CommitRequest(
                    run_id=claim.run_id,
                    outcome=verdict,
                    reason=reason,
                    pages=p.num_completed_pages,
                    failed_pages=p.num_failed_pages,
                    items=p.num_completed_items,
                    failed_items=p.num_failed_items,
                ),
            ),
            result_type=CommitReply,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=_COMMIT_RETRY,
        )
        return SeriesRunResult(
            run_id=claim.run_id,
            outcome=reply.outcome,
            batch_id=claim.batch_id,
            window=claim.window,
            reason=reason,
            mark=reply.mark,
        )

    async def _run_batch(
        self, claim: ClaimReply
    ) -> tuple[str, BatchOrchestratorProgress | None, str | None]:
        """Start the claim's batch as a child and wait for it (or wait for it if it exists)."""
        assert claim.batch_id is not None
        try:
            progress: BatchOrchestratorProgress = await workflow.execute_child_workflow(
                BATCH_WORKFLOW_TYPE,
                claim.batch_input,
                id=claim.batch_id,
                task_queue=workflow.info().task_queue,
                result_type=BatchOrchestratorProgress,
                # Same ID, never a second execution: a closed batch is read, not run again.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{claim.window.text() if claim.window else 'whole data'}",
            )
            return "COMPLETED", progress, None
        except WorkflowAlreadyStartedError:
            # An earlier execution of this run started it (a retried or duplicated tick, or
            # the client for a backfill): wait for that batch instead of running the window
            # twice, once it is known to serve this claim.
            awaited: AwaitedBatch = await workflow.execute_activity(
                SERIES_AWAIT_BATCH,
                AwaitInput(
                    batch_id=claim.batch_id,
                    claim=claim.window.claim if claim.window is not None else "",
                ),
                result_type=AwaitedBatch,
                start_to_close_timeout=timedelta(days=7),
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=_AWAIT_RETRY,
            )
            return awaited.status, awaited.progress, awaited.failure
        except ChildWorkflowError as err:
            cause = err.cause
            message = getattr(cause, "message", None) or str(cause or err)
            return _STATUS_OF.get(type(cause).__name__, "FAILED"), None, message

    async def _notify(
        self,
        claim: ClaimReply,
        event: str,
        reason: str | None,
        progress: BatchOrchestratorProgress | None,
    ) -> str | None:
        """Tell the template batch's notifier; a failing notifier is reported, never fatal."""
        n = claim.notifier
        if n is None:
            return None
        try:
            await workflow.execute_activity(
                NOTIFY,
                NotifyInput(
                    name=n.name,
                    args=n.args,
                    batch_id=(claim.batch_input or {}).get("batch_id") or claim.batch_id or "",
                    workflow_id=claim.batch_id or claim.run_id,
                    event=event,
                    reason=reason,
                    failed_pages=(progress.failed_pages[:20] if progress else []),
                    progress=progress or BatchOrchestratorProgress(window=claim.window),
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=_NOTIFY_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            text = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            workflow.logger.warning("series notifier %s failed on %s: %s", n.name, event, text)
            return text[:300]
        return None


def _verdict(
    claim: ClaimReply,
    status: str,
    progress: BatchOrchestratorProgress | None,
    failure: str | None,
) -> tuple[str, str | None]:
    """How a run's batch ended, for the book: completed, advanced, held or failed (and why)."""
    where = claim.window.text() if claim.window is not None else "the data"
    if status != "COMPLETED" or progress is None or progress.is_cancelled:
        return "failed", (
            f"batch {claim.batch_id} ended {status.lower()}"
            + (f": {failure}" if failure else "")
            + f"; the mark stays and the next run covers {where} again"
        )
    failed = progress.num_failed_pages
    if not failed:
        return "completed", None
    if claim.on_failure == "advance":
        return "advanced", (
            f"{failed} page(s) failed for good; the mark moves on (on_failure=advance): "
            f"batch-orchestra redrive {claim.batch_id}"
        )
    return "held", (
        f"{failed} page(s) failed for good; the mark stays (on_failure=hold) and the next run "
        f"covers {where} again with what is new"
    )
