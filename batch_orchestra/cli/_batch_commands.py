"""The commands that start and read batches: start, status, failures, redrive and list."""

from __future__ import annotations

import uuid
from datetime import timedelta

import click

from .._exceptions import InvalidBatchInputError
from .._model import BatchOrchestratorInput, HealthCheckConfig, validate_input
from .._read import Target
from . import _actions as actions
from ._options import batch_id_argument, check_json, connection_options, page_timeout_option, run

__all__ = ["failures", "list_", "option_named", "redrive", "start", "status"]


_FIELD_OPTIONS = {
    "max_pages_per_second": "--pages-per-second",
    "max_items_per_second": "--items-per-second",
    "first_cursor_str": "--first-cursor",
}


def option_named(message: str) -> str:
    """A validation message that begins with an input field, told with the option's name.

    ``page_size must be an int >= 1, got 0`` becomes ``--page-size must be ...``: the user
    typed the option, not the field.
    """
    field, _, rest = message.partition(" ")
    ctx = click.get_current_context(silent=True)
    if ctx is None or not rest or not field.isidentifier():
        return message
    option = _FIELD_OPTIONS.get(field)
    for param in ctx.command.params:
        if option is None and param.name == field and isinstance(param, click.Option):
            option = max(param.opts, key=len)
    return f"{option} {rest}" if option else message


@click.command()
@click.argument("processor")
@click.option("--page-size", type=int, required=True, help="Items per page.")
@click.option(
    "--max-parallelism",
    type=int,
    required=True,
    help="Most pages running at once (0 starts paused).",
)
@click.option(
    "--args",
    "args_json",
    metavar="JSON",
    callback=check_json,
    help="JSON every page reads as context.args_str.",
)
@click.option("--first-cursor", default="", help="The first page's cursor.")
@click.option(
    "--total-items",
    type=int,
    default=None,
    help="Estimated number of items, for percent done and ETA.",
)
@click.option("--id", "batch_id", default=None, help="Workflow ID (default: PROCESSOR-<random>).")
@page_timeout_option
@click.option("--task-queue", "-q", required=True, help="Task queue of the workers.")
@click.option("--watch", is_flag=True, help="Show live progress until the batch ends.")
@click.option("--reuse-id", is_flag=True, help="Start even if a finished batch already used --id.")
@click.option(
    "--confirm-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a worker to pick the batch up (0: do not wait).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--ramp-up",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Grow parallelism from 1 to the cap over this long.",
)
@click.option(
    "--pages-per-second",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="At most this many page attempts start per second.",
)
@click.option(
    "--items-per-second",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="At most about this many items per second.",
)
@click.option(
    "--adaptive",
    is_flag=True,
    help="Find the parallelism by itself, with --max-parallelism as the ceiling.",
)
@click.option(
    "--target-latency",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --adaptive: the page latency to stay under.",
)
@click.option(
    "--canary-pages",
    type=click.IntRange(min=1),
    default=None,
    help="Pause after this many pages completed, for a person to check them.",
)
@click.option(
    "--health-check",
    default=None,
    metavar="NAME",
    help="A registered @health_check the batch calls while it runs.",
)
@click.option(
    "--health-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds between health checks.",
)
@connection_options
def start(
    processor: str,
    page_size: int,
    max_parallelism: int,
    args_json: str | None,
    first_cursor: str,
    total_items: int | None,
    batch_id: str | None,
    page_timeout: float,
    task_queue: str,
    watch: bool,
    reuse_id: bool,
    confirm_timeout: float,
    interval: float,
    ramp_up: float | None,
    pages_per_second: float | None,
    items_per_second: float | None,
    adaptive: bool,
    target_latency: float | None,
    canary_pages: int | None,
    health_check: str | None,
    health_interval: float,
    target: Target,
) -> None:
    """Start a batch of the registered page processor PROCESSOR.

    Processors are registered on the workers, not here: without --watch, start waits up to
    --confirm-timeout seconds for a worker to pick the batch up, so that a processor no worker
    knows fails here (exit code 1) rather than only in the UI.
    """
    inp = BatchOrchestratorInput(
        page_processor=processor,
        page_size=page_size,
        max_parallelism=max_parallelism,
        args=args_json,
        first_cursor_str=first_cursor,
        total_items=total_items,
        page_timeout=timedelta(seconds=page_timeout),
        ramp_up=timedelta(seconds=ramp_up) if ramp_up is not None else None,
        max_pages_per_second=pages_per_second,
        max_items_per_second=items_per_second,
        adaptive=adaptive,
        canary_pages=canary_pages,
        target_page_latency=(
            timedelta(seconds=target_latency) if target_latency is not None else None
        ),
        health_check=(
            HealthCheckConfig(name=health_check, interval=timedelta(seconds=health_interval))
            if health_check
            else None
        ),
    )
    try:
        validate_input(inp)
    except InvalidBatchInputError as err:
        raise click.UsageError(option_named(str(err))) from None
    wid = batch_id or f"{processor}-{uuid.uuid4().hex[:12]}"
    run(
        target,
        actions.start_batch(
            target,
            inp,
            wid,
            task_queue,
            watch=watch,
            confirm_timeout=confirm_timeout,
            reuse_id=reuse_id,
            interval=interval,
        ),
    )


