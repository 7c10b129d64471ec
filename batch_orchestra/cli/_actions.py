"""What ``start``, ``status``, ``failures``, ``redrive`` and ``list`` do, once click parsed them.

Each coroutine connects to Temporal through a ``Target``, calls the public API, and prints.
Expected failures raise ``CliError`` (one line, exit code 1). Steering a running batch is in
``_control_actions``, running a server or a worker in ``_process_actions``.
"""

from __future__ import annotations

import asyncio

import click
from rich.console import Console
from rich.live import Live
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._client import BatchOrchestratorClient
from .._exceptions import BatchOrchestraError
from .._model import BatchOrchestratorInput
from .._read import (
    OPEN_STATUSES,
    BatchView,
    CliError,
    Target,
    acknowledged,
    failures_csv,
    failures_json,
    list_batches,
    load_failures,
    load_view,
    progress_json,
    progress_line,
    status_label,
    wait_picked_up,
)
from ._control_actions import ack
from ._list import render_batch_list
from ._process_actions import on_stop_signals
from ._render import render_failures, render_status

__all__ = [
    "INTERRUPTED_EXIT_CODE",
    "list_command",
    "redrive_batch",
    "redrive_items",
    "show_failures",
    "show_status",
    "start_batch",
]


def _console() -> Console:
    return Console(highlight=False)


async def start_batch(
    target: Target,
    inp: BatchOrchestratorInput,
    wid: str,
    task_queue: str,
    *,
    watch: bool,
    confirm_timeout: float,
    interval: float,
    reuse_id: bool = False,
) -> None:
    """Start a batch, then watch it or wait for a worker to pick it up."""
    client = await target.connect()
    if not reuse_id:
        try:
            desc = await client.get_workflow_handle(wid).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            status = desc.status.name if desc.status else "UNKNOWN"
            if status not in OPEN_STATUSES:
                raise CliError(
                    f"a batch with ID {wid!r} already ran in namespace {target.namespace!r} "
                    f"({status}); pass --reuse-id to start a new batch under the same ID, or "
                    "pick another --id"
                )
    try:
        await BatchOrchestratorClient(client).start(inp, id=wid, task_queue=task_queue)
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"a batch with ID {wid!r} is already running in namespace {target.namespace!r}; "
            "pick another --id"
        ) from None
    except BatchOrchestraError as err:  # e.g. args that do not fit the processor's args_type
        raise CliError(str(err)) from None
    started = (
        f"started batch {wid!r}: processor {inp.processor_name()}, page size {inp.page_size}, "
        f"parallelism {inp.max_parallelism}, task queue {task_queue!r}\nUI {target.url(wid)}"
    )
    if watch or confirm_timeout <= 0:
        click.echo(started)
    if watch:
        await _watch(client, target, wid, as_json=False, interval=interval)
    elif confirm_timeout > 0:
        # Said "started" only once a worker has taken it: a batch the worker refuses (an
        # unknown processor, args that do not fit its args_type) is reported as failed instead.
        picked = await wait_picked_up(client, target, wid, confirm_timeout)
        if picked is None:
            raise CliError(
                f"no worker picked batch {wid!r} up within {confirm_timeout:g}s; is one "
                f"running on task queue {task_queue!r}? Start one with: "
                f"batch-orchestra worker MODULE --task-queue {task_queue} (the batch waits for "
                f"it; `batch-orchestra terminate {wid}` removes it)"
            )
        click.echo(started)
        click.echo(f"picked up by a worker: {progress_line(picked)}")


async def show_status(
    target: Target,
    batch_id: str,
    *,
    watch: bool,
    as_json: bool,
    interval: float,
    full: bool = False,
) -> None:
    """Print a batch's status once, or keep it up to date until the batch ends."""
    client = await target.connect()
    if watch:
        await _watch(client, target, batch_id, as_json=as_json, interval=interval, full=full)
        return
    view = await load_view(client, target, batch_id)
    if view.progress is None and (as_json or view.status in OPEN_STATUSES):
        raise CliError(view.note or f"no progress for batch {batch_id!r}")
    if as_json and view.progress is not None:
        click.echo(progress_json(view.progress))
    else:
        _console().print(render_status(view, full=full))


INTERRUPTED_EXIT_CODE = 130
"""What ``--watch`` exits with on Ctrl-C (128 + SIGINT), unlike 0 for a completed batch."""


