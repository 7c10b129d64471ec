"""What ``server`` and ``worker`` do: run the dev server or a worker until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable
from datetime import timedelta

import click
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.worker import Worker

from .._devserver import EmbeddedTemporal
from .._exceptions import BatchOrchestraError
from .._read import (
    CliError,
    Target,
)
from .._worker.plugin import BatchOrchestraPlugin

__all__ = [
    "on_stop_signals",
    "run_worker",
    "serve",
]


_HEALTH_INTERVAL = 5.0
"""Seconds between checks that the dev server is still up."""


def on_stop_signals(stop: asyncio.Event) -> Callable[[], None]:
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
        on_stop_signals(stop)
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
    remove_handlers = on_stop_signals(stop)
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
