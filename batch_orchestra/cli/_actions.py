"""What the ``batch-orchestra`` commands do, once click has parsed their options.

Each coroutine connects to Temporal through a ``Target``, calls the public API, and prints.
Expected failures raise ``CliError`` (one line, exit code 1).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from .._client import BatchOrchestratorClient
from .._devserver import EmbeddedTemporal
from .._exceptions import BatchOrchestraError
from .._model import BatchOrchestratorInput, BatchOrchestratorProgress
from .._plugin import BatchOrchestraPlugin
from .._read import (
    BatchView,
    CliError,
    Target,
    cause_text,
    failures_csv,
    failures_json,
    find_batch,
    list_batches,
    load_failures,
    load_view,
    progress_json,
    progress_line,
    rate_text,
    status_label,
    wait_closed,
    wait_picked_up,
)
from ._list import render_batch_list
from ._render import render_failures, render_status

__all__ = [
    "cancel_batch",
    "list_command",
    "pause_batch",
    "redrive_batch",
    "redrive_items",
    "resume_batch",
    "run_worker",
    "serve",
    "set_parallelism",
    "show_failures",
    "show_status",
    "start_batch",
    "terminate_batch",
]

UPDATE_TIMEOUT = 20.0
"""Seconds a worker gets to acknowledge pause, resume or set-parallelism."""
_HEALTH_INTERVAL = 5.0
"""Seconds between checks that the dev server is still up."""
_OPEN = ("RUNNING", "CONTINUED_AS_NEW")


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
            if status not in _OPEN:
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
    if view.progress is None and (as_json or view.status in _OPEN):
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
    remove_handlers = _on_stop_signals(stop)
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
        elif view.status in _OPEN:
            label = status_label(view.status, view.progress)
            click.echo(f"{label} {progress_line(view.progress) if view.progress else view.note}")

    if console.is_terminal and not as_json:
        with Live(render_status(view, full=full), console=console, refresh_per_second=4) as live:
            while view.status in _OPEN:
                await asyncio.sleep(interval)
                view = await load_view(client, target, batch_id)
                live.update(render_status(view, full=full))
    else:
        emit(view)
        while view.status in _OPEN:
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
    if view.status in _OPEN:
        if view.progress is None:
            raise CliError(view.note or "no worker answered")
        before = view.progress.num_failed_pages
        handle = orchestra.get_handle(batch_id)
        view.progress = p = await _acknowledged(view, "redrive", handle.redrive())
        queued = before - p.num_failed_pages
        msg = f"batch {batch_id!r}: {queued} failed page(s) queued again"
        if p.is_paused:
            msg += "; the batch is paused: resume it to run them"
        _ack(view, msg)
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


def _ack(view: BatchView, message: str) -> None:
    click.echo(message)
    if view.progress is not None:
        click.echo(f"  {progress_line(view.progress)}")
    click.echo(f"UI {view.url}")


async def _steerable(target: Target, batch_id: str) -> tuple[Client, BatchView]:
    """The batch's client and view, or ``CliError`` unless a worker can take an update now."""
    client = await target.connect()
    view = await load_view(client, target, batch_id)
    if view.status != "RUNNING":
        raise CliError(f"batch {batch_id!r} is {view.status}; only a running batch can be steered")
    if view.progress is None:  # no worker: the update would wait for one
        raise CliError(view.note or "no worker answered")
    return client, view


async def _acknowledged(
    view: BatchView, what: str, update: Coroutine[Any, Any, BatchOrchestratorProgress]
) -> BatchOrchestratorProgress:
    """Wait for a worker to apply an update; ``CliError`` if none does or the batch refuses."""
    try:
        return await asyncio.wait_for(update, UPDATE_TIMEOUT)
    except asyncio.TimeoutError:
        raise CliError(
            f"no worker acknowledged {what} of batch {view.id!r} within {UPDATE_TIMEOUT:g}s; "
            f"is a worker running on task queue {view.task_queue!r}? (the request may still "
            "apply when one picks it up)"
        ) from None
    except WorkflowUpdateFailedError as err:
        raise CliError(f"batch {view.id!r} refused {what}: {cause_text(err.cause)}") from None


async def pause_batch(target: Target, batch_id: str) -> None:
    """Pause a batch through its acknowledged ``pause`` update."""
    client, view = await _steerable(target, batch_id)
    before = view.progress.max_parallelism if view.progress else 0
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await _acknowledged(view, "pause", handle.pause())
    msg = f"paused batch {batch_id!r} (resume returns to parallelism {before})"
    if p.num_processing_pages:
        msg += f"; {p.num_processing_pages} running page(s) will finish, no new page starts"
    _ack(view, msg)


async def resume_batch(target: Target, batch_id: str) -> None:
    """Resume a paused batch through its acknowledged ``resume`` update."""
    client, view = await _steerable(target, batch_id)
    was_paused = view.progress is not None and view.progress.is_paused
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await _acknowledged(view, "resume", handle.resume())
    if not was_paused:
        msg = f"batch {batch_id!r} was not paused; parallelism stays {p.max_parallelism}"
    else:
        msg = f"resumed batch {batch_id!r} at parallelism {p.max_parallelism}"
    _ack(view, msg)


async def set_parallelism(target: Target, batch_id: str, n: int) -> None:
    """Change a batch's parallelism cap through its acknowledged update."""
    client, view = await _steerable(target, batch_id)
    before = view.progress.max_parallelism if view.progress else 0
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await _acknowledged(view, "set-parallelism", handle.set_max_parallelism(n))
    msg = f"batch {batch_id!r}: parallelism {before} -> {p.max_parallelism}"
    if p.is_paused and n > 0:
        msg += "; it stays paused until resume"
    _ack(view, msg)


