"""The dataclasses that cross the wire: the batch's input, its progress, and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._exceptions import InvalidBatchInputError

__all__ = [
    "BatchOrchestratorInput",
    "BatchOrchestratorProgress",
    "BatchTrackerConfig",
    "PageFailure",
    "ProcessorSettings",
    "input_from_wire",
    "input_to_wire",
]


@dataclass(kw_only=True)
class BatchTrackerConfig:
    """Which registered ``@batch_tracker`` to call during a batch, and how often."""

    name: str
    """The tracker's registered name (its function name)."""
    args: str | None = None
    """An opaque string handed to the tracker as ``context.args_str``."""
    interval: timedelta = timedelta(minutes=1)
    """How often the tracker is called while the batch runs (once more at the end)."""


@dataclass(kw_only=True)
class BatchOrchestratorInput:
    """Everything that defines a batch: the workflow's single input."""

    page_processor: str | type
    """The registered processor's name, or the ``@page_processor`` class itself."""
    page_size: int
    """Items per page, handed to the first page(s) as ``page.size``. At least 1."""
    max_parallelism: int
    """How many pages may run at once. 0 starts the batch paused."""
    args: str | None = None
    """An opaque string every page reads as ``context.args_str`` (JSON is a good choice)."""
    first_cursor_str: str = ""
    """The first page's cursor."""
    first_cursor_strs: list[str] | None = None
    """Start one chain per cursor instead (e.g. key ranges); excludes ``first_cursor_str``."""
    page_timeout: timedelta = timedelta(minutes=5)
    """How long one attempt at a page may run before it counts as failed."""
    batch_id: str = ""
    """A label carried into logs and the processor's context; "" for none."""
    batch_tracker: BatchTrackerConfig | None = None
    """A registered tracker to call every ``interval`` and once at the end."""
    pages_per_run: int | None = None
    """Continue as new after this many page attempts; None: when the run's history reaches
    10,000 events or 8 MB."""
    total_items: int | None = None
    """An estimate of the items in the batch (say a COUNT(*)), for percent done and ETA."""
    handover_wait: timedelta = timedelta(seconds=10)
    """At a continue-as-new hand-over, how long a run waits for its running pages before it
    hands them, still running, to the next run (which learns their outcome by signal)."""

    def processor_name(self) -> str:
        """The registered name of ``page_processor``."""
        p = self.page_processor
        return p if isinstance(p, str) else getattr(p, "__name__", repr(p))


@dataclass(kw_only=True)
class PageFailure:
    """A stuck or failed page, as shown in progress."""

    page_num: int
    """The page's number in the batch."""
    cursor_str: str
    """The page's cursor."""
    attempts: int
    """Attempts made so far."""
    error_type: str
    """The last error's type (exception class name, or "Timeout")."""
    error_message: str
    """The last error's message, truncated."""
    failed_at: datetime
    """When the last attempt failed."""
    next_retry_at: datetime | None = None
    """For a stuck page: when its next extended retry is due."""


@dataclass(kw_only=True)
class BatchOrchestratorProgress:
    """How far a batch has come. Counts cover the whole batch, across continue-as-new runs."""

    num_completed_pages: int = 0
    """Pages processed successfully."""
    num_processing_pages: int = 0
    """Pages with an attempt running now."""
    num_pending_pages: int = 0
    """Pages discovered but not running: waiting for a slot or for a retry."""
    num_stuck_pages: int = 0
    """Pages whose initial retries are exhausted, waiting for extended retries."""
    num_failed_pages: int = 0
    """Pages that will not be retried again."""
    num_completed_items: int = 0
    """Items reported by completed pages."""
    num_open_chains: int = 0
    """Chains that may still discover pages."""
    is_finished: bool = False
    """No page is pending, running or stuck: the batch is over."""
    is_cancelled: bool = False
    """The batch was cancelled: no page starts any more."""
    is_paused: bool = False
    """Parallelism is 0: running pages finish, no new page starts."""
    max_parallelism: int = 0
    """The current parallelism cap."""
    max_parallelism_achieved: int = 0
    """The most pages that ever ran at once."""
    start_time: datetime | None = None
    """When the batch started (timezone-aware)."""
    num_runs: int = 1
    """Workflow runs so far (continue-as-new hand-overs + 1)."""
    total_items: int | None = None
    """The input's estimate of the items in the batch, if given."""
    pages_per_second: float = 0.0
    """Pages completed per second over the last minute or so."""
    items_per_second: float = 0.0
    """Items completed per second over the last minute or so."""
    percent_complete: float | None = None
    """``num_completed_items`` as a percentage of ``total_items`` (None without an estimate)."""
    eta_seconds: float | None = None
    """Seconds to completion at the recent item rate (None without an estimate or a rate)."""
    stuck_pages: list[PageFailure] = field(default_factory=list)
    """The most recent stuck pages (at most 100)."""
    failed_pages: list[PageFailure] = field(default_factory=list)
    """The most recent failed pages (at most 100)."""


