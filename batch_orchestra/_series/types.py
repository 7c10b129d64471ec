"""What a user writes to define a series, and what describing one returns.

A **series** is a template batch plus a Temporal Schedule plus a window: every tick of the
schedule runs one batch over the data that is new since the last committed run. See
docs/series.md.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .._exceptions import InvalidBatchInputError
from .._model import (
    MAX_MARK_CHARS,
    BatchOrchestratorInput,
    BatchWindow,
    validate_input,
)

__all__ = [
    "MAX_SERIES_NAME",
    "MarkChange",
    "SeriesDescription",
    "SeriesRun",
    "SeriesSpec",
    "TimeWindow",
    "Watermark",
    "WindowEndContext",
    "check_mark",
    "check_series_name",
    "validate_spec",
]

MAX_SERIES_NAME = 100
"""The most characters a series name may have (it prefixes every workflow ID it derives)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
OVERLAPS = ("skip", "buffer_one")
ON_FAILURES = ("hold", "advance")


@dataclass(kw_only=True)
class Watermark:
    """Each run takes what is after the last committed high-water mark: the window ``(low, high]``.

    ``low`` is the mark the last completed run committed; ``high`` is fixed once, when the run
    starts, by the processor's ``window_end`` (for a ``SqlPageProcessor``: the largest key, or
    ``window_column``, automatically). The mark moves to ``high`` only when the run's batch
    completes; a run that fails leaves it where it was, so the next run covers both windows.
    """

    initial: str | None = None
    """The mark before the first run: the first run takes what is after it (e.g. "0" for ids
    above 0). None: from the very beginning."""
    lag: timedelta | None = None
    """Leave out what is newer than this when a run fixes its end (for a mark that is a time,
    e.g. ``updated_at``: rows still being written); ``window_end`` gets ``now - lag`` as
    ``context.cutoff``. None: up to the newest."""


@dataclass(kw_only=True)
class TimeWindow:
    """Each run covers a span of time: ``[previous run's end, nominal time - lag)``.

    In steady state that is ``[previous nominal time, nominal time)`` shifted back by ``lag``; a
    run that fails leaves the end where it was, so the next run covers both spans.
    """

    lag: timedelta = timedelta(0)
    """How far behind the schedule the window ends (for data that arrives late)."""
    start: datetime | None = None
    """Where the first window starts (timezone-aware); None: when the series is created, minus
    ``lag``."""


@dataclass(kw_only=True)
class SeriesSpec:
    """A batch that runs on a schedule, each run over what is new: the input of ``create_series``.

    Give exactly one of ``every`` and ``cron``.
    """

    batch: BatchOrchestratorInput
    """The template of every run's batch (its processor, page size, parallelism, args, ...);
    each run gets a copy with its window set (``context.window``)."""
    every: timedelta | None = None
    """Run every this long (at least 1 second), on multiples of it since the Unix epoch."""
    cron: str | None = None
    """Run on this cron expression (e.g. "0 3 * * *"), as Temporal Schedules read it."""
    time_zone: str | None = None
    """The IANA time zone the cron expression is read in (e.g. "Europe/Berlin"); None: UTC."""
    window: Watermark | TimeWindow | None = None
    """What each run takes: what is after a high-water mark (``Watermark``), a span of time
    (``TimeWindow``), or None for the whole data every time."""
    overlap: str = "skip"
    """A tick while the previous run still runs: "skip" it (the next run covers its data) or
    "buffer_one" (run once more right after; further ticks are skipped)."""
    on_failure: str = "hold"
    """A run whose batch ended with failed pages: "hold" (the mark stays; the next run covers
    this window again with its own) or "advance" (the mark moves on; redrive the failed pages
    with ``batch-orchestra redrive``). A batch that failed or was cancelled always holds."""
    catchup_window: timedelta = timedelta(hours=1)
    """After the Temporal server was down, ticks missed within this long are still run."""


