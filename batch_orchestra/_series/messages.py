"""What crosses between a series' workflows, its activities and the client: names and dataclasses.

Two workflows make a series: ``BatchSeries`` (one per series, long-lived, the only writer of
the mark and the run log) and ``BatchSeriesRun`` (one per tick of the schedule, or per
backfill: it claims a window, runs the batch over it as a child workflow and commits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._model import BatchNotifierConfig, BatchOrchestratorProgress, BatchWindow
from .state import BookState

__all__ = [
    "CLAIM_ATTEMPTS",
    "SERIES_AWAIT_BATCH",
    "SERIES_BACKFILL_UPDATE",
    "SERIES_CHECK",
    "SERIES_CLAIM",
    "SERIES_CLAIM_UPDATE",
    "SERIES_CLOSED_ERROR_TYPE",
    "SERIES_CLOSE_UPDATE",
    "SERIES_COMMIT",
    "SERIES_COMMIT_UPDATE",
    "SERIES_DESCRIBE_QUERY",
    "SERIES_PEEK_QUERY",
    "SERIES_READY_UPDATE",
    "SERIES_RUN_WORKFLOW_TYPE",
    "SERIES_SET_MARK_UPDATE",
    "SERIES_WORKFLOW_TYPE",
    "AwaitInput",
    "AwaitedBatch",
    "BackfillRequest",
    "ClaimInput",
    "ClaimReply",
    "ClaimRequest",
    "CommitInput",
    "CommitReply",
    "CommitRequest",
    "PeekReply",
    "SeriesCheckInput",
    "SeriesConfig",
    "SeriesRunInput",
    "SeriesRunResult",
    "SeriesStateView",
    "SetMarkRequest",
    "iso",
    "tick_workflow_id",
]

CLAIM_ATTEMPTS = 5
"""Attempts of a run's claim (its ``window_end``) before the run records the failure and ends."""
SERIES_WORKFLOW_TYPE = "BatchSeries"
"""The workflow type of a series' long-lived state workflow (its ID is the series' name)."""
SERIES_RUN_WORKFLOW_TYPE = "BatchSeriesRun"
"""The workflow type of one run of a series (a tick of its schedule, or a backfill)."""
SERIES_CHECK = "batch_orchestra.series_check"
SERIES_CLAIM = "batch_orchestra.series_claim"
SERIES_COMMIT = "batch_orchestra.series_commit"
SERIES_AWAIT_BATCH = "batch_orchestra.series_await_batch"
SERIES_READY_UPDATE = "series.ready"
SERIES_CLAIM_UPDATE = "series.claim"
SERIES_COMMIT_UPDATE = "series.commit"
SERIES_SET_MARK_UPDATE = "series.set_watermark"
SERIES_BACKFILL_UPDATE = "series.backfill"
SERIES_CLOSE_UPDATE = "series.close"
SERIES_DESCRIBE_QUERY = "series.describe"
SERIES_CLOSED_ERROR_TYPE = "BatchOrchestraSeriesClosed"
"""The ``ApplicationError.type`` with which a deleted series refuses an update."""
SERIES_PEEK_QUERY = "series.peek"


def iso(ts: float) -> str:
    """A Unix timestamp as ISO 8601 UTC, ``2026-05-01T03:00:00Z`` (microseconds when not 0)."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    spec = "seconds" if moment.microsecond == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def tick_workflow_id(series: str) -> str:
    """The workflow ID the schedule gives its ticks; Temporal appends ``-<nominal time>``."""
    return f"{series}/tick"


@dataclass(kw_only=True)
class SeriesConfig:
    """What does not change over a series' life; carried in the ``BatchSeries`` input."""

    name: str
    task_queue: str
    batch: dict[str, Any]
    """The template batch, ``input_to_wire(BatchOrchestratorInput)``."""
    window: str
    """"watermark", "time" or "none"."""
    lag: float = 0.0
    """Seconds: a watermark's cutoff lag, or how far a time window ends behind its tick."""
    on_failure: str = "hold"
    overlap: str = "skip"
    schedule: str = ""
    """How it runs, in words ("every 1h", "cron 0 3 * * * (UTC)")."""
    created_at: float = 0.0
    created_by: str | None = None
    initial_mark: str | None = None
    """The mark before the first run (``Watermark.initial``, or a time window's start)."""


