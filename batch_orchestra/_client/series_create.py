"""``create_series``: check a series, create its schedule (paused) and its book, then start it.

Everything that can be checked is checked before anything lasting exists: the spec here, the
cron expression and time zone by Temporal (the schedule is created paused), the processor, its
``window_end``, its args and the notifier by a worker (the book's first step). A refusal
removes what was created and raises one line that names the bad value.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._exceptions import BatchOrchestraError, InvalidBatchInputError
from .._model import BatchWindow, check_window, input_to_wire
from .._model.codec import to_wire
from .._model.typed import check_args
from .._series.messages import (
    SERIES_READY_UPDATE,
    SERIES_RUN_WORKFLOW_TYPE,
    SERIES_WORKFLOW_TYPE,
    SeriesConfig,
    SeriesRunInput,
    iso,
    tick_workflow_id,
)
from .._series.types import SeriesSpec, TimeWindow, Watermark, check_series_name, validate_spec
from .._worker.processor import PageProcessor, get_page_processor
from .._worker.processor import is_registered as _is_registered
from .._worker.series_activities import window_end_missing
from .series import SeriesHandle, duration_text

__all__ = ["create_series"]

_OVERLAP = {"skip": ScheduleOverlapPolicy.SKIP, "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE}


def _cause(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return str(getattr(cause, "message", None) or cause or err)


def _check_processor(spec: SeriesSpec) -> None:
    """What can be checked in this process about the processor (when it is registered here)."""
    proc = spec.batch.page_processor
    if inspect.isclass(proc) and not (issubclass(proc, PageProcessor) and _is_registered(proc)):
        raise InvalidBatchInputError(
            f"page_processor {proc!r} is not a registered page processor; decorate it with "
            "@page_processor, or pass the registered name"
        )
    cls: Any = proc if inspect.isclass(proc) else None
    if cls is None:
        with contextlib.suppress(LookupError):
            cls = get_page_processor(spec.batch.processor_name())
    if cls is not None and isinstance(spec.window, Watermark):
        if not callable(getattr(cls, "window_end", None)):
            raise InvalidBatchInputError(window_end_missing(spec.batch.processor_name()))
    args_type = getattr(cls, "args_type", None)
    if args_type is not None and spec.batch.args is not None:
        check_args(args_type, spec.batch.args, spec.batch.processor_name())


def _schedule_spec(spec: SeriesSpec) -> tuple[ScheduleSpec, str]:
    tz = spec.time_zone
    if spec.every is not None:
        text = f"every {duration_text(spec.every)}"
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=spec.every)]), text
    assert spec.cron is not None
    text = f"cron {spec.cron} ({tz or 'UTC'})"
    return ScheduleSpec(cron_expressions=[spec.cron], time_zone_name=tz), text


def _config(spec: SeriesSpec, name: str, task_queue: str, by: str, text: str) -> SeriesConfig:
    w = spec.window
    now = datetime.now(timezone.utc)
    if isinstance(w, Watermark):
        kind, lag, initial = "watermark", w.lag, w.initial
    elif isinstance(w, TimeWindow):
        kind, lag = "time", w.lag
        # Whole seconds, like the ticks' nominal times.
        initial = iso(float(int((w.start or (now - w.lag)).timestamp())))
    else:
        kind, lag, initial = "none", None, None
    return SeriesConfig(
        name=name,
        task_queue=task_queue,
        batch=input_to_wire(spec.batch),
        window=kind,
        lag=lag.total_seconds() if lag else 0.0,
        on_failure=spec.on_failure,
        overlap=spec.overlap,
        schedule=text,
        created_at=now.timestamp(),
        created_by=by,
        initial_mark=initial,
    )


async def create_series(
    client: Client,
    spec: SeriesSpec,
    *,
    id: str,
    task_queue: str,
    confirm_timeout: timedelta | None = timedelta(seconds=30),
) -> SeriesHandle:
    """Create a series: check it, create its schedule and its state workflow, then start it.

    See ``BatchOrchestratorClient.create_series``.
    """
    check_series_name(id)
    validate_spec(spec)
    if not isinstance(task_queue, str) or not task_queue:
        raise InvalidBatchInputError(f"task_queue must be a non-empty str, got {task_queue!r}")
    _check_processor(spec)
    if spec.window is not None and isinstance(spec.window, TimeWindow) and spec.window.start:
        check_window(BatchWindow(kind="time", high=iso(spec.window.start.timestamp())))
    await _check_free(client, id)
    sched_spec, text = _schedule_spec(spec)
    config = _config(spec, id, task_queue, client.identity, text)
    kind = config.window
    try:
        schedule = await client.create_schedule(
            id,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    SERIES_RUN_WORKFLOW_TYPE,
                    SeriesRunInput(series=id, window=kind),
                    id=tick_workflow_id(id),
                    task_queue=task_queue,
                ),
                spec=sched_spec,
                policy=SchedulePolicy(
                    overlap=_OVERLAP[spec.overlap], catchup_window=spec.catchup_window
                ),
                state=ScheduleState(paused=True, note="being created"),
            ),
        )
    except ScheduleAlreadyRunningError:
        raise _exists(client, id) from None
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            what = f"cron {spec.cron!r}" if spec.cron is not None else f"every={spec.every!r}"
            if spec.time_zone:
                what += f", time_zone {spec.time_zone!r}"
            raise InvalidBatchInputError(
                f"Temporal refused the schedule ({what}): {err.message}; fix the schedule"
            ) from None
        raise
    try:
        await _start_book(client, config, confirm_timeout)
    except BaseException:
        with contextlib.suppress(RPCError):
            await schedule.delete()
        raise
    await schedule.unpause(note=f"created by {client.identity}")
    return SeriesHandle(client, id)


def _exists(client: Client, name: str) -> InvalidBatchInputError:
    return InvalidBatchInputError(
        f"a series named {name!r} exists already in namespace {client.namespace!r}; pick "
        f"another name, or delete it first (batch-orchestra series delete {name})"
    )


async def _check_free(client: Client, name: str) -> None:
    try:
        await client.get_schedule_handle(name).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        raise _exists(client, name)
    try:
        desc = await client.get_workflow_handle(name).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return
    if desc.status == WorkflowExecutionStatus.RUNNING:
        if desc.workflow_type == SERIES_WORKFLOW_TYPE:
            raise _exists(client, name)
        raise InvalidBatchInputError(
            f"a {desc.workflow_type} workflow with ID {name!r} is running; a series' name is "
            "also its workflow's ID: pick another name"
        )


async def _start_book(client: Client, config: SeriesConfig, confirm: timedelta | None) -> None:
    """Start the series' workflow; with ``confirm``, wait for a worker to check the series."""
    try:
        handle = await client.start_workflow(
            SERIES_WORKFLOW_TYPE,
            {"config": to_wire(config)},
            id=config.name,
            task_queue=config.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        raise _exists(client, config.name) from None
    if confirm is None:
        return
    try:
        await asyncio.wait_for(handle.execute_update(SERIES_READY_UPDATE), confirm.total_seconds())
        return
    except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        with contextlib.suppress(RPCError):
            await handle.terminate("no worker checked the series in time")
        raise BatchOrchestraError(
            f"no worker on task queue {config.task_queue!r} checked series {config.name!r} "
            f"within {confirm.total_seconds():g}s, so it was not created; start a worker "
            f"(batch-orchestra worker MODULE -q {config.task_queue}) and create it again"
        ) from None
    except WorkflowUpdateFailedError as err:
        message = _cause(err)
    except RPCError:  # the check failed before the update arrived: the workflow has ended
        try:
            await handle.result()
            message = "the series' workflow ended at once"
        except WorkflowFailureError as err:
            message = str(getattr(err.cause, "message", None) or err.cause or err)
    raise InvalidBatchInputError(f"series {config.name!r} was not created: {message}")
