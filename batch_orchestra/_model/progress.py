"""How far a batch has come (``BatchOrchestratorProgress``) and the records it carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .failures import ErrorCount, ItemFailure, PageFailure
from .window import BatchWindow

__all__ = [
    "BatchOrchestratorProgress",
    "ControlChange",
    "HistorySample",
    "HookError",
]


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
    max_open_items: int | None = None
    """The cap on open item workflows (``BatchOrchestratorInput.max_open_items``), if set."""
    num_items_started: int = 0
    """Item workflows the batch's pages started (``context.start_items``), each key once."""
    num_items_open: int = 0
    """Item workflows started and not yet closed."""
    num_items_completed: int = 0
    """Item workflows that completed."""
    num_items_failed: int = 0
    """Item workflows that failed, timed out, were terminated or cancelled (each is also an item
    failure: in ``num_failed_items``, the failure listing and ``redrive_items``)."""
    item_workflow_prefix: str = ""
    """What this batch's item workflow IDs start with: an item's workflow ID is this and its key
    (a redrive's items keep the IDs of the batch it redrives). "" for a batch without
    ``max_open_items``."""
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
