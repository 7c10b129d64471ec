"""What one run of a batch hands the next at continue-as-new: typed, versioned, compact.

``BatchContinuation`` is the ``continuation`` key of the workflow's input. Its ``version`` says
how to read it; version 1 is the untyped dict of the first release (positional page lists),
still read so that a batch started on that release goes on after a deploy. The held pages travel
as one zlib-compressed JSON table (``SchedulerState.pages``): cursors of neighbouring pages share
most of their text, and errors are kept once each, so even a large backlog of stuck pages stays
far below Temporal's 2 MB payload limit.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._errors_table import ErrorTable
from .._hooks import HookRecord
from .._ledger import LedgerState
from .._no_progress import NoProgressWatch
from .._types import FailurePolicy, ItemFailure, ProcessorSettings
from .._wire import from_wire, to_wire
from .discovery import Discovery
from .flow import FlowState
from .history import HistoryState
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
    text: the JSON of the checkpoint), ``_workflow_checkpoints.py``."""


def _ms(t: float | None, base: float) -> int | None:
    return None if t is None else round((t - base) * 1000)


def _at(ms: int | None, base: float) -> float | None:
    return None if ms is None else base + ms / 1000


def _delta(xs: list[int | None]) -> list[int | None]:
    out: list[int | None] = []
    prev = 0
    for x in xs:
        if x is None:
            out.append(None)
        else:
            out.append(x - prev)
            prev = x
    return out


def _undelta(ds: list[int | None]) -> list[int | None]:
    out: list[int | None] = []
    prev = 0
    for d in ds:
        if d is None:
            out.append(None)
        else:
            prev += d
            out.append(prev)
    return out


def _front_code(cursors: list[str]) -> list[Any]:
    """Each cursor as [length shared with the previous one, the rest].

    Neighbouring pages' cursors (keys, offsets) share most of their text.
    """
    out: list[Any] = []
    prev = ""
    for c in cursors:
        n = 0
        limit = min(len(c), len(prev))
        while n < limit and c[n] == prev[n]:
            n += 1
        out.append(c[n:] if n == 0 else [n, c[n:]])
        prev = c
    return out


def _front_decode(coded: list[Any]) -> list[str]:
    out: list[str] = []
    prev = ""
    for v in coded:
        c = v if isinstance(v, str) else prev[: v[0]] + v[1]
        out.append(c)
        prev = c
    return out


def _columns(pages: list[PageState], base: float) -> dict[str, list[Any]]:
    """Pages as delta-encoded columns (times in ms since the batch started)."""
    return {
        "num": _delta([p.page_num for p in pages]),
        "cursor": _front_code([p.cursor for p in pages]),
        "size": [p.size for p in pages],
        "chain": _delta([p.chain for p in pages]),
        "attempts": [p.attempts for p in pages],
        "unrun": [p.unrun for p in pages],
        "flags": [
            int(p.successor_enqueued) | int(p.stuck) << 1 | int(p.recorded) << 2 for p in pages
        ],
        "ready": _delta([_ms(p.ready_at, base) for p in pages]),
        "error": [p.error for p in pages],
        "failed": _delta([_ms(p.failed_at, base) for p in pages]),
        "deadline": [_ms(p.report_deadline, base) for p in pages],
        "confirm": [_ms(p.confirm_by, base) for p in pages],
        "clen": [p.cursor_length for p in pages],
    }


def _pages_of(cols: dict[str, list[Any]], base: float) -> list[PageState]:
    if not cols:
        return []
    nums, cursors = _undelta(cols["num"]), _front_decode(cols["cursor"])
    chains, ready = _undelta(cols["chain"]), _undelta(cols["ready"])
    failed = _undelta(cols["failed"])
    return [
        PageState(
            page_num=nums[i] or 0,
            cursor=cursors[i],
            size=cols["size"][i],
            chain=chains[i] or 0,
            attempts=cols["attempts"][i],
            unrun=cols["unrun"][i],
            successor_enqueued=bool(cols["flags"][i] & 1),
            stuck=bool(cols["flags"][i] & 2),
            ready_at=_at(ready[i], base),
            error=cols["error"][i],
            failed_at=_at(failed[i], base),
            report_deadline=_at(cols["deadline"][i], base),
            confirm_by=_at(cols["confirm"][i], base) if "confirm" in cols else None,
            recorded=bool(cols["flags"][i] & 4),
            cursor_length=cols["clen"][i] if "clen" in cols else -1,
        )
        for i in range(len(nums))
    ]


