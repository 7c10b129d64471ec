"""The dataclasses that cross the wire: the batch's input, its progress, and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._budgets import (
    MAX_ARGS_BYTES,
    MAX_BATCH_ID_CHARS,
    MAX_CURSOR_BYTES,
    MAX_HOOK_ARGS_BYTES,
    MAX_ITEM_KEYS_BYTES,
    MAX_PAGE_VALUE_BYTES,
    MAX_RESULT_BYTES,
)
from ._exceptions import InvalidBatchInputError
from ._wire import WireError, from_wire, to_wire

__all__ = [
    "MAX_ARGS_BYTES",
    "MAX_CURSOR_BYTES",
    "MAX_ITEM_KEYS_BYTES",
    "MAX_MARK_CHARS",
    "MAX_PAGE_VALUE_BYTES",
    "MAX_RESULT_BYTES",
    "BatchFailures",
    "BatchNotifierConfig",
    "BatchOrchestratorInput",
    "BatchOrchestratorProgress",
    "BatchTrackerConfig",
    "BatchWindow",
    "ControlChange",
    "ErrorCount",
    "FailurePolicy",
    "HealthCheckConfig",
    "HookError",
    "ItemFailure",
    "PageFailure",
    "RedrivePage",
    "RedriveSource",
    "ProcessorSettings",
    "check_cursor",
    "check_rate",
    "check_window",
    "input_from_wire",
    "input_to_wire",
    "validate_input",
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
class FailurePolicy:
    """When a batch pauses itself because too much is failing (to protect the downstream).

    Past a threshold the batch **pauses**: running pages finish, no page starts, progress says
    why (``pause_reason``) and the notifier, if any, is called. Fix the cause, then ``resume()``.
    A batch with nothing left to start never pauses (its stuck pages keep their extended
    retries), except for lack of progress (``no_progress_attempts``).
    """

    max_failure_rate: float | None = 0.5
    """Pause when more than this fraction of the last ``window`` page attempts failed (judged
    only once ``min_attempts`` attempts were made in the window); None: no rate threshold."""
    window: int = 100
    """How many recent attempts the rate is judged over."""
    min_attempts: int = 20
    """The rate is not judged over fewer attempts than this (so a small batch with one bad page
    finishes as usual, with that page counted as failed or stuck)."""
    max_failed_pages: int | None = None
    """Pause when more than this many pages are failed or stuck at once; None: no count."""
    max_failed_items: int | None = None
    """Pause when more than this many items were recorded as failed
    (``context.record_failure``) in the whole batch; None: no count."""
    no_progress_attempts: int | None = 5
    """Pause when no page has completed since the batch started (or was last resumed) and
    this many page attempts in a row failed with the same error (type and message): a wrong
    argument or a bug, which retrying will not fix. With the default retry policy (1 s
    doubling) a single failing page pauses the batch about 15 s after its first failure, within
    its initial retries. Attempts lost with their worker do not count. None: never (the page
    then retries and becomes stuck as usual; progress still shows ``no_progress``)."""

    @classmethod
    def disabled(cls) -> FailurePolicy:
        """A policy that never pauses the batch."""
        return cls(max_failure_rate=None, max_failed_pages=None, no_progress_attempts=None)


@dataclass(kw_only=True)
class HealthCheckConfig:
    """Which registered ``@health_check`` the batch calls, how often, and how it reacts."""

    name: str
    """The health check's registered name (its function name)."""
    args: str | None = None
    """An opaque string handed to the check as ``context.args_str``."""
    interval: timedelta = timedelta(seconds=30)
    """How often the check is called while the batch runs."""
    timeout: timedelta = timedelta(seconds=10)
    """How long one call may take before it counts as a failed check."""
    failures_before_unhealthy: int = 3
    """A check that itself fails (raises or times out) this many times in a row holds the batch
    as if it had said stop, until a call succeeds again; it never fails the batch."""


@dataclass(kw_only=True)
class BatchNotifierConfig:
    """Which registered ``@batch_notifier`` to call about a batch's events."""

    name: str
    """The notifier's registered name (its function name)."""
    args: str | None = None
    """An opaque string handed to the notifier as ``context.args_str``."""


MAX_MARK_CHARS = 200
"""The most characters a window bound (a high-water mark) may hold: it names the batches of a
series (their workflow IDs) and travels in every page attempt."""

WINDOW_KINDS = ("watermark", "time")