@click.command()
@batch_id_argument
@click.option("--watch", is_flag=True, help="Refresh until the batch ends.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the progress as one JSON object (one per refresh with --watch).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option("--full", is_flag=True, help="Show error messages and cursors whole.")
@connection_options
def status(
    batch_id: str, watch: bool, as_json: bool, interval: float, full: bool, target: Target
) -> None:
    """Show a batch's progress, its stuck and failed pages, and its UI link.

    Error messages are cut to one line (--full shows them whole); errors that differ only in
    numbers, URLs and IDs are counted together. With --watch, exits 0 when the batch
    completes, 1 when it fails or is cancelled, and 130 on Ctrl-C (the batch goes on).
    """
    run(
        target,
        actions.show_status(
            target, batch_id, watch=watch, as_json=as_json, interval=interval, full=full
        ),
    )


@click.command()
@batch_id_argument
@click.option("--json", "fmt", flag_value="json", help="Print one JSON object.")
@click.option("--csv", "fmt", flag_value="csv", help="Print CSV, one row per page or item.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="List every failure, not only the most recent 100 of each kind.",
)
@connection_options
def failures(batch_id: str, fmt: str | None, everything: bool, target: Target) -> None:
    """Show a batch's failed, stuck and retrying pages and its recorded failed items.

    Pages are the most recent 100 of each kind, items the most recent 100 (--all: every one);
    counts are exact. --json and --csv print whole cursors and keys (the table shortens them).
    """
    run(
        target,
        actions.show_failures(target, batch_id, fmt=fmt or "table", everything=everything),
    )


@click.command()
@batch_id_argument
@click.option(
    "--id",
    "new_id",
    default=None,
    help="Workflow ID of the new batch, for a finished one (default: ID-redrive-N).",
)
@click.option(
    "--items",
    "items",
    is_flag=True,
    help="Run the failed items again instead, through the processor's "
    "run_items, in a new batch (default ID: ID-items-N).",
)
@connection_options
def redrive(batch_id: str, new_id: str | None, items: bool, target: Target) -> None:
    """Run a batch's failed pages again, each with a fresh retry budget.

    A running or paused batch queues every failed page again. For a completed batch, a new
    batch (--id, default ID-redrive-N) runs them all, linked to the old one; a page that had
    enqueued its successor before failing does not enqueue it again.
    """
    if items:
        run(target, actions.redrive_items(target, batch_id, new_id))
    else:
        run(target, actions.redrive_batch(target, batch_id, new_id))


@click.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Most batches to show, most recent first.",
)
@click.option("--running", "running_only", is_flag=True, help="Only running batches.")
@connection_options
def list_(limit: int, running_only: bool, target: Target) -> None:
    """List running and recent batches with their status and progress."""
    run(target, actions.list_command(target, limit=limit, running_only=running_only))
