"""What ``batch-orchestra status`` and ``failures`` print: Rich progress bars and tables.

Pure formatting of a ``BatchView``; no Temporal calls. The text pieces it shares with the
dashboard live in ``batch_orchestra._read``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .._engine.budgets import preview
from .._model import BatchFailures, BatchOrchestratorProgress, ItemFailure, PageFailure
from .._read import (
    BatchView,
    eta_text,
    failures_of,
    format_duration,
    group_errors,
    hook_label,
    hook_text,
    item_workflows_text,
    one_line,
    percent_done,
    rate_text,
    recent_rate,
    shown_progress,
    status_label,
    window_text,
)

__all__ = ["render_failures", "render_status"]

_STATUS_STYLES = {
    "RUNNING": "bold cyan",
    "PAUSED": "bold yellow",
    "COMPLETED": "bold green",
    "FAILED": "bold red",
    "CANCELED": "bold magenta",
    "TERMINATED": "bold red",
    "TIMED_OUT": "bold red",
}


def _bar(p: BatchOrchestratorProgress, running: bool) -> RenderableType:
    pct = percent_done(p)
    if pct is None:
        # No total_items: the number of pages is unknown until the last chain ends.
        bar = ProgressBar(total=None if running else 100.0, completed=0.0, width=40)
        label = Text("(% and ETA need --total-items)", style="dim")
    else:
        bar = ProgressBar(total=100.0, completed=pct, width=40)
        label = Text(f"{pct:5.1f}%", style="bold")
    grid = Table.grid(padding=(0, 1))
    grid.add_row(bar, label, Text(eta_text(p) or "", style="bold"))
    return grid


def _stats(view: BatchView, p: BatchOrchestratorProgress) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", justify="right")
    grid.add_column()
    grid.add_row(
        "pages",
        f"{p.num_completed_pages:,} done · {p.num_processing_pages:,} running · "
        f"{p.num_pending_pages:,} pending ({p.num_retrying_pages:,} retrying) · "
        f"{p.num_stuck_pages:,} stuck · {p.num_failed_pages:,} failed"
        + (f" · {p.num_skipped_pages:,} skipped" if p.num_skipped_pages else ""),
    )
    items = f"{p.num_completed_items:,}"
    if p.total_items is not None:
        items += f" of {p.total_items:,}"
    failed_items = getattr(p, "num_failed_items", 0)
    if failed_items:
        items += f" · {failed_items:,} failed (see: batch-orchestra failures {view.id})"
    grid.add_row("items", items)
    if getattr(p, "max_open_items", None) is not None:
        grid.add_row("item workflows", item_workflows_text(p))
    if getattr(p, "redrive_of", None):
        grid.add_row("redrives", f"{p.redrive_of}")
    if p.window is not None:
        grid.add_row("series", f"{p.window.series} · window {window_text(p)}")
    rate = recent_rate(p)
    if rate:
        grid.add_row("rate", rate)
    parallelism = f"{p.max_parallelism}"
    if p.is_paused:
        parallelism += " (paused: resume returns to it)"
    elif p.effective_parallelism != p.max_parallelism:
        parallelism += f" (now {p.effective_parallelism})"
    parallelism += f", highest reached {p.max_parallelism_achieved}"
    grid.add_row("parallelism", parallelism)
    if p.is_paused and p.pause_reason:
        grid.add_row("paused", Text(p.pause_reason, style="yellow"))
    if p.hold_reason:
        grid.add_row("held", Text(p.hold_reason, style="yellow"))
    no_progress = getattr(p, "no_progress", None)
    if no_progress:
        grid.add_row("no progress", Text(no_progress.removeprefix("no progress: "), style="red"))
    for h in getattr(p, "hook_errors", []):
        style = "red" if h.consecutive_failures else "yellow"
        grid.add_row(hook_label(h), Text(hook_text(h), style=style))
    if p.max_pages_per_second is not None or p.max_items_per_second is not None:
        grid.add_row("rate limit", rate_text(p))
    if p.adaptive_parallelism is not None:
        target = p.target_page_latency
        grid.add_row(
            "adaptive",
            f"{p.adaptive_parallelism}"
            + (f" (target page latency {target:.3g} s)" if target is not None else ""),
        )
    if p.health is not None:
        health = p.health + (f": {p.health_reason}" if p.health_reason else "")
        grid.add_row("health", Text(health, style="" if p.health == "healthy" else "yellow"))
    if p.throttle_reason and not p.is_paused:
        grid.add_row("throttled", Text(p.throttle_reason, style="yellow"))
    if getattr(p, "discovery_bound", None):
        grid.add_row("hint", Text(p.discovery_bound or "", style="yellow"))
    if p.control_changes:
        last = p.control_changes[-1]
        grid.add_row(
            "last change",
            f"{last.change} at {last.at.astimezone(timezone.utc):%H:%M:%S}"
            f" UTC by {last.by or 'the batch'}",
        )
    if p.start_time is not None:
        start = p.start_time.astimezone(timezone.utc)
        end = view.close_time or datetime.now(timezone.utc)
        took = "took" if view.close_time else "running for"
        runs = f", {p.num_runs} runs" if p.num_runs > 1 else ""
        elapsed = format_duration((end - start).total_seconds())
        grid.add_row("started", f"{start:%Y-%m-%d %H:%M:%S} UTC ({took} {elapsed}{runs})")
    return grid


def _cell(text: str, full: bool) -> Text | str:
    """A cell shown whole (``full``), or on one line cut with an ellipsis to fit its column."""
    if full:
        return text
    return Text(one_line(text), no_wrap=True, overflow="ellipsis")


def _failures_table(
    title: str,
    failures: list[PageFailure],
    total: int,
    stuck: bool,
    full: bool = True,
    paused: bool = False,
) -> Table:
    shown = f" (latest {len(failures)} of {total})" if total > len(failures) else ""
    table = Table(title=f"{title}{shown}", title_justify="left", expand=False)
    table.add_column("page", justify="right", no_wrap=True)
    table.add_column("cursor", overflow="fold", max_width=24)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("error")
    table.add_column("message", overflow="fold")
    table.add_column("next retry" if stuck else "failed at", no_wrap=True)
    for f in failures:
        when = f.next_retry_at if stuck else f.failed_at
        cursor = repr(preview(f.cursor_str, 60))
        if not f.cursor_is_whole or len(f.cursor_str) > 60:
            cursor += f" ({f.cursor_length or len(f.cursor_str):,} chars)"
        table.add_row(
            str(f.page_num),
            _cell(cursor, full),
            str(f.attempts),
            f.error_type,
            _cell(f.error_message, full),
            "on resume"
            if stuck and paused
            else (f"{when.astimezone(timezone.utc):%H:%M:%S} UTC" if when else "-"),
        )
    return table


def _errors_table(p: BatchOrchestratorProgress, full: bool = True) -> Table:
    groups = group_errors(p.errors)
    table = Table(
        title="errors (last error of each retrying, stuck or listed failed page; messages that "
        "differ only in numbers, URLs and IDs count as one)",
        title_justify="left",
        expand=False,
    )
    table.add_column("pages", justify="right", no_wrap=True)
    table.add_column("error")
    similar = any(g.variants > 1 for g in groups)
    if similar:
        table.add_column("messages", justify="right", no_wrap=True)
    table.add_column("message (a sample)", overflow="fold")
    for g in groups[:10]:
        counts = [f"{g.variants:,}"] if similar else []
        table.add_row(f"{g.pages:,}", g.error_type, *counts, _cell(g.sample, full))
    return table


def render_status(view: BatchView, *, full: bool = False) -> RenderableType:
    """The full status of a batch: header, bar, counts, stuck and failed pages, UI link.

    Error messages and cursors are cut to one line unless ``full``.
    """
    p = shown_progress(view)
    label = status_label(view.status, p)
    header = Text.assemble(
        ("batch ", "bold"),
        (view.id, "bold"),
        "  ",
        (label, _STATUS_STYLES.get(label, "bold")),
        (f"  task queue {view.task_queue}", "dim"),
    )
    parts: list[RenderableType] = [header]
    if view.failure:
        parts.append(Text(f"{label.lower()}: {view.failure}", style="red"))
    if p is not None:
        if view.status in ("RUNNING", "COMPLETED"):
            parts.append(_bar(p, running=view.status == "RUNNING"))
        parts.append(_stats(view, p))
        if p.errors:
            parts.append(_errors_table(p, full))
        if p.retrying_pages:
            parts.append(
                _failures_table(
                    "retrying pages",
                    p.retrying_pages,
                    p.num_retrying_pages,
                    True,
                    full,
                    p.is_paused,
                )
            )
        if p.stuck_pages:
            parts.append(
                _failures_table(
                    "stuck pages", p.stuck_pages, p.num_stuck_pages, True, full, p.is_paused
                )
            )
        if p.failed_pages:
            parts.append(
                _failures_table("failed pages", p.failed_pages, p.num_failed_pages, False, full)
            )
        if p.failing_discoveries:
            parts.append(
                _failures_table(
                    "failing discoveries (next_page; retried until they succeed)",
                    p.failing_discoveries,
                    len(p.failing_discoveries),
                    True,
                    full,
                )
            )
        if not full and _has_long_errors(p):
            parts.append(Text(f"whole messages: batch-orchestra status {view.id} --full", "dim"))
    if view.note:
        parts.append(Text(view.note, style="yellow"))
    parts.append(Text.assemble(("UI ", "dim"), (view.url, f"link {view.url}")))
    return Group(*parts)


def _has_long_errors(p: BatchOrchestratorProgress) -> bool:
    """Whether any shown message spans more than one line (so --full shows more)."""
    pages = p.retrying_pages + p.stuck_pages + p.failed_pages + p.failing_discoveries
    messages = [f.error_message for f in pages] + [e.error_message for e in p.errors]
    return any("\n" in m.strip() or len(m) > 60 for m in messages)


def _items_table(p: BatchFailures, view: BatchView) -> Table:
    items: list[ItemFailure] = p.failed_items
    shown = (
        f" (latest {len(items)} of {p.num_failed_items:,})"
        if (p.num_failed_items > len(items))
        else ""
    )
    table = Table(title=f"failed items{shown}", title_justify="left", expand=False)
    table.add_column("page", justify="right")
    table.add_column("key", overflow="fold", max_width=32)
    table.add_column("error")
    table.add_column("message", overflow="fold")
    table.add_column("at")
    for f in items:
        url = view.item_url(f.key)
        table.add_row(
            str(f.page_num),
            Text(preview(f.key, 60), style=f"link {url}" if url else ""),
            f.error_type,
            f.error_message,
            f"{f.failed_at.astimezone(timezone.utc):%H:%M:%S} UTC",
        )
    return table


def render_failures(view: BatchView, p: BatchFailures | None = None) -> RenderableType:
    """What went wrong in a batch: its failed, stuck and retrying pages and failed items.

    ``p``: the failures as ``handle.failures()`` lists them (whole; shortened here for the
    table); None: those in ``view.progress``.
    """
    if p is None and view.progress is not None:
        p = failures_of(view.progress)
    parts: list[RenderableType] = [
        Text.assemble(
            ("batch ", "bold"),
            (view.id, "bold"),
            "  ",
            (status_label(view.status, view.progress), _STATUS_STYLES.get(view.status, "bold")),
        )
    ]
    if p is None:
        parts.append(Text(view.note or "no progress", style="yellow"))
        return Group(*parts)
    parts.append(
        Text(
            f"{p.num_failed_pages:,} failed, {p.num_stuck_pages:,} stuck and "
            f"{p.num_retrying_pages:,} retrying pages; {p.num_failed_items:,} failed items"
        )
    )
    if p.failed_pages:
        parts.append(_failures_table("failed pages", p.failed_pages, p.num_failed_pages, False))
    if p.stuck_pages:
        parts.append(_failures_table("stuck pages", p.stuck_pages, p.num_stuck_pages, True))
    if p.retrying_pages:
        parts.append(
            _failures_table("retrying pages", p.retrying_pages, p.num_retrying_pages, True)
        )
    if p.failed_items:
        parts.append(_items_table(p, view))
        example = view.item_url(p.failed_items[-1].key)
        if example is not None:  # the keys link there in a terminal that shows links
            parts.append(
                Text.assemble(
                    ("an item's workflow in the UI: ", "dim"), (example, f"link {example}")
                )
            )
    if p.unavailable_runs:
        parts.append(
            Text(
                f"{p.unavailable_runs} run(s) of this batch are gone (past the namespace's "
                "retention period): the failures they recorded are not listed",
                style="yellow",
            )
        )
    listed = len(p.failed_pages) + len(p.stuck_pages) + len(p.retrying_pages)
    total = p.num_failed_pages + p.num_stuck_pages + p.num_retrying_pages
    if listed < total or len(p.failed_items) < p.num_failed_items:
        parts.append(Text(f"every one: batch-orchestra failures {view.id} --all", style="dim"))
    if p.failed_pages:
        parts.append(
            Text(f"run the failed pages again: batch-orchestra redrive {view.id}", style="dim")
        )
    return Group(*parts)
