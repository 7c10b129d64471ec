"""What one run of a batch hands the next at continue-as-new: typed, versioned, compact.

``BatchContinuation`` is the ``continuation`` key of the workflow's input. Its ``version`` says
how to read it; version 1 is the untyped dict of the first release (positional page lists),
still read so that a batch started on that release goes on after a deploy. The held pages travel
as one zlib-compressed JSON table (``SchedulerState.pages``, ``columns.py``): cursors of
neighbouring pages share most of their text, and errors are kept once each, so even a large
backlog of stuck pages stays far below Temporal's 2 MB payload limit. The scheduler's parts
each give their share (``state``) and take it back (``restore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._model import FailurePolicy, ProcessorSettings
from .._model.codec import from_wire, to_wire
from .columns import (
    delta,
    discoveries_of,
    discovery_columns,
    pack,
    page_columns,
    pages_of,
    undelta,
    unpack_pages,
)
from .errors_table import ErrorTable
from .flow import FlowState
from .history import HistoryState
from .hook_errors import HookRecord
from .items import ItemsState
from .ledger import LedgerState
from .no_progress import NoProgressWatch
from .scheduler import PageState, Scheduler

__all__ = [
    "CONTINUATION_VERSION",
    "BatchContinuation",
    "SchedulerState",
    "continuation_from_wire",
    "continuation_to_wire",
    "scheduler_from_state",
    "scheduler_to_state",
    "unpack_pages",
]

CONTINUATION_VERSION = 2
"""The version this code writes; it reads every version up to it."""


@dataclass(kw_only=True)
class SchedulerState:
    """A ``Scheduler`` at a hand-over."""

    max_parallelism: int
    previous_parallelism: int
    paused: bool = False
    pause_reason: str | None = None
    paused_by_zero: bool = False
    paused_seconds: float = 0.0
    paused_since: float | None = None
    start_time: float
    next_page_num: int
    num_completed: int
    num_completed_items: int
    num_failed: int
    max_parallelism_achieved: int
    num_runs: int
    running: list[int] = field(default_factory=list)
    pages: str = ""
    """zlib + base64 of the JSON ``{"pages": {column: [...]}, "ready": [...], "failed": {...},
    "discovering": {...}}``: held and listed failed pages as delta-encoded columns, the ready
    queue as deltas, and the pages whose successors are still to be found apart (each is found
    again in the next run, or retried when its backoff ends)."""
    errors: list[list[str]] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    samples: list[list[float]] = field(default_factory=list)
    recent_outcomes: str = ""
    """The failure policy's window: "1" for a failed attempt, "0" for a success."""
    num_skipped: int = 0
    """Pages an operator skipped."""
    num_failed_items: int = 0
    """Items recorded as failed by completed pages."""
    failed_items: list[list[Any]] = field(default_factory=list)
    """The most recent item failures: ``[key, page_num, error_type, message, failed_at,
    key_length]`` (the key a preview of a long one; no ``key_length`` before it was kept)."""
    num_redriven: int = 0
    """Failed pages queued again by ``redrive()``."""
    no_progress: list[Any] = field(default_factory=list)
    """The streak of identical failures and the stall (``NoProgressWatch.to_state``); empty
    from older versions."""
    feed_pending: int = 0
    """Failed pages queued again by ``redrive()`` and still to be read from the ledger."""