@dataclass
class SeriesCheckInput:
    """What a worker checks before a series is created: the processor and the window's end."""

    processor: str
    window: str
    tracker: str | None = None
    notifier: str | None = None
    health_check: str | None = None
    args: str | None = None
    """The template's args, checked against the processor's ``args_type`` if it declares one."""


@dataclass
class PeekReply:
    """The series' mark as a run reads it before fixing its window's end."""

    mark: str | None
    version: int
    processor: str
    args: str | None
    lag: float
    claim: ClaimReply | None = None
    """The claim the run already holds (a retried or duplicated tick)."""


@dataclass
class ClaimRequest:
    """A run claims its window (``series.claim``)."""

    run_id: str
    nominal: float
    high: str | None = None
    """For a watermark window, the end the run fixed (None: nothing new)."""
    version: int | None = None
    """The mark's version the run read (watermark windows)."""
    skipped_total: int = 0
    """The schedule's count of ticks skipped for overlap, when the run looked."""
    missed_total: int = 0
    """... and of ticks missed past the catch-up window."""
    error: str | None = None
    """The run could not fix its window's end (``window_end`` kept failing): logged, no claim."""


@dataclass
class ClaimReply:
    """A claimed window, or why there is none."""

    run_id: str
    n: int = 0
    kind: str = "scheduled"
    low: str | None = None
    high: str | None = None
    empty: bool = False
    """Nothing is new: no batch runs."""
    stale: bool = False
    """The mark moved since the run read it: read it again."""
    failed: bool = False
    """The claim could not be made (``error`` of the request); the run ends."""
    batch_id: str | None = None
    batch_input: dict[str, Any] | None = None
    """The batch to run: the template with the window set."""
    window: BatchWindow | None = None
    on_failure: str = "hold"
    notifier: BatchNotifierConfig | None = None
    skipped: int = 0
    """Ticks skipped (overlap) since the previous claim, to tell the notifier."""


@dataclass
class BackfillRequest:
    """An operator runs a backfill over an explicit window (``series.backfill``)."""

    low: str | None
    high: str
    by: str | None = None


@dataclass
class CommitRequest:
    """A run reports how its batch ended (``series.commit``)."""

    run_id: str
    outcome: str
    """"completed", "advanced", "held" or "failed"."""
    reason: str | None = None
    pages: int = 0
    failed_pages: int = 0
    items: int = 0
    failed_items: int = 0


@dataclass
class CommitReply:
    """What the series recorded: the outcome and the mark after it."""

    outcome: str
    mark: str | None


@dataclass
class SetMarkRequest:
    """An operator sets the mark (``series.set_watermark``)."""

    value: str | None
    reason: str
    by: str | None = None


@dataclass
class SeriesStateView:
    """What the ``series.describe`` query answers: the config and the book."""

    config: SeriesConfig
    book: BookState
    now: float = 0.0


@dataclass
class SeriesRunInput:
    """A run's input: the series, and for a backfill the window it was given."""

    series: str
    window: str = "watermark"
    claim: ClaimReply | None = None
    """A backfill's claim (None for a scheduled tick, which claims its own)."""


@dataclass
class ClaimInput:
    """The ``series_claim`` activity's input."""

    series: str
    run_id: str
    nominal: float
    window: str


@dataclass
class CommitInput:
    """The ``series_commit`` activity's input."""

    series: str
    request: CommitRequest


@dataclass
class AwaitInput:
    """The ``series_await_batch`` activity's input."""

    batch_id: str
    claim: str = ""
    """The claim the batch must serve (``BatchWindow.claim``); "" for a batch without a window."""


@dataclass
class AwaitedBatch:
    """How a batch that a run attached to (instead of starting it) ended."""

    status: str
    """The workflow status name: COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT; or
    FOREIGN: the batch under that ID serves another claim (it was not waited for)."""
    progress: BatchOrchestratorProgress | None = None
    """Its final progress (completed batches)."""
    failure: str | None = None


@dataclass
class SeriesRunResult:
    """What a run returns (the Temporal UI shows it)."""

    run_id: str
    outcome: str
    batch_id: str | None = None
    window: BatchWindow | None = None
    reason: str | None = None
    mark: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