@dataclass(kw_only=True)
class BatchWindow:
    """The slice of the data one run of a series covers; a processor reads it as ``context.window``.

    A **watermark** window is ``(low, high]``: the rows whose key (or watermark column) is after
    the last committed high-water mark ``low`` and at most ``high``, the end fixed when the run
    started. A **time** window is ``[low, high)``, both ISO 8601 instants in UTC
    (``datetime.fromisoformat`` reads them; ``start`` and ``end`` do it for you).
    """

    kind: str = "watermark"
    """"watermark" (``(low, high]``) or "time" (``[low, high)``)."""
    low: str | None = None
    """Where the window starts: for a watermark the last committed mark, exclusive (None: from
    the very beginning); for a time window its first instant, inclusive."""
    high: str
    """Where it ends: for a watermark inclusive, for a time window exclusive."""
    series: str = ""
    """The series whose run started the batch ("" outside a series)."""
    run: str = ""
    """The workflow ID of that run (a scheduled tick or a backfill)."""
    backfill: bool = False
    """The batch is a backfill: it never moves the series' mark."""
    claim: str = ""
    """Which claim of which series execution the batch serves (``<first run ID>/<n>``): a run
    that finds its batch's ID taken checks it before waiting for that batch."""

    def is_empty(self) -> bool:
        """Whether nothing can be in the window (a watermark that did not move, or no time)."""
        if self.kind == "time":
            return self.low is not None and _instant(self.high) <= _instant(self.low)
        return self.high == self.low

    @property
    def start(self) -> datetime | None:
        """A time window's first instant (None for a watermark window)."""
        return _instant(self.low) if self.kind == "time" and self.low is not None else None

    @property
    def end(self) -> datetime | None:
        """A time window's end, exclusive (None for a watermark window)."""
        return _instant(self.high) if self.kind == "time" else None

    def text(self) -> str:
        """The window as people write it: ``(100, 250]`` or ``[03:00, 04:00)`` in full ISO."""
        if self.kind == "time":
            return f"[{self.low}, {self.high})"
        return f"({'start' if self.low is None else self.low}, {self.high}]"


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def check_window(w: Any, what: str = "window") -> None:
    """Raise ``InvalidBatchInputError`` unless ``w`` is None or a ``BatchWindow`` that can work."""
    if w is None:
        return
    if not isinstance(w, BatchWindow):
        raise _fail(f"{what} must be a BatchWindow or None, got {w!r:.200}")
    if w.kind not in WINDOW_KINDS:
        raise _fail(f"{what}.kind must be one of {', '.join(WINDOW_KINDS)}, got {w.kind!r}")
    for name in ("low", "high"):
        v = getattr(w, name)
        if v is None and name == "low":
            continue
        if not isinstance(v, str):
            raise _fail(f"{what}.{name} must be a str, got {v!r:.200}")
        if len(v) > MAX_MARK_CHARS:
            raise _fail(
                f"{what}.{name} is {len(v):,} characters ({v[:40]!r}...); a window bound may "
                f"hold at most {MAX_MARK_CHARS}: keep a key or a time in it"
            )
        if w.kind == "time":
            try:
                _instant(v)
            except ValueError:
                raise _fail(
                    f"{what}.{name} {v!r} is not an ISO 8601 time; a time window's bounds look "
                    "like 2026-05-01T03:00:00+00:00"
                ) from None
    for name in ("series", "run", "claim"):
        if not isinstance(getattr(w, name), str):
            raise _fail(f"{what}.{name} must be a str, got {getattr(w, name)!r:.200}")


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
    failure_policy: FailurePolicy | None = None
    """When the batch pauses itself because too much fails. None: the default policy
    (``FailurePolicy()``: over half of the last 100 attempts, once 20 were made); pass
    ``FailurePolicy.disabled()`` to never pause."""
    notifier: BatchNotifierConfig | None = None
    """A registered ``@batch_notifier`` called when the batch pauses itself, when pages fail for
    good (in groups), and when the batch ends."""
    heartbeat_timeout: timedelta | None = timedelta(seconds=30)
    """The library heartbeats every running page; a page whose worker stops heartbeating this
    long (a crashed worker, or a page blocking the event loop) is retried without waiting for
    ``page_timeout``. None: no heartbeats (a dead worker's pages wait for ``page_timeout``)."""
    ramp_up: timedelta | None = None
    """Grow the parallelism cap linearly from 1 to ``max_parallelism`` over this long, at the
    start and again after every resume; None: start at the cap."""
    max_pages_per_second: float | None = None
    """At most this many page attempts start per second, across all chains and workers (a token
    bucket kept by the workflow); None: no limit. Change it while the batch runs with
    ``set_rate_limit``."""
    max_items_per_second: float | None = None
    """At most about this many items per second: pages start as if each held the average items
    of the pages completed so far (``page_size`` until one reports); None: no limit."""
    health_check: HealthCheckConfig | None = None
    """A registered ``@health_check`` (replica lag, an API's 429 rate, ...) called every
    ``interval``: "slow down" halves the parallelism, "stop" holds the batch until it is healthy
    again; then parallelism grows back step by step."""
    adaptive: bool = False
    """Find the parallelism by itself (with ``max_parallelism`` as the ceiling): grow it while
    pages succeed within ``target_page_latency``, cut it on failures, timeouts or slow pages."""
    target_page_latency: timedelta | None = None
    """With ``adaptive``: how long the processor may take on a page (as its worker measures
    ``run``) before the page counts as slow. None: the fastest page seen (which it sees at
    low parallelism, where it starts) times 1.5."""
    canary_pages: int | None = None
    """Pause the batch after this many pages have completed, for a person to check the first
    results before ``resume()``; None: no canary."""
    redrive_of: str | None = None
    """The workflow ID of the finished batch this one redrives (set by
    ``BatchOrchestratorClient.redrive``); shown in progress."""
    redrive_pages: list[RedrivePage] | None = None
    """The pages this batch starts with instead of ``first_cursor_str(s)``: the failed pages of
    the batch it redrives (set by ``BatchOrchestratorClient.redrive``)."""
    item_keys: list[str] | None = None
    """Run these item keys through the processor's ``run_items(context, keys)`` instead of
    paging from a cursor: pages of up to ``page_size`` keys, no chains (set by
    ``BatchOrchestratorClient.redrive_items``)."""
    window: BatchWindow | None = None
    """The slice of the data this batch covers, set by a series for each of its runs: pages
    read it as ``context.window`` and ``SqlSource`` keeps its scan inside it. An empty window
    finishes at once with 0 pages. None: the whole data."""
    redrive_source: RedriveSource | None = None
    """Start with the failed pages (or items) of another batch, read from its failure ledger a
    chunk at a time (set by ``BatchOrchestratorClient.redrive`` and ``redrive_items``)."""

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
    """The page's cursor. In progress lists, a cursor longer than 200 characters is shown as
    its first 200 and "…" (``cursor_length`` has its length): ``handle.failures()`` and
    ``batch-orchestra failures ID --json`` list whole cursors."""
    attempts: int
    """Attempts made so far."""
    error_type: str
    """The last error's type (exception class name, or "Timeout")."""
    error_message: str
    """The last error's message, truncated."""
    failed_at: datetime
    """When the last attempt failed."""
    next_retry_at: datetime | None = None
    """For a stuck or retrying page: when its next retry is due."""
    size: int = 0
    """The page's size (0 when unknown: recorded by an older version)."""
    successor_enqueued: bool = False
    """Whether the page had already enqueued its successor(s): a redrive of it must not
    enqueue them again."""
    cursor_length: int = 0
    """The cursor's length in characters (``cursor_str`` is whole when it has this many; 0 from
    versions before it was kept)."""

    @property
    def cursor_is_whole(self) -> bool:
        """Whether ``cursor_str`` is the whole cursor rather than a preview of a long one."""
        return self.cursor_length <= len(self.cursor_str)


