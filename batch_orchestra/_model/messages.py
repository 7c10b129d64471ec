"""What crosses between the workflow and its activities: names and wire dataclasses.

Both sides refer to handlers and activities by these registered names, so neither imports the
other. Every message an attempt sends carries ``execution``, the first run ID of the batch
execution that started it: a batch ignores messages from another execution that shares its
workflow ID (a batch cancelled while its pages ran, then started again under the same ID).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._model import BatchOrchestratorProgress, BatchWindow, ItemFailure, PageFailure
from .._worker.page import BatchPage

__all__ = [
    "CANCEL_ITEMS",
    "CHECK_ITEMS",
    "ITEMS_CLOSED_SIGNAL",
    "ITEM_CLOSED_SIGNAL",
    "CheckItemsInput",
    "CheckItemsResult",
    "ClosedItem",
    "ItemClosed",
    "ItemsClosed",
    "MAX_CLOSES_PER_SIGNAL",
    "MAX_ERROR_TYPE",
    "item_workflow_prefix",
    "BATCH_WORKFLOW_TYPE",
    "CHECK_HEALTH",
    "DESCRIBE_BATCH",
    "DISCOVER_PAGE",
    "DescribeBatchInput",
    "DiscoverPageInput",
    "DiscoverPageResult",
    "ENQUEUE_MANY_UPDATE",
    "ENQUEUE_SIGNAL",
    "ENQUEUE_UPDATE",
    "EnqueueRequest",
    "FAILURE_DETAILS_QUERY",
    "FailureDetails",
    "FailureDetailsRequest",
    "HealthCheckInput",
    "LIFECYCLE_QUERY",
    "NOTIFY",
    "NotifyInput",
    "PAGE_FINISHED_SIGNAL",
    "PAGE_RUNNING_SIGNAL",
    "PAUSE_SIGNAL",
    "PAUSE_UPDATE",
    "PROCESS_PAGE",
    "PROGRESS_QUERY",
    "PageOutcome",
    "PageResult",
    "ProcessPageInput",
    "READ_LEDGER",
    "RECORD_FAILURES",
    "REDRIVE_UPDATE",
    "REDUCE_RESULTS",
    "RESTORE_MAX_PARALLELISM_UPDATE",
    "RESUME_SIGNAL",
    "RESUME_UPDATE",
    "RETRY_PAGE_UPDATE",
    "RUN_TRACKER",
    "ReduceInput",
    "SET_MAX_PARALLELISM_SIGNAL",
    "SET_MAX_PARALLELISM_UPDATE",
    "SET_RATE_LIMIT_SIGNAL",
    "SET_RATE_LIMIT_UPDATE",
    "SKIP_PAGE_UPDATE",
    "TrackerInput",
]

BATCH_WORKFLOW_TYPE = "BatchOrchestrator"
"""The workflow type of every batch (as the Temporal UI and ``temporal workflow list`` show)."""
PROGRESS_QUERY = "progress"
LIFECYCLE_QUERY = "batch_orchestra.lifecycle"
DESCRIBE_BATCH = "batch_orchestra.describe_batch"
PROCESS_PAGE = "batch_orchestra.process_page"
RUN_TRACKER = "batch_orchestra.run_batch_tracker"
NOTIFY = "batch_orchestra.notify"
CHECK_HEALTH = "batch_orchestra.check_health"
REDUCE_RESULTS = "batch_orchestra.reduce_results"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
SET_MAX_PARALLELISM_UPDATE = "set_max_parallelism"
RESTORE_MAX_PARALLELISM_UPDATE = "restore_max_parallelism"
PAUSE_SIGNAL = "pause_signal"
RESUME_SIGNAL = "resume_signal"
SET_MAX_PARALLELISM_SIGNAL = "set_max_parallelism_signal"
SET_RATE_LIMIT_SIGNAL = "set_rate_limit_signal"
"""The operator's controls: updates (answered with the progress) and fire-and-forget signals."""
SET_RATE_LIMIT_UPDATE = "set_rate_limit"
REDRIVE_UPDATE = "redrive"
ENQUEUE_UPDATE = "batch_orchestra.enqueue"
ENQUEUE_MANY_UPDATE = "batch_orchestra.enqueue_many"
ENQUEUE_SIGNAL = "batch_orchestra.enqueue_pages"
PAGE_FINISHED_SIGNAL = "batch_orchestra.page_finished"
PAGE_RUNNING_SIGNAL = "batch_orchestra.page_running"
DISCOVER_PAGE = "batch_orchestra.discover_page"
RETRY_PAGE_UPDATE = "retry_page"
SKIP_PAGE_UPDATE = "skip_page"
RECORD_FAILURES = "batch_orchestra.record_failures"
"""The failure ledger's records: a no-op activity whose input Temporal keeps in history."""
READ_LEDGER = "batch_orchestra.read_ledger"
"""Reads a chunk of a batch's failure ledger (a redrive's pages or items)."""
ITEM_CLOSED_SIGNAL = "batch_orchestra.item_closed"
"""An item workflow tells its batch it closed (``reports_to_batch``)."""
ITEMS_CLOSED_SIGNAL = "batch_orchestra.items_closed"
"""The worker that started item workflows tells their batch which of them closed, in batches."""
CHECK_ITEMS = "batch_orchestra.check_items"
"""Describes open item workflows that have not reported, to find those that closed silently."""
CANCEL_ITEMS = "batch_orchestra.cancel_items"
"""Cancels a cancelled batch's open item workflows."""
FAILURE_DETAILS_QUERY = "batch_orchestra.failure_details"
"""Whole cursors of the failing pages a batch holds, a page of them at a time."""