@dataclass(kw_only=True)
class ProcessorSettings:
    """What steers orchestration about a processor, read once by a worker and kept in history."""

    name: str
    at_most_once: bool
    maximum_attempts: int
    initial_interval_seconds: float
    backoff_coefficient: float
    maximum_interval_seconds: float
    non_retryable_error_types: list[str]
    use_extended_retries: bool
    extended_retry_interval_seconds: float

    def retry_delay(self, failed_attempts: int) -> float:
        """Seconds to wait before the next initial retry after ``failed_attempts`` failures."""
        delay = self.initial_interval_seconds * self.backoff_coefficient ** (failed_attempts - 1)
        return float(min(delay, self.maximum_interval_seconds))


_DURATION_FIELDS = ("page_timeout", "handover_wait")
_FIELDS = (
    "page_processor", "page_size", "max_parallelism", "args", "first_cursor_str",
    "first_cursor_strs", "page_timeout", "batch_id", "batch_tracker", "pages_per_run",
    "total_items", "handover_wait",
)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fail(msg: str) -> InvalidBatchInputError:
    return InvalidBatchInputError(msg)


def validate_input(inp: BatchOrchestratorInput) -> None:
    """Raise ``InvalidBatchInputError`` naming the first bad field of ``inp``."""
    name = inp.processor_name() if isinstance(inp.page_processor, (str, type)) else None
    if not isinstance(name, str) or not name:
        raise _fail(
            f"page_processor must be a registered processor's name or its class, got {name!r}"
        )
    if not _is_int(inp.page_size) or inp.page_size < 1:
        raise _fail(f"page_size must be an int >= 1, got {inp.page_size!r}")
    if not _is_int(inp.max_parallelism) or inp.max_parallelism < 0:
        raise _fail(
            f"max_parallelism must be an int >= 0 (0 starts paused), got {inp.max_parallelism!r}"
        )
    if inp.args is not None and not isinstance(inp.args, str):
        raise _fail(
            f"args must be a str or None, got {type(inp.args).__name__} {inp.args!r}; "
            "serialize it first, e.g. json.dumps(args)"
        )
    if not isinstance(inp.first_cursor_str, str):
        raise _fail(
            f"first_cursor_str must be a str, got {type(inp.first_cursor_str).__name__} "
            f"{inp.first_cursor_str!r}; serialize the cursor first, e.g. json.dumps(cursor)"
        )
    if inp.first_cursor_strs is not None:
        cursors = inp.first_cursor_strs
        if not isinstance(cursors, list) or not cursors:
            raise _fail(
                f"first_cursor_strs must be a non-empty list of str or None, got {cursors!r}"
            )
        for c in cursors:
            if not isinstance(c, str):
                raise _fail(f"first_cursor_strs holds a non-str cursor {c!r}; serialize it first")
        if inp.first_cursor_str:
            raise _fail(
                "give either first_cursor_str or first_cursor_strs, not both "
                f"(first_cursor_str={inp.first_cursor_str!r})"
            )
    if not isinstance(inp.page_timeout, timedelta) or inp.page_timeout <= timedelta(0):
        raise _fail(f"page_timeout must be a positive timedelta, got {inp.page_timeout!r}")
    if not isinstance(inp.handover_wait, timedelta) or inp.handover_wait <= timedelta(0):
        raise _fail(f"handover_wait must be a positive timedelta, got {inp.handover_wait!r}")
    if not isinstance(inp.batch_id, str):
        raise _fail(f"batch_id must be a str, got {inp.batch_id!r}")
    if inp.pages_per_run is not None and (not _is_int(inp.pages_per_run) or inp.pages_per_run < 1):
        raise _fail(f"pages_per_run must be None or an int >= 1, got {inp.pages_per_run!r}")
    if inp.total_items is not None and (not _is_int(inp.total_items) or inp.total_items < 0):
        raise _fail(f"total_items must be None or an int >= 0, got {inp.total_items!r}")
    t = inp.batch_tracker
    if t is not None:
        if not isinstance(t, BatchTrackerConfig):
            raise _fail(f"batch_tracker must be a BatchTrackerConfig or None, got {t!r}")
        if not isinstance(t.name, str) or not t.name:
            raise _fail(f"batch_tracker.name must be a registered tracker's name, got {t.name!r}")
        if t.args is not None and not isinstance(t.args, str):
            raise _fail(f"batch_tracker.args must be a str or None, got {t.args!r}")
        if not isinstance(t.interval, timedelta) or t.interval <= timedelta(0):
            raise _fail(f"batch_tracker.interval must be a positive timedelta, got {t.interval!r}")