@dataclass(kw_only=True)
class RedrivePage:
    """A failed page that a redrive batch starts with."""

    cursor_str: str
    """The page's cursor."""
    size: int
    """The page's size."""
    successor_enqueued: bool = False
    """The page had enqueued its successor(s) before it failed: its chain goes on elsewhere,
    so the redriven page's ``enqueue_next_page`` does nothing."""


@dataclass(kw_only=True)
class RedriveSource:
    """Another batch's failure ledger, read by a redrive batch as it goes.

    Set by ``BatchOrchestratorClient.redrive`` and ``redrive_items``: the new batch's input
    names the old batch instead of carrying its cursors (ten thousand 16 KB cursors would not fit
    in one input), and the new batch reads the old one's failed pages or items a chunk at a time
    from its history (docs/architecture.md, "The failure ledger").
    """

    workflow_id: str
    """The old batch's workflow ID."""
    first_run_id: str
    """The old batch's first run ID (which execution of that workflow ID)."""
    items: bool = False
    """Run its failed items (through ``run_items``) instead of its failed pages."""
    from_record: int = 0
    """Ledger records before this one hold pages that the old batch already queued again itself
    (``ledger_redrive_record`` of its progress)."""
    to_record: int | None = None
    """Read only records before this one (the old batch's ``num_ledger_records`` when it was
    still running); None: to the end of its ledger."""


@dataclass(kw_only=True)
class ItemFailure:
    """One item a page recorded as failed (``context.record_failure``) and went on without."""

    key: str
    """The item's key, as the processor gave it (truncated to 1,000 characters). In
    ``progress.failed_items`` a key longer than 200 characters is shown as its first 200 and
    "…" (``key_length`` has its length); ``handle.failures()`` lists whole keys."""
    page_num: int
    """The page that recorded it."""
    error_type: str
    """The exception's class name, or "Error" for a message given as a string."""
    error_message: str
    """The error's message (truncated to 500 characters)."""
    failed_at: datetime
    """When the page recorded it."""
    key_length: int = 0
    """The key's length in characters (``key`` is whole when it has this many; 0 when unknown)."""


