"""The ``batch-orchestra`` command line: a thin layer over the public API.

::

    batch-orchestra server [--port 7233] [--ui-port 8233] [--db FILE] [--headless]
    batch-orchestra worker MODULE... --task-queue Q
    batch-orchestra start PROCESSOR --page-size N --max-parallelism N --task-queue Q [--watch]
    batch-orchestra status ID [--watch] [--json]
    batch-orchestra failures ID [--all] [--json | --csv]
    batch-orchestra redrive ID [--id NEW_ID]
    batch-orchestra pause ID | resume ID | set-parallelism ID N | set-rate ID ... | cancel ID
    batch-orchestra retry-page ID N [--reason TEXT] | skip-page ID N --reason TEXT
    batch-orchestra terminate ID
    batch-orchestra list [--limit N] [--running]
    batch-orchestra dashboard [--host 127.0.0.1] [--port 8234] [--token T] [--read-only]

Commands that talk to Temporal take ``--address`` and ``--namespace`` (env ``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``) and ``--ui-url`` (env ``TEMPORAL_UI_URL``) for the Web UI links. Expected
failures (no server, unknown batch, unknown processor, ...) print one ``error:`` line on stderr
and exit with 1; bad usage exits with 2. This module only parses; ``_actions`` acts.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from temporalio.service import RPCError

from .._client.connect import DEFAULT_ADDRESS, DEFAULT_NAMESPACE, resolve_connection
from .._exceptions import InvalidBatchInputError
from .._health import registered_health_checks
from .._model import BatchOrchestratorInput, HealthCheckConfig, validate_input
from .._processor import registered_page_processors
from .._read import CliError, Target
from .._tracker import registered_batch_trackers
from . import _actions as actions
from . import _page_actions as page_actions
from ._logging import configure_worker_logging

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def _connection_options(fn: F) -> F:
    """Add the options that say how to reach Temporal, and ``--ui-url``.

    The options are named as Temporal's own CLI names them; the command gets them resolved as
    ``target``.
    """

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        profile: str | None,
        config_file: str | None,
        address: str | None,
        namespace: str | None,
        api_key: str | None,
        tls: bool | None,
        tls_cert_path: str | None,
        tls_key_path: str | None,
        tls_ca_path: str | None,
        tls_server_name: str | None,
        ui_url: str,
        **kwargs: Any,
    ) -> Any:
        try:
            connection = resolve_connection(
                profile=profile,
                config_file=config_file,
                address=address,
                namespace=namespace,
                api_key=api_key,
                tls=tls,
                tls_cert_path=tls_cert_path,
                tls_key_path=tls_key_path,
                tls_ca_path=tls_ca_path,
                tls_server_name=tls_server_name,
            )
        except ValueError as err:
            raise CliError(str(err)) from None
        return fn(*args, target=Target.from_connection(connection, ui_url), **kwargs)

    path = click.Path(dir_okay=False)
    options = [
        click.option(
            "--address",
            default=None,
            help="host:port of the Temporal server [env TEMPORAL_ADDRESS; default "
            f"{DEFAULT_ADDRESS}].",
        ),
        click.option(
            "--namespace",
            default=None,
            help=f"Temporal namespace [env TEMPORAL_NAMESPACE; default {DEFAULT_NAMESPACE}].",
        ),
        click.option(
            "--profile",
            default=None,
            help="Profile of the Temporal config file [env TEMPORAL_PROFILE; default 'default'].",
        ),
        click.option(
            "--config-file",
            type=path,
            default=None,
            help="Temporal config file (TOML) [env TEMPORAL_CONFIG_FILE; default "
            "~/.config/temporalio/temporal.toml].",
        ),
        click.option(
            "--api-key",
            default=None,
            help="API key, e.g. for Temporal Cloud; turns TLS on [env TEMPORAL_API_KEY].",
        ),
        click.option(
            "--tls/--no-tls",
            default=None,
            help="Connect with TLS, or force plain text [env TEMPORAL_TLS].",
        ),
        click.option(
            "--tls-cert-path",
            type=path,
            default=None,
            help="Client certificate (PEM) for mutual TLS [env TEMPORAL_TLS_CLIENT_CERT_PATH].",
        ),
        click.option(
            "--tls-key-path",
            type=path,
            default=None,
            help="Client certificate's key (PEM) [env TEMPORAL_TLS_CLIENT_KEY_PATH].",
        ),
        click.option(
            "--tls-ca-path",
            type=path,
            default=None,
            help="CA certificate (PEM) to trust [env TEMPORAL_TLS_SERVER_CA_CERT_PATH].",
        ),
        click.option(
            "--tls-server-name",
            default=None,
            help="Server name to verify [env TEMPORAL_TLS_SERVER_NAME].",
        ),
        click.option(
            "--ui-url",
            envvar="TEMPORAL_UI_URL",
            default="http://localhost:8233",
            show_default=True,
            help="Base URL of the Temporal Web UI, for links [env TEMPORAL_UI_URL].",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def _run(target: Target | None, main: Coroutine[Any, Any, None]) -> None:
    """Run a command's coroutine; a request the server refuses becomes one clear line."""
    try:
        asyncio.run(main)
    except RPCError as err:
        raise (target.rpc_error(err) if target else CliError(err.message)) from None


