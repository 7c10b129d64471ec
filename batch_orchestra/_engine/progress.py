"""A ``BatchOrchestratorProgress`` snapshot of a ``Scheduler`` (pure; no Temporal imports).

Progress is returned by every query and update, handed to every tracker, notifier and health
check call, and is the batch's result, so it has a size budget (``PROGRESS_BYTES``): its lists
show previews of long cursors and keys, and ``guard_progress`` shortens the lists of one that
would still pass the budget (and says so) rather than let a payload fail.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .._model import BatchOrchestratorProgress, ControlChange, ErrorCount, PageFailure
from .budgets import CURSOR_PREVIEW_CHARS, PROGRESS_BYTES, preview, wire_size
from .discovery import Discovery
from .failures import FAILURE_LIST_LIMIT
from .flow import FlowControl
from .history import HISTORY_SAMPLE_BYTES
from .pages import PageState
from .scheduler import Scheduler

__all__ = [
    "build_progress",
    "discovery_bound",
    "discovery_failure",
    "flow_progress",
    "guard_progress",
    "page_failure",
]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def page_failure(s: Scheduler, p: PageState, *, whole: bool = False) -> PageFailure:
    """A held or failed page as shown in progress (with its whole cursor if ``whole``)."""
    error_type, message = s.errors.get(p.error)
    return PageFailure(
        page_num=p.page_num,
        cursor_str=p.cursor if whole else preview(p.cursor, CURSOR_PREVIEW_CHARS),
        cursor_length=p.full_length,
        attempts=p.attempts,
        error_type=error_type,
        error_message=message,
        failed_at=_dt(p.failed_at or 0.0),
        next_retry_at=_dt(p.ready_at) if p.ready_at else None,
        size=p.size,
        successor_enqueued=p.successor_enqueued,
    )


def discovery_failure(s: Scheduler, d: Discovery, *, whole: bool = False) -> PageFailure:
    """A failing discovery as shown in progress (with its whole cursor if ``whole``)."""
    error_type, message = s.errors.get(d.error)
    return PageFailure(
        page_num=d.page_num,
        cursor_str=d.cursor if whole else preview(d.cursor, CURSOR_PREVIEW_CHARS),
        cursor_length=len(d.cursor),
        attempts=d.failures,
        error_type=error_type,
        error_message=message,
        failed_at=_dt(d.failed_at or 0.0),
        next_retry_at=_dt(d.ready_at) if d.ready_at else None,
    )


def _rates(s: Scheduler, now: float) -> tuple[float, float]:
    if s.paused:
        return 0.0, 0.0  # nothing starts: a rate from before the pause would mislead
    t0, pages0, items0 = s.samples[0]
    elapsed = s.running_time(now) - t0
    if elapsed <= 0:
        return 0.0, 0.0
    return (s.num_completed - pages0) / elapsed, (s.num_completed_items - items0) / elapsed


def build_progress(
    s: Scheduler, now: float, total_items: int | None = None, *, ended: bool = False
) -> BatchOrchestratorProgress:
    """A snapshot for queries, trackers and the result.

    ``ended``: the batch is over (finished or cancelled), so it has no rate or ETA.
    """
    pages_rate, items_rate = (0.0, 0.0) if ended else _rates(s, now)
    percent = eta = None
    if total_items is not None:
        done = s.num_completed_items
        percent = min(100.0, 100.0 * done / total_items) if total_items else 100.0
        if items_rate > 0:
            eta = max(0.0, (total_items - done) / items_rate)
    # A retry that came due waits in line (for a slot, or for the resume of a paused batch):
    # it is still a page that failed and is being retried, shown with its error, not pending.
    waiting = [s.pages[n] for n in s.waiting]
    waiting += [
        s.pages[n] for n in s.ready if n in s.pages and s.pages[n].error >= 0 and n not in s.waiting
    ]
    stuck = [p for p in waiting if p.stuck]
    retrying = [p for p in waiting if not p.stuck]

    def recent(pages: list[PageState]) -> list[PageFailure]:
        pages = sorted(pages, key=lambda p: (p.failed_at or 0.0, p.page_num))
        return [page_failure(s, p) for p in pages[-FAILURE_LIST_LIMIT:]]

    p = BatchOrchestratorProgress(
        num_completed_pages=s.num_completed,
        num_processing_pages=len(s.running),
        num_pending_pages=len(s.pages) - len(s.running) - len(stuck) + s.feed_pending,
        num_retrying_pages=len(retrying),
        num_stuck_pages=len(stuck),
        num_failed_pages=s.num_failed,
        num_completed_items=s.num_completed_items,
        num_discovered_pages=s.next_page_num,
        num_open_chains=len(s.chains),
        is_finished=s.is_finished,
        is_paused=s.paused,
        pause_reason=s.pause_reason,
        max_parallelism=s.max_parallelism,
        effective_parallelism=s.effective_parallelism,
        hold_reason=s.hold_reason,
        max_parallelism_achieved=s.max_parallelism_achieved,
        start_time=_dt(s.start_time),
        num_runs=s.num_runs,
        total_items=total_items,
        pages_per_second=pages_rate,
        items_per_second=items_rate,
        percent_complete=percent,
        eta_seconds=None if ended or s.paused else eta,
        stuck_pages=recent(stuck),
        # A page not in a failure ledger (a run begun by an older version) keeps its whole
        # cursor here, as it did then: there is nowhere else to find it.
        failed_pages=[page_failure(s, p, whole=not p.recorded) for p in s.failed],
        retrying_pages=recent(retrying),
        errors=[
            ErrorCount(error_type=t, error_message=m, pages=n) for t, m, n in s.errors.counts()
        ],
        num_failed_items=s.num_failed_items,
        failed_items=list(s.failed_items),
        num_redriven_pages=s.num_redriven,
    )
    _discovery_progress(p, s)
    p.no_progress = s.no_progress_text(now)
    return p


def _discovery_progress(p: BatchOrchestratorProgress, s: Scheduler) -> None:
    """Skipped pages and discovery apart (a processor with ``next_page``)."""
    p.num_skipped_pages = s.num_skipped
    p.num_discovering_pages = len(s.discovering)
    failing = sorted(s.failing_discoveries, key=lambda d: (d.failed_at or 0.0, d.page_num))
    p.failing_discoveries += [discovery_failure(s, d) for d in failing[-FAILURE_LIST_LIMIT:]]


DISCOVERY_BOUND_SHARE = 0.5
"""A batch running at most this share of its cap with nothing waiting to start is told it is
discovery-bound."""
DISCOVERY_BOUND_AFTER_PAGES = 10
"""Not before this many pages have completed (every batch starts below its cap)."""


def discovery_bound(p: BatchOrchestratorProgress, page_seconds: float | None) -> str | None:
    """Why ``p`` runs far below its cap, when nothing but finding the next pages holds it.

    ``page_seconds``: the fastest page's run time seen, if any. Nothing is said while the batch
    is paused, held, throttled or ended, waits for retries, or has no open chain.
    """
    cap = p.effective_parallelism or p.max_parallelism
    running = p.num_processing_pages
    if (
        p.is_finished
        or p.is_cancelled
        or p.is_paused
        or p.throttle_reason
        or p.hold_reason
        or cap < 4
        or p.num_open_chains <= 0
        or p.num_pending_pages > 0
        or p.num_completed_pages < DISCOVERY_BOUND_AFTER_PAGES
        or running > cap * DISCOVERY_BOUND_SHARE
    ):
        return None
    chains = p.num_open_chains
    took = f"; pages take {page_seconds:.3g} s or more" if page_seconds else ""
    return (
        f"discovery-bound: {running} of {cap} running, nothing pending ({chains} open "
        f"chain{'' if chains == 1 else 's'}, each finding one page at a time{took}); more "
        "first cursors, lookahead or discovery apart fill the cap: see docs/tuning.md"
    )


def flow_progress(p: BatchOrchestratorProgress, flow: FlowControl, throttle: str | None) -> None:
    """Add flow control's part to ``p``: limits, throttle, the change log, discovery-bound."""
    s = flow.state
    p.throttle_reason = throttle
    p.max_pages_per_second = s.max_pages_per_second
    p.max_items_per_second = s.max_items_per_second
    p.health, p.health_reason = s.health, s.health_reason
    p.adaptive_parallelism = flow.adaptive_parallelism()
    p.target_page_latency = flow.target() if flow.adaptive else None
    until = flow.ramp_until()
    p.ramp_up_until = _dt(until) if until is not None and not p.is_paused else None
    p.control_changes = [
        ControlChange(
            at=_dt(float(at or 0.0)), change=str(change), by=None if by is None else str(by)
        )
        for at, change, by in s.changes
    ]
    p.discovery_bound = discovery_bound(p, s.base_latency)