@dataclass(kw_only=True)
class ErrorCount:
    """One distinct error of a batch's held pages, with how many pages last failed with it."""

    error_type: str
    """The error's type (exception class name, or "Timeout")."""
    error_message: str
    """Its message, truncated."""
    pages: int
    """Pages (retrying, stuck or among the listed failed) whose last error this is."""


@dataclass(kw_only=True)
class ControlChange:
    """A change made to a running batch (parallelism, rate limit, pause, ...)."""

    at: datetime
    """When the batch applied it."""
    change: str
    """What changed, e.g. "max_parallelism 20 -> 5"."""
    by: str | None = None
    """Who asked: the client's identity (the CLI's is user@host), or None for the batch itself."""


@dataclass(kw_only=True)
class HistorySample:
    """One point of the batch's history (``progress.history``).

    It covers the time since the sample before it. The batch takes one about every minute while
    it runs; older ones are merged into coarser ones (one per 10 minutes past an hour, one per
    hour past a day), so the whole history stays small however long the batch runs
    (docs/dashboard.md, "The batch's history").
    """

    t: float
    """When it was taken, in seconds since the epoch (workflow time)."""
    items_per_second: float
    """Items completed per second since the sample before."""
    pages_per_second: float
    """Pages completed per second since the sample before."""
    num_processing_pages: float
    """Pages running (a merged sample: their average over its span)."""
    max_parallelism: float
    """The parallelism cap (a merged sample: its average)."""
    effective_parallelism: float
    """How many pages could run, under pauses and flow control (a merged sample: its average)."""
    completed_pages: int
    """Pages completed by then, since the batch started."""
    completed_items: int
    """Items completed by then, since the batch started."""


@dataclass(kw_only=True)
class HookError:
    """A tracker, notifier, health check or ``reduce`` of the batch whose calls fail.

    One per hook; it stays after the hook recovers (``consecutive_failures`` 0,
    ``recovered_at`` set), so an event that was not delivered stays visible.
    """

    kind: str
    """"tracker", "notifier", "health_check" or "reduce"."""
    name: str
    """The hook's registered name (for "reduce", the processor's)."""
    consecutive_failures: int
    """Calls in a row that failed, each after its retries (0: the last call succeeded)."""
    total_failures: int
    """Calls that failed in the whole batch, across continue-as-new."""
    last_error: str
    """The last failure's error type and message (at most 500 characters)."""
    last_failed_at: datetime
    """When the last failed call gave up."""
    event: str | None = None
    """For a notifier: the event of the last failed call, which was not delivered
    ("finished", "paused", "stalled", "pages_failed" or "items_failed")."""
    recovered_at: datetime | None = None
    """When a call succeeded after the last failure (None: still failing)."""


