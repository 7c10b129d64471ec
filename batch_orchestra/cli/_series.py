"""``batch-orchestra series ...``: create and operate periodic, incremental batches.

::

    batch-orchestra series create NAME --processor P -q QUEUE (--every 1h | --cron EXPR)
        [--time-zone TZ] --page-size N --max-parallelism N [--args JSON]
        [--watermark-initial V] [--lag 5m] [--overlap skip|buffer-one] [--on-failure hold|advance]
    batch-orchestra series list
    batch-orchestra series status NAME [--json]
    batch-orchestra series pause NAME [--note TEXT] | resume NAME | trigger NAME
    batch-orchestra series backfill NAME --from A --to B
    batch-orchestra series set-watermark NAME VALUE --reason TEXT
    batch-orchestra series delete NAME
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import click
from rich.console import Console

from .._client import BatchOrchestratorClient
from .._client.series import SeriesHandle, description_json
from .._exceptions import BatchOrchestraError, InvalidBatchInputError, UnknownSeriesError
from .._model import BatchOrchestratorInput
from .._read import CliError, Target, one_line
from .._series.types import SeriesSpec, TimeWindow, Watermark
from ._options import check_json, connection_options, page_timeout_option, run
from ._series_render import render_series, render_series_list, series_time

__all__ = ["parse_duration", "series"]

_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
    r"(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``5m``, ``1h30m``, ``2d`` as a timedelta.

    Raises:
        ValueError: the text is not such a duration.
    """
    t = text.strip()
    try:
        return timedelta(seconds=float(t))
    except ValueError:
        pass
    m = _DURATION.match(t)
    if not t or m is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h or 1h30m")
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def _duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _name_argument(fn: Any) -> Any:
    return click.argument("name")(fn)


def _console() -> Console:
    return Console(highlight=False)


def _handle(client: Any, name: str) -> SeriesHandle:
    return BatchOrchestratorClient(client).get_series(name)


async def _act(target: Target, name: str, what: str, call: Any) -> None:
    client = await target.connect()
    try:
        await call(_handle(client, name))
    except (UnknownSeriesError, InvalidBatchInputError) as err:
        raise CliError(str(err)) from None
    click.echo(f"series {name!r}: {what}")


@click.group()
def series() -> None:
    """Periodic batches: a batch on a schedule whose runs each take only what is new."""


@series.command()
@_name_argument
@click.option("--processor", required=True, help="The registered page processor.")
@click.option("--task-queue", "-q", required=True, help="Task queue of the workers.")
@click.option("--every", callback=_duration_option, help="Run every this long (e.g. 1h, 10m).")
@click.option("--cron", help='Run on this cron expression (e.g. "0 3 * * *").')
@click.option("--time-zone", help="IANA time zone of --cron (default UTC).")
@click.option("--page-size", type=int, required=True, help="Items per page.")
@click.option("--max-parallelism", type=int, required=True, help="Most pages running at once.")
@click.option("--args", "args_json", metavar="JSON", callback=check_json, help="Batch args.")
@click.option(
    "--window",
    type=click.Choice(["watermark", "time", "none"]),
    default=None,
    help="What each run takes (default: watermark with --watermark-initial, else none).",
)
@click.option("--watermark-initial", help="The mark before the first run (e.g. 0).")
@click.option("--lag", callback=_duration_option, help="How far behind now a window ends.")
@click.option(
    "--overlap",
    type=click.Choice(["skip", "buffer-one"]),
    default="skip",
    show_default=True,
    help="A tick while the previous run runs: skip it, or run once more right after.",
)
@click.option(
    "--on-failure",
    type=click.Choice(["hold", "advance"]),
    default="hold",
    show_default=True,
    help="A run with failed pages: hold the mark, or move on (redrive them later).",
)
@click.option(
    "--catchup-window",
    callback=_duration_option,
    default="1h",
    show_default=True,
    help="After the server was down, missed ticks within this long still run.",
)
@page_timeout_option
@click.option(
    "--confirm-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a worker to check the series (0: do not wait).",
)
@connection_options
def create(
    name: str,
    processor: str,
    task_queue: str,
    every: timedelta | None,
    cron: str | None,
    time_zone: str | None,
    page_size: int,
    max_parallelism: int,
    args_json: str | None,
    window: str | None,
    watermark_initial: str | None,
    lag: timedelta | None,
    overlap: str,
    on_failure: str,
    catchup_window: timedelta,
    page_timeout: float,
    confirm_timeout: float,
    target: Target,
) -> None:
    """Create series NAME: a batch of PROCESSOR on a schedule, each run over what is new.

    Everything is checked before the schedule starts: the options here, the cron expression
    and time zone by Temporal, the processor (and how it ends a watermark window) by a worker
    on the task queue; a refusal removes what was created and prints one error line.
    """
    kind = window or ("watermark" if watermark_initial is not None else "none")
    if kind != "watermark" and watermark_initial is not None:
        raise click.UsageError(f"--watermark-initial needs --window watermark, not {kind}")
    if kind == "none" and lag is not None:
        raise click.UsageError(
            "--lag needs a window: give --watermark-initial V (or --window watermark) or "
            "--window time"
        )
    w: Watermark | TimeWindow | None = None
    if kind == "watermark":
        w = Watermark(initial=watermark_initial, lag=lag)
    elif kind == "time":
        w = TimeWindow(lag=lag or timedelta(0))
    spec = SeriesSpec(
        batch=BatchOrchestratorInput(
            page_processor=processor,
            page_size=page_size,
            max_parallelism=max_parallelism,
            args=args_json,
            page_timeout=timedelta(seconds=page_timeout),
        ),
        every=every,
        cron=cron,
        time_zone=time_zone,
        window=w,
        overlap=overlap.replace("-", "_"),
        on_failure=on_failure,
        catchup_window=catchup_window,
    )
    confirm = timedelta(seconds=confirm_timeout) if confirm_timeout else None
    run(target, _create(target, spec, name, task_queue, confirm))


