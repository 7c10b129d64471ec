"""Printing a batch's progress while it runs (shared by the starter and the demo)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

from batch_orchestra import BatchOrchestratorHandle, BatchOrchestratorProgress

__all__ = ["format_progress", "wait_printing_progress"]


def format_progress(p: BatchOrchestratorProgress) -> str:
    """One line: pages and items done, pages running, parallelism, stuck and failed pages."""
    items = f"{p.num_completed_items}"
    if p.total_items is not None:
        items += f"/{p.total_items}"
    if p.percent_complete is not None:
        items += f" ({p.percent_complete:5.1f}%)"
    line = (
        f"pages done {p.num_completed_pages:4d} | items {items} | running {p.num_processing_pages}"
        f" | max parallelism achieved {p.max_parallelism_achieved}/{p.max_parallelism}"
        f" | stuck {p.num_stuck_pages} | failed {p.num_failed_pages}"
    )
    if p.eta_seconds is not None and not p.is_finished:
        line += f" | eta {p.eta_seconds:.0f}s"
    return line


async def wait_printing_progress(
    handle: BatchOrchestratorHandle,
    *,
    interval: float | None = None,
    out: TextIO = sys.stdout,
    live: bool | None = None,
) -> BatchOrchestratorProgress:
    """Wait for the batch to finish, printing its progress every ``interval`` seconds.

    Args:
        handle: the batch.
        interval: seconds between two progress lines (default: 0.2 live, 0.5 otherwise).
        out: where to print.
        live: rewrite one line in place with ``\\r`` (default: when ``out`` is a terminal).

    Returns:
        The batch's final progress.
    """
    if live is None:
        live = out.isatty()
    if interval is None:
        interval = 0.2 if live else 0.5
    if live:
        return await _wait_with_bar(handle, interval, out)
    result = asyncio.ensure_future(handle.result())
    width = 0

    def show(p: BatchOrchestratorProgress) -> None:
        nonlocal width
        line = format_progress(p)
        if live:
            out.write("\r" + line.ljust(width))
            width = len(line)
        else:
            out.write(line + "\n")
        out.flush()

    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=interval)
            if done:
                break
            with contextlib.suppress(Exception):  # a query can fail while a run hands over
                show(await handle.get_progress())
        final = result.result()
        show(final)
        if live:
            out.write("\n")
        return final
    finally:
        result.cancel()


async def _wait_with_bar(
    handle: BatchOrchestratorHandle, interval: float, out: TextIO
) -> BatchOrchestratorProgress:
    """A terminal: a live progress bar of items (or pages), with rate, ETA and page counts."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    columns = (
        TextColumn("[bold]migrating"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[stats]}"),
    )
    result = asyncio.ensure_future(handle.result())

    def stats(p: BatchOrchestratorProgress) -> str:
        line = (
            f"{p.num_completed_items} items, {p.num_completed_pages} pages"
            f" | {p.items_per_second:,.0f} items/s | running {p.num_processing_pages}"
            f"/{p.max_parallelism} | stuck {p.num_stuck_pages} | failed {p.num_failed_pages}"
        )
        if p.eta_seconds is not None and not p.is_finished:
            line += f" | eta {p.eta_seconds:.0f}s"
        return line

    with Progress(*columns, console=Console(file=out), transient=False) as bar:
        task = bar.add_task("batch", total=None, stats="starting")
        try:
            while True:
                done, _ = await asyncio.wait({result}, timeout=interval)
                p = result.result() if done else None
                if p is None:
                    with contextlib.suppress(Exception):  # a query can fail at a hand-over
                        p = await handle.get_progress()
                if p is not None:
                    bar.update(
                        task, total=p.total_items, completed=p.num_completed_items,
                        stats=stats(p),
                    )
                if done:
                    return result.result()
        finally:
            result.cancel()