@dataclass(kw_only=True)
class BatchOrchestratorProgress:
    """How far a batch has come. Counts cover the whole batch, across continue-as-new runs."""

    num_completed_pages: int = 0
    """Pages processed successfully."""
    num_processing_pages: int = 0
    """Pages with an attempt running now."""
    num_pending_pages: int = 0
    """Pages discovered but not running: waiting for a slot or for a retry (retrying pages are
    counted here too)."""
    num_retrying_pages: int = 0
    """Pending pages that failed at least once and wait for their next initial retry."""
    num_stuck_pages: int = 0
    """Pages whose initial retries are exhausted, waiting for extended retries (a stuck page
    whose retry is running counts as processing)."""
    num_failed_pages: int = 0
    """Pages that will not be retried again."""
    num_completed_items: int = 0
    """Items reported by completed pages."""
    num_discovered_pages: int = 0
    """Pages discovered so far: completed + processing + pending + stuck + failed + skipped."""
    num_open_chains: int = 0
    """Chains (one per first cursor) with a page not yet finished, so they may discover more."""
    is_finished: bool = False
    """No page is pending, running or stuck: the batch is over."""
    is_cancelled: bool = False
    """The batch was cancelled: no page starts any more."""
    is_paused: bool = False
    """The batch is paused: running pages finish, no new page starts until ``resume()``."""
    pause_reason: str | None = None
    """Why the batch is paused (an operator, the failure policy, ...); None when running."""
    max_parallelism: int = 0
    """The configured parallelism cap (kept while paused: ``resume()`` returns to it)."""
    effective_parallelism: int = 0
    """How many pages may run now: 0 while paused, else the cap, lowered when Temporal's limits
    or the batch's held-state budget require it (``hold_reason`` says why)."""
    hold_reason: str | None = None
    """Why fewer pages start than the cap allows, if they do."""
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
    retrying_pages: list[PageFailure] = field(default_factory=list)
    """The most recently failed pages still in their initial retries (at most 100)."""
    errors: list[ErrorCount] = field(default_factory=list)
    """The distinct last errors of retrying, stuck and listed failed pages, most pages first."""
    throttle_reason: str | None = None
    """Why flow control holds pages back now, if it does (ramp-up, a rate limit, the health
    check, adaptive parallelism)."""
    discovery_bound: str | None = None
    """Said when the batch runs far below its cap with nothing waiting to start: its chains
    find pages more slowly than the cap could run them (more first cursors, lookahead or
    discovery apart fill it; docs/tuning.md). None otherwise."""
    max_pages_per_second: float | None = None
    """The page rate limit in force (None: none)."""
    max_items_per_second: float | None = None
    """The item rate limit in force (None: none)."""
    health: str | None = None
    """The health check's last verdict: "healthy", "slow_down", "stop" or "failing" (the check
    itself fails); None without a health check or before its first call."""
    health_reason: str | None = None
    """The reason the health check gave with its verdict (or its error)."""
    adaptive_parallelism: int | None = None
    """With ``adaptive``: the parallelism the batch has found so far."""
    target_page_latency: float | None = None
    """With ``adaptive``: the page latency in seconds it keeps under (given or learned)."""
    ramp_up_until: datetime | None = None
    """While ramping up: when the cap reaches ``max_parallelism``."""
    control_changes: list[ControlChange] = field(default_factory=list)
    """The most recent changes made to the batch (at most 20), oldest first."""
    result: Any = None
    """With a processor that defines ``reduce``: the pages' values folded so far (the batch
    result once it has finished)."""
    num_unreduced_pages: int = 0
    """Completed pages whose values are not folded into ``result`` yet."""
    result_error: str | None = None
    """Why folding pages' values fails, if it does (the values wait; nothing is dropped)."""
    num_skipped_pages: int = 0
    """Pages an operator skipped (``skip_page``): let go without being processed, and counted
    neither completed nor failed."""
    num_discovering_pages: int = 0
    """Pages whose successors are being found apart (a processor with ``next_page``)."""
    failing_discoveries: list[PageFailure] = field(default_factory=list)
    """Pages whose discovery apart (``next_page``) failed and waits for its next retry (at
    most 100): cursor, failed attempts, last error and next retry. Their errors are counted in
    ``errors`` too."""
    num_failed_items: int = 0
    """Items recorded as failed (``context.record_failure``) by completed pages, exactly, across
    continue-as-new. A page that fails and is retried counts only the failures its completing
    attempt recorded."""
    failed_items: list[ItemFailure] = field(default_factory=list)
    """The most recent recorded item failures (at most 100), oldest first."""
    redrive_of: str | None = None
    """The workflow ID of the batch this one redrives, if it does."""
    num_redriven_pages: int = 0
    """Failed pages queued again by ``redrive()`` in this batch."""
    no_progress: str | None = None
    """Set while the batch gets nowhere: no page has completed since it started (or was
    resumed) and its last attempts failed with the same error, or only retries of failing
    pages can run while the same error repeats. Names the error (at most 500 characters);
    None otherwise."""
    hook_errors: list[HookError] = field(default_factory=list)
    """The batch's tracker, notifier, health check or ``reduce`` whose calls failed (one entry
    each), with the last error; kept after a recovery."""
    window: BatchWindow | None = None
    """The window of the series run that started this batch (its series, run and bounds);
    None outside a series."""
    lists_trimmed: str | None = None
    """Why the detailed lists are shorter than usual, if they are: this progress would have
    passed its size budget (long errors, keys or a large result). Counts stay exact, and
    ``handle.failures()`` lists everything."""
    num_ledger_records: int = 0
    """Records the batch has written to its failure ledger (its failed pages and items with
    their whole cursors and keys, kept in its history: docs/architecture.md)."""
    ledger_redrive_record: int = 0
    """The ledger record of the latest ``redrive()``: failed pages recorded before it were
    queued again (0: none)."""
    history: list[HistorySample] = field(default_factory=list)
    """The batch's throughput over its whole life, oldest first: a sample about every minute
    for the last hour, coarser before (at most 360 samples and 80 KB). Empty in the progress handed
    to trackers, notifiers and health checks, and from versions before it."""


