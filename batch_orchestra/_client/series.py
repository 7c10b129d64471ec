"""Creating, describing and steering series from a client: ``create_series`` and ``SeriesHandle``.

``BatchOrchestratorClient.create_series`` / ``get_series`` / ``list_series`` are the public entry
points; this module holds their work.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import (
    Client,
    ScheduleListActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._exceptions import BatchOrchestraError, InvalidBatchInputError, UnknownSeriesError
from .._model import BatchOrchestratorProgress, BatchWindow
from .._model.messages import BATCH_WORKFLOW_TYPE
from .._series.messages import (
    SERIES_BACKFILL_UPDATE,
    SERIES_CLOSE_UPDATE,
    SERIES_DESCRIBE_QUERY,
    SERIES_RUN_WORKFLOW_TYPE,
    SERIES_SET_MARK_UPDATE,
    SERIES_WORKFLOW_TYPE,
    BackfillRequest,
    ClaimReply,
    SeriesRunInput,
    SeriesStateView,
    SetMarkRequest,
    iso,
)
from .._series.state import MarkRecord, RunRecord
from .._series.types import MarkChange, SeriesDescription, SeriesRun, check_mark
from .handle import BatchOrchestratorHandle

__all__ = ["SeriesHandle", "description_json", "duration_text", "list_series"]

_OVERLAP = {"skip": ScheduleOverlapPolicy.SKIP, "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE}
_QUERY_TIMEOUT = timedelta(seconds=5)
_CLOSE_TIMEOUT = timedelta(seconds=10)
_SAME_SECOND = timedelta(seconds=1.05)


def duration_text(d: timedelta) -> str:
    """``1h``, ``30m``, ``1h30m``, ``2s``, ``1d`` for a duration."""
    seconds = int(d.total_seconds())
    if seconds <= 0:
        return f"{d.total_seconds():g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


class SeriesHandle:
    """A series: describe it, pause, resume, trigger, backfill, set its mark, delete it."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The series' name (its schedule ID and its state workflow's ID)."""
        return self._name

    @property
    def _by(self) -> str:
        return self._client.identity

    async def _schedule(self) -> Any:
        try:
            return await self._client.get_schedule_handle(self._name).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise UnknownSeriesError(
                    f"no series named {self._name!r} in namespace {self._client.namespace!r}"
                ) from None
            raise

    async def state(self, *, rpc_timeout: timedelta = _QUERY_TIMEOUT) -> SeriesStateView:
        """The series' book (mark, runs, logs) as its workflow holds it (a worker answers)."""
        view: SeriesStateView = await self._client.get_workflow_handle(self._name).query(
            SERIES_DESCRIBE_QUERY, result_type=SeriesStateView, rpc_timeout=rpc_timeout
        )
        return view

    async def describe(self, *, rpc_timeout: timedelta = _QUERY_TIMEOUT) -> SeriesDescription:
        """The series now: schedule, paused or not, next ticks, mark, recent runs and counts.

        Raises:
            UnknownSeriesError: there is no such series.
        """
        sched = await self._schedule()
        note: str | None = None
        view: SeriesStateView | None = None
        try:
            view = await self.state(rpc_timeout=rpc_timeout)
        except (RPCError, asyncio.TimeoutError) as err:
            note = f"no worker answered for the series' state ({err})"
        info, state = sched.info, sched.schedule.state
        action = sched.schedule.action
        queue = getattr(action, "task_queue", "") or ""
        d = SeriesDescription(
            name=self._name,
            task_queue=queue,
            processor="?",
            schedule="?",
            window="?",
            overlap=_overlap_name(sched.schedule.policy.overlap),
            on_failure="?",
            paused=state.paused,
            note=state.note,
            next_runs=list(info.next_action_times[:5]),
            num_skipped=info.num_actions_skipped_overlap,
            num_missed=info.num_actions_missed_catchup_window,
            note_from_worker=note,
        )
        if view is not None:
            _fill(d, view)
        return d

    async def pause(self, note: str | None = None) -> None:
        """Pause the schedule: no tick starts a run (a running one goes on) until ``resume``."""
        await self._schedule()
        text = f"{note or 'paused'} (by {self._by})"
        await self._client.get_schedule_handle(self._name).pause(note=text)

    async def resume(self, note: str | None = None) -> None:
        """Resume the schedule (ticks missed while paused are not run: the next run covers them)."""
        await self._schedule()
        text = f"{note or 'resumed'} (by {self._by})"
        await self._client.get_schedule_handle(self._name).unpause(note=text)

    async def trigger(self) -> None:
        """Start a run now, or as soon as the running one ends (never two at once).

        A run's workflow ID ends with its nominal time to the second, and Temporal makes one run
        of one second's starts: a trigger in the second of the latest run waits for the next.
        """
        desc = await self._schedule()
        last = max((a.scheduled_at for a in desc.info.recent_actions), default=None)
        if last is not None:
            wait = (last + _SAME_SECOND - datetime.now(timezone.utc)).total_seconds()
            if 0 < wait <= _SAME_SECOND.total_seconds():
                await asyncio.sleep(wait)
        await self._client.get_schedule_handle(self._name).trigger(
            overlap=ScheduleOverlapPolicy.BUFFER_ONE
        )

    async def backfill(
        self, start: str | datetime | None, end: str | datetime
    ) -> BatchOrchestratorHandle:
        """Run a batch over an explicit window, apart from the schedule; the mark never moves.

        For a watermark series the window is ``(start, end]`` (marks as text; ``start`` None:
        from the beginning); for a time series ``[start, end)`` (timezone-aware datetimes or
        ISO 8601 text). The backfill's batch gets its own ID
        (``<series>/backfill-<time>``) and shows in ``describe().runs``.

        Raises:
            InvalidBatchInputError: the window cannot work for this series.
        """
        low, high = _bound(start), _bound(end)
        if high is None:
            raise InvalidBatchInputError("backfill needs an end (--to)")
        await self._schedule()
        handle = self._client.get_workflow_handle(self._name)
        try:
            claim: ClaimReply = await handle.execute_update(
                SERIES_BACKFILL_UPDATE,
                BackfillRequest(low=low, high=high, by=self._by),
                result_type=ClaimReply,
            )
        except WorkflowUpdateFailedError as err:
            raise InvalidBatchInputError(_cause(err)) from None
        assert claim.batch_id is not None and claim.batch_input is not None
        # The batch first, so the handle is good at once; the run then finds it and waits for
        # it, and records its outcome in the series' run log.
        queue = (await handle.describe()).task_queue
        # Derived IDs: a taken one fails (naming it) rather than attaching to another batch.
        reuse, conflict = WorkflowIDReusePolicy.REJECT_DUPLICATE, WorkflowIDConflictPolicy.FAIL
        try:
            batch = await self._client.start_workflow(
                BATCH_WORKFLOW_TYPE,
                claim.batch_input,
                id=claim.batch_id,
                task_queue=queue,
                result_type=BatchOrchestratorProgress,
                id_reuse_policy=reuse,
                id_conflict_policy=conflict,
            )
            await self._client.start_workflow(
                SERIES_RUN_WORKFLOW_TYPE,
                SeriesRunInput(series=self._name, claim=claim),
                id=claim.run_id,
                task_queue=queue,
                id_reuse_policy=reuse,
                id_conflict_policy=conflict,
            )
        except WorkflowAlreadyStartedError as err:
            raise BatchOrchestraError(
                f"the backfill's workflow ID {err.workflow_id!r} is taken; ask again"
            ) from None
        return BatchOrchestratorHandle(batch, self._client)

    async def set_watermark(self, value: str | datetime | None, reason: str) -> MarkChange:
        """Set the committed mark (forward, or back to process again), logged with who and why.

        A run in progress whose window started at the old mark does not commit (it is stale);
        the next run starts from the new mark.

        Raises:
            InvalidBatchInputError: no reason, or a value the series cannot take.
        """
        mark = _bound(value)
        check_mark(mark, "the new mark")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidBatchInputError(
                "set_watermark needs a reason (it is logged with who asked)"
            )
        await self._schedule()
        try:
            view: SeriesStateView = await self._client.get_workflow_handle(
                self._name
            ).execute_update(
                SERIES_SET_MARK_UPDATE,
                SetMarkRequest(value=mark, reason=reason, by=self._by),
                result_type=SeriesStateView,
            )
        except WorkflowUpdateFailedError as err:
            raise InvalidBatchInputError(_cause(err)) from None
        return _mark_change(view.book.marks[-1])

    async def delete(self) -> None:
        """Delete the schedule and end the series' workflow (its batches are left as they are).

        The workflow ends with its book as its result; with no worker to answer within 10 s it
        is terminated instead.

        Raises:
            UnknownSeriesError: there is no such series.
        """
        found = False
        try:
            await self._client.get_schedule_handle(self._name).delete()
            found = True
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        handle = self._client.get_workflow_handle(self._name)
        try:
            desc = await handle.describe()
            if desc.workflow_type == SERIES_WORKFLOW_TYPE and desc.status in (
                WorkflowExecutionStatus.RUNNING,
            ):
                found = True
                try:
                    await asyncio.wait_for(
                        handle.execute_update(SERIES_CLOSE_UPDATE, self._by),
                        _CLOSE_TIMEOUT.total_seconds(),
                    )
                except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
                    # No worker to end it cleanly: the book stays readable in its history.
                    await handle.terminate(f"series deleted by {self._by} (no worker answered)")
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        if not found:
            raise UnknownSeriesError(
                f"no series named {self._name!r} in namespace {self._client.namespace!r}"
            )