async def set_rate(
    target: Target, batch_id: str, pages: float | None | bool, items: float | None | bool
) -> None:
    """Change a batch's rate limits through its acknowledged update.

    False leaves a limit as it is; None lifts it.
    """
    client, view = await _steerable(target, batch_id)
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    limits: dict[str, Any] = {}
    if pages is not False:
        limits["max_pages_per_second"] = pages
    if items is not False:
        limits["max_items_per_second"] = items
    if not limits:
        raise CliError("give --pages-per-second and/or --items-per-second (a number, or none)")
    view.progress = p = await _acknowledged(view, "set-rate", handle.set_rate_limit(**limits))
    _ack(view, f"batch {batch_id!r}: rate limit {rate_text(p)}")


async def _open_batch(target: Target, batch_id: str, verb: str) -> Client:
    """A client to a batch that is still open.

    Raises ``CliError`` saying there is nothing to ``verb`` if it is not.
    """
    client = await target.connect()
    desc = await find_batch(client, target, batch_id)
    status = desc.status.name if desc.status else "UNKNOWN"
    if status not in _OPEN:
        raise CliError(f"batch {batch_id!r} is already {status}; nothing to {verb}")
    return client


async def cancel_batch(target: Target, batch_id: str, wait: float) -> None:
    """Request cancellation and report the state the batch reaches within ``wait`` seconds."""
    client = await _open_batch(target, batch_id, "cancel")
    await BatchOrchestratorClient(client).get_handle(batch_id).workflow_handle.cancel()
    view = await wait_closed(client, target, batch_id, wait)
    if view.status in _OPEN:
        _ack(
            view,
            (
                f"cancellation of batch {batch_id!r} requested; it is still {view.status} "
                f"(no worker has handled the request yet; is one running on task queue "
                f"{view.task_queue!r}?)"
            ),
        )
        return
    msg = f"batch {batch_id!r} is {view.status}"
    p = view.progress
    if p is not None and p.num_processing_pages:
        msg += f"; {p.num_processing_pages} page(s) that were running are abandoned"
    _ack(view, msg)


async def terminate_batch(target: Target, batch_id: str, reason: str) -> None:
    """Terminate a batch at once (no worker needed), e.g. one that no worker ever picked up."""
    client = await _open_batch(target, batch_id, "terminate")
    await client.get_workflow_handle(batch_id).terminate(reason=reason)
    click.echo(f"terminated batch {batch_id!r}: {reason}")
    click.echo(f"UI {target.url(batch_id)}")


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


def _on_stop_signals(stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGINT/SIGTERM; returns a function that removes the handlers again."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or Windows: Ctrl-C raises KeyboardInterrupt instead

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def serve(*, port: int, ui_port: int, db: str | None, headless: bool, namespace: str) -> None:
    """Run the embedded dev server until SIGINT/SIGTERM, printing where to find it."""
    for option, p in [("--port", port)] + ([] if headless else [("--ui-port", ui_port)]):
        if _port_taken(p):
            raise CliError(
                f"port {p} on 127.0.0.1 is already in use (is a server already running?); "
                f"choose another with {option}"
            )
    server = EmbeddedTemporal(
        port=port,
        ui=not headless,
        ui_port=ui_port,
        db_filename=db,
        namespace=namespace,
        use_env=False,
    )
    try:
        await server.start()
    except BatchOrchestraError as err:
        raise CliError(str(err)) from None
    try:
        click.echo(f"Temporal dev server at {server.address} (namespace {namespace!r})")
        if server.ui_url:
            click.echo(f"Web UI {server.ui_url}")
        click.echo(f"storage {db if db else 'in memory (use --db FILE to keep batches)'}")
        click.echo(
            "next: batch-orchestra worker MODULE --task-queue QUEUE "
            f"--address {server.address}; Ctrl-C stops the server"
        )
        stop = asyncio.Event()
        _on_stop_signals(stop)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), _HEALTH_INTERVAL)
            except asyncio.TimeoutError:
                try:
                    await server.client.workflow_service.get_system_info(
                        GetSystemInfoRequest(), timeout=timedelta(seconds=5)
                    )
                except Exception:
                    msg = f"the dev server at {server.address} stopped answering"
                    raise CliError(msg) from None
        click.echo("stopping the dev server")
    finally:
        await server.stop()


async def run_worker(
    target: Target,
    *,
    task_queue: str,
    max_concurrent_pages: int | None,
    graceful_shutdown_timeout: float,
) -> None:
    """Run a worker with the plugin until SIGINT/SIGTERM, then shut it down gracefully."""
    client = await target.connect()
    worker = Worker(
        client,
        task_queue=task_queue,
        plugins=[BatchOrchestraPlugin()],
        max_concurrent_activities=max_concurrent_pages,
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown_timeout),
    )
    stop = asyncio.Event()
    remove_handlers = _on_stop_signals(stop)
    run = asyncio.ensure_future(worker.run())
    stopped = asyncio.ensure_future(stop.wait())
    click.echo(
        f"worker polling task queue {task_queue!r} at {target.address} "
        f"(namespace {target.namespace!r}); Ctrl-C stops it"
    )
    try:
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            remove_handlers()  # a second Ctrl-C interrupts at once
            click.echo(
                f"shutting down: running pages get up to {graceful_shutdown_timeout:g}s to finish"
            )
            await worker.shutdown()
        await run
    except (RuntimeError, BatchOrchestraError) as err:
        raise CliError(f"the worker stopped: {err}") from None
    finally:
        stopped.cancel()
    click.echo("worker stopped")