@dataclass(kw_only=True)
class SeriesRun:
    """One run of a series (a scheduled tick or a backfill), as ``describe()`` lists it."""

    run_id: str
    """The run's workflow ID (a tick's ends with its nominal time)."""
    kind: str
    """"scheduled" (a tick), "backfill", or "skipped" (ticks Temporal skipped because the
    previous run still ran; ``reason`` says how many)."""
    outcome: str
    """"running", "committed" (the mark moved to the window's end), "empty" (nothing new),
    "held" (failed pages; the mark stays), "advanced" (failed pages, the mark moved on),
    "failed" (the batch failed or was cancelled; the mark stays), "stale" (the mark was moved
    by an operator meanwhile; not committed), "done" (a backfill that completed), or
    "skipped"."""
    nominal_time: datetime | None = None
    """The tick's scheduled time (the trigger's time for a manual trigger)."""
    window: BatchWindow | None = None
    """The run's window (None without one)."""
    batch_id: str | None = None
    """The workflow ID of the run's batch (None when it had nothing to do)."""
    reason: str | None = None
    """Why it held, failed or was skipped."""
    num_completed_pages: int = 0
    """Pages the batch completed."""
    num_failed_pages: int = 0
    """Pages that failed for good."""
    num_completed_items: int = 0
    """Items the batch processed."""
    num_failed_items: int = 0
    """Items recorded as failed (they do not hold the mark: they went to the dead-letter path)."""
    started_at: datetime | None = None
    """When the run claimed its window."""
    ended_at: datetime | None = None
    """When its outcome was committed (None while running)."""


@dataclass(kw_only=True)
class MarkChange:
    """One move of a series' high-water mark."""

    at: datetime
    """When it moved."""
    old: str | None
    """The mark before."""
    new: str | None
    """The mark after."""
    by: str | None
    """Who moved it: None for a run's commit, else the operator's identity."""
    reason: str
    """Why: the committing run, or the operator's reason."""


@dataclass(kw_only=True)
class SeriesDescription:
    """A series now: its schedule, its committed mark and its recent runs."""

    name: str
    """The series' name (its schedule ID and the prefix of every workflow ID it derives)."""
    task_queue: str
    """The task queue its runs and batches run on."""
    processor: str
    """The template batch's processor."""
    schedule: str
    """When it runs, e.g. "every 1h" or "cron 0 3 * * * (Europe/Berlin)"."""
    window: str
    """"watermark", "time" or "none"."""
    overlap: str
    """"skip" or "buffer_one"."""
    on_failure: str
    """"hold" or "advance"."""
    paused: bool = False
    """Whether the schedule is paused (no tick starts a run)."""
    note: str | None = None
    """The schedule's note (who paused it and why)."""
    next_runs: list[datetime] = field(default_factory=list)
    """The next few ticks."""
    mark: str | None = None
    """The committed high-water mark (for a time window: the end of the last committed span)."""
    mark_moved_at: datetime | None = None
    """When the mark last moved."""
    behind: timedelta | None = None
    """How far the mark is behind now, when the mark is a time; None otherwise."""
    runs: list[SeriesRun] = field(default_factory=list)
    """The most recent runs, newest first (at most 50)."""
    mark_changes: list[MarkChange] = field(default_factory=list)
    """The most recent moves of the mark, newest first (at most 20)."""
    num_runs: int = 0
    """Runs that claimed a window (scheduled ones; backfills are counted apart)."""
    num_committed: int = 0
    """Runs that moved the mark."""
    num_held: int = 0
    """Runs that held the mark (failed pages, or a failed batch)."""
    num_empty: int = 0
    """Runs that found nothing new."""
    num_backfills: int = 0
    """Backfills run."""
    num_skipped: int = 0
    """Ticks Temporal skipped because the previous run still ran (overlap)."""
    num_missed: int = 0
    """Ticks missed past the catch-up window (the server was down)."""
    note_from_worker: str | None = None
    """Set when no worker answered for the series' state (the schedule's part is still shown)."""

    @property
    def running(self) -> list[SeriesRun]:
        """The runs still running (their batch is in ``batch_id``)."""
        return [r for r in self.runs if r.outcome == "running"]


