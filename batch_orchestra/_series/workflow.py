"""``BatchSeries``: one series' book, the only writer of its committed high-water mark.

It runs as long as the series exists, one per series, its workflow ID the series' name, and
keeps a ``SeriesBook`` (the mark, the windows runs have claimed, the run log), which it carries
across its own continue-as-new. Runs (``_series_run.BatchSeriesRun``) talk to it through
updates that are idempotent per run, so a retried activity, a duplicated tick or a replayed
workflow task can never claim or commit a window twice. It imports and runs no user code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
)

with workflow.unsafe.imports_passed_through():
    from .._exceptions import INVALID_INPUT_ERROR_TYPE, InvalidBatchInputError
    from .._model import BatchNotifierConfig, BatchWindow, check_window, input_from_wire
    from .._model.codec import WireError, from_wire, to_wire
    from .messages import (
        SERIES_BACKFILL_UPDATE,
        SERIES_CHECK,
        SERIES_CLAIM_UPDATE,
        SERIES_CLOSE_UPDATE,
        SERIES_CLOSED_ERROR_TYPE,
        SERIES_COMMIT_UPDATE,
        SERIES_DESCRIBE_QUERY,
        SERIES_PEEK_QUERY,
        SERIES_READY_UPDATE,
        SERIES_SET_MARK_UPDATE,
        SERIES_WORKFLOW_TYPE,
        BackfillRequest,
        ClaimReply,
        ClaimRequest,
        CommitReply,
        CommitRequest,
        PeekReply,
        SeriesCheckInput,
        SeriesConfig,
        SeriesStateView,
        SetMarkRequest,
        iso,
    )
    from .state import BookState, ClaimRecord, RunRecord, SeriesBook, book_from_wire, book_to_wire
    from .types import check_mark

__all__ = ["BatchSeries"]

UPDATES_PER_RUN = 300
"""``BatchSeries`` continues as new after this many updates (a run sends three)."""
EVENTS_PER_RUN = 5_000
"""... or at this many history events."""
_CHECK_RETRY = RetryPolicy(maximum_attempts=3)


def _config_from_wire(raw: Any) -> tuple[SeriesConfig, BookState | None]:
    if not isinstance(raw, dict):
        raise WireError(f"the BatchSeries input must be an object, got {raw!r:.200}")
    config = from_wire(SeriesConfig, raw.get("config"), "config")
    input_from_wire(config.batch)  # the template is valid
    book = raw.get("book")
    return config, (book_from_wire(book) if book is not None else None)


# Not sandboxed, like BatchOrchestrator: this code is the library's own and deterministic (time
# from workflow.now(), no I/O); tests replay its histories.
@workflow.defn(name=SERIES_WORKFLOW_TYPE, sandboxed=False)
class BatchSeries:
    """One series' book: the committed mark, the claimed windows and the run log."""

    @workflow.init
    def __init__(self, raw: dict[str, Any]) -> None:
        self._error: str | None = None
        self._checked = False
        self._check_error: str | None = None
        self._closed = False
        self._updates = 0
        try:
            self._config, state = _config_from_wire(raw)
            self._checked = state is not None  # a continued run: checked when it was created
        except (WireError, InvalidBatchInputError) as err:
            self._error = str(err)
            self._config, state = SeriesConfig(name="?", task_queue="", batch={}, window=""), None
        self._book = SeriesBook(state or BookState(mark=self._config.initial_mark))

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Keep the book until the series is deleted; continue as new now and then."""
        if self._error is not None:
            raise ApplicationError(self._error, type=INVALID_INPUT_ERROR_TYPE, non_retryable=True)
        if not self._checked:
            await self._check()
        await workflow.wait_condition(lambda: self._closed or self._should_continue())
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not self._closed:
            workflow.continue_as_new(
                {"config": to_wire(self._config), "book": book_to_wire(self._book.state())}
            )
        return book_to_wire(self._book.state())

    async def _check(self) -> None:
        """A worker checks the processor, the window's end and the notifier, once."""
        b = self._config.batch
        try:
            await workflow.execute_local_activity(
                SERIES_CHECK,
                SeriesCheckInput(
                    processor=str(b.get("page_processor")),
                    window=self._config.window,
                    tracker=(b.get("batch_tracker") or {}).get("name"),
                    notifier=(b.get("notifier") or {}).get("name"),
                    health_check=(b.get("health_check") or {}).get("name"),
                    args=b.get("args"),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_CHECK_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            self._check_error = cause.message if isinstance(cause, ApplicationError) else str(err)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(
                self._check_error, type=INVALID_INPUT_ERROR_TYPE, non_retryable=True
            ) from None
        self._checked = True

    def _should_continue(self) -> bool:
        info = workflow.info()
        return (
            self._updates >= UPDATES_PER_RUN
            or info.get_current_history_length() >= EVENTS_PER_RUN
            or info.is_continue_as_new_suggested()
        )

    def _now(self) -> float:
        return workflow.now().timestamp()

    @workflow.update(name=SERIES_READY_UPDATE)
    async def ready(self) -> None:
        """Answer once a worker has checked the series (or fail with what is wrong)."""
        await workflow.wait_condition(lambda: self._checked or self._check_error is not None)
        if self._check_error is not None:
            raise ApplicationError(self._check_error, type=INVALID_INPUT_ERROR_TYPE)

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ApplicationError(
                f"series {self._config.name!r} was deleted", type=SERIES_CLOSED_ERROR_TYPE
            )
        if not self._checked:
            raise ValueError(f"series {self._config.name!r} is not checked yet; try again")

    @workflow.query(name=SERIES_PEEK_QUERY)
    def peek(self, run_id: str) -> PeekReply:
        """The mark and its version, and the claim ``run_id`` holds already, if any."""
        found = self._book.existing(run_id)
        b = self._config.batch
        return PeekReply(
            mark=self._book.mark,
            version=self._book.version,
            processor=str(b.get("page_processor")),
            args=b.get("args"),
            lag=self._config.lag,
            claim=self._reply(found) if found is not None else None,
        )

    @workflow.update(name=SERIES_CLAIM_UPDATE)
    def claim(self, req: ClaimRequest) -> ClaimReply:
        """Claim the run's window, or return the claim it holds already."""
        self._updates += 1
        book, now = self._book, self._now()
        found = book.existing(req.run_id)
        if found is not None:
            return self._reply(found)
        skipped = book.note_ticks(req.skipped_total, req.missed_total, now)
        if req.error is not None:
            book.runs.append(
                RunRecord(
                    run_id=req.run_id,
                    kind="scheduled",
                    outcome="failed",
                    nominal=req.nominal,
                    reason=req.error[:500],
                    started=now,
                    ended=now,
                )
            )
            return ClaimReply(run_id=req.run_id, failed=True, skipped=skipped)
        self._abandon_open(now)
        kind, low = self._config.window, book.mark
        high, empty = req.high, False
        if kind == "watermark":
            empty = high is None or high == low
        elif kind == "time":
            high = iso(req.nominal - self._config.lag)
            empty = low is not None and BatchWindow(kind="time", low=low, high=high).is_empty()
        answer = book.claim(
            run_id=req.run_id,
            kind="scheduled",
            nominal=req.nominal,
            low=low,
            high=None if empty else high,
            version=req.version if kind == "watermark" else None,
            batch_id=self._batch_id(req.run_id, req.nominal),
            now=now,
        )
        if answer.claim is None:
            return ClaimReply(run_id=req.run_id, stale=True, skipped=skipped)
        reply = self._reply(answer.claim)
        reply.skipped = skipped
        return reply

    @claim.validator
    def _validate_claim(self, req: ClaimRequest) -> None:
        self._refuse_if_closed()
        if self._book.existing(req.run_id) is None and req.error is None:
            check_mark(req.high, "the window's end (window_end's result)")

    def _abandon_open(self, now: float) -> None:
        """Close the open claims of earlier ticks.

        The schedule starts a tick only after the previous one ended, so a claim still open
        belongs to a run that ended without committing (it was terminated, say). Its window is
        covered again from the mark.
        """
        for rec in list(self._book.claims.values()):
            if rec.kind == "scheduled" and rec.outcome is None:
                self._book.commit(
                    run_id=rec.run_id,
                    outcome="failed",
                    reason="the run ended without committing its outcome",
                    pages=0,
                    failed_pages=0,
                    items=0,
                    failed_items=0,
                    now=now,
                )

    def _batch_id(self, run_id: str, nominal: float) -> str:
        """The run's batch: named by the series and the tick's nominal time.

        One tick claims one window, so the ID names the window too; it is kept short for
        ``list`` (the window shows beside it). A backfill's batch is named by its request time.
        """
        if run_id.endswith("/run"):  # a backfill's run: <series>/backfill-<time>/run
            return run_id[: -len("/run")]
        return f"{self._config.name}/{iso(nominal)}"

    def _window(self, rec: ClaimRecord) -> BatchWindow | None:
        kind = self._config.window
        if kind == "none" or rec.high is None:
            return None
        return BatchWindow(
            kind=kind,
            low=rec.low,
            high=rec.high,
            series=self._config.name,
            run=rec.run_id,
            backfill=rec.kind == "backfill",
            claim=f"{workflow.info().first_execution_run_id}/{rec.n}",
        )

    def _reply(self, rec: ClaimRecord) -> ClaimReply:
        window = self._window(rec)
        empty = rec.outcome == "empty"
        batch: dict[str, Any] | None = None
        if not empty and rec.batch_id is not None:
            batch = dict(self._config.batch)
            batch["window"] = to_wire(window) if window is not None else None
            batch["batch_id"] = batch.get("batch_id") or rec.batch_id
        notifier = self._config.batch.get("notifier")
        return ClaimReply(
            run_id=rec.run_id,
            n=rec.n,
            kind=rec.kind,
            low=rec.low,
            high=rec.high,
            empty=empty,
            batch_id=rec.batch_id,
            batch_input=batch,
            window=window,
            on_failure=self._config.on_failure,
            notifier=from_wire(BatchNotifierConfig, notifier, "notifier") if notifier else None,
        )

    @workflow.update(name=SERIES_COMMIT_UPDATE)
    def commit(self, req: CommitRequest) -> CommitReply:
        """Record how a run's batch ended; move the mark when the run may."""
        self._updates += 1
        outcome = self._book.commit(
            run_id=req.run_id,
            outcome=req.outcome,
            reason=req.reason,
            pages=req.pages,
            failed_pages=req.failed_pages,
            items=req.items,
            failed_items=req.failed_items,
            now=self._now(),
            moves_mark=self._config.window != "none",
        )
        return CommitReply(outcome=outcome, mark=self._book.mark)

    @commit.validator
    def _validate_commit(self, req: CommitRequest) -> None:
        if self._closed:
            raise ApplicationError(
                f"series {self._config.name!r} was deleted", type=SERIES_CLOSED_ERROR_TYPE
            )
        if req.outcome not in ("completed", "advanced", "held", "failed"):
            raise ValueError(f"unknown outcome {req.outcome!r}")

    @workflow.update(name=SERIES_SET_MARK_UPDATE)
    def set_watermark(self, req: SetMarkRequest) -> SeriesStateView:
        """An operator sets the mark (logged with who and why)."""
        self._updates += 1
        self._book.set_mark(req.value, req.by, req.reason, self._now())
        workflow.logger.warning(
            "series %s: mark set to %r by %s: %s",
            self._config.name,
            req.value,
            req.by or "unknown",
            req.reason,
        )
        return self.describe()

    @set_watermark.validator
    def _validate_set_watermark(self, req: SetMarkRequest) -> None:
        self._refuse_if_closed()
        if self._config.window == "none":
            raise ValueError(f"series {self._config.name!r} has no window, so no mark to set")
        check_mark(req.value, "the new mark")
        if self._config.window == "time" and req.value is not None:
            check_window(BatchWindow(kind="time", high=req.value), "the new mark")
        if not isinstance(req.reason, str) or not req.reason.strip():
            raise ValueError("set_watermark needs a reason (it is logged with who asked)")

    @workflow.update(name=SERIES_BACKFILL_UPDATE)
    def backfill(self, req: BackfillRequest) -> ClaimReply:
        """Claim an explicit window for a backfill (it never moves the mark)."""
        self._updates += 1
        now = self._now()
        run_id = f"{self._config.name}/backfill-{iso(now)}/run"
        answer = self._book.claim(
            run_id=run_id,
            kind="backfill",
            nominal=now,
            low=req.low,
            high=req.high,
            version=None,
            batch_id=self._batch_id(run_id, now),
            now=now,
        )
        assert answer.claim is not None  # a backfill claim is never stale
        return self._reply(answer.claim)

    @backfill.validator
    def _validate_backfill(self, req: BackfillRequest) -> None:
        self._refuse_if_closed()
        if self._config.window == "none":
            raise ValueError(f"series {self._config.name!r} has no window to backfill")
        check_mark(req.low, "the backfill's start")
        check_mark(req.high, "the backfill's end")
        if req.high is None:
            raise ValueError("a backfill needs an end")
        window = BatchWindow(kind=self._config.window, low=req.low, high=req.high)
        check_window(window, "the backfill window")
        if self._config.window == "time" and window.is_empty():
            raise ValueError(f"the backfill window {window.text()} is empty")
        if self._book.existing(f"{self._config.name}/backfill-{iso(self._now())}/run"):
            raise ValueError("another backfill was asked for at this instant; try again")

    @workflow.update(name=SERIES_CLOSE_UPDATE)
    def close(self, by: str | None = None) -> None:
        """The series is deleted: answer nothing more, end with the book as the result."""
        self._closed = True
        workflow.logger.info("series %s deleted by %s", self._config.name, by or "unknown")

    @workflow.query(name=SERIES_DESCRIBE_QUERY)
    def describe(self) -> SeriesStateView:
        """The series' config and book now."""
        return SeriesStateView(config=self._config, book=self._book.state(), now=self._now())
