"""What ``batch-orchestra series list`` and ``series status`` print: Rich tables and blocks."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .._read import Target, format_duration, plural
from .._series.types import SeriesDescription
from ._list import wrap_parts

__all__ = ["render_series", "render_series_list", "series_time"]

_OUTCOME_STYLES = {
    "committed": "green",
    "done": "green",
    "running": "cyan",
    "empty": "dim",
    "held": "yellow",
    "advanced": "yellow",
    "stale": "yellow",
    "skipped": "yellow",
    "failed": "red",
}


_LIST_COLUMNS = ("NAME", "SCHEDULE", "STATE", "MARK", "LAST RUN", "NEXT (UTC)")


def render_series_list(rows: list[list[str]], width: int) -> RenderableType:
    """The series as a table when it fits ``width`` whole; else a block each, name first.

    Nothing is cut: a name or a mark too long for a table line gets a line of its own.
    """
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(_LIST_COLUMNS)]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column, w in zip(_LIST_COLUMNS, widths, strict=True):
            table.add_column(column, no_wrap=True, min_width=w)
        for row in rows:
            table.add_row(*row)
        return table
    blocks: list[RenderableType] = []
    for name, schedule, state, mark, last, nxt in rows:
        blocks.append(Text(name, style="bold"))
        parts = [
            state,
            schedule,
            f"mark {mark}",
            f"last run {last}" + (" UTC" if last != "-" and state != "?" else ""),
        ]
        if nxt != "-":
            parts.append(f"next {nxt} UTC")
        for line in wrap_parts(parts, max(20, width - 2)):
            blocks.append(Text("  " + line))
    return Group(*blocks)


def series_time(value: datetime | None) -> str:
    """A time as the series commands show it (UTC, to the second), "-" for none."""
    if value is None:
        return "-"
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}"


def _runs(d: SeriesDescription, width: int | None) -> RenderableType:
    """The recent runs: a table, or a block each (batch ID on its own line) when too narrow."""
    columns = ("started (UTC)", "kind", "window", "outcome", "pages", "items", "batch")
    rows: list[tuple[str, str, str, Text, str, str, str]] = []
    for r in d.runs[:10]:
        pages = f"{r.num_completed_pages:,}" + (
            f" ({r.num_failed_pages:,} failed)" if r.num_failed_pages else ""
        )
        outcome = Text(r.outcome, style=_OUTCOME_STYLES.get(r.outcome, ""))
        if r.reason:
            outcome.append(f": {r.reason}", style="dim")
        rows.append(
            (
                series_time(r.started_at),
                r.kind,
                r.window.text() if r.window else "-",
                outcome,
                pages if r.kind != "skipped" else "-",
                f"{r.num_completed_items:,}" if r.kind != "skipped" else "-",
                r.batch_id or "-",
            )
        )
    natural = sum(
        max(len(c), *(len(str(row[i])) for row in rows)) + 3 for i, c in enumerate(columns)
    )
    if width is None or natural + 1 <= width:
        table = Table(title="recent runs (newest first)", title_justify="left", expand=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        return table
    blocks: list[RenderableType] = [Text("recent runs (newest first)", style="italic")]
    for started, kind, window, outcome, pages, items, batch in rows:
        head = [started, kind, f"window {window}", outcome.plain]
        if kind != "skipped":
            head += [f"{pages} pages", f"{items} items"]
        for line in wrap_parts(head, max(20, width - 2)):
            blocks.append(Text("  " + line))
        if batch != "-":
            blocks.append(Text(f"    batch {batch}", style="cyan"))
    return Group(*blocks)


def render_series(
    d: SeriesDescription, target: Target | None = None, width: int | None = None
) -> RenderableType:
    """The full status of a series: header, schedule, mark, counts, running and recent runs.

    ``width``: the terminal's; recent runs are stacked when their table would not fit it.
    """
    state = "PAUSED" if d.paused else "ACTIVE"
    header = Text.assemble(
        ("series ", "bold"),
        (d.name, "bold"),
        "  ",
        (state, "bold yellow" if d.paused else "bold green"),
        (f"  task queue {d.task_queue}", "dim"),
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", justify="right")
    grid.add_column()
    grid.add_row("schedule", f"{d.schedule} · overlap {d.overlap}")
    if d.paused and d.note:
        grid.add_row("paused", Text(d.note, style="yellow"))
    if d.next_runs and not d.paused:
        grid.add_row("next runs", ", ".join(f"{series_time(t)} UTC" for t in d.next_runs[:3]))
    grid.add_row("batch", f"{d.processor} · on failure {d.on_failure}")
    mark = "-" if d.mark is None else repr(d.mark)
    if d.mark_moved_at is not None:
        mark += f" (moved {series_time(d.mark_moved_at)} UTC)"
    if d.behind is not None:
        mark += f", {format_duration(d.behind.total_seconds())} behind now"
    grid.add_row("window", d.window)
    if d.window != "none":
        grid.add_row("mark", mark)
    grid.add_row(
        "runs",
        f"{d.num_runs:,} · {d.num_committed:,} committed · {d.num_held:,} held · "
        f"{d.num_empty:,} empty · {plural(d.num_skipped, 'tick')} skipped"
        + (f" · {d.num_missed:,} missed" if d.num_missed else "")
        + (f" · {plural(d.num_backfills, 'backfill')}" if d.num_backfills else ""),
    )
    for r in d.running:
        grid.add_row(
            "running",
            Text(f"{r.batch_id} {r.window.text() if r.window else ''}", style="cyan"),
        )
    parts: list[RenderableType] = [header, grid]
    if d.note_from_worker:
        parts.append(Text(d.note_from_worker, style="yellow"))
    if d.runs:
        parts.append(_runs(d, width))
    operator = [m for m in d.mark_changes if m.by is not None]
    if operator:
        table = Table(title="mark set by operators", title_justify="left", expand=False)
        for column in ("at (UTC)", "from", "to", "by", "reason"):
            table.add_column(column, overflow="fold")
        for m in operator[:5]:
            table.add_row(series_time(m.at), repr(m.old), repr(m.new), m.by or "-", m.reason)
        parts.append(table)
    return Group(*parts)
