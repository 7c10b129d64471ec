"""What every dashboard page shares: the layout around it, and the status, bar and rate cells."""

from __future__ import annotations

from dataclasses import dataclass

from .._model import BatchOrchestratorProgress
from .._read import (
    format_duration,
    status_label,
)
from ._markup import UNKNOWN, esc

__all__ = [
    "Chrome",
    "eta_cell",
    "items_rate",
    "layout",
    "percent_text",
    "progress_bar",
    "shown_percent",
    "status_badge",
]


@dataclass(frozen=True)
class Chrome:
    """What every page shows around its content."""

    base: str
    """The path the dashboard is mounted at ("" at the root)."""
    namespace: str
    """The Temporal namespace."""
    address: str
    """The Temporal server's address."""
    read_only: bool
    """Whether controls are hidden."""
    csrf: str
    """The token control forms carry."""
    poll_ms: int = 1000
    """Milliseconds between a batch page's refreshes."""


def layout(chrome: Chrome, title: str, body: str, *, page: str = "") -> str:
    """The whole page: the header with the namespace and links, around ``body``."""
    start = "" if chrome.read_only else f'<a href="{esc(chrome.base)}/start">Start a batch</a>'
    mode = '<span class="badge">read-only</span>' if chrome.read_only else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · Batch Orchestra</title>
<link rel="stylesheet" href="{esc(chrome.base)}/static/dashboard.css">
<script src="{esc(chrome.base)}/static/dashboard.js" defer></script>
</head><body data-page="{esc(page)}">
<header><a class="brand" href="{esc(chrome.base)}/">Batch Orchestra</a>
<nav><a href="{esc(chrome.base)}/">Batches</a><a href="{esc(chrome.base)}/series">Series</a>{start}
<a href="{esc(chrome.base)}/metrics">Metrics</a></nav>
<span class="where">namespace <b>{esc(chrome.namespace)}</b> at {esc(chrome.address)} {mode}</span>
</header>
<main>{body}</main>
</body></html>"""


def shown_percent(p: BatchOrchestratorProgress | None, status: str) -> float | None:
    """Percent done, within 0-100 (100 for a completed batch); None when unknown."""
    if p is None:
        return None
    if p.percent_complete is not None:
        return max(0.0, min(100.0, p.percent_complete))
    if p.is_finished or status == "COMPLETED":
        return 100.0
    return None


def progress_bar(p: BatchOrchestratorProgress | None, status: str, data_id: str = "") -> str:
    """A ``<progress>`` element for the batch (no value when the percent is unknown)."""
    pct = shown_percent(p, status)
    attr = f' id="{data_id}"' if data_id else ""
    if pct is None:
        why = "progress unknown" if p is None else "percent needs total_items"
        return f'<progress{attr} max="100" title="{why}"></progress>'
    return f'<progress{attr} max="100" value="{pct:.1f}" title="{pct:.1f}%"></progress>'


def status_badge(status: str, p: BatchOrchestratorProgress | None) -> str:
    """The status as a badge (PAUSED for a running batch at parallelism 0)."""
    label = status_label(status, p)
    return f'<span class="status s-{esc(label.lower())}" data-field="label">{esc(label)}</span>'


def items_rate(p: BatchOrchestratorProgress | None) -> str:
    """Items per second as the tables show it ("-" when finished or unknown)."""
    if p is None or p.is_finished:
        return "-"
    return f"{p.items_per_second:,.1f}"


def eta_cell(p: BatchOrchestratorProgress | None) -> str:
    """Time left as the tables show it ("-" when unknown, finished or paused)."""
    if p is None or p.eta_seconds is None or p.is_finished or p.is_paused:
        return "-"
    return format_duration(p.eta_seconds)


def percent_text(p: BatchOrchestratorProgress | None, status: str) -> str:
    """The percent done as text (42.0%), or why it is unknown."""
    pct = shown_percent(p, status)
    if pct is None:
        return UNKNOWN if p is None else "% needs total_items"
    return f"{pct:.1f}%"