def _discovery_columns(ds: list[Discovery], base: float) -> dict[str, list[Any]]:
    return {
        "num": _delta([d.page_num for d in ds]),
        "cursor": _front_code([d.cursor for d in ds]),
        "size": [d.size for d in ds],
        "chain": [d.chain for d in ds],
        "attempts": [d.attempts for d in ds],
        "failures": [d.failures for d in ds],
        "error": [d.error for d in ds],
        "ready": [_ms(d.ready_at, base) for d in ds],
        "failed": [_ms(d.failed_at, base) for d in ds],
    }


def _discoveries_of(cols: dict[str, list[Any]], base: float) -> list[Discovery]:
    if not cols:
        return []
    nums, cursors = _undelta(cols["num"]), _front_decode(cols["cursor"])
    return [
        Discovery(
            page_num=nums[i] or 0,
            cursor=cursors[i],
            size=cols["size"][i],
            chain=cols["chain"][i],
            attempts=cols["attempts"][i],
            failures=cols["failures"][i],
            error=cols["error"][i],
            ready_at=_at(cols["ready"][i], base),
            failed_at=_at(cols["failed"][i], base),
        )
        for i in range(len(nums))
    ]


def _pack(obj: Any) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def unpack_pages(text: str) -> Any:
    """The page table of a ``SchedulerState`` (for inspection and tests)."""
    return json.loads(zlib.decompress(base64.b64decode(text))) if text else {}


def scheduler_to_state(
    s: Scheduler, report_deadline: float | None, confirm_by: float | None = None
) -> SchedulerState:
    """The state to carry into the next run.

    Pages still running are handed over: their attempts report to the next run by
    ``report_deadline``, or count as timed out; with ``confirm_by``, an attempt that has not said it
    started by then never did (it was waiting for a worker slot) and runs again.
    """
    if s.running and report_deadline is None:
        raise RuntimeError(f"pages running at a hand-over need a deadline: {s.running}")
    for n in s.running:
        state = s.pages[n]
        state.report_deadline = max(state.report_deadline or 0.0, report_deadline or 0.0)
        if confirm_by is not None and n not in s.handed_over:
            state.confirm_by = confirm_by
    base = s.start_time
    table = {
        "pages": _columns(sorted(s.pages.values(), key=lambda p: p.page_num), base),
        "ready": _delta(list(s.ready)),
        "failed": _columns(list(s.failed), base),
    }
    if s.discovering:
        table["discovering"] = _discovery_columns(
            sorted(s.discovering.values(), key=lambda d: d.page_num), base
        )
    samples = list(s.samples)
    return SchedulerState(
        max_parallelism=s.max_parallelism,
        previous_parallelism=s.previous_parallelism,
        paused=s.paused,
        pause_reason=s.pause_reason,
        paused_by_zero=s.paused_by_zero,
        paused_seconds=s.paused_seconds,
        paused_since=s.paused_since,
        start_time=s.start_time,
        next_page_num=s.next_page_num,
        num_completed=s.num_completed,
        num_completed_items=s.num_completed_items,
        num_failed=s.num_failed,
        max_parallelism_achieved=s.max_parallelism_achieved,
        num_runs=s.num_runs,
        running=sorted(s.running),
        pages=_pack(table),
        errors=[[t, m] for t, m in s.errors.entries],
        recent=list(s._recent),
        # the oldest and newest rate samples keep rates going at a constant size
        samples=[list(x) for x in samples[:1] + samples[1:][-1:]],
        recent_outcomes="".join("1" if f else "0" for f in s.recent_outcomes),
        num_skipped=s.num_skipped,
        num_failed_items=s.num_failed_items,
        failed_items=[
            [
                f.key,
                f.page_num,
                f.error_type,
                f.error_message,
                f.failed_at.timestamp(),
                f.key_length,
            ]
            for f in s.failed_items
        ],
        num_redriven=s.num_redriven,
        no_progress=s.watch.to_state(),
        feed_pending=s.feed_pending,
    )


