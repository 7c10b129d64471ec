"""The batch's input: everything that defines a batch, and the pages a redrive starts with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .hooks import BatchNotifierConfig, BatchTrackerConfig, HealthCheckConfig
from .policy import FailurePolicy
from .window import BatchWindow

__all__ = [
    "BatchOrchestratorInput",
    "RedrivePage",
    "RedriveSource",
]


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
    max_open_items: int | None = None
    """For a processor whose pages start a workflow per item (``context.start_items``): at most
    this many item workflows open at once (1 to 10,000, at least ``page_size``). A page reserves
    room for as many items as its size while it runs, and waits while there is none; the batch
    finishes once every item workflow has closed. None: pages may not start items."""
    cancel_open_items: bool = True
    """When the batch is cancelled, cancel its open item workflows too (False: leave them)."""
    item_check_interval: timedelta = timedelta(seconds=15)
    """How often the batch describes open item workflows it has not heard from for two such
    intervals (terminated, timed out, not decorated with ``reports_to_batch``), at most 100 at a
    time: such an item is counted within about three intervals (plus one per further 100)."""
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