def _cause(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return str(getattr(cause, "message", None) or cause or err)


def _bound(value: str | datetime | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidBatchInputError(
                f"{value!r} has no time zone; give a timezone-aware datetime (e.g. tzinfo=UTC)"
            )
        return iso(value.timestamp())
    return value


def _overlap_name(policy: ScheduleOverlapPolicy) -> str:
    return {v: k for k, v in _OVERLAP.items()}.get(policy, policy.name.lower())


def _window(view: SeriesStateView, r: RunRecord) -> BatchWindow | None:
    kind = view.config.window
    if kind == "none" or r.high is None:
        return None
    return BatchWindow(
        kind=kind,
        low=r.low,
        high=r.high,
        series=view.config.name,
        run=r.run_id,
        backfill=r.kind == "backfill",
    )


def _mark_change(m: MarkRecord) -> MarkChange:
    return MarkChange(at=_ts(m.at) or datetime.now(timezone.utc), **_fields(m, "old new by reason"))


def _fields(obj: Any, names: str) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names.split()}


def _fill(d: SeriesDescription, view: SeriesStateView) -> None:
    config, book = view.config, view.book
    d.processor = str(config.batch.get("page_processor"))
    d.schedule, d.window, d.on_failure = config.schedule, config.window, config.on_failure
    d.task_queue = d.task_queue or config.task_queue
    d.mark, d.mark_moved_at = book.mark, _ts(book.mark_at)
    d.behind = _behind(book.mark, config.window, view.now)
    d.runs = [
        SeriesRun(
            run_id=r.run_id,
            kind=r.kind,
            outcome=r.outcome,
            nominal_time=_ts(r.nominal),
            window=_window(view, r),
            batch_id=r.batch_id,
            reason=r.reason,
            num_completed_pages=r.pages,
            num_failed_pages=r.failed_pages,
            num_completed_items=r.items,
            num_failed_items=r.failed_items,
            started_at=_ts(r.started),
            ended_at=_ts(r.ended),
        )
        for r in reversed(book.runs)
    ]
    d.mark_changes = [_mark_change(m) for m in reversed(book.marks)]
    c = book.counts
    d.num_runs, d.num_committed = c.get("runs", 0), c.get("committed", 0)
    d.num_held, d.num_empty = c.get("held", 0), c.get("empty", 0)
    d.num_backfills = c.get("backfills", 0)


def _behind(mark: str | None, kind: str, now: float) -> timedelta | None:
    """How far a mark that is a time is behind ``now``."""
    if mark is None or kind == "none" or (kind != "time" and "-" not in mark):
        return None
    try:
        at = datetime.fromisoformat(mark.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return max(timedelta(0), datetime.fromtimestamp(now, timezone.utc) - at)


async def list_series(client: Client) -> list[str]:
    """The names of the series in the client's namespace (their schedules), sorted."""
    names = []
    async for s in await client.list_schedules():
        action = s.schedule.action if s.schedule is not None else None
        if (
            isinstance(action, ScheduleListActionStartWorkflow)
            and action.workflow == SERIES_RUN_WORKFLOW_TYPE
        ):
            names.append(s.id)
    return sorted(names)


def description_json(d: SeriesDescription) -> dict[str, Any]:
    """A description as a JSON-friendly dict (datetimes in ISO 8601, durations in seconds)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, timedelta):
            return value.total_seconds()
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    data = plain(dataclasses.asdict(d))
    data["running"] = [r for r in data["runs"] if r["outcome"] == "running"]
    return dict(data)