@dataclass(kw_only=True)
class BatchFailures:
    """What failed in a batch, with whole cursors and keys (``handle.failures()``).

    Without ``all``, the same pages and items as progress lists (the most recent 100 of each
    kind); with it, every one. Failed pages and items come from the batch's failure ledger (its
    history), so a batch running longer than the namespace's retention period may have lost its
    earliest runs' (``unavailable_runs``); a notifier keeps them for good.
    """

    failed_pages: list[PageFailure] = field(default_factory=list)
    """Pages that failed for good (the latest failure of each), oldest first."""
    stuck_pages: list[PageFailure] = field(default_factory=list)
    """Pages waiting for extended retries."""
    retrying_pages: list[PageFailure] = field(default_factory=list)
    """Pages in their initial retries."""
    failing_discoveries: list[PageFailure] = field(default_factory=list)
    """Pages whose discovery apart (``next_page``) fails and is retried."""
    failed_items: list[ItemFailure] = field(default_factory=list)
    """Items recorded as failed, oldest first."""
    num_failed_pages: int = 0
    """Exact counts, as progress has them."""
    num_stuck_pages: int = 0
    num_retrying_pages: int = 0
    num_failed_items: int = 0
    complete: bool = False
    """Every failed, stuck and retrying page and every failed item is listed, each whole."""
    unavailable_runs: int = 0
    """Runs of the batch whose history is gone (past the namespace's retention period): the
    failures they recorded are not listed."""
    progress: BatchOrchestratorProgress | None = None
    """The progress the lists were read with."""


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
    has_reduce: bool = False
    """The processor folds its pages' values into a batch result (it defines ``reduce``)."""
    discovers_apart: bool = False
    """The processor has a ``next_page`` method: the batch finds each page's successors in a
    step of their own, retried on its own, alongside the page's processing (False in histories
    recorded before it existed)."""

    def retry_delay(self, failed_attempts: int) -> float:
        """Seconds to wait before the next initial retry after ``failed_attempts`` failures.

        Never overflows: the exponent stops growing once the delay reaches its maximum.
        """
        cap = self.maximum_interval_seconds
        try:
            delay = self.initial_interval_seconds * self.backoff_coefficient ** min(
                max(0, failed_attempts - 1), 1024
            )
        except OverflowError:
            delay = cap
        return float(min(delay, cap))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fail(msg: str) -> InvalidBatchInputError:
    return InvalidBatchInputError(msg)


def check_cursor(cursor: Any, what: str) -> None:
    """Raise ``InvalidBatchInputError`` unless ``cursor`` is a str of a size the batch can keep."""
    if not isinstance(cursor, str):
        raise _fail(
            f"{what} must be a str, got {type(cursor).__name__} {cursor!r}; serialize the "
            "cursor first, e.g. json.dumps(cursor)"
        )
    if len(cursor) > MAX_CURSOR_BYTES:
        raise _fail(
            f"{what} is {len(cursor):,} characters ({cursor[:40]!r}...); a cursor may hold at "
            f"most {MAX_CURSOR_BYTES:,}: keep a key or offset in it, not the page's data"
        )


def _validate_policy(p: Any) -> None:
    if not isinstance(p, FailurePolicy):
        raise _fail(f"failure_policy must be a FailurePolicy or None, got {p!r}")
    rate = p.max_failure_rate
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1
    ):
        raise _fail(
            f"failure_policy.max_failure_rate must be None or a fraction in (0, 1], got {rate!r}"
        )
    if not _is_int(p.window) or p.window < 1 or p.window > 10_000:
        raise _fail(f"failure_policy.window must be an int in [1, 10000], got {p.window!r}")
    if not _is_int(p.min_attempts) or not 1 <= p.min_attempts <= p.window:
        raise _fail(
            f"failure_policy.min_attempts must be an int in [1, window={p.window}], "
            f"got {p.min_attempts!r}"
        )
    for name in ("max_failed_pages", "max_failed_items"):
        v = getattr(p, name)
        if v is not None and (not _is_int(v) or v < 0):
            raise _fail(f"failure_policy.{name} must be None or an int >= 0, got {v!r}")
    n = p.no_progress_attempts
    if n is not None and (not _is_int(n) or n < 1):
        raise _fail(f"failure_policy.no_progress_attempts must be None or an int >= 1, got {n!r}")


def check_rate(value: Any, what: str) -> None:
    """Raise ``InvalidBatchInputError`` unless ``value`` is None or a positive number."""
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or value == float("inf")
    ):
        raise _fail(f"{what} must be None (no limit) or a positive number, got {value!r}")