@dataclass
class DescribeBatchInput:
    """What ``describe_batch`` checks: the processor and, optionally, tracker and notifier."""

    processor: str
    tracker: str | None = None
    notifier: str | None = None
    health_check: str | None = None
    args: str | None = None
    """The batch's args, checked against the processor's ``args_type`` if it declares one."""


@dataclass
class ProcessPageInput:
    """One attempt at one page."""

    processor: str
    page: BatchPage
    page_num: int
    attempt: int
    args: str | None
    batch_id: str
    successor_enqueued: bool
    report_after_seconds: float | None = None
    """An attempt that has run this long also reports its outcome to the batch by signal, in
    case the run that started it has handed over in the meantime."""
    execution: str = ""
    """The batch execution (its first run ID) that started this attempt."""
    discovered_apart: bool = False
    """The page's successors are found by ``next_page`` in a step of their own: an enqueue
    from ``run`` is ignored (with a warning)."""
    run_items: bool = False
    """The page's cursor is a JSON list of item keys for the processor's ``run_items``."""
    item_prefix: str = ""
    """What the workflow IDs of the items this page starts begin with (``context.start_items``);
    "" when the batch has no ``max_open_items``."""
    window: BatchWindow | None = None
    """The batch's window (a series run's slice of the data), read as ``context.window``."""
    checkpoint: str | None = None
    """The last checkpoint an earlier attempt of this page took (``_checkpoint.py``): this
    attempt resumes after it."""


@dataclass
class PageOutcome:
    """How an attempt ended, reported by signal to whichever run the batch is in now."""

    page_num: int
    attempt: int
    items: int = 0
    error_type: str | None = None
    error_message: str = ""
    non_retryable: bool = False
    successors: list[BatchPage] | None = None
    """Successors the page enqueued but that were not sent on their own (see PageResult)."""
    execution: str = ""
    """The batch execution that started the attempt ("" from the first release: accepted)."""
    seconds: float | None = None
    """How long the processor ran (adaptive parallelism's latency; None from older workers)."""
    value: Any = None
    """What ``run`` returned, for a processor that defines ``reduce`` (else None)."""
    num_failed_items: int = 0
    """Items the attempt recorded as failed (see PageResult)."""
    failed_items: list[ItemFailure] | None = None
    """The first of them in detail (see PageResult)."""
    checkpoint: str | None = None
    """A failed attempt's last checkpoint, for the page's next attempt."""
    opened_items: list[str] | None = None
    """The keys of the item workflows the attempt started (see PageResult)."""


@dataclass
class PageResult:
    """What a page attempt reports back."""

    items: int = 0
    successors: list[BatchPage] | None = None
    """Successors the page enqueued just before it finished: they travel with the result
    instead of in an enqueue message of their own."""
    seconds: float | None = None
    """How long the processor ran (adaptive parallelism's latency; None from older workers)."""
    value: Any = None
    """What ``run`` returned, for a processor that defines ``reduce`` (else None)."""
    num_failed_items: int = 0
    """Items the page recorded as failed (``context.record_failure``)."""
    failed_items: list[ItemFailure] | None = None
    """The first ``MAX_ITEM_FAILURES_PER_PAGE`` of them in detail."""
    opened_items: list[str] | None = None
    """The keys of the item workflows the page started or found started
    (``context.start_items``)."""


