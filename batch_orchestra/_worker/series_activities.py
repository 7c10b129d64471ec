"""The activities of a series: check it, claim a run's window, commit it, wait for a batch.

They run the user's ``window_end`` (claim) and talk to the series' ``BatchSeries`` workflow with
the client the SDK gives every activity (``activity.client()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from .._exceptions import INVALID_INPUT_ERROR_TYPE
from .._model import MAX_MARK_CHARS, BatchOrchestratorProgress
from .._result_wait import wait_for_result
from .._series.messages import (
    CLAIM_ATTEMPTS,
    SERIES_AWAIT_BATCH,
    SERIES_CHECK,
    SERIES_CLAIM,
    SERIES_CLAIM_UPDATE,
    SERIES_CLOSED_ERROR_TYPE,
    SERIES_COMMIT,
    SERIES_COMMIT_UPDATE,
    SERIES_PEEK_QUERY,
    AwaitedBatch,
    AwaitInput,
    ClaimInput,
    ClaimReply,
    ClaimRequest,
    CommitInput,
    CommitReply,
    PeekReply,
    SeriesCheckInput,
)
from .._series.types import WindowEndContext
from .catalog import WorkerCatalog
from .checks import check_args_and_hooks, checked_processor
from .failures import application_error
from .user_code import call_user

__all__ = ["SeriesActivities"]

SERIES_GONE_ERROR_TYPE = "BatchOrchestraSeriesGone"
"""The series was deleted while a run of it ran."""
_logger = logging.getLogger("batch_orchestra.series")
_HEARTBEAT_SECONDS = 20.0
_STALE_RETRIES = 5


class SeriesActivities:
    """A series' activities (no state but the worker's registries: the rest is in their input)."""

    def __init__(self, catalog: WorkerCatalog | None = None) -> None:
        self._catalog = catalog or WorkerCatalog()

    def all(self) -> list[Any]:
        """Every activity, for the worker."""
        return [self.series_check, self.series_claim, self.series_commit, self.series_await_batch]

    @activity.defn(name=SERIES_CHECK)
    async def series_check(self, inp: SeriesCheckInput) -> None:
        """Check, on a worker, what a series needs.

        Its processor (with a way to end a watermark window), tracker, notifier and health check.
        """
        cls, _ = checked_processor(self._catalog, inp.processor)
        if inp.window == "watermark" and not callable(getattr(cls, "window_end", None)):
            raise application_error(window_end_missing(inp.processor), INVALID_INPUT_ERROR_TYPE)
        check_args_and_hooks(self._catalog, cls, inp)

    @activity.defn(name=SERIES_CLAIM)
    async def series_claim(self, inp: ClaimInput) -> ClaimReply:
        """Claim a scheduled run's window: read the mark, fix the end, claim.

        Runs the processor's ``window_end`` for a watermark window. A claim refused because the
        mark moved meanwhile is taken again from the new mark.
        """
        client = activity.client()
        handle = client.get_workflow_handle(inp.series)
        skipped, missed = await _tick_counts(client, inp.series)
        for _ in range(_STALE_RETRIES):
            version: int | None = None
            high: str | None = None
            error: str | None = None
            if inp.window == "watermark":
                peek: PeekReply = await _call(
                    inp.series,
                    handle.query(SERIES_PEEK_QUERY, inp.run_id, result_type=PeekReply),
                )
                if peek.claim is not None:
                    return peek.claim
                version = peek.version
                try:
                    high = await _window_end(self._catalog, peek, inp.series)
                except Exception as err:
                    attempt = activity.info().attempt
                    text = f"{type(err).__name__}: {err}"
                    misuse = isinstance(err, ApplicationError) and err.non_retryable
                    if attempt < CLAIM_ATTEMPTS and not misuse:
                        raise ApplicationError(
                            f"window_end of {peek.processor} failed (attempt {attempt} of "
                            f"{CLAIM_ATTEMPTS}): {text}"
                        ) from err
                    error = (
                        f"window_end of {peek.processor} failed (attempt {attempt}); the run "
                        f"did nothing and the next tick tries again: {text}"
                    )[:500]
            reply: ClaimReply = await _call(
                inp.series,
                handle.execute_update(
                    SERIES_CLAIM_UPDATE,
                    ClaimRequest(
                        run_id=inp.run_id,
                        nominal=inp.nominal,
                        high=high,
                        version=version,
                        skipped_total=skipped,
                        missed_total=missed,
                        error=error,
                    ),
                    id=f"claim:{inp.run_id}:{version}",
                    result_type=ClaimReply,
                ),
            )
            if not reply.stale:
                return reply
        raise ApplicationError(
            f"series {inp.series!r}: the mark kept moving while this run fixed its window"
        )

    @activity.defn(name=SERIES_COMMIT)
    async def series_commit(self, inp: CommitInput) -> CommitReply:
        """Tell the series how a run's batch ended (idempotent: the run's first word counts)."""
        handle = activity.client().get_workflow_handle(inp.series)
        try:
            reply: CommitReply = await _call(
                inp.series,
                handle.execute_update(
                    SERIES_COMMIT_UPDATE,
                    inp.request,
                    id=f"commit:{inp.request.run_id}",
                    result_type=CommitReply,
                ),
            )
        except ApplicationError as err:
            if err.type != SERIES_GONE_ERROR_TYPE:
                raise
            _logger.warning("run %s ends unrecorded: %s", inp.request.run_id, err.message)
            return CommitReply(outcome="unknown", mark=None)
        return reply

    @activity.defn(name=SERIES_AWAIT_BATCH)
    async def series_await_batch(self, inp: AwaitInput) -> AwaitedBatch:
        """Wait for a batch that an earlier execution of this run started, heartbeating.

        Only a batch started for this run's claim is waited for: one that serves another claim
        (a series deleted and created again under the same name, say) is reported as FOREIGN.
        """
        client = activity.client()
        batch_id = inp.batch_id
        serves = await _serves(client, batch_id)
        if serves != inp.claim:
            return AwaitedBatch(
                status="FOREIGN",
                failure=(
                    f"the workflow ID {batch_id!r} is taken by a batch that serves another "
                    f"claim ({serves or 'none'}, not {inp.claim}); this run did not run its "
                    "window"
                ),
            )
        handle = client.get_workflow_handle(batch_id, result_type=BatchOrchestratorProgress)
        beat = asyncio.ensure_future(_heartbeat())
        try:
            progress = await wait_for_result(handle, follow_runs=True)
            return AwaitedBatch(status="COMPLETED", progress=progress)
        except WorkflowFailureError as err:
            desc = await handle.describe()
            status = desc.status.name if desc.status else "FAILED"
            cause = err.cause
            return AwaitedBatch(status=status, failure=str(getattr(cause, "message", cause)))
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


async def _serves(client: Client, batch_id: str) -> str:
    """The claim a batch serves, read from its input (its latest run's first event)."""
    async for event in client.get_workflow_handle(batch_id).fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (raw,) = await client.data_converter.decode(payloads, [dict])
        window = raw.get("window") if isinstance(raw, dict) else None
        return str(window.get("claim", "")) if isinstance(window, dict) else ""
    return ""


def window_end_missing(processor: str) -> str:
    """The error for a watermark series whose processor cannot end a window."""
    return (
        f"page processor {processor} has no window_end method, so a run cannot fix where its "
        "Watermark window ends; define `async def window_end(self, context)` returning the "
        "newest key after context.low (SqlPageProcessor has one), or use TimeWindow or no window"
    )


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(_HEARTBEAT_SECONDS)


async def _call(series: str, call: Any) -> Any:
    """Await a query or update of the series; a deleted series becomes a non-retryable error.

    Anything else (a series that is starting, a hand-over to its next run, a server that does
    not answer) is raised as it is, for the activity's retry.
    """
    try:
        return await call
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        text = getattr(cause, "message", None) or str(cause or err)
        if getattr(cause, "type", None) == SERIES_CLOSED_ERROR_TYPE:
            raise ApplicationError(
                f"series {series!r} refused: {text}",
                type=SERIES_GONE_ERROR_TYPE,
                non_retryable=True,
            ) from None
        raise ApplicationError(f"series {series!r} refused: {text}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND or not await _running(series):
            raise ApplicationError(
                f"series {series!r} is gone ({err.message}); was it deleted?",
                type=SERIES_GONE_ERROR_TYPE,
                non_retryable=True,
            ) from None
        raise


async def _running(series: str) -> bool:
    """Whether the series' workflow runs (True when that cannot be told: retry)."""
    try:
        desc = await activity.client().get_workflow_handle(series).describe()
    except RPCError as err:
        return err.status != RPCStatusCode.NOT_FOUND
    return desc.status in (
        WorkflowExecutionStatus.RUNNING,
        WorkflowExecutionStatus.CONTINUED_AS_NEW,
    )


async def _tick_counts(client: Client, series: str) -> tuple[int, int]:
    """The schedule's counters of skipped (overlap) and missed (catch-up) ticks; 0 if unknown."""
    try:
        desc = await client.get_schedule_handle(series).describe()
    except RPCError:
        return 0, 0
    return desc.info.num_actions_skipped_overlap, desc.info.num_actions_missed_catchup_window


async def _window_end(catalog: WorkerCatalog, peek: PeekReply, series: str) -> str | None:
    """Where the run's window ends: the processor's ``window_end``, checked."""
    cls = catalog.processors.get(peek.processor)
    fn = getattr(cls(), "window_end", None)
    if not callable(fn):
        raise ApplicationError(window_end_missing(peek.processor), non_retryable=True)
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=peek.lag) if peek.lag else None
    context = WindowEndContext(
        series=series,
        low=peek.mark,
        cutoff=cutoff,
        args=peek.args,
        logger=logging.LoggerAdapter(_logger, {"series": series}),
    )
    high = await call_user(fn, context)
    if high is not None and not isinstance(high, str):
        raise ApplicationError(
            f"{peek.processor}.window_end returned {high!r:.100}; return the new mark as a str "
            "(e.g. str(max_id)), or None when nothing is new",
            non_retryable=True,
        )
    if high is not None and len(high) > MAX_MARK_CHARS:
        raise ApplicationError(
            f"{peek.processor}.window_end returned {len(high):,} characters ({high[:40]!r}...); "
            f"a mark may hold at most {MAX_MARK_CHARS}",
            non_retryable=True,
        )
    if high is not None and peek.mark is not None and _before(high, peek.mark):
        raise ApplicationError(
            f"{peek.processor}.window_end returned {high!r}, before the mark {peek.mark!r}; it "
            "must return the newest value AFTER context.low, or None when nothing is new (the "
            "mark never moves back by itself)",
            non_retryable=True,
        )
    return high


def _before(a: str, b: str) -> bool:
    """Whether mark ``a`` is before ``b``, when both read as numbers or as times."""
    try:
        return decimal.Decimal(a) < decimal.Decimal(b)
    except decimal.InvalidOperation:
        pass
    try:
        ta = datetime.fromisoformat(a.replace("Z", "+00:00"))
        tb = datetime.fromisoformat(b.replace("Z", "+00:00"))
        if (ta.tzinfo is None) == (tb.tzinfo is None):
            return ta < tb
    except ValueError:
        pass
    return False
