"""How the CLI and the dashboard find batches on a Temporal server and read their state.

Every lookup that can fail in an expected way (no server, no such batch, no worker answering)
raises ``CliError`` with one line that says what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from .._client import BatchOrchestratorClient
from .._model import BatchFailures, BatchOrchestratorProgress
from .._model.messages import BATCH_WORKFLOW_TYPE
from .._workflow import BatchOrchestrator
from .target import CliError, Target
from .view import BatchView

__all__ = [
    "QUERY_TIMEOUT",
    "batches_query",
    "cause_text",
    "find_batch",
    "list_batch_page",
    "list_batches",
    "load_failures",
    "load_view",
    "query_progress",
    "wait_closed",
    "wait_picked_up",
]

QUERY_TIMEOUT = timedelta(seconds=5)
"""How long a worker gets to answer a progress query."""

_OPEN = (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)


def cause_text(cause: BaseException | None) -> str:
    """The message of a Temporal failure, without its Python wrapping."""
    if cause is None:
        return "no reason given"
    if isinstance(cause, FailureError):
        return cause.message or type(cause).__name__
    return str(cause) or type(cause).__name__


async def find_batch(client: Client, target: Target, batch_id: str) -> WorkflowExecutionDescription:
    """The latest run of a batch, or ``CliError`` if there is no such batch."""
    try:
        desc = await client.get_workflow_handle(batch_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and "namespace" not in err.message.lower():
            raise CliError(
                f"no batch with ID {batch_id!r} in namespace {target.namespace!r}"
            ) from None
        raise target.rpc_error(err) from None
    if desc.workflow_type == "BatchSeries":
        raise CliError(
            f"{batch_id!r} is a series, not a batch; see batch-orchestra series status {batch_id}"
        )
    if desc.workflow_type != BATCH_WORKFLOW_TYPE:
        raise CliError(
            f"{batch_id!r} is a {desc.workflow_type} workflow, not a batch ({BATCH_WORKFLOW_TYPE})"
        )
    return desc


def _handle(client: Client, batch_id: str, run_id: str | None) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(
        batch_id, run_id=run_id, result_type=BatchOrchestratorProgress
    )


async def query_progress(
    client: Client, batch_id: str, run_id: str | None = None, timeout: timedelta = QUERY_TIMEOUT
) -> BatchOrchestratorProgress | None:
    """The batch's progress from a worker, or None when no worker answers in time."""
    try:
        progress: BatchOrchestratorProgress = await _handle(client, batch_id, run_id).query(
            BatchOrchestrator.progress, rpc_timeout=timeout
        )
        return progress
    except (RPCError, WorkflowQueryFailedError):
        return None


async def _failure(handle: WorkflowHandle[Any, Any]) -> str:
    try:
        await handle.result(follow_runs=False)
    except WorkflowFailureError as err:
        return cause_text(err.cause)
    except Exception as err:  # e.g. the result cannot be read: still say something
        return cause_text(err)
    return "no reason given"


async def load_view(
    client: Client,
    target: Target,
    batch_id: str,
    *,
    desc: WorkflowExecutionDescription | None = None,
) -> BatchView:
    """Everything about a batch now.

    A completed batch's progress comes from its result (no worker needed); otherwise a worker
    answers the progress query.
    """
    if desc is None:
        desc = await find_batch(client, target, batch_id)
    return await _view(client, target, desc)


async def _view(
    client: Client,
    target: Target,
    execution: WorkflowExecution,
    query_timeout: timedelta = QUERY_TIMEOUT,
) -> BatchView:
    status = execution.status.name if execution.status else "UNKNOWN"
    view = BatchView(
        id=execution.id,
        status=status,
        task_queue=execution.task_queue,
        url=target.url(execution.id),
        close_time=execution.close_time,
        workflows_url=target.url(""),
    )
    handle = _handle(client, execution.id, execution.run_id)
    if execution.status == WorkflowExecutionStatus.COMPLETED:
        try:
            view.progress = await handle.result(follow_runs=False)
            return view
        except Exception:  # an unreadable result: fall back to asking a worker
            pass
    elif execution.status not in _OPEN:
        view.failure = await _failure(handle)
    timeout = (
        query_timeout if execution.status in _OPEN else min(query_timeout, timedelta(seconds=2))
    )
    view.progress = await query_progress(client, execution.id, execution.run_id, timeout)
    if view.progress is None:
        if execution.status in _OPEN:
            view.note = (
                f"no worker answered the progress query of batch {execution.id!r} within "
                f"{timeout.total_seconds():g}s; is a worker running on task queue "
                f"{execution.task_queue!r}? (batch-orchestra worker MODULE --task-queue "
                f"{execution.task_queue})"
            )
        else:
            view.note = "progress unavailable: no worker answered the progress query"
    return view