def _validate_flow(inp: BatchOrchestratorInput) -> None:
    if inp.ramp_up is not None and (
        not isinstance(inp.ramp_up, timedelta) or inp.ramp_up <= timedelta(0)
    ):
        raise _fail(f"ramp_up must be None or a positive timedelta, got {inp.ramp_up!r}")
    check_rate(inp.max_pages_per_second, "max_pages_per_second")
    check_rate(inp.max_items_per_second, "max_items_per_second")
    if not isinstance(inp.adaptive, bool):
        raise _fail(f"adaptive must be True or False, got {inp.adaptive!r}")
    t = inp.target_page_latency
    if t is not None and (not isinstance(t, timedelta) or t <= timedelta(0)):
        raise _fail(f"target_page_latency must be None or a positive timedelta, got {t!r}")
    if t is not None and not inp.adaptive:
        raise _fail(
            f"target_page_latency={t!r} only steers adaptive parallelism; pass adaptive=True "
            "too, or leave it out"
        )
    if inp.canary_pages is not None and (not _is_int(inp.canary_pages) or inp.canary_pages < 1):
        raise _fail(f"canary_pages must be None or an int >= 1, got {inp.canary_pages!r}")
    h = inp.health_check
    if h is None:
        return
    if not isinstance(h, HealthCheckConfig) or not isinstance(h.name, str) or not h.name:
        raise _fail(
            f"health_check must be None or a HealthCheckConfig with a registered check's name, "
            f"got {h!r}"
        )
    if h.args is not None and not isinstance(h.args, str):
        raise _fail(f"health_check.args must be a str or None, got {h.args!r}")
    for name in ("interval", "timeout"):
        v = getattr(h, name)
        if not isinstance(v, timedelta) or v <= timedelta(0):
            raise _fail(f"health_check.{name} must be a positive timedelta, got {v!r}")
    n = h.failures_before_unhealthy
    if not _is_int(n) or n < 1:
        raise _fail(f"health_check.failures_before_unhealthy must be an int >= 1, got {n!r}")


def _validate_item_keys(inp: BatchOrchestratorInput) -> None:
    keys = inp.item_keys
    if keys is None:
        return
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise _fail(f"item_keys must be a non-empty list of str or None, got {keys!r:.200}")
    size = sum(len(k) + 3 for k in keys)
    if size > MAX_ITEM_KEYS_BYTES:
        raise _fail(
            f"item_keys hold {len(keys):,} keys ({size:,} bytes); at most "
            f"{MAX_ITEM_KEYS_BYTES:,} bytes: redrive them in several batches"
        )
    long = next((k for k in keys if len(k) > 1_000), None)
    if long is not None:
        raise _fail(f"an item key is {len(long):,} characters ({long[:40]!r}...); at most 1,000")
    if inp.first_cursor_str or inp.first_cursor_strs or inp.redrive_pages:
        raise _fail(
            "give either item_keys or first_cursor_str(s)/redrive_pages, not both: a batch of "
            "item keys does not page from a cursor"
        )


def _validate_redrive(inp: BatchOrchestratorInput) -> None:
    if inp.redrive_of is not None and not isinstance(inp.redrive_of, str):
        raise _fail(f"redrive_of must be a workflow ID (str) or None, got {inp.redrive_of!r}")
    pages = inp.redrive_pages
    if pages is None:
        return
    if not isinstance(pages, list) or not pages:
        raise _fail(f"redrive_pages must be a non-empty list of RedrivePage or None, got {pages!r}")
    for page in pages:
        if not isinstance(page, RedrivePage):
            raise _fail(f"redrive_pages holds RedrivePage objects, got {page!r}")
        check_cursor(page.cursor_str, "a cursor in redrive_pages")
        if not _is_int(page.size) or page.size < 1:
            raise _fail(f"a page in redrive_pages has size {page.size!r}; it must be an int >= 1")
    if inp.first_cursor_str or inp.first_cursor_strs:
        raise _fail(
            "give either redrive_pages or first_cursor_str(s), not both: a redrive starts from "
            "the failed pages only"
        )


def _validate_redrive_source(inp: BatchOrchestratorInput) -> None:
    src = inp.redrive_source
    if src is None:
        return
    if not isinstance(src, RedriveSource):
        raise _fail(f"redrive_source must be a RedriveSource or None, got {src!r:.200}")
    for name in ("workflow_id", "first_run_id"):
        value = getattr(src, name)
        if not isinstance(value, str) or not value or len(value) > MAX_BATCH_ID_CHARS:
            raise _fail(f"redrive_source.{name} must be a non-empty str, got {value!r:.200}")
    if not isinstance(src.items, bool):
        raise _fail(f"redrive_source.items must be True or False, got {src.items!r}")
    if not _is_int(src.from_record) or src.from_record < 0:
        raise _fail(f"redrive_source.from_record must be an int >= 0, got {src.from_record!r}")
    if src.to_record is not None and (not _is_int(src.to_record) or src.to_record < 0):
        raise _fail(f"redrive_source.to_record must be None or an int >= 0, got {src.to_record!r}")
    if inp.first_cursor_str or inp.first_cursor_strs or inp.redrive_pages or inp.item_keys:
        raise _fail(
            "give either redrive_source or first_cursor_str(s)/redrive_pages/item_keys, not "
            "both: a redrive batch starts from the old batch's failures only"
        )