class WindowEndContext:
    """What a processor's ``window_end`` gets when a run of its series fixes its window's end.

    ``async def window_end(self, context) -> str | None`` returns the newest mark in the data
    after ``context.low`` (``SELECT max(id) ... WHERE id > low``), or None when nothing is new.
    It runs once per run, in an activity, so the end is recorded and a retried run keeps it.
    """

    def __init__(
        self,
        *,
        series: str,
        low: str | None,
        cutoff: datetime | None,
        args: str | None,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._series, self._low, self._cutoff = series, low, cutoff
        self._args, self._logger = args, logger

    @property
    def series(self) -> str:
        """The series' name."""
        return self._series

    @property
    def low(self) -> str | None:
        """The committed mark the new window starts after (None: from the very beginning)."""
        return self._low

    @property
    def cutoff(self) -> datetime | None:
        """``now - lag`` for a ``Watermark`` with a lag (leave out newer values), else None."""
        return self._cutoff

    @property
    def args_str(self) -> str:
        """The template batch's ``args``.

        Raises:
            InvalidBatchInputError: the template has no args.
        """
        if self._args is None:
            raise InvalidBatchInputError(
                "context.args_str was read but the series' batch has args=None; check "
                "has_args() first"
            )
        return self._args

    def has_args(self) -> bool:
        """Whether the template batch has args."""
        return self._args is not None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the series' name."""
        return self._logger


def _fail(msg: str) -> InvalidBatchInputError:
    return InvalidBatchInputError(msg)


def check_series_name(name: Any) -> None:
    """Raise ``InvalidBatchInputError`` unless ``name`` can name a series."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_SERIES_NAME:
        raise _fail(
            f"series name {name!r} is not usable: use 1 to {MAX_SERIES_NAME} letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (it prefixes the workflow IDs "
            "of its runs and batches)"
        )


def check_mark(value: Any, what: str) -> None:
    """Raise ``InvalidBatchInputError`` unless ``value`` can be a high-water mark."""
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise _fail(f"{what} must be a non-empty str or None, got {value!r:.200}")
    if len(value) > MAX_MARK_CHARS:
        raise _fail(
            f"{what} is {len(value):,} characters ({value[:40]!r}...); a mark may hold at most "
            f"{MAX_MARK_CHARS}: keep a key or a time in it"
        )


def _positive(value: Any, what: str, *, minimum: timedelta = timedelta(0)) -> None:
    if not isinstance(value, timedelta) or value < minimum or value <= timedelta(0):
        raise _fail(f"{what} must be a timedelta of at least {minimum or 'above 0'}, got {value!r}")


def validate_spec(spec: SeriesSpec) -> None:
    """Raise ``InvalidBatchInputError`` naming the first field of ``spec`` that cannot work.

    The cron expression itself is checked by Temporal when the schedule is created; the time
    zone is checked here against the IANA database.
    """
    if not isinstance(spec, SeriesSpec):
        raise _fail(f"create_series takes a SeriesSpec, got {spec!r:.200}")
    if not isinstance(spec.batch, BatchOrchestratorInput):
        raise _fail(f"SeriesSpec.batch must be a BatchOrchestratorInput, got {spec.batch!r:.200}")
    try:
        validate_input(spec.batch)
    except InvalidBatchInputError as err:
        raise _fail(f"the series' batch template is invalid: {err}") from None
    b = spec.batch
    if b.window is not None or b.redrive_pages or b.item_keys or b.redrive_of:
        raise _fail(
            "the series' batch template must not set window, redrive_pages, item_keys or "
            "redrive_of: each run sets its own window"
        )
    if (spec.every is None) == (spec.cron is None):
        raise _fail(
            f"give exactly one of every= and cron= (got every={spec.every!r}, cron={spec.cron!r})"
        )
    if spec.every is not None:
        if not isinstance(spec.every, timedelta) or spec.every < timedelta(seconds=1):
            raise _fail(
                f"every must be a timedelta of at least 1 second, got {spec.every!r}; Temporal "
                "Schedules run at most once a second"
            )
    if spec.cron is not None and (not isinstance(spec.cron, str) or not spec.cron.strip()):
        raise _fail(f'cron must be a cron expression such as "0 3 * * *", got {spec.cron!r}')
    if spec.time_zone is not None:
        try:
            zoneinfo.ZoneInfo(spec.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise _fail(
                f"time_zone {spec.time_zone!r} is not an IANA time zone; use a name such as "
                '"Europe/Berlin" or "UTC"'
            ) from None
    w = spec.window
    if isinstance(w, Watermark):
        check_mark(w.initial, "Watermark.initial")
        if w.lag is not None:
            _positive(w.lag, "Watermark.lag")
    elif isinstance(w, TimeWindow):
        if not isinstance(w.lag, timedelta) or w.lag < timedelta(0):
            raise _fail(f"TimeWindow.lag must be a timedelta >= 0, got {w.lag!r}")
        if w.start is not None and (not isinstance(w.start, datetime) or w.start.tzinfo is None):
            raise _fail(
                f"TimeWindow.start must be a timezone-aware datetime or None, got {w.start!r}"
            )
    elif w is not None:
        raise _fail(f"window must be a Watermark, a TimeWindow or None, got {w!r:.200}")
    if spec.overlap not in OVERLAPS:
        raise _fail(f"overlap must be one of {', '.join(OVERLAPS)}, got {spec.overlap!r}")
    if spec.on_failure not in ON_FAILURES:
        raise _fail(f"on_failure must be one of {', '.join(ON_FAILURES)}, got {spec.on_failure!r}")
    _positive(spec.catchup_window, "catchup_window", minimum=timedelta(seconds=10))