async def load_failures(
    client: Client, target: Target, batch_id: str, *, everything: bool = False
) -> tuple[BatchView, BatchFailures | None]:
    """A batch's view and its failures with whole cursors (None when no worker answers).

    ``everything``: every failure, not only the most recent 100 of each kind (failed pages and
    items are read from the batch's failure ledger in its history).
    """
    view = await load_view(client, target, batch_id)
    if view.progress is None:
        return view, None
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    try:
        return view, await handle.failures(all=everything, rpc_timeout=QUERY_TIMEOUT * 2)
    except (RPCError, WorkflowQueryFailedError) as err:
        view.note = f"could not read the batch's failures: {cause_text(err)}"
        return view, None


def batches_query(status: str | None = None) -> str:
    """The visibility query for batches (latest run of each), optionally of one workflow status.

    The status is spelled as Temporal spells it in queries (``Running``, ``Completed``, ``Failed``,
    ...).
    """
    query = f'WorkflowType="{BATCH_WORKFLOW_TYPE}" AND '
    if status is None:
        return query + 'ExecutionStatus!="ContinuedAsNew"'
    return query + f'ExecutionStatus="{status}"'


async def _list_row(
    client: Client,
    target: Target,
    e: WorkflowExecution,
    query_timeout: timedelta = timedelta(seconds=2),
) -> tuple[BatchView, datetime | None]:
    view = await _view(client, target, e, query_timeout)
    if view.note and e.status in _OPEN:
        view.note = "no worker answered"
    started = view.progress.start_time if view.progress else None
    return view, started or e.start_time


async def list_batches(
    client: Client, target: Target, *, limit: int, running_only: bool
) -> list[tuple[BatchView, datetime | None]]:
    """The most recent batches (latest run of each) with their progress, and their start time."""
    query = batches_query("Running" if running_only else None)
    executions = [e async for e in client.list_workflows(query, limit=limit)]
    return list(await asyncio.gather(*(_list_row(client, target, e) for e in executions)))


async def list_batch_page(
    client: Client,
    target: Target,
    *,
    query: str,
    page_size: int,
    next_page_token: bytes | None = None,
    query_timeout: timedelta = timedelta(seconds=2),
    closed: MutableMapping[str, tuple[BatchView, datetime | None]] | None = None,
) -> tuple[list[tuple[WorkflowExecution, BatchView, datetime | None]], bytes | None]:
    """One page of batches matching a visibility ``query``, and the token of the next page.

    See ``batches_query``. The batches come most recent first, with their progress and start time;
    the token is None at the end. ``closed``, when given, keeps the rows of closed runs whose
    progress was read, by run ID: a closed run never changes, so it is read once.
    """
    it = client.list_workflows(query, page_size=page_size, next_page_token=next_page_token)
    await it.fetch_next_page()
    executions = list(it.current_page or [])

    async def row(e: WorkflowExecution) -> tuple[BatchView, datetime | None]:
        key = e.run_id or ""
        if closed is not None and key in closed:
            return closed[key]
        found = await _list_row(client, target, e, query_timeout)
        if closed is not None and e.status not in _OPEN and found[0].progress is not None:
            closed[key] = found
        return found

    rows = await asyncio.gather(*(row(e) for e in executions))
    found = [(e, view, started) for e, (view, started) in zip(executions, rows, strict=True)]
    return found, it.next_page_token


async def wait_picked_up(
    client: Client, target: Target, batch_id: str, timeout: float
) -> BatchOrchestratorProgress | None:
    """Wait until a worker has begun the batch and return its progress; None on timeout.

    The batch has begun once its first page is known. ``CliError`` if the batch fails first (an
    unknown processor, say).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        desc = await find_batch(client, target, batch_id)
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            return (await load_view(client, target, batch_id, desc=desc)).progress
        if desc.status not in _OPEN:
            reason = await _failure(_handle(client, batch_id, desc.run_id))
            status = desc.status.name.lower() if desc.status else "ended"
            raise CliError(f"batch {batch_id!r} {status}: {reason}")
        # Past its first workflow task, a worker has looked the processor up.
        if desc.history_length > 3:
            left = max(0.5, deadline - loop.time())
            p = await query_progress(client, batch_id, timeout=timedelta(seconds=min(5.0, left)))
            if p is not None and (
                p.is_finished
                or p.num_pending_pages
                or p.num_processing_pages
                or p.num_completed_pages
                or p.num_failed_pages
                or p.num_stuck_pages
            ):
                return p
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.2)


async def wait_closed(client: Client, target: Target, batch_id: str, timeout: float) -> BatchView:
    """Poll until the batch's workflow closes or ``timeout`` passes; its view then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        desc = await find_batch(client, target, batch_id)
        if desc.status not in _OPEN or loop.time() >= deadline:
            return await load_view(client, target, batch_id, desc=desc)
        await asyncio.sleep(0.2)