async def _watch(
    client: Client,
    target: Target,
    batch_id: str,
    *,
    as_json: bool,
    interval: float,
    full: bool = False,
) -> None:
    """Refresh until the batch closes; ``CliError`` unless it completed.

    Ctrl-C (or SIGTERM) stops watching (the batch goes on), says how to follow it again and
    exits with 130, whatever the watch was waiting for at that moment.
    """
    stop = asyncio.Event()
    remove_handlers = on_stop_signals(stop)
    watching = asyncio.ensure_future(
        _watch_until_closed(client, target, batch_id, as_json=as_json, interval=interval, full=full)
    )
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({watching, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if watching.done():
            return watching.result()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass  # no signal handler here (not the main thread): the interrupt itself stops us
    finally:
        remove_handlers()
        stopped.cancel()
        watching.cancel()
    click.echo(
        f"\nstopped watching; batch {batch_id!r} keeps running. Follow it again with: "
        f"batch-orchestra status {batch_id} --watch",
        err=True,
    )
    raise SystemExit(INTERRUPTED_EXIT_CODE)


async def _watch_until_closed(
    client: Client,
    target: Target,
    batch_id: str,
    *,
    as_json: bool,
    interval: float,
    full: bool = False,
) -> None:
    """Follow the batch until it closes.

    A terminal gets a live display; a pipe or log gets one line per refresh, then the status.
    """
    console = _console()
    view = await load_view(client, target, batch_id)

    def emit(view: BatchView) -> None:
        if as_json:
            if view.progress is not None:
                click.echo(progress_json(view.progress))
        elif view.status in OPEN_STATUSES:
            label = status_label(view.status, view.progress)
            click.echo(f"{label} {progress_line(view.progress) if view.progress else view.note}")

    if console.is_terminal and not as_json:
        with Live(render_status(view, full=full), console=console, refresh_per_second=4) as live:
            while view.status in OPEN_STATUSES:
                await asyncio.sleep(interval)
                view = await load_view(client, target, batch_id)
                live.update(render_status(view, full=full))
    else:
        emit(view)
        while view.status in OPEN_STATUSES:
            await asyncio.sleep(interval)
            view = await load_view(client, target, batch_id)
            emit(view)
        if not as_json:
            console.print(render_status(view, full=full))
    if view.status != "COMPLETED":
        reason = view.failure or "no reason given"
        raise CliError(f"batch {batch_id!r} {view.status.lower()}: {reason}")


async def show_failures(
    target: Target, batch_id: str, *, fmt: str, everything: bool = False
) -> None:
    """Print a batch's failed, stuck and retrying pages and its recorded item failures.

    As a table, JSON (``fmt="json"``) or CSV (``fmt="csv"``); JSON and CSV with whole cursors
    and keys. ``everything``: every one, not only the most recent 100 of each kind.
    """
    client = await target.connect()
    view, failures = await load_failures(client, target, batch_id, everything=everything)
    if failures is None and fmt != "table":
        raise CliError(view.note or f"no progress for batch {batch_id!r}")
    if fmt == "json" and failures is not None:
        click.echo(failures_json(failures))
    elif fmt == "csv" and failures is not None:
        click.echo(failures_csv(failures), nl=False)
    else:
        _console().print(render_failures(view, failures))


async def redrive_batch(target: Target, batch_id: str, new_id: str | None) -> None:
    """Run a batch's failed pages again.

    In the batch itself while it runs, else in a new batch linked to it.
    """
    client = await target.connect()
    view = await load_view(client, target, batch_id)
    orchestra = BatchOrchestratorClient(client)
    if view.status in OPEN_STATUSES:
        if view.progress is None:
            raise CliError(view.note or "no worker answered")
        before = view.progress.num_failed_pages
        handle = orchestra.get_handle(batch_id)
        view.progress = p = await acknowledged(view, "redrive", handle.redrive())
        queued = before - p.num_failed_pages
        msg = f"batch {batch_id!r}: {queued} failed page(s) queued again"
        if p.is_paused:
            msg += "; the batch is paused: resume it to run them"
        ack(view, msg)
        return
    if view.status != "COMPLETED":
        raise CliError(
            f"batch {batch_id!r} is {view.status}, without a result to read its failed pages "
            "from; only a running or completed batch can be redriven"
        )
    try:
        handle = await orchestra.redrive(batch_id, id=new_id)
    except BatchOrchestraError as err:
        raise CliError(str(err)) from None
    except WorkflowAlreadyStartedError:
        raise CliError(f"a batch with ID {new_id!r} already exists; pick another --id") from None
    n = view.progress.num_failed_pages if view.progress else 0
    click.echo(f"started batch {handle.id!r} to redrive {n} failed page(s) of {batch_id!r}")
    click.echo(f"UI {target.url(handle.id)}")


async def redrive_items(target: Target, batch_id: str, new_id: str | None) -> None:
    """Run a batch's failed items again in a new batch, through ``run_items``."""
    client = await target.connect()
    try:
        handle = await BatchOrchestratorClient(client).redrive_items(batch_id, id=new_id)
    except BatchOrchestraError as err:
        raise CliError(str(err)) from None
    except WorkflowAlreadyStartedError:
        raise CliError(f"a batch with ID {new_id!r} already exists; pick another --id") from None
    click.echo(f"started batch {handle.id!r} to run the failed items of {batch_id!r} again")
    click.echo(f"UI {target.url(handle.id)}")


async def list_command(target: Target, *, limit: int, running_only: bool) -> None:
    """Print the most recent batches, one row each."""
    client = await target.connect()
    rows = await list_batches(client, target, limit=limit, running_only=running_only)
    console = _console()
    if not rows:
        console.print(f"no batches in namespace {target.namespace!r}", markup=False)
        return
    console.print(render_batch_list(rows, console.width))
    console.print(f"UI {target.url('')}<ID>", markup=False)
