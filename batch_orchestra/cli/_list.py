"""``batch-orchestra list``: one entry per batch, readable at any terminal width.

IDs, statuses and progress are never cut. The progress wraps between its pieces
("45%", "90 pages done", ...) rather than inside one; the start time (``12-01 20:55``, UTC) is
the first thing dropped when the terminal is narrow; and IDs too long to share a line with the
rest get a line of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .._read import BatchView, one_line, progress_parts, status_label, window_text

__all__ = ["render_batch_list", "short_time", "wrap_parts"]

_GAP = 2
"""Spaces between columns (rich's cell padding, one on each side)."""
_MIN_PROGRESS = 36
"""The narrowest progress column worth a table layout (else: a block per batch)."""
_SEPARATOR = " · "
_MAX_SUMMARY = 100
"""Characters of a batch's failure or note in the list."""


def short_time(when: datetime | None, now: datetime | None = None) -> str:
    """``12-01 20:55`` (UTC) for this year, ``2025-12-01`` before it; "-" for None."""
    if when is None:
        return "-"
    utc = when.astimezone(timezone.utc)
    now = now or datetime.now(timezone.utc)
    return f"{utc:%m-%d %H:%M}" if utc.year == now.year else f"{utc:%Y-%m-%d}"


def wrap_parts(parts: Sequence[str], width: int) -> list[str]:
    """Join ``parts`` with " · " into lines of at most ``width``, breaking between parts.

    A line that goes on below after a whole part ends with " ·". A part longer than a line
    flows word by word (never cut); a word longer than a line stays whole.
    """
    trailer = _SEPARATOR.rstrip()
    room = max(1, width - len(trailer))
    tokens: list[tuple[str, str]] = []
    for part in parts:
        words = [part] if len(part) <= room else part.split() or [""]
        for j, word in enumerate(words):
            tokens.append((" " if j else _SEPARATOR, word))
    lines: list[str] = []
    line = ""
    for sep, word in tokens:
        if not line:
            line = word
        elif len(line) + len(sep) + len(word) <= room:
            line += sep + word
        else:
            lines.append(line + (trailer if sep == _SEPARATOR else ""))
            line = word
    if line:
        lines.append(line)
    return lines


def _summary_parts(view: BatchView) -> list[str]:
    if view.progress is not None:
        window = window_text(view.progress)  # a series' batch: the window it covers first
        return ([window] if window else []) + progress_parts(view.progress)
    # A failure's first line, cut: a long one would fill the screen (`status` has all of it).
    return [one_line(view.failure or view.note or "", _MAX_SUMMARY)]


def render_batch_list(
    rows: Sequence[tuple[BatchView, datetime | None]], width: int
) -> RenderableType:
    """The batches as a table that fits ``width`` columns; one block each if IDs are too long."""
    labels = [status_label(v.status, v.progress) for v, _ in rows]
    id_w = max(len(v.id) for v, _ in rows)
    status_w = max(len("STATUS"), *(len(label) for label in labels))
    started_w = len("STARTED (UTC)")
    fixed = id_w + _GAP + status_w + _GAP
    if fixed + _MIN_PROGRESS > width:
        return _stacked(rows, labels, width)
    with_started = fixed + started_w + _GAP + _MIN_PROGRESS <= width
    progress_w = width - fixed - (started_w + _GAP if with_started else 0)
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("ID", no_wrap=True, min_width=id_w)
    table.add_column("STATUS", no_wrap=True, min_width=status_w)
    if with_started:
        table.add_column("STARTED (UTC)", no_wrap=True, min_width=started_w)
    table.add_column("PROGRESS", no_wrap=True, max_width=progress_w)
    for (view, started), label in zip(rows, labels, strict=True):
        cells: list[Text | str] = [Text(view.id, style=f"link {view.url}"), label]
        if with_started:
            cells.append(short_time(started))
        cells.append("\n".join(wrap_parts(_summary_parts(view), progress_w)))
        table.add_row(*cells)
    return table


def _stacked(
    rows: Sequence[tuple[BatchView, datetime | None]], labels: list[str], width: int
) -> RenderableType:
    """One block per batch: the ID on its own line, then status, start and progress, indented."""
    blocks: list[RenderableType] = []
    for (view, started), label in zip(rows, labels, strict=True):
        blocks.append(Text(view.id, style=f"bold link {view.url}"))
        parts = [label, f"started {short_time(started)} UTC", *_summary_parts(view)]
        for line in wrap_parts(parts, max(20, width - 2)):
            blocks.append(Text("  " + line))
    return Group(*blocks)
