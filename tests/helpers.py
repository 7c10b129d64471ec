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
    client = handle.workflow_handle._client
    count = 0
    run_id = handle.workflow_handle.first_execution_run_id or handle.workflow_handle.run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        run_id = None
        for event in history.events:
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == "batch_orchestra.enqueue_pages":
                body = json.loads(attrs.input.payloads[0].data)
                count += body["parent_page_num"] == parent_page_num
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if update.input.name == "batch_orchestra.enqueue":
                body = json.loads(update.input.args.payloads[0].data)
                count += body["parent_page_num"] == parent_page_num
            if event.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return count


async def enqueue_signals_only(client: Any, workflow_id: str) -> int:
    """How many enqueues of the batch's first run came by signal."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        e.workflow_execution_signaled_event_attributes.signal_name == "batch_orchestra.enqueue_pages"
        for e in history.events
    )