async def _create(
    target: Target, spec: SeriesSpec, name: str, queue: str, confirm: timedelta | None
) -> None:
    client = await target.connect()
    try:
        handle = await BatchOrchestratorClient(client).create_series(
            spec, id=name, task_queue=queue, confirm_timeout=confirm
        )
        d = await handle.describe()
    except BatchOrchestraError as err:
        raise CliError(str(err)) from None
    nxt = f", next run {series_time(d.next_runs[0])}" if d.next_runs else ""
    click.echo(
        f"created series {name!r}: {d.schedule}, window {d.window}"
        + (f" from mark {d.mark!r}" if d.mark is not None else "")
        + f", processor {spec.batch.processor_name()} on task queue {queue!r}{nxt}"
    )


@series.command("list")
@connection_options
def list_(target: Target) -> None:
    """List the series with their schedule, mark and last run."""
    run(target, _list(target))


async def _list(target: Target) -> None:
    client = await target.connect()
    orchestra = BatchOrchestratorClient(client)
    names = await orchestra.list_series()
    console = _console()
    if not names:
        console.print(f"no series in namespace {target.namespace!r}", markup=False)
        return
    found = await asyncio.gather(
        *(orchestra.get_series(n).describe(rpc_timeout=timedelta(seconds=2)) for n in names),
        return_exceptions=True,
    )
    rows: list[list[str]] = []
    for name, d in zip(names, found, strict=True):
        if isinstance(d, BaseException):
            rows.append([name, "-", "?", "-", one_line(str(d))[:60], "-"])
            continue
        last = next((r for r in d.runs if r.kind != "skipped"), None)
        rows.append(
            [
                name,
                d.schedule,
                "paused" if d.paused else "active",
                "-" if d.mark is None else d.mark,
                f"{last.outcome} {series_time(last.started_at)}" if last else "-",
                series_time(d.next_runs[0]) if d.next_runs and not d.paused else "-",
            ]
        )
    console.print(render_series_list(rows, console.width))


@series.command()
@_name_argument
@click.option("--json", "as_json", is_flag=True, help="Print the description as one JSON object.")
@connection_options
def status(name: str, as_json: bool, target: Target) -> None:
    """Show a series: schedule, next runs, mark and lag, recent runs, the running batch."""
    run(target, _status(target, name, as_json))


async def _status(target: Target, name: str, as_json: bool) -> None:
    client = await target.connect()
    try:
        d = await _handle(client, name).describe()
    except UnknownSeriesError as err:
        raise CliError(str(err)) from None
    if as_json:
        click.echo(json.dumps(description_json(d)))
    else:
        console = _console()
        console.print(render_series(d, target, console.width))


@series.command()
@_name_argument
@click.option("--note", help="Why (kept on the schedule with who paused it).")
@connection_options
def pause(name: str, note: str | None, target: Target) -> None:
    """Pause a series: no tick starts a run (a running one finishes)."""
    run(target, _act(target, name, "paused", lambda h: h.pause(note)))


@series.command()
@_name_argument
@connection_options
def resume(name: str, target: Target) -> None:
    """Resume a paused series (its next run covers what arrived meanwhile)."""
    run(target, _act(target, name, "resumed", lambda h: h.resume()))


@series.command()
@_name_argument
@connection_options
def trigger(name: str, target: Target) -> None:
    """Start a run now, or as soon as the running one ends."""
    run(target, _act(target, name, "triggered", lambda h: h.trigger()))


@series.command()
@_name_argument
@click.option(
    "--from", "start", required=True, help="Where the window starts (exclusive mark, or a time)."
)
@click.option("--to", "end", required=True, help="Where it ends (inclusive mark, or a time).")
@connection_options
def backfill(name: str, start: str, end: str, target: Target) -> None:
    """Run a batch over an explicit window, apart from the schedule; the mark does not move."""
    run(target, _backfill(target, name, start, end))


async def _backfill(target: Target, name: str, start: str, end: str) -> None:
    client = await target.connect()
    try:
        batch = await _handle(client, name).backfill(start, end)
    except (UnknownSeriesError, InvalidBatchInputError) as err:
        raise CliError(str(err)) from None
    click.echo(f"series {name!r}: backfill started as batch {batch.id!r}")


@series.command("set-watermark")
@_name_argument
@click.argument("value")
@click.option("--reason", required=True, help="Why (logged with who asked).")
@connection_options
def set_watermark(name: str, value: str, reason: str, target: Target) -> None:
    """Set a series' committed mark to VALUE (forward, or back to process again)."""
    run(target, _set_watermark(target, name, value, reason))


async def _set_watermark(target: Target, name: str, value: str, reason: str) -> None:
    client = await target.connect()
    try:
        change = await _handle(client, name).set_watermark(value, reason)
    except (UnknownSeriesError, InvalidBatchInputError) as err:
        raise CliError(str(err)) from None
    click.echo(f"series {name!r}: mark {change.old!r} -> {change.new!r} (by {change.by})")


@series.command()
@_name_argument
@connection_options
def delete(name: str, target: Target) -> None:
    """Delete a series: its schedule and its state (batches it ran are kept)."""
    run(target, _act(target, name, "deleted", lambda h: h.delete()))