def _batch_id_argument(fn: F) -> F:
    return click.argument("batch_id", metavar="ID")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batch-orchestra")
def cli() -> None:
    """Run and operate Batch Orchestra batches on Temporal."""


@cli.command()
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
    _run(
        None,
        actions.serve(port=port, ui_port=ui_port, db=db, headless=headless, namespace=namespace),
    )


@cli.command()
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
@_connection_options
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
    _run(
        target,
        actions.run_worker(
            target,
            task_queue=task_queue,
            max_concurrent_pages=max_concurrent_pages,
            graceful_shutdown_timeout=graceful_shutdown_timeout,
        ),
    )


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


def _check_json(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            json.loads(value)
        except ValueError as err:
            raise click.BadParameter(f"not valid JSON ({err}): {value!r}") from None
    return value


@cli.command()
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
    callback=_check_json,
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
@click.option(
    "--page-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds one page attempt may run.",
)
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
@_connection_options
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
    _run(
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


@cli.command()
@_batch_id_argument
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
@_connection_options
def status(
    batch_id: str, watch: bool, as_json: bool, interval: float, full: bool, target: Target
) -> None:
    """Show a batch's progress, its stuck and failed pages, and its UI link.

    Error messages are cut to one line (--full shows them whole); errors that differ only in
    numbers, URLs and IDs are counted together. With --watch, exits 0 when the batch
    completes, 1 when it fails or is cancelled, and 130 on Ctrl-C (the batch goes on).
    """
    _run(
        target,
        actions.show_status(
            target, batch_id, watch=watch, as_json=as_json, interval=interval, full=full
        ),
    )


@cli.command()
@_batch_id_argument
@click.option("--json", "fmt", flag_value="json", help="Print one JSON object.")
@click.option("--csv", "fmt", flag_value="csv", help="Print CSV, one row per page or item.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="List every failure, not only the most recent 100 of each kind.",
)
@_connection_options
def failures(batch_id: str, fmt: str | None, everything: bool, target: Target) -> None:
    """Show a batch's failed, stuck and retrying pages and its recorded failed items.

    Pages are the most recent 100 of each kind, items the most recent 100 (--all: every one);
    counts are exact. --json and --csv print whole cursors and keys (the table shortens them).
    """
    _run(
        target,
        actions.show_failures(target, batch_id, fmt=fmt or "table", everything=everything),
    )


@cli.command()
@_batch_id_argument
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
@_connection_options
def redrive(batch_id: str, new_id: str | None, items: bool, target: Target) -> None:
    """Run a batch's failed pages again, each with a fresh retry budget.

    A running or paused batch queues every failed page again. For a completed batch, a new
    batch (--id, default ID-redrive-N) runs them all, linked to the old one; a page that had
    enqueued its successor before failing does not enqueue it again.
    """
    if items:
        _run(target, actions.redrive_items(target, batch_id, new_id))
    else:
        _run(target, actions.redrive_batch(target, batch_id, new_id))


@cli.command()
@_batch_id_argument
@_connection_options
def pause(batch_id: str, target: Target) -> None:
    """Pause a batch: running pages finish, no new page starts."""
    _run(target, actions.pause_batch(target, batch_id))


@cli.command()
@_batch_id_argument
@_connection_options
def resume(batch_id: str, target: Target) -> None:
    """Resume a paused batch at the parallelism it had before."""
    _run(target, actions.resume_batch(target, batch_id))


@cli.command("set-parallelism")
@_batch_id_argument
@click.argument("n", type=click.IntRange(min=0))
@_connection_options
def set_parallelism(batch_id: str, n: int, target: Target) -> None:
    """Set how many pages of a batch may run at once (0 pauses)."""
    _run(target, actions.set_parallelism(target, batch_id, n))


def _rate_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A rate: a positive number, or "none" to lift the limit; False when not given."""
    if value is None:
        return False
    if value.strip().lower() == "none":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0 or rate == float("inf"):
        raise click.BadParameter(f"{value!r}: give a positive number, or none to lift the limit")
    return rate


@cli.command("set-rate")
@_batch_id_argument
@click.option(
    "--pages-per-second",
    "pages",
    callback=_rate_option,
    metavar="X|none",
    help="At most X page attempts start per second (none lifts the limit).",
)
@click.option(
    "--items-per-second",
    "items",
    callback=_rate_option,
    metavar="X|none",
    help="At most about X items per second (none lifts the limit).",
)
@_connection_options
def set_rate(batch_id: str, pages: Any, items: Any, target: Target) -> None:
    """Set or lift a running batch's rate limits (a limit not given stays as it is)."""
    _run(target, actions.set_rate(target, batch_id, pages, items))


@cli.command("retry-page")
@_batch_id_argument
@click.argument("page_num", metavar="N", type=click.IntRange(min=0))
@click.option("--reason", help="Why (logged with who asked).")
@_connection_options
def retry_page(batch_id: str, page_num: int, reason: str | None, target: Target) -> None:
    """Retry page N of a batch now, not at its next scheduled retry.

    For a pending, retrying or stuck page.
    """
    _run(target, page_actions.retry_page(target, batch_id, page_num, reason))


@cli.command("skip-page")
@_batch_id_argument
@click.argument("page_num", metavar="N", type=click.IntRange(min=0))
@click.option("--reason", required=True, help="Why (logged with who asked).")
@_connection_options
def skip_page(batch_id: str, page_num: int, reason: str, target: Target) -> None:
    """Skip page N of a batch: it is let go, counted as skipped, not failed.

    For a pending, retrying or stuck page. Its chain goes on if its successors are known or its
    processor has next_page.
    """
    _run(target, page_actions.skip_page(target, batch_id, page_num, reason))


@cli.command()
@_batch_id_argument
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the batch to close.",
)
@_connection_options
def cancel(batch_id: str, wait: float, target: Target) -> None:
    """Cancel a batch: no new page starts and the batch ends as CANCELED.

    Pages already running are abandoned: they may still finish on their worker, but their
    results are discarded.
    """
    _run(target, actions.cancel_batch(target, batch_id, wait))


@cli.command()
@_batch_id_argument
@click.option(
    "--reason",
    default="terminated from the command line",
    show_default=True,
    help="Why (kept in the workflow's history).",
)
@_connection_options
def terminate(batch_id: str, reason: str, target: Target) -> None:
    """Terminate a batch at once, without a worker (e.g. one no worker ever picked up).

    Unlike cancel, running pages are not told and the tracker is not called.
    """
    _run(target, actions.terminate_batch(target, batch_id, reason))


@cli.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Most batches to show, most recent first.",
)
@click.option("--running", "running_only", is_flag=True, help="Only running batches.")
@_connection_options
def list_(limit: int, running_only: bool, target: Target) -> None:
    """List running and recent batches with their status and progress."""
    _run(target, actions.list_command(target, limit=limit, running_only=running_only))


@cli.command()
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
@_connection_options
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
    _run(
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


def main() -> None:
    """The ``batch-orchestra`` console script (and ``python -m batch_orchestra``)."""
    try:
        cli.main(prog_name="batch-orchestra")
        code: Any = 0
    except SystemExit as exit_:
        code = exit_.code
    if not isinstance(code, int):
        if code is not None:
            click.echo(code, err=True)
        code = 0 if code is None else 1
    # Skip interpreter teardown: the Temporal client's Rust threads can abort a short-lived
    # process while Python finalizes ("PyGILState_Release ... must be current",
    # temporalio/sdk-python#300). Everything worth keeping is flushed first.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# At the end: the series group reuses this module's option decorators.
from ._series import series  # noqa: E402

cli.add_command(series)
