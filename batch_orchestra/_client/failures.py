"""Reading a batch's failures with whole cursors and keys (``handle.failures()``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from .._ledger_history import collect_failures
from .._model import BatchFailures, BatchOrchestratorProgress, ItemFailure, PageFailure
from .._model.messages import FAILURE_DETAILS_QUERY, FailureDetails, FailureDetailsRequest

__all__ = ["all_whole", "read_failures"]


async def read_failures(
    client: Client,
    workflow_id: str,
    get_progress: Callable[[], Awaitable[BatchOrchestratorProgress]],
    *,
    all: bool,
    rpc_timeout: timedelta | None,
) -> BatchFailures:
    """The failures ``handle.failures()`` returns (see there); ``all``: every one.

    ``get_progress`` is the handle's (the batch's progress now).
    """
    latest = client.get_workflow_handle(workflow_id)
    desc = await latest.describe()
    progress = await get_progress()
    info = desc.raw_description.workflow_execution_info
    execution = info.first_run_id or desc.run_id
    out = BatchFailures(
        num_failed_pages=progress.num_failed_pages,
        num_stuck_pages=progress.num_stuck_pages,
        num_retrying_pages=progress.num_retrying_pages,
        num_failed_items=progress.num_failed_items,
        progress=progress,
    )
    running = desc.status == WorkflowExecutionStatus.RUNNING
    out.stuck_pages = await _held(latest, "stuck", progress.stuck_pages, all, running, rpc_timeout)
    out.retrying_pages = await _held(
        latest, "retrying", progress.retrying_pages, all, running, rpc_timeout
    )
    out.failing_discoveries = await _held(
        latest, "discovering", progress.failing_discoveries, all, running, rpc_timeout
    )
    # What the batch has not written to its ledger yet: asked before the ledger is read, so
    # that a failure written in between is in one or the other.
    unwritten = FailureDetails()
    if running:
        unwritten = await _details(latest, "failed", None, rpc_timeout)
        unwritten.items = (await _details(latest, "items", None, rpc_timeout)).items
    keep = None if all else 100
    pages: dict[int, PageFailure] = {}
    items: dict[tuple[int, str], ItemFailure] = {}
    if progress.num_ledger_records:
        found = await collect_failures(
            client,
            workflow_id,
            execution,
            desc.run_id or "",
            progress.num_runs,
            keep=keep,
        )
        out.unavailable_runs = found.unavailable_runs
        for e in found.pages:
            pages[e.page_num] = e.as_failure()
        for i in found.items:
            items[(i.page_num, i.key)] = i.as_failure()
    for f in progress.failed_pages:  # from a version without the ledger: whole already
        if f.cursor_is_whole and f.page_num not in pages and not progress.num_ledger_records:
            pages[f.page_num] = f
    for f in unwritten.pages:
        pages.pop(f.page_num, None)
        pages[f.page_num] = f
    if not progress.num_ledger_records:
        for item in progress.failed_items:
            items.setdefault((item.page_num, item.key), item)
    for item in unwritten.items:
        items.pop((item.page_num, item.key), None)
        items[(item.page_num, item.key)] = item
    out.failed_pages = list(pages.values())[-keep:] if keep else list(pages.values())
    out.failed_items = list(items.values())[-keep:] if keep else list(items.values())
    out.complete = (
        out.unavailable_runs == 0
        and len(out.failed_pages) == out.num_failed_pages
        and len(out.stuck_pages) == out.num_stuck_pages
        and len(out.retrying_pages) == out.num_retrying_pages
        and len(out.failed_items) == out.num_failed_items
        and all_whole(out)
    )
    return out


async def _details(
    latest: WorkflowHandle[Any, Any],
    kind: str,
    page_nums: list[int] | None,
    rpc_timeout: timedelta | None,
) -> FailureDetails:
    """Every page the ``failure_details`` query has of ``kind``, a page of answers at a time."""
    out = FailureDetails()
    after = -1
    while True:
        answer: FailureDetails = await latest.query(
            FAILURE_DETAILS_QUERY,
            FailureDetailsRequest(kind, page_nums, after),
            result_type=FailureDetails,
            rpc_timeout=rpc_timeout,
        )
        out.pages.extend(answer.pages)
        out.items.extend(answer.items)
        if answer.next_after is None:
            return out
        after = answer.next_after


async def _held(
    latest: WorkflowHandle[Any, Any],
    kind: str,
    listed: list[PageFailure],
    all: bool,
    running: bool,
    rpc_timeout: timedelta | None,
) -> list[PageFailure]:
    """Held pages of ``kind`` with whole cursors: those listed, or (``all``) every one."""
    if not running:
        return listed
    if all:
        return (await _details(latest, kind, None, rpc_timeout)).pages
    partial = [f.page_num for f in listed if not f.cursor_is_whole]
    if not partial:
        return listed
    whole = {f.page_num: f for f in (await _details(latest, kind, partial, rpc_timeout)).pages}
    return [whole.get(f.page_num, f) for f in listed]


def all_whole(f: BatchFailures) -> bool:
    """Whether every cursor and key listed in ``f`` is whole (none a preview)."""
    pages = f.failed_pages + f.stuck_pages + f.retrying_pages + f.failing_discoveries
    return all(p.cursor_is_whole for p in pages) and all(
        i.key_length <= len(i.key) for i in f.failed_items
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
