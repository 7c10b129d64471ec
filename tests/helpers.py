"""Test helpers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def assert_eventually(
    fn: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll ``fn`` until it stops raising AssertionError; re-raise the last one on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


def batch_id() -> str:
    return f"batch-{uuid.uuid4()}"


async def enqueue_signals_from(handle: Any, parent_page_num: int) -> int:
    """How many enqueue updates (or signals) page ``parent_page_num`` sent, counted in every
    run's history."""
    return (await enqueue_counts(handle, parent_page_num))[0]


async def enqueue_counts(handle: Any, parent_page_num: int | None = None) -> tuple[int, int]:
    """(enqueue messages, results carrying successors) from page ``parent_page_num`` (from
    every page when None), counted in every run's history."""
    client = handle.workflow_handle._client
    messages = carried = 0
    run_id = handle.workflow_handle.first_execution_run_id or handle.workflow_handle.run_id

    def counts(page_num: int) -> bool:
        return parent_page_num is None or page_num == parent_page_num

    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        run_id = None
        scheduled: dict[int, int] = {}
        for event in history.events:
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == "batch_orchestra.enqueue_pages":
                body = json.loads(attrs.input.payloads[0].data)
                messages += counts(body["parent_page_num"])
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if update.input.name == "batch_orchestra.enqueue":
                body = json.loads(update.input.args.payloads[0].data)
                messages += counts(body["parent_page_num"])
            if update.input.name == "batch_orchestra.enqueue_many":
                for body in json.loads(update.input.args.payloads[0].data):
                    messages += counts(body["parent_page_num"])
            if event.HasField("activity_task_scheduled_event_attributes"):
                sched = event.activity_task_scheduled_event_attributes
                if sched.activity_type.name == "batch_orchestra.process_page":
                    body = json.loads(sched.input.payloads[0].data)
                    scheduled[event.event_id] = body["page_num"]
            if event.HasField("activity_task_completed_event_attributes"):
                done = event.activity_task_completed_event_attributes
                page_num = scheduled.get(done.scheduled_event_id)
                if page_num is not None and done.result.payloads:
                    body = json.loads(done.result.payloads[0].data)
                    carried += bool(body.get("successors")) and counts(page_num)
            if event.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = (
                    event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                )
    return messages, carried


async def enqueue_update_events(client: Any, workflow_id: str) -> int:
    """How many enqueue updates (each carrying one or more pages' enqueues) the batch's first
    run accepted."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    names = ("batch_orchestra.enqueue", "batch_orchestra.enqueue_many")
    return sum(
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name in names
        for e in history.events
    )


async def enqueue_signals_only(client: Any, workflow_id: str) -> int:
    """How many enqueues of the batch's first run came by signal."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        e.workflow_execution_signaled_event_attributes.signal_name
        == "batch_orchestra.enqueue_pages"
        for e in history.events
    )


async def run_histories(client: Any, workflow_id: str) -> list[Any]:
    """The history of every run of a batch, first to last (following continue-as-new)."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    run_id = desc.raw_description.workflow_execution_info.first_run_id or None
    histories = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = None
        for event in history.events:
            if event.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = (
                    event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                )
    return histories


def continue_as_new_payloads(histories: list[Any]) -> list[Any]:
    """The input payloads of every hand-over (continue-as-new) in ``histories``."""
    return [
        e.workflow_execution_continued_as_new_event_attributes.input.payloads
        for h in histories
        for e in h.events
        if e.HasField("workflow_execution_continued_as_new_event_attributes")
    ]


class ManualClock:
    """A clock that moves only when a test advances it (for code that times itself)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