def _validate_sizes(inp: BatchOrchestratorInput) -> None:
    """The limits that keep every call of the batch within its payload budget.

    Checked for new batches only: a batch started before a limit existed goes on.
    """
    if isinstance(inp.batch_id, str) and len(inp.batch_id) > MAX_BATCH_ID_CHARS:
        raise _fail(
            f"batch_id is {len(inp.batch_id):,} characters ({inp.batch_id[:40]!r}...); at most "
            f"{MAX_BATCH_ID_CHARS:,}: it labels logs and every attempt carries it"
        )
    for name in ("batch_tracker", "notifier", "health_check"):
        hook = getattr(inp, name)
        args = getattr(hook, "args", None)
        if isinstance(args, str) and len(args.encode()) > MAX_HOOK_ARGS_BYTES:
            raise _fail(
                f"{name}.args is {len(args.encode()):,} bytes ({args[:40]!r}...); every call "
                f"carries a copy, so it may hold at most {MAX_HOOK_ARGS_BYTES:,}: keep large "
                "data elsewhere and put its location in args"
            )


def validate_input(inp: BatchOrchestratorInput, *, strict: bool = True) -> None:
    """Raise ``InvalidBatchInputError`` naming the first bad field of ``inp``.

    ``strict``: also the size limits added in later versions (off for a batch that is already
    running, which goes on with the input it started with).
    """
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
    if inp.args is not None and len(inp.args.encode()) > MAX_ARGS_BYTES:
        raise _fail(
            f"args is {len(inp.args.encode()):,} bytes ({inp.args[:40]!r}...); every page "
            f"attempt carries a copy, so it may hold at most {MAX_ARGS_BYTES:,}: keep large data "
            "in your database or a file and put its location in args"
        )
    check_cursor(inp.first_cursor_str, "first_cursor_str")
    _validate_redrive(inp)
    _validate_item_keys(inp)
    _validate_redrive_source(inp)
    if strict:
        _validate_sizes(inp)
    if inp.first_cursor_strs is not None:
        cursors = inp.first_cursor_strs
        if not isinstance(cursors, list) or not cursors:
            raise _fail(
                f"first_cursor_strs must be a non-empty list of str or None, got {cursors!r}"
            )
        for c in cursors:
            check_cursor(c, "a cursor in first_cursor_strs")
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
    if inp.heartbeat_timeout is not None and (
        not isinstance(inp.heartbeat_timeout, timedelta) or inp.heartbeat_timeout <= timedelta(0)
    ):
        raise _fail(
            f"heartbeat_timeout must be None or a positive timedelta, got {inp.heartbeat_timeout!r}"
        )
    if inp.failure_policy is not None:
        _validate_policy(inp.failure_policy)
    _validate_flow(inp)
    check_window(inp.window)
    n = inp.notifier
    if n is not None:
        if not isinstance(n, BatchNotifierConfig) or not isinstance(n.name, str) or not n.name:
            raise _fail(
                f"notifier must be None or a BatchNotifierConfig with a registered notifier's "
                f"name, got {n!r}"
            )
        if n.args is not None and not isinstance(n.args, str):
            raise _fail(f"notifier.args must be a str or None, got {n.args!r}")
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
    """The JSON-friendly dict the workflow takes (durations as seconds, the processor by name)."""
    wire: dict[str, Any] = to_wire(inp)
    wire["page_processor"] = inp.processor_name()
    return wire


def input_from_wire(raw: Any, *, strict: bool = True) -> BatchOrchestratorInput:
    """Parse and validate the workflow's wire input (from any client, SDK or the CLI).

    A ``continuation`` key (the state carried by continue-as-new) is skipped here. ``strict``:
    see ``validate_input``.
    """
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != "continuation"}
        for key in ("page_processor", "page_size", "max_parallelism"):
            if key not in raw:
                raise _fail(f"the BatchOrchestrator input needs {key!r}")
        if isinstance(raw.get("batch_tracker"), dict):
            raw["batch_tracker"] = {"interval": 60, **raw["batch_tracker"]}
        if isinstance(raw.get("health_check"), dict):
            raw["health_check"] = {"interval": 30, "timeout": 10, **raw["health_check"]}
    try:
        inp = from_wire(BatchOrchestratorInput, raw, "", "BatchOrchestrator input")
    except WireError as err:
        raise _fail(str(err)) from None
    validate_input(inp, strict=strict)
    return inp