@dataclass(kw_only=True)
class BatchContinuation:
    """The state a run hands to the next, beside the batch's unchanged input."""

    version: int = CONTINUATION_VERSION
    settings: ProcessorSettings
    scheduler: SchedulerState
    tracker_next: float | None = None
    flow: FlowState | None = None
    """Flow control's state (rate limits set at runtime, tokens, adaptive parallelism, ...)."""
    result: Any = None
    """The batch result folded so far (a processor with ``reduce``)."""
    result_started: bool = False
    """Whether ``result`` has been started (``initial_result()`` applied)."""
    unreduced: list[Any] = field(default_factory=list)
    """Completed pages' values not yet folded into ``result``."""
    hook_errors: list[HookRecord] = field(default_factory=list)
    """The tracker, notifier, health check or reduce whose calls failed (one each)."""
    ledger: LedgerState | None = None
    """The failure ledger's numbering, and a ledger being read into the batch (None before the
    ledger existed)."""
    run_items: bool = False
    """The batch runs item keys through ``run_items`` (its input's ``item_keys`` are not carried
    again: they were turned into pages by the first run)."""
    history: HistoryState | None = None
    """The batch's throughput samples (None from versions before it: the history starts over)."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    """The last checkpoint of each held page whose next attempt resumes from it (page number as
    text: the JSON of the checkpoint), ``checkpoints.py``."""
    items: ItemsState | None = None
    """The open item workflows and their counts (a batch with ``max_open_items``; left out of
    the wire when None, so other batches' hand-overs keep their bytes)."""


def scheduler_to_state(
    s: Scheduler, report_deadline: float | None, confirm_by: float | None = None
) -> SchedulerState:
    """The state to carry into the next run.

    Pages still running are handed over: their attempts report to the next run by
    ``report_deadline``, or count as timed out; with ``confirm_by``, an attempt that has not said it
    started by then never did (it was waiting for a worker slot) and runs again.
    """
    s.hand_over(report_deadline, confirm_by)
    base = s.start_time
    ready, running = s.queue.state()
    table = {
        "pages": page_columns(s.table.state(), base),
        "ready": delta(list[int | None](ready)),
        "failed": page_columns(s.failures.state(), base),
    }
    discoveries = s.book.state()
    if discoveries:
        table["discovering"] = discovery_columns(discoveries, base)
    p = s.parallelism
    return SchedulerState(
        max_parallelism=p.max_parallelism,
        previous_parallelism=p.previous_parallelism,
        paused=p.paused,
        pause_reason=p.pause_reason,
        paused_by_zero=p.paused_by_zero,
        paused_seconds=p.paused_seconds,
        paused_since=p.paused_since,
        start_time=p.start_time,
        next_page_num=s.intake.next_page_num,
        num_completed=s.throughput.num_completed,
        num_completed_items=s.throughput.num_completed_items,
        num_failed=s.failures.num_failed,
        max_parallelism_achieved=p.max_parallelism_achieved,
        num_runs=s.num_runs,
        running=running,
        pages=pack(table),
        errors=[[t, m] for t, m in s.errors.entries],
        recent=s.recent.state(),
        samples=s.throughput.state(),
        recent_outcomes=s.outcomes.state(),
        num_skipped=s.actions.num_skipped,
        num_failed_items=s.items.num_failed_items,
        failed_items=s.items.state(),
        num_redriven=s.failures.num_redriven,
        no_progress=s.watch.to_state(),
        feed_pending=s.failures.feed_pending,
    )


def scheduler_from_state(
    settings: ProcessorSettings, policy: FailurePolicy, st: SchedulerState, *, exact: bool = True
) -> Scheduler:
    """Rebuild the scheduler in the next run (``exact``: see ``Scheduler.exact``).

    A discovery running at the hand-over is found again now (it only reads); one waiting for its
    retry keeps its time.
    """
    s = Scheduler(settings, st.max_parallelism, st.start_time, policy)
    s.exact = exact
    p = s.parallelism
    p.previous_parallelism = st.previous_parallelism
    p.paused, p.pause_reason, p.paused_by_zero = st.paused, st.pause_reason, st.paused_by_zero
    p.paused_seconds, p.paused_since = st.paused_seconds, st.paused_since
    p.max_parallelism_achieved = st.max_parallelism_achieved
    s.intake.next_page_num = st.next_page_num
    s.num_runs = st.num_runs + 1
    table = unpack_pages(st.pages)
    held = pages_of(table.get("pages", {}), st.start_time)
    failed = pages_of(table.get("failed", {}), st.start_time)
    discoveries = discoveries_of(table.get("discovering", {}), st.start_time)
    s.errors.restore([(t, m) for t, m in st.errors])
    s.table.restore(held)
    s.failures.restore(failed)
    s.book.restore(discoveries)
    for error in [x.error for x in held] + [x.error for x in failed + discoveries]:
        s.errors.acquire_index(error)
    s.errors.rebuild_free()
    ready = [n for n in undelta(table.get("ready", [])) if n is not None]
    s.queue.restore(ready, st.running, s.table.pages)
    s.retries.restore(s.queue.running)
    s.recent.restore(st.recent)
    s.throughput.restore(st.num_completed, st.num_completed_items, st.samples)
    s.outcomes.restore(st.recent_outcomes)
    s.failures.num_failed, s.failures.num_redriven = st.num_failed, st.num_redriven
    s.failures.feed_pending = st.feed_pending
    s.items.restore(st.num_failed_items, st.failed_items)
    s.actions.num_skipped = st.num_skipped
    s.watch = NoProgressWatch.from_state(st.no_progress, st.num_completed)
    return s


def continuation_from_wire(raw: Any) -> BatchContinuation:
    """Read the continuation of any released version."""
    if isinstance(raw, dict) and "version" not in raw:
        return _from_v1(raw)
    return from_wire(BatchContinuation, raw, "continuation")


def _from_v1(raw: dict[str, Any]) -> BatchContinuation:
    """The first release's continuation.

    Settings as a dict, the scheduler as positional page lists ``[page_num, cursor, size, attempts,
    successor_enqueued, stuck, ready_at, error_type, error_message, failed_at, report_deadline]``.
    """
    settings = from_wire(ProcessorSettings, raw["settings"], "continuation.settings")
    d = raw["scheduler"]
    errors = ErrorTable()

    def page(v: list[Any]) -> PageState:
        num, cursor, size, attempts, enq, stuck, ready_at, etype, emsg, failed_at, deadline = v
        error = errors.acquire(etype, emsg) if etype else -1
        return PageState(
            num, cursor, size, 0, attempts, 0, enq, stuck, ready_at, error, failed_at, deadline
        )

    base = d["start_time"]
    table = {
        "pages": page_columns([page(v) for v in d["pages"]], base),
        "ready": delta(d["ready"]),
        "failed": page_columns([page(v) for v in d["failed"]], base),
    }
    state = SchedulerState(
        max_parallelism=d["max_parallelism"],
        previous_parallelism=d["previous_parallelism"],
        paused=d["max_parallelism"] == 0,
        paused_by_zero=d["max_parallelism"] == 0,
        pause_reason="max_parallelism set to 0" if d["max_parallelism"] == 0 else None,
        start_time=d["start_time"],
        next_page_num=d["next_page_num"],
        num_completed=d["num_completed"],
        num_completed_items=d["num_completed_items"],
        num_failed=d["num_failed"],
        max_parallelism_achieved=d["max_parallelism_achieved"],
        num_runs=d["num_runs"],
        running=d.get("running", []),
        pages=pack(table),
        errors=[[t, m] for t, m in errors.entries],
        recent=d["recent"],
        samples=[[0.0, 0, 0]],
    )
    if state.paused:  # a paused v1 batch kept its cap in previous_parallelism
        state.max_parallelism = state.previous_parallelism
    return BatchContinuation(
        version=1, settings=settings, scheduler=state, tracker_next=raw.get("tracker_next")
    )


def continuation_to_wire(c: BatchContinuation) -> dict[str, Any]:
    """The continuation as the workflow input's ``continuation`` value."""
    wire: dict[str, Any] = to_wire(c)
    wire["version"] = CONTINUATION_VERSION
    if wire.get("items") is None:
        wire.pop("items", None)
    return wire
