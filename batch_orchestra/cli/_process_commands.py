"""The commands that run a process until Ctrl-C: ``server``, ``worker`` and ``dashboard``."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from .._read import CliError, Target
from .._worker.health import registered_health_checks
from .._worker.processor import registered_page_processors
from .._worker.tracker import registered_batch_trackers
from . import _process_actions as actions
from ._logging import configure_worker_logging
from ._options import connection_options, run

__all__ = ["dashboard", "server", "worker"]


@click.command()
@click.option(
    "--port",
    default=7233,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="gRPC port of the server.",
)
@click.option(
    "--ui-port",
    default=8233,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the Web UI.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file that keeps batches across restarts (default: in memory).",
)
@click.option("--headless", is_flag=True, help="Run without the Web UI.")
@click.option(
    "--namespace",
    envvar="TEMPORAL_NAMESPACE",
    default="default",
    show_default=True,
    help="Namespace to create [env TEMPORAL_NAMESPACE].",
)
def server(port: int, ui_port: int, db: str | None, headless: bool, namespace: str) -> None:
    """Run the embedded Temporal dev server (and its Web UI) until Ctrl-C."""
    run(
        None,
        actions.serve(port=port, ui_port=ui_port, db=db, headless=headless, namespace=namespace),
    )


@click.command()
@click.argument("modules", nargs=-1, required=True)
@click.option("--task-queue", "-q", required=True, help="Task queue to poll.")
@click.option(
    "--max-concurrent-pages",
    type=click.IntRange(min=1),
    default=None,
    help="Most page attempts this worker runs at once (default: Temporal's).",
)
@click.option(
    "--graceful-shutdown-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds running pages get to finish on Ctrl-C.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Level of Batch Orchestra's and MODULES' loggers (other libraries log warnings "
    "only); a failed page attempt is one WARNING line, with its traceback at DEBUG.",
)
@connection_options
def worker(
    modules: tuple[str, ...],
    task_queue: str,
    max_concurrent_pages: int | None,
    graceful_shutdown_timeout: float,
    log_level: str,
    target: Target,
) -> None:
    """Import MODULES (registering their processors and trackers) and run a worker until Ctrl-C.

    On Ctrl-C (or SIGTERM) the worker stops polling and gives running pages
    --graceful-shutdown-timeout seconds to finish; a second Ctrl-C stops at once.
    """
    _import_modules(modules)
    configure_worker_logging(log_level, modules)
    processors = registered_page_processors()
    click.echo(f"processors: {', '.join(processors) or 'none'}")
    if registered_batch_trackers():
        click.echo(f"trackers: {', '.join(registered_batch_trackers())}")
    if registered_health_checks():
        click.echo(f"health checks: {', '.join(registered_health_checks())}")
    if not processors:
        click.echo(
            f"warning: {', '.join(modules)} registered no page processor; "
            "decorate processor classes with @page_processor",
            err=True,
        )
    run(
        target,
        actions.run_worker(
            target,
            task_queue=task_queue,
            max_concurrent_pages=max_concurrent_pages,
            graceful_shutdown_timeout=graceful_shutdown_timeout,
        ),
    )


def _module_name(given: str) -> str:
    """The dotted module name for ``given``: a module name, or a ``.py`` file's path.

    A file under the current directory is imported as its package's module
    (``samples/inflate_prices/processor.py`` as ``samples.inflate_prices.processor``), so its
    relative imports work as with ``python -m``.

    Raises:
        CliError: a path that is not a ``.py`` file under the current directory.
    """
    if not (given.endswith(".py") or os.sep in given or "/" in given):
        return given
    path = Path(given).resolve()
    cwd = Path.cwd().resolve()
    if path.suffix != ".py" or not path.is_file() or not path.is_relative_to(cwd):
        dotted = given.removesuffix(".py").replace("/", ".").replace(os.sep, ".").strip(".")
        raise CliError(
            f"cannot import {given!r}: give a module's dotted name (e.g. {dotted!r}), or the "
            "path of a .py file under the current directory"
        )
    parts = path.relative_to(cwd).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_modules(modules: tuple[str, ...]) -> None:
    # Like `python -m`: modules in the current directory are importable.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for given in modules:
        name = _module_name(given)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            raise CliError(f"cannot import module {name!r}: {err}") from None
        except Exception as err:
            raise CliError(
                f"importing module {name!r} failed: {type(err).__name__}: {err}"
            ) from None


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; anything but loopback needs --token.",
)
@click.option(
    "--port",
    default=8234,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port of the dashboard.",
)
@click.option(
    "--token",
    envvar="BATCH_ORCHESTRA_DASHBOARD_TOKEN",
    default=None,
    help="Access token every request must carry [env BATCH_ORCHESTRA_DASHBOARD_TOKEN].",
)
@click.option(
    "--users-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A file of 'NAME TOKEN' lines: each user signs in with their own token, and their "
    "actions are recorded under their name (instead of dashboard@HOST).",
)
@click.option(
    "--read-only",
    is_flag=True,
    help="Show batches only: no controls, no start form.",
)
@click.option(
    "--max-metrics-batches",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Most running batches /metrics exports.",
)
@connection_options
def dashboard(
    host: str,
    port: int,
    token: str | None,
    users_file: str | None,
    read_only: bool,
    max_metrics_batches: int,
    target: Target,
) -> None:
    """Serve the web dashboard: batches, live progress, controls, and /metrics.

    Its actions are recorded in a batch's change log as dashboard@HOST, or as the signed-in
    user with --users-file.
    """
    try:
        from ..dashboard._serve import run_from_cli
    except ImportError as err:
        raise CliError(
            f"the dashboard needs extra packages ({err.name} is missing): "
            "pip install 'batch-orchestra[dashboard]'"
        ) from None
    run(
        target,
        run_from_cli(
            target,
            host=host,
            port=port,
            token=token,
            read_only=read_only,
            max_metrics_batches=max_metrics_batches,
            users_file=users_file,
        ),
    )