def input_to_wire(inp: BatchOrchestratorInput) -> dict[str, Any]:
    """The JSON-friendly dict the workflow takes (durations as seconds)."""
    tracker = inp.batch_tracker
    return {
        "page_processor": inp.processor_name(),
        "page_size": inp.page_size,
        "max_parallelism": inp.max_parallelism,
        "args": inp.args,
        "first_cursor_str": inp.first_cursor_str,
        "first_cursor_strs": inp.first_cursor_strs,
        "page_timeout": inp.page_timeout.total_seconds(),
        "batch_id": inp.batch_id,
        "batch_tracker": None if tracker is None else {
            "name": tracker.name, "args": tracker.args,
            "interval": tracker.interval.total_seconds(),
        },
        "pages_per_run": inp.pages_per_run,
        "total_items": inp.total_items,
        "handover_wait": inp.handover_wait.total_seconds(),
    }


def _seconds(key: str, value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"{key} must be a number of seconds on the wire, got {value!r}")
    return timedelta(seconds=value)


def input_from_wire(raw: Any) -> BatchOrchestratorInput:
    """Parse and validate the workflow's wire input (from any client, SDK or the CLI)."""
    if not isinstance(raw, dict):
        raise _fail(f"the BatchOrchestrator input must be a JSON object, got {raw!r}")
    unknown = sorted(set(raw) - set(_FIELDS) - {"continuation"})
    if unknown:
        raise _fail(f"unknown BatchOrchestrator input field(s) {unknown}; known: {list(_FIELDS)}")
    for key in ("page_processor", "page_size", "max_parallelism"):
        if key not in raw:
            raise _fail(f"the BatchOrchestrator input needs {key!r}")
    kwargs = {k: raw[k] for k in _FIELDS if k in raw and raw[k] is not None}
    if "args" in raw:
        kwargs["args"] = raw["args"]
    for key in _DURATION_FIELDS:
        if key in kwargs:
            kwargs[key] = _seconds(key, kwargs[key])
    tracker = kwargs.get("batch_tracker")
    if tracker is not None:
        if not isinstance(tracker, dict) or "name" not in tracker:
            raise _fail(f"batch_tracker must be an object with a 'name', got {tracker!r}")
        kwargs["batch_tracker"] = BatchTrackerConfig(
            name=tracker["name"],
            args=tracker.get("args"),
            interval=_seconds("batch_tracker.interval", tracker.get("interval", 60)),
        )
    inp = BatchOrchestratorInput(**kwargs)
    validate_input(inp)
    return inp