_TRIMMABLE = (
    "failed_items",
    "failing_discoveries",
    "retrying_pages",
    "stuck_pages",
    "failed_pages",
    "errors",
    "control_changes",
)
"""The lists ``guard_progress`` may shorten, most expendable first (each keeps its newest)."""


def _rough_size(p: BatchOrchestratorProgress) -> int:
    """An upper bound of ``wire_size(p)`` that is cheap to compute, or -1 for "measure".

    A character of a string is at most 12 bytes as JSON (a UTF-16 surrogate pair, escaped).
    """
    texts = 0
    for f in p.failed_pages + p.stuck_pages + p.retrying_pages + p.failing_discoveries:
        texts += len(f.cursor_str) + len(f.error_type) + len(f.error_message)
    for i in p.failed_items:
        texts += len(i.key) + len(i.error_type) + len(i.error_message)
    for e in p.errors:
        texts += len(e.error_type) + len(e.error_message)
    for c in p.control_changes:
        texts += len(c.change) + len(c.by or "")
    for t in (p.pause_reason, p.hold_reason, p.throttle_reason, p.health_reason, p.result_error):
        texts += len(t or "")
    texts += len(p.no_progress or "")
    for h in p.hook_errors:
        texts += len(h.kind) + len(h.name) + len(h.last_error) + len(h.event or "")
    texts += len(p.redrive_of or "")
    if p.result is not None:
        return -1
    entries = (
        len(p.failed_pages)
        + len(p.stuck_pages)
        + len(p.retrying_pages)
        + len(p.failing_discoveries)
        + len(p.failed_items)
        + len(p.errors)
        + len(p.control_changes)
        + len(p.hook_errors)
    )
    return 12 * texts + 400 * entries + HISTORY_SAMPLE_BYTES * len(p.history) + 4_096


