"""A batch's progress as short text: counts, rates, ETA, windows and failing hooks.

Shared by the CLI's output and the dashboard's pages; plain strings, no markup.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .._engine.flow import rates_text
from .._model import BatchOrchestratorProgress, HookError

__all__ = [
    "eta_text",
    "format_duration",
    "hook_label",
    "hook_text",
    "percent_done",
    "plural",
    "progress_line",
    "progress_parts",
    "rate_text",
    "recent_rate",
    "window_text",
]


def plural(n: int, word: str) -> str:
    """``1 page``, ``2 pages``, ``1,000 pages`` (words that take an s)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def format_duration(seconds: float) -> str:
    """``4m 05s``-style rendering of a number of seconds."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h:02d}h"


def percent_done(p: BatchOrchestratorProgress) -> float | None:
    """Percent done: from ``total_items``, or 100 once finished (None when unknown)."""
    if p.percent_complete is not None:
        return p.percent_complete
    if p.is_finished:
        return 100.0
    return None


def recent_rate(p: BatchOrchestratorProgress) -> str | None:
    """The recent page and item rates, e.g. "2.0 pages/s · 200.0 items/s" (None when idle)."""
    if p.is_finished or p.is_cancelled or p.is_paused:
        return None  # a recent rate means little once nothing starts
    parts = []
    if p.pages_per_second:
        parts.append(f"{p.pages_per_second:,.1f} pages/s")
    if p.items_per_second:
        parts.append(f"{p.items_per_second:,.1f} items/s")
    return " · ".join(parts) or None


def eta_text(p: BatchOrchestratorProgress) -> str | None:
    """The time left as ``ETA 4m 05s``, or "paused"; None when there is no estimate."""
    if p.is_finished or p.is_cancelled:
        return None
    if p.is_paused:
        return "paused"
    if p.eta_seconds is None:
        return None
    return f"ETA {format_duration(p.eta_seconds)}"


def progress_line(p: BatchOrchestratorProgress) -> str:
    """One line: percent, pages, items, rate and ETA, e.g. for ``list`` and acknowledgements."""
    return " · ".join(progress_parts(p))


def progress_parts(p: BatchOrchestratorProgress) -> list[str]:
    """The pieces of ``progress_line``, for layouts that wrap between them (``list``)."""
    parts = []
    pct = percent_done(p)
    if pct is not None:
        parts.append(f"{pct:.0f}%")
    pages = f"{plural(p.num_completed_pages, 'page')} done"
    extra = [
        f"{n:,} {label}"
        for n, label in (
            (p.num_processing_pages, "running"),
            (getattr(p, "num_retrying_pages", 0), "retrying"),
            (p.num_stuck_pages, "stuck"),
            (p.num_failed_pages, "failed"),
            (p.num_skipped_pages, "skipped"),
        )
        if n
    ]
    parts.append(pages + (f" ({', '.join(extra)})" if extra else ""))
    items = f"{p.num_completed_items:,}"
    if p.total_items is not None:
        items += f"/{p.total_items:,}"
    parts.append(
        f"{items} items" if p.total_items is not None else plural(p.num_completed_items, "item")
    )
    if getattr(p, "num_failed_items", 0):
        parts[-1] += f" ({p.num_failed_items:,} failed)"
    if getattr(p, "max_open_items", None) is not None:
        parts.append(f"{p.num_items_open:,}/{p.max_open_items:,} item workflows open")
    for piece in (recent_rate(p), eta_text(p)):
        if piece:
            parts.append(piece)
    parts.append(f"parallelism {p.max_parallelism}")
    return parts


def item_workflows_text(p: BatchOrchestratorProgress) -> str:
    """A batch of item workflows, e.g. "12 open of 50 · 480 started · 466 completed · 2 failed"."""
    return (
        f"{p.num_items_open:,} open of {p.max_open_items:,} · {p.num_items_started:,} started · "
        f"{p.num_items_completed:,} completed · {p.num_items_failed:,} failed"
    )


def window_text(p: BatchOrchestratorProgress) -> str:
    """A series batch's window, e.g. "(100, 250]" or "(0, 50] backfill" ("" outside a series)."""
    w = p.window
    if w is None:
        return ""
    return w.text() + (" backfill" if w.backfill else "")


def rate_text(p: BatchOrchestratorProgress) -> str:
    """The rate limits in force, e.g. "10 pages/s, 5,000 items/s" or "none"."""
    return rates_text(p.max_pages_per_second, p.max_items_per_second)


def _clock(when: datetime) -> str:
    return f"{when.astimezone(timezone.utc):%H:%M:%S} UTC"


def hook_label(h: HookError) -> str:
    """A failing hook's label: "tracker failing", "notifier recovered", ..."""
    kind = h.kind.replace("_", " ")
    return f"{kind} failing" if h.consecutive_failures else f"{kind} recovered"


def hook_text(h: HookError) -> str:
    """What a failing (or recovered) hook did, in one line."""
    calls = "call" if h.total_failures == 1 else "calls"
    lost = f", event {h.event!r} not delivered" if h.event else ""
    if h.consecutive_failures:
        return (
            f"{h.name}: {h.consecutive_failures} failed in a row ({h.total_failures} {calls} "
            f"in all), the last at {_clock(h.last_failed_at)}{lost}: {h.last_error}"
        )
    since = f" since {_clock(h.recovered_at)}" if h.recovered_at else ""
    return (
        f"{h.name}: works again{since}; {h.total_failures} {calls} failed, the last at "
        f"{_clock(h.last_failed_at)}{lost}: {h.last_error}"
    )