def scheduler_from_state(
    settings: ProcessorSettings, policy: FailurePolicy, st: SchedulerState, *, exact: bool = True
) -> Scheduler:
    """Rebuild the scheduler in the next run (``exact``: see ``Scheduler.exact``)."""
    s = Scheduler(settings, st.max_parallelism, st.start_time, policy)
    s.exact = exact
    s.previous_parallelism = st.previous_parallelism
    s.paused, s.pause_reason, s.paused_by_zero = st.paused, st.pause_reason, st.paused_by_zero
    s.paused_seconds, s.paused_since = st.paused_seconds, st.paused_since
    s.next_page_num = st.next_page_num
    s.num_completed, s.num_completed_items = st.num_completed, st.num_completed_items
    s.num_failed = st.num_failed
    s.max_parallelism_achieved = st.max_parallelism_achieved
    s.num_runs = st.num_runs + 1
    table = unpack_pages(st.pages)
    s.errors.restore([(t, m) for t, m in st.errors])
    for page in _pages_of(table.get("pages", {}), st.start_time):
        s._hold(page)
        s.errors.acquire_index(page.error)
    for page in _pages_of(table.get("failed", {}), st.start_time):
        s.failed.append(page)
        s.errors.acquire_index(page.error)
    _restore_discoveries(s, st, table)
    s.errors.rebuild_free()
    s.ready = deque(n for n in _undelta(table.get("ready", [])) if n is not None)
    s._fresh = sum(1 for n in s.ready if s.pages[n].attempts == s.pages[n].unrun)
    s.running = set(st.running)
    s.handed_over = set(s.running)
    s.waiting = {n for n, p in s.pages.items() if p.ready_at is not None}
    for c in st.recent:
        s._remember(c)
    s.samples = deque((float(t), int(p), int(i)) for t, p, i in (st.samples or [[0.0, 0, 0]]))
    for ch in st.recent_outcomes:
        s._record_outcome(ch == "1")
    s.num_failed_items, s.num_redriven = st.num_failed_items, st.num_redriven
    s.watch = NoProgressWatch.from_state(st.no_progress, st.num_completed)
    s.feed_pending = st.feed_pending
    s.failed_items.extend(
        ItemFailure(
            key=str(key),
            page_num=int(num),
            error_type=str(kind),
            error_message=str(msg),
            failed_at=datetime.fromtimestamp(float(at), tz=timezone.utc),
            key_length=int(rest[0]) if rest else len(str(key)),
        )
        for key, num, kind, msg, at, *rest in st.failed_items
    )
    return s


def _restore_discoveries(s: Scheduler, st: SchedulerState, table: Any) -> None:
    """Restore skipped pages, and discoveries apart.

    A discovery running at the hand-over is found again now (it only reads); one waiting for its
    retry keeps its time.
    """
    s.num_skipped = st.num_skipped
    for d in _discoveries_of(table.get("discovering", {}), st.start_time):
        s.discovering[d.page_num] = d
        s.chains[d.chain] = s.chains.get(d.chain, 0) + 1
        s.errors.acquire_index(d.error)
        if d.ready_at is not None:
            s.discovery_waiting.add(d.page_num)
        else:
            s.discovery_ready.append(d.page_num)


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
        "pages": _columns([page(v) for v in d["pages"]], base),
        "ready": _delta(d["ready"]),
        "failed": _columns([page(v) for v in d["failed"]], base),
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
        pages=_pack(table),
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
    return wire
