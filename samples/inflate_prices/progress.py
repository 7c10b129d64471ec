"""Printing a batch's progress while it runs (shared by the starter and the demo)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TextIO

from batch_orchestra import BatchOrchestratorHandle, BatchOrchestratorProgress

__all__ = ["format_progress", "wait_printing_progress"]


def _tail(p: BatchOrchestratorProgress) -> str:
    """Stuck and failed pages, and the ETA while the batch runs."""
    tail = f" | stuck {p.num_stuck_pages} | failed {p.num_failed_pages}"
    if p.eta_seconds is not None and not p.is_finished:
        tail += f" | eta {p.eta_seconds:.0f}s"
    return tail


def format_progress(p: BatchOrchestratorProgress) -> str:
    """One line: pages and items done, pages running, parallelism, stuck and failed pages."""
    items = f"{p.num_completed_items}"
    if p.total_items is not None:
        items += f"/{p.total_items}"
    if p.percent_complete is not None:
        items += f" ({p.percent_complete:5.1f}%)"
    return (
        f"pages done {p.num_completed_pages:4d} | items {items} | running {p.num_processing_pages}"
        f" | max parallelism achieved {p.max_parallelism_achieved}/{p.max_parallelism}" + _tail(p)
    )


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
        live: a live progress bar (default: when ``out`` is a terminal).

    Returns:
        The batch's final progress.
    """
    if live is None:
        live = out.isatty()
    every = timedelta(seconds=interval if interval is not None else (0.2 if live else 0.5))
    if live:
        return await _wait_with_bar(handle, every, out)
    final = None
    async for final in handle.watch(every):
        out.write(format_progress(final) + "\n")
        out.flush()
    assert final is not None
    return final


async def _wait_with_bar(
    handle: BatchOrchestratorHandle, every: timedelta, out: TextIO
) -> BatchOrchestratorProgress:
    """A terminal: a live progress bar of items, with rate, ETA and page counts."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    columns = (
        TextColumn("[bold]migrating"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[stats]}"),
    )
    final = None
    with Progress(*columns, console=Console(file=out), transient=False) as bar:
        task = bar.add_task("batch", total=None, stats="starting")
        async for final in handle.watch(every):
            stats = (
                f"{final.num_completed_items} items, {final.num_completed_pages} pages"
                f" | {final.items_per_second:,.0f} items/s | running "
                f"{final.num_processing_pages}/{final.max_parallelism}" + _tail(final)
            )
            bar.update(
                task, total=final.total_items, completed=final.num_completed_items, stats=stats
            )
    assert final is not None
    return final
