"""The commands that steer a running batch: pause, resume, parallelism, rates, pages, cancel."""

from __future__ import annotations

from typing import Any

import click

from .._read import Target
from . import _control_actions as actions
from . import _page_actions as page_actions
from ._options import batch_id_argument, connection_options, rate_option, run

__all__ = [
    "cancel",
    "pause",
    "resume",
    "retry_page",
    "set_parallelism",
    "set_rate",
    "skip_page",
    "terminate",
]


@click.command()
@batch_id_argument
@connection_options
def pause(batch_id: str, target: Target) -> None:
    """Pause a batch: running pages finish, no new page starts."""
    run(target, actions.pause_batch(target, batch_id))


@click.command()
@batch_id_argument
@connection_options
def resume(batch_id: str, target: Target) -> None:
    """Resume a paused batch at the parallelism it had before."""
    run(target, actions.resume_batch(target, batch_id))


@click.command("set-parallelism")
@batch_id_argument
@click.argument("n", type=click.IntRange(min=0))
@connection_options
def set_parallelism(batch_id: str, n: int, target: Target) -> None:
    """Set how many pages of a batch may run at once (0 pauses)."""
    run(target, actions.set_parallelism(target, batch_id, n))


@click.command("set-rate")
@batch_id_argument
@click.option(
    "--pages-per-second",
    "pages",
    callback=rate_option,
    metavar="X|none",
    help="At most X page attempts start per second (none lifts the limit).",
)
@click.option(
    "--items-per-second",
    "items",
    callback=rate_option,
    metavar="X|none",
    help="At most about X items per second (none lifts the limit).",
)
@connection_options
def set_rate(batch_id: str, pages: Any, items: Any, target: Target) -> None:
    """Set or lift a running batch's rate limits (a limit not given stays as it is)."""
    run(target, actions.set_rate(target, batch_id, pages, items))


@click.command("retry-page")
@batch_id_argument
@click.argument("page_num", metavar="N", type=click.IntRange(min=0))
@click.option("--reason", help="Why (logged with who asked).")
@connection_options
def retry_page(batch_id: str, page_num: int, reason: str | None, target: Target) -> None:
    """Retry page N of a batch now, not at its next scheduled retry.

    For a pending, retrying or stuck page.
    """
    run(target, page_actions.retry_page(target, batch_id, page_num, reason))


@click.command("skip-page")
@batch_id_argument
@click.argument("page_num", metavar="N", type=click.IntRange(min=0))
@click.option("--reason", required=True, help="Why (logged with who asked).")
@connection_options
def skip_page(batch_id: str, page_num: int, reason: str, target: Target) -> None:
    """Skip page N of a batch: it is let go, counted as skipped, not failed.

    For a pending, retrying or stuck page. Its chain goes on if its successors are known or its
    processor has next_page.
    """
    run(target, page_actions.skip_page(target, batch_id, page_num, reason))


@click.command()
@batch_id_argument
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the batch to close.",
)
@connection_options
def cancel(batch_id: str, wait: float, target: Target) -> None:
    """Cancel a batch: no new page starts and the batch ends as CANCELED.

    Pages already running are abandoned: they may still finish on their worker, but their
    results are discarded.
    """
    run(target, actions.cancel_batch(target, batch_id, wait))


@click.command()
@batch_id_argument
@click.option(
    "--reason",
    default="terminated from the command line",
    show_default=True,
    help="Why (kept in the workflow's history).",
)
@connection_options
def terminate(batch_id: str, reason: str, target: Target) -> None:
    """Terminate a batch at once, without a worker (e.g. one no worker ever picked up).

    Unlike cancel, running pages are not told and the tracker is not called.
    """
    run(target, actions.terminate_batch(target, batch_id, reason))
