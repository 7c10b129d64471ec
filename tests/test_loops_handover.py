"""A background call still in flight when the run hands over must not fail the workflow task.

A health check (or an item check) cancelled by the hand-over reached its loop as the activity's
failure; the loop went on and started a timer after continue-as-new, which Temporal refuses
("ContinueAsNewWorkflowExecution must be the last command"): the worker could not complete the
task, which timed out (10 s) and was retried until a retry happened to order it otherwise.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    Health,
    HealthCheckConfig,
    HealthCheckContext,
    health_check,
)

CALLS: dict[str, int] = {}


@health_check
async def slow_health(context: HealthCheckContext) -> Health:
    """Always in flight: each call takes far longer than the batch's pages."""
    CALLS[context.batch_id] = CALLS.get(context.batch_id, 0) + 1
    await asyncio.sleep(2)
    return Health.healthy()


async def _failed_tasks(handle: Any) -> list[str]:
    """The failed workflow tasks of every run of the batch, with their messages."""
    client = handle.workflow_handle._client
    run_id, failed = handle.workflow_handle.first_execution_run_id, []
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        run_id = None
        for e in history.events:
            if e.HasField("workflow_task_failed_event_attributes"):
                failed.append(e.workflow_task_failed_event_attributes.failure.message[:200])
            if e.HasField("workflow_task_timed_out_event_attributes"):
                failed.append("timed out")  # the worker could not complete it (see above)
            if e.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return failed


async def test_a_health_check_in_flight_at_a_hand_over_fails_no_workflow_task(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    bid = f"health-handover-{uuid.uuid4().hex[:8]}"
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps({"n": 300, "sleep": 0.3}),
        pages_per_run=5,
        handover_wait=timedelta(seconds=2),
        health_check=HealthCheckConfig(name="slow_health", interval=timedelta(milliseconds=100)),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 180)
    assert result.num_completed_pages == 30 and result.num_runs >= 5
    assert CALLS[bid] >= 5
    assert await _failed_tasks(handle) == []
