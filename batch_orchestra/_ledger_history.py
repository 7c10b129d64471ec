"""Reading a batch's failure ledger from its history: its chain of runs, record by record.

Used by the client (``handle.failures()``, ``BatchOrchestratorClient.redrive``) and by the
``read_ledger`` activity (a redrive batch reading another batch's ledger, or a running batch its
own): the workflow never reads a history itself.

The walk starts at the batch's first run (``first_run_id``) and follows each run's
continued-as-new event to the next; it streams each run's events (``fetch_history_events``)
rather than loading a history at once. A run whose history is gone (the namespace's retention
period counts from each run's close, so the earliest runs of a long batch go first) is skipped:
the walk finds the earliest run still kept through the visibility store and counts how many runs
it could not read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ._engine.budgets import wire_size
from ._engine.ledger import (
    LedgerItem,
    LedgerPage,
    LedgerPosition,
    LedgerRecord,
    ReadLedgerInput,
    ReadLedgerResult,
)
from ._model.codec import WireError, from_wire
from ._model.messages import RECORD_FAILURES

__all__ = ["Collected", "LedgerWalk", "collect_failures", "read_chunk", "walk_ledger"]

_SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
_CONTINUED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


@dataclass
class LedgerWalk:
    """What a walk of a ledger met besides its records."""

    unavailable_runs: int = 0
    """Runs whose history is gone (past the namespace's retention period)."""
    runs: int = 0
    """Runs read."""
    unreadable: int = 0
    """Records that could not be decoded (skipped)."""


def _missing(err: RPCError) -> bool:
    return err.status == RPCStatusCode.NOT_FOUND


async def _run_start(client: Client, workflow_id: str, run_id: str) -> tuple[str, int]:
    """The batch execution ``run_id`` belongs to (its first run ID), and which run of it it is.

    Read from its start event and its input's continuation (1 for the first run).
    """
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(page_size=1):
        attrs = event.workflow_execution_started_event_attributes
        first = attrs.first_execution_run_id or run_id
        if not attrs.input.payloads:
            return first, 1
        (raw,) = await client.data_converter.decode(attrs.input.payloads, [dict])
        cont = raw.get("continuation") if isinstance(raw, dict) else None
        if not isinstance(cont, dict):
            return first, 1
        sched = cont.get("scheduler") or {}
        return first, int(sched.get("num_runs", 0)) + 1
    return run_id, 1


async def _earliest_kept(
    client: Client, workflow_id: str, execution: str
) -> tuple[str, int] | None:
    """The earliest run of the batch execution whose history is still kept, and its index.

    Found through the visibility store (the runs of the workflow ID, oldest first), each run's
    start event saying which execution it belongs to.
    """
    quoted = workflow_id.replace("\\", "\\\\").replace('"', '\\"')
    runs = [e async for e in client.list_workflows(f'WorkflowId = "{quoted}"')]
    for e in sorted(runs, key=lambda e: e.start_time):
        first = getattr(e.raw_info, "first_run_id", "") or ""
        if first and first != execution:
            continue  # a run of another execution that used this workflow ID
        try:
            belongs, index = await _run_start(client, workflow_id, e.run_id)
        except RPCError as err:
            if not _missing(err):
                raise
            continue
        if belongs == execution:
            return e.run_id, index
    return None


async def walk_ledger(
    client: Client,
    workflow_id: str,
    execution: str,
    *,
    position: LedgerPosition | None = None,
    walk: LedgerWalk | None = None,
) -> AsyncGenerator[tuple[LedgerRecord, LedgerPosition], None]:
    """Every ledger record of a batch execution after ``position``, in order, with its place.

    ``execution``: the batch's first run ID. ``walk`` collects what else the walk met.
    """
    walk = walk if walk is not None else LedgerWalk()
    run_id: str | None = position.run_id if position is not None else execution
    index = position.run_index if position is not None else 1
    after = position.event_id if position is not None else 0
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        next_run: str | None = None
        try:
            async for event in handle.fetch_history_events():
                if event.event_id <= after:
                    continue
                if event.event_type == _SCHEDULED:
                    attrs = event.activity_task_scheduled_event_attributes
                    if attrs.activity_type.name != RECORD_FAILURES:
                        continue
                    record = await _decode(client, attrs.input.payloads)
                    if record is None or record.execution != execution:
                        walk.unreadable += record is None
                        continue
                    yield record, LedgerPosition(run_id, event.event_id, index)
                elif event.event_type == _CONTINUED:
                    attrs_c = event.workflow_execution_continued_as_new_event_attributes
                    next_run = attrs_c.new_execution_run_id
        except RPCError as err:
            if not _missing(err):
                raise
            kept = await _earliest_kept(client, workflow_id, execution)
            if kept is None or kept[1] <= index:
                walk.unavailable_runs += 1 if kept is None else 0
                return
            walk.unavailable_runs += kept[1] - index
            run_id, index, after = kept[0], kept[1], 0
            continue
        walk.runs += 1
        run_id, index, after = next_run, index + 1, 0


async def _decode(client: Client, payloads: Any) -> LedgerRecord | None:
    try:
        (raw,) = await client.data_converter.decode(payloads, [dict])
        return record_from_wire(raw)
    except (WireError, ValueError, TypeError, KeyError, RuntimeError):
        return None


def record_from_wire(raw: Any) -> LedgerRecord:
    """A ledger record from its JSON (as its activity's input holds it)."""
    if isinstance(raw, (str, bytes)):
        raw = json.loads(raw)
    return from_wire(LedgerRecord, raw, "ledger record")


async def read_chunk(client: Client, inp: ReadLedgerInput) -> ReadLedgerResult:
    """One chunk of a ledger's page (or item) entries, at most ``max_bytes`` of them.

    Whole records only, so the next read goes on after the last record returned. Records before
    ``from_record`` are skipped; the read is done at a record at or after ``to_record``, or at
    the end of the ledger.
    """
    out = ReadLedgerResult(position=inp.position)
    walk = LedgerWalk()
    records = walk_ledger(client, inp.workflow_id, inp.execution, position=inp.position, walk=walk)
    async with aclosing(records):
        out.done = await _fill(out, records, inp)
    out.unavailable_runs = walk.unavailable_runs
    return out


async def _fill(
    out: ReadLedgerResult,
    records: AsyncIterator[tuple[LedgerRecord, LedgerPosition]],
    inp: ReadLedgerInput,
) -> bool:
    """Add whole records' entries to ``out`` up to its budget; True if the ledger is done."""
    size = 0
    async for record, pos in records:
        if inp.to_record is not None and record.seq >= inp.to_record:
            return True
        if record.seq < inp.from_record or record.redrive:
            out.position = pos
            continue
        entries: list[LedgerPage] | list[LedgerItem] = record.items if inp.items else record.pages
        cost = sum(wire_size(e) for e in entries)
        if size and size + cost > inp.max_bytes:
            return False
        if inp.items:
            out.items.extend(record.items)
        else:
            out.pages.extend(record.pages)
        size += cost
        out.position = pos
    return True


@dataclass
class Collected:
    """What a batch's ledger says failed: the latest of each, oldest first."""

    pages: list[LedgerPage]
    items: list[LedgerItem]
    unavailable_runs: int = 0
    """Runs of the batch whose history is gone (past retention): their failures are missing."""


async def _run_records(
    client: Client, workflow_id: str, run_id: str, execution: str
) -> tuple[list[LedgerRecord], str | None]:
    """The ledger records of one run, in order, and the run before it (None for the first)."""
    records: list[LedgerRecord] = []
    previous: str | None = None
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            attrs_s = event.workflow_execution_started_event_attributes
            previous = attrs_s.continued_execution_run_id or None
        elif event.event_type == _SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == RECORD_FAILURES:
                record = await _decode(client, attrs.input.payloads)
                if record is not None and record.execution == execution:
                    records.append(record)
    return records, previous


async def collect_failures(
    client: Client,
    workflow_id: str,
    execution: str,
    latest_run_id: str,
    num_runs: int,
    *,
    keep: int | None = None,
) -> Collected:
    """The failed pages and items a batch's ledger holds, reading its runs newest first.

    Pages: the latest entry of each since the last redrive marker; items: every one, by (page,
    key). ``keep``: only the most recent that many of each, which usually needs only the last
    runs (None: all, which reads every run for its items). ``num_runs``: how many runs the batch
    has had (its progress says), to count those gone past retention.
    """
    pages: list[LedgerPage] = []  # newest first
    items: list[LedgerItem] = []
    seen_pages: set[int] = set()
    seen_items: set[tuple[int, str]] = set()
    pages_done = False
    run_id: str | None = latest_run_id
    index = max(1, num_runs)
    unavailable = 0
    while run_id:
        try:
            records, previous = await _run_records(client, workflow_id, run_id, execution)
        except RPCError as err:
            if not _missing(err):
                raise
            unavailable = index  # this run and every one before it
            break
        for record in reversed(records):
            if record.redrive:
                pages_done = True  # older page entries were queued again
            for item in reversed(record.items):
                key = (item.page_num, item.key)
                if key not in seen_items:
                    seen_items.add(key)
                    items.append(item)
            if pages_done:
                continue
            for page in reversed(record.pages):
                if page.page_num not in seen_pages:
                    seen_pages.add(page.page_num)
                    pages.append(page)
        if keep is not None and (pages_done or len(pages) >= keep) and len(items) >= keep:
            break
        run_id, index = previous, index - 1
    if keep is not None:
        pages, items = pages[:keep], items[:keep]
    pages.reverse()
    items.reverse()
    return Collected(pages, items, unavailable)
