"""Reading a batch back from its workflow histories: runs, events, continue-as-new inputs,
and every activity's scheduled/started/closed times.

Utilisation is reconstructed from history rather than sampled by query: a page occupies one
of the ``max_parallelism`` slots from its ``ActivityTaskScheduled`` event (the workflow task
that started it completed) to its ``ActivityTaskCompleted``/``Failed``/``TimedOut`` event,
which is exactly what ``num_processing_pages`` counts. Event times are server timestamps, so
the measurement adds no load to the batch and misses nothing between samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


def _ts(ev: HistoryEvent) -> float:
    return ev.event_time.seconds + ev.event_time.nanos / 1e9


@dataclass
class Slot:
    """One activity attempt: when it was scheduled, started (if known) and closed."""

    run: int
    scheduled: float
    started: float | None = None
    closed: float | None = None
    ok: bool = False


@dataclass
class Run:
    """One run of the workflow chain."""

    index: int
    run_id: str
    events: int
    history_bytes: int
    started: float
    ended: float
    continue_as_new_input_bytes: int | None
    """Size of the payloads handed to the next run (None for the last run)."""
    first_task_backoff_s: float = 0.0
    """Delay the server put on this run's first workflow task. Temporal delays the first task
    of a run continued from one that lived under ``ContinueAsNewMinInterval`` (1 s)."""
    activities: int = 0
    signals: int = 0
    """WorkflowExecutionSignaled events."""
    updates: int = 0
    """WorkflowExecutionUpdateAccepted events."""
    first_scheduled: float | None = None
    last_scheduled: float | None = None
    activity_attempts: int = 0
    """Attempts of every activity of the run (a retried activity's started event names its
    last attempt), whatever its type."""
    timers: int = 0
    local_activities: int = 0
    """MarkerRecorded events (a local activity records one)."""
    children: int = 0
    signals_sent: int = 0
    """Signals this run sent to other workflows."""

    @property
    def actions(self) -> int:
        """Temporal Cloud's billable actions in this run's history: its start (a continue-as-new
        is a start), activity attempts, timers, signals received and sent, updates, child
        starts and local activities. Heartbeats leave no event: count them apart."""
        return (
            1
            + self.activity_attempts
            + self.timers
            + self.signals
            + self.signals_sent
            + self.updates
            + self.children
            + self.local_activities
        )


@dataclass
class BatchHistory:
    runs: list[Run] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)


async def read_batch_history(
    client: Client, workflow_id: str, first_run_id: str, activity_type: str
) -> BatchHistory:
    """Follow the chain of runs from ``first_run_id``; collect runs and ``activity_type`` slots."""
    out = BatchHistory()
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        index = len(out.runs)
        by_sched: dict[int, Slot] = {}
        next_run: str | None = None
        can_bytes: int | None = None
        run = Run(
            index=index,
            run_id=run_id,
            events=len(events),
            history_bytes=sum(ev.ByteSize() for ev in events),
            started=_ts(events[0]),
            ended=_ts(events[-1]),
            continue_as_new_input_bytes=None,
        )
        backoff = events[0].workflow_execution_started_event_attributes.first_workflow_task_backoff
        run.first_task_backoff_s = backoff.seconds + backoff.nanos / 1e9
        for ev in events:
            et = ev.event_type
            if et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                sched = ev.activity_task_scheduled_event_attributes
                if sched.activity_type.name != activity_type:
                    continue
                slot = Slot(run=index, scheduled=_ts(ev))
                by_sched[ev.event_id] = slot
                out.slots.append(slot)
                run.activities += 1
                if run.first_scheduled is None:
                    run.first_scheduled = slot.scheduled
                run.last_scheduled = slot.scheduled
            elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = ev.activity_task_started_event_attributes
                run.activity_attempts += max(1, started.attempt)
                s = by_sched.get(started.scheduled_event_id)
                if s is not None:
                    s.started = _ts(ev)
            elif et == EventType.EVENT_TYPE_TIMER_STARTED:
                run.timers += 1
            elif et == EventType.EVENT_TYPE_MARKER_RECORDED:
                run.local_activities += 1
            elif et == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                run.children += 1
            elif et == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
                run.signals_sent += 1
            elif et in _CLOSED:
                closed = getattr(ev, _CLOSED[et])
                s = by_sched.get(closed.scheduled_event_id)
                if s is not None:
                    s.closed = _ts(ev)
                    s.ok = et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                run.signals += 1
            elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                run.updates += 1
            elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                can = ev.workflow_execution_continued_as_new_event_attributes
                next_run = can.new_execution_run_id
                can_bytes = sum(p.ByteSize() for p in can.input.payloads)
        run.continue_as_new_input_bytes = can_bytes
        out.runs.append(run)
        run_id = next_run
    return out