@dataclass
class ItemClosed:
    """An item workflow closed (sent by ``reports_to_batch`` to the batch that started it)."""

    execution: str
    """The batch execution that started the item (its first run ID)."""
    key: str
    ok: bool
    error_type: str | None = None
    error_message: str = ""


MAX_CLOSES_PER_SIGNAL = 100
"""At most this many closes in one ``ItemsClosed``: 100 x (a 64-character key, a
``MAX_ERROR_TYPE``-character type and a 500-character message, each character escaped as JSON
may) is 0.93 MB, half a signal's 2 MB (``tests/test_items_book.py``)."""
MAX_ERROR_TYPE = 200
"""Characters of an item failure's error type a close carries."""


@dataclass
class ItemsClosed:
    """Item workflows of one batch execution that closed (sent by the worker following them)."""

    execution: str
    """The batch execution that started the items (its first run ID)."""
    closed: list[ItemClosed]


def item_workflow_prefix(batch_workflow_id: str, execution: str) -> str:
    """What the workflow IDs of a batch execution's items start with.

    The batch's workflow ID and its execution's first 8 characters: a reused batch ID starts
    new item IDs.
    """
    return f"{batch_workflow_id}/{execution[:8]}/"


@dataclass
class CheckItemsInput:
    """Item workflow IDs to describe: ``{prefix}{key}`` for each key."""

    prefix: str
    keys: list[str]


@dataclass
class ClosedItem:
    """An item workflow a check found closed."""

    key: str
    status: str
    """COMPLETED, FAILED, TIMED_OUT, TERMINATED, CANCELED or CONTINUED_AS_NEW; NOT_FOUND if no
    workflow has the item's ID."""
    message: str = ""


@dataclass
class CheckItemsResult:
    closed: list[ClosedItem] = field(default_factory=list)


@dataclass
class EnqueueRequest:
    """A page hands its successor page(s) to the orchestrator."""

    parent_page_num: int
    pages: list[BatchPage] = field(default_factory=list)
    execution: str = ""
    """The batch execution that started the parent's attempt ("" from the first release)."""


@dataclass
class TrackerInput:
    """One call of a batch tracker."""

    name: str
    args: str | None
    batch_id: str
    progress: BatchOrchestratorProgress
    is_final: bool = False


@dataclass
class ReduceInput:
    """One fold of pages' values into the batch result."""

    processor: str
    result: Any
    values: list[Any]
    started: bool = True
    """False for the first fold: ``result`` is then the processor's ``initial_result()``."""


@dataclass
class HealthCheckInput:
    """One call of a health check."""

    name: str
    args: str | None
    batch_id: str
    progress: BatchOrchestratorProgress


@dataclass
class NotifyInput:
    """One call of a batch notifier."""

    name: str
    args: str | None
    batch_id: str
    workflow_id: str
    event: str
    """"paused", "stalled", "pages_failed", "items_failed" or "finished"."""
    reason: str | None
    failed_pages: list[PageFailure]
    progress: BatchOrchestratorProgress
    failed_items: list[ItemFailure] = field(default_factory=list)
    """For "items_failed": the item failures recorded since the last call."""


@dataclass
class DiscoverPageInput:
    """One attempt at finding a page's successors with the processor's ``next_page``."""

    processor: str
    page: BatchPage
    page_num: int
    attempt: int
    args: str | None
    batch_id: str
    window: BatchWindow | None = None
    """The batch's window, read as ``context.window``."""


@dataclass
class DiscoverPageResult:
    """The successors ``next_page`` found (empty: the chain ends at this page)."""

    pages: list[BatchPage] = field(default_factory=list)


@dataclass
class FailureDetailsRequest:
    """What the ``failure_details`` query is asked for.

    ``kind``: "stuck", "retrying" or "discovering" (pages the batch holds), "failed" or "items"
    (failed pages and items not yet written to the ledger, or kept whole in memory).
    """

    kind: str
    page_nums: list[int] | None = None
    """Only these pages (None: all of that kind, in page order from ``after``)."""
    after: int = -1
    """Only pages numbered above this."""
    max_bytes: int = 512 * 1024


@dataclass
class FailureDetails:
    """One answer of the ``failure_details`` query: whole cursors and keys."""

    pages: list[PageFailure] = field(default_factory=list)
    items: list[ItemFailure] = field(default_factory=list)
    next_after: int | None = None
    """More pages follow: ask again with ``after=next_after``."""