def guard_progress(p: BatchOrchestratorProgress, budget: int = PROGRESS_BYTES) -> int:
    """Keep ``p`` within ``budget`` bytes as sent; returns its size (an upper bound if small).

    Measured only when a cheap bound says it might be over. Over budget, the detailed lists are
    halved (oldest entries first, the most expendable list first) until it fits, and
    ``lists_trimmed`` says so; counts are never touched, nor is the history (bounded on its
    own: ``HISTORY_PROGRESS_BYTES``).
    """
    rough = _rough_size(p)
    if 0 <= rough <= budget:
        return rough
    size = wire_size(p)
    if size <= budget:
        return size
    before = {name: len(getattr(p, name)) for name in _TRIMMABLE}
    while size > budget:
        longest = max(_TRIMMABLE, key=lambda name: len(getattr(p, name)))
        items: list[Any] = getattr(p, longest)
        if not items:
            break  # nothing left to shorten: what remains is bounded by its own limits
        half = len(items) // 2
        # errors come most pages first; every other list oldest first
        kept = items[:half] if longest == "errors" else items[len(items) - half :]
        setattr(p, longest, kept)
        cut = ", ".join(
            f"{name} {len(getattr(p, name))} of {n}"
            for name, n in before.items()
            if len(getattr(p, name)) < n
        )
        p.lists_trimmed = (
            f"this progress would have held more than {budget // 1024:,} KB; lists shortened "
            f"({cut}); counts are exact; batch-orchestra failures ID --all lists everything"
        )
        size = wire_size(p)
    return size
