"""Processors, a tracker, a notifier and a health check for the recorded-history scenarios
(``tests/histories/record.py``), registered on import. ``tests/conftest.py`` imports this module
too, so the suite's workers know the same names (they are unique across ``tests/``).

A batch's behaviour is scripted by its args (JSON) and by module-level state keyed by workflow ID
(a redrive batch shares its ``batch_id`` with the batch it redrives, not its workflow ID). Gates
(asyncio events; the worker runs in the recorder's process) hold a page, a discovery, a fold or
a tracker call until the scenario has seen what it waits for, so that the ordering a scenario
records does not depend on timing.

Cursors are ``"chain:index"``; chain ``c`` holds the pages ``c:0`` .. ``c:(n - 1)``. Args (each
optional; per-cursor keys name the cursor):

- ``n``: pages per chain (default 1); ``sleep``: seconds each page works; ``slow``: {cursor: s}.
- ``fail``: {cursor: k}: the page's first k attempts fail (retryably, after its enqueue).
- ``fatal``: [cursor]: fails for good (after its enqueue) while the batch is in ``BROKEN``;
  ``fatal_early``: [cursor]: the same, before its enqueue; ``flaky``: [cursor]: fails
  (retryably, always with the same error, before its enqueue) while the batch is in ``BROKEN``.
- ``gate``: {cursor: name}: its first attempt waits at that gate (after its enqueue);
  ``hold``: {cursor: name}: the same, before its enqueue (its chain waits too).
  A first attempt listed in ``FAIL_AFTER_GATE`` when its gate opens then fails; a later
  attempt of a cursor in ``RETRY_GATES`` waits at that gate.
- ``items``: {cursor: k}: the page records k failed items.
- ``block``: {cursor: s}: its first attempt blocks the event loop for s seconds (its
  heartbeats stop).
- ``capacity``: pages fail (ConnectionError) while more than this many run at once.
- with ``reduce`` (``HistReduce``): ``value_pad``: pad each page's value to about this many
  characters; ``no_value``: [cursor]: the page returns no value (None).
- with ``next_page`` (``HistApart``): ``discover_slow``: {cursor: s} and ``discover_gate``:
  {cursor: name} (first attempt); ``dup``: [cursor]: next_page also returns the page's own
  cursor (which the batch ignores).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from batch_orchestra import (
    BatchNotifierContext,
    BatchPage,
    BatchProcessorContext,
    BatchTrackerContext,
    Health,
    HealthCheckContext,
    PageProcessor,
    batch_notifier,
    batch_tracker,
    health_check,
    page_processor,
)


@dataclass
class Gates:
    """One batch's gates: which were reached, and the events that open them."""

    events: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    reached: set[str] = field(default_factory=set)


GATES: dict[str, Gates] = defaultdict(Gates)
"""Workflow ID -> its gates."""


async def wait_at(wid: str, name: str) -> None:
    """Wait at gate ``name`` of batch ``wid`` until the scenario opens it."""
    gates = GATES[wid]
    gates.reached.add(name)
    await gates.events[name].wait()


def open_gate(wid: str, name: str) -> None:
    GATES[wid].events[name].set()


def reached(wid: str, name: str) -> bool:
    return name in GATES[wid].reached


@dataclass
class Record:
    """What one batch's pages, discoveries, folds and calls out did in this process."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    discoveries: list[tuple[str, int]] = field(default_factory=list)
    running: int = 0
    folds: int = 0
    trackers: list[tuple[int, bool]] = field(default_factory=list)
    notices: list[tuple[str, int, int]] = field(default_factory=list)  # event, pages, items
    health_calls: int = 0


RECORDS: dict[str, Record] = defaultdict(Record)
"""Workflow ID -> what happened to it."""
BROKEN: set[str] = set()
"""Workflow IDs whose ``fatal`` pages fail for good (until the scenario fixes them)."""
REDUCE_BROKEN: set[str] = set()
"""Workflow IDs whose ``reduce`` fails (non-retryably) until the scenario fixes it."""
REDUCE_REFUSES: dict[str, int] = {}
"""Workflow ID -> the page index whose value ``reduce`` fails on (until the scenario fixes it)."""
FAIL_AFTER_GATE: dict[str, set[str]] = {}
"""Workflow ID -> cursors whose first attempt fails once its gate opens."""
RETRY_GATES: dict[str, dict[str, str]] = {}
"""Workflow ID -> {cursor: gate} where the cursor's later attempts wait."""
FOLD_GATE: set[str] = set()
"""Workflow IDs whose ``reduce`` waits at the gate "fold" (once reached, until opened)."""
HEALTH_PLAN: dict[str, list[str]] = {}
"""Workflow ID -> the verdicts its health check gives, in order ("healthy", "slow_down",
"stop", "raise"); then "healthy", with the gate "health_done" reached."""
TRACKER_FAIL: dict[str, set[int]] = {}
"""Workflow ID -> the numbers (0-based) of the tracker calls that fail."""
TRACKER_FINAL_GATE: set[str] = set()
"""Workflow IDs whose final tracker call waits at the gate "final_tracker"."""
TRACKER_GATE: set[str] = set()
"""Workflow IDs whose first tracker call waits at the gate "tracker"."""
NOTIFIER_FAIL: dict[str, set[str]] = {}
"""Workflow ID -> events whose first notifier call fails."""
NOTIFIER_GATE: dict[str, str] = {}
"""Workflow ID -> the event whose first notifier call waits at the gate "notifier"."""

_FAST = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    backoff_coefficient=1.0,
    maximum_interval=timedelta(milliseconds=500),
    maximum_attempts=3,
)


def _wid() -> str:
    return activity.info().workflow_id or ""


def _args(context: BatchProcessorContext) -> dict[str, Any]:
    return json.loads(context.args_str) if context.has_args() else {}


def _place(cursor: str) -> tuple[str, int]:
    chain, index = cursor.split(":")
    return chain, int(index)


async def _run(context: BatchProcessorContext, *, enqueue: bool = True) -> int:
    """A page as the args script it; returns its item count."""
    wid, args, cursor = _wid(), _args(context), context.page.cursor_str
    rec, first = RECORDS[wid], context.attempt == 1
    rec.attempts.append((cursor, context.attempt))
    rec.running += 1
    try:
        chain, index = _place(cursor)
        fatal = wid in BROKEN
        if fatal and cursor in args.get("fatal_early", []):
            raise ApplicationError(f"page {cursor} is broken", non_retryable=True)
        if first and cursor in args.get("hold", {}):
            await wait_at(wid, args["hold"][cursor])
        if wid in BROKEN and cursor in args.get("flaky", []):
            raise ConnectionError("the service is down")
        if enqueue and index + 1 < args.get("n", 1):
            await context.enqueue_next_page(BatchPage(f"{chain}:{index + 1}", context.page.size))
        if args.get("capacity") and rec.running > args["capacity"]:
            raise ConnectionError(f"overloaded: {rec.running} pages at once")
        if first and cursor in args.get("block", {}):
            time.sleep(args["block"][cursor])  # blocks the loop: no heartbeat goes out
        if first and cursor in args.get("gate", {}):
            await wait_at(wid, args["gate"][cursor])
            if cursor in FAIL_AFTER_GATE.get(wid, set()):
                raise ConnectionError(f"page {cursor} lost its connection at its gate")
        retry_gate = RETRY_GATES.get(wid, {}).get(cursor)
        if not first and retry_gate is not None:
            await wait_at(wid, retry_gate)
        await asyncio.sleep(args.get("slow", {}).get(cursor, args.get("sleep", 0.0)))
        bad = args.get("items", {}).get(cursor, 0)
        for k in range(bad):
            context.record_failure(f"{cursor}/{k}", ValueError("bad"))
        if fatal and cursor in args.get("fatal", []):
            raise ApplicationError(f"page {cursor} is broken", non_retryable=True)
        if context.attempt <= args.get("fail", {}).get(cursor, 0):
            raise ValueError(f"page {cursor} failed (attempt {context.attempt})")
        rec.completed.append(cursor)
        return max(0, context.page.size - bad)
    finally:
        rec.running -= 1


@page_processor
class HistChain(PageProcessor):
    """At least once: 3 fast attempts (0.1 s apart), then extended retries every second."""

    async def run(self, context: BatchProcessorContext) -> int:
        return await _run(context)

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        RECORDS[_wid()].completed.extend(f"item:{k}" for k in keys)
        return len(keys)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _FAST
    extended_retry_interval_seconds = 1


@page_processor
class HistAtMostOnce(HistChain):
    """One attempt per page."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_MOST_ONCE
    initial_retry_policy = RetryPolicy(maximum_attempts=1)


@page_processor
class HistVanishing(HistChain):
    """A ``HistChain`` that a scenario unregisters for a while (a worker that lacks it)."""


async def _reduce(acc: dict[str, int], value: dict[str, Any]) -> dict[str, int]:
    wid = _wid()
    RECORDS[wid].folds += 1
    if wid in FOLD_GATE:
        await wait_at(wid, "fold")
    if wid in REDUCE_BROKEN or REDUCE_REFUSES.get(wid) == value["sum"]:
        raise ApplicationError("reduce is broken (the scenario fixes it)", non_retryable=True)
    return {"sum": acc["sum"] + value["sum"], "pages": acc["pages"] + value["pages"]}


def _value(context: BatchProcessorContext, items: int) -> dict[str, Any] | None:
    context.add_completed_items(items)
    _, index = _place(context.page.cursor_str)
    args = _args(context)
    if context.page.cursor_str in args.get("no_value", []):
        return None  # nothing to fold
    pad = args.get("value_pad", 0)
    return {"sum": index, "pages": 1, **({"pad": "v" * pad} if pad else {})}


@page_processor
class HistReduce(HistChain):
    """Pages' values ({"sum": index, "pages": 1}) fold into a result (``REDUCE_BROKEN``,
    ``FOLD_GATE`` script the fold)."""

    async def run(self, context: BatchProcessorContext) -> dict[str, Any] | None:  # type: ignore[override]
        return _value(context, await _run(context))

    def initial_result(self) -> dict[str, int]:
        return {"sum": 0, "pages": 0}

    async def reduce(self, acc: dict[str, int], value: dict[str, Any]) -> dict[str, int]:
        return await _reduce(acc, value)


@page_processor
class HistApart(PageProcessor):
    """Finds successors apart (``next_page``); retried every 0.3 s, 3 attempts, then stuck."""

    async def next_page(self, context: BatchProcessorContext) -> list[BatchPage] | None:
        wid, args, cursor = _wid(), _args(context), context.page.cursor_str
        RECORDS[wid].discoveries.append((cursor, context.attempt))
        first = context.attempt == 1
        if first and cursor in args.get("discover_slow", {}):
            await asyncio.sleep(args["discover_slow"][cursor])
        if first and cursor in args.get("discover_gate", {}):
            await wait_at(wid, args["discover_gate"][cursor])
        chain, index = _place(cursor)
        if index + 1 >= args.get("n", 1):
            return None
        found = [BatchPage(f"{chain}:{index + 1}", context.page.size)]
        if cursor in args.get("dup", []):
            found.append(BatchPage(cursor, context.page.size))  # its own cursor: ignored
        return found

    async def run(self, context: BatchProcessorContext) -> int:
        return await _run(context, enqueue=False)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=300), backoff_coefficient=1.0, maximum_attempts=3
    )
    extended_retry_interval_seconds = 1


@page_processor
class HistApartReduce(HistApart):
    """``HistApart`` whose pages' values fold into a result."""

    async def run(self, context: BatchProcessorContext) -> dict[str, Any] | None:  # type: ignore[override]
        return _value(context, await _run(context, enqueue=False))

    def initial_result(self) -> dict[str, int]:
        return {"sum": 0, "pages": 0}

    async def reduce(self, acc: dict[str, int], value: dict[str, Any]) -> dict[str, int]:
        return await _reduce(acc, value)


@page_processor
class HistBig(PageProcessor):
    """Big cursors. The first pages ("s:k" for k < args["spawners"]) each enqueue
    args["spawn"] pages whose cursors carry args["pad"] characters; those listed in
    args["fail"] ("k:j") fail their first attempt."""

    async def run(self, context: BatchProcessorContext) -> int:
        args, cursor = _args(context), context.page.cursor_str
        RECORDS[_wid()].attempts.append((cursor[:16], context.attempt))
        if cursor.startswith("s:"):
            k = int(cursor[2:])
            if k < args.get("spawners", 0):
                pad = "x" * args["pad"]
                await context.enqueue_next_pages(
                    [
                        BatchPage(json.dumps({"k": k, "j": j, "pad": pad}), 1)
                        for j in range(args["spawn"])
                    ]
                )
            await asyncio.sleep(args.get("spawner_sleep", 0.0))
            return 1
        page = json.loads(cursor)
        if f"{page['k']}:{page['j']}" in args.get("fail", []) and context.attempt == 1:
            raise ConnectionError(f"big page {page['k']}:{page['j']} failed once")
        await asyncio.sleep(args.get("sleep", 0.0))
        return 1

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=500), backoff_coefficient=1.0, maximum_attempts=3
    )


@health_check
async def hist_health(context: HealthCheckContext) -> Health:
    """Gives the verdicts of ``HEALTH_PLAN`` in order, then says healthy."""
    wid = _wid()
    rec, plan = RECORDS[wid], HEALTH_PLAN.get(wid, [])
    call, rec.health_calls = rec.health_calls, rec.health_calls + 1
    verdict = plan[call] if call < len(plan) else "healthy"
    if call >= len(plan):
        GATES[wid].reached.add("health_done")
    if verdict == "raise":
        raise ConnectionError("the replica does not answer")
    if verdict == "stop":
        return Health.stop("replica lag 30 s")
    if verdict == "slow_down":
        return Health.slow_down("replica lag 5 s")
    return Health.healthy()


@batch_tracker
async def hist_tracker(context: BatchTrackerContext) -> None:
    """Records each call; fails the calls in ``TRACKER_FAIL``; the first call and the final
    one may wait (``TRACKER_GATE``, ``TRACKER_FINAL_GATE``)."""
    wid = _wid()
    rec = RECORDS[wid]
    call = len(rec.trackers)
    rec.trackers.append((context.progress.num_completed_pages, context.is_final))
    if call in TRACKER_FAIL.get(wid, set()):
        raise ApplicationError(f"tracker call {call} failed", non_retryable=True)
    if call == 0 and wid in TRACKER_GATE:
        await wait_at(wid, "tracker")
    if context.is_final and wid in TRACKER_FINAL_GATE:
        await wait_at(wid, "final_tracker")


@batch_notifier
async def hist_notifier(context: BatchNotifierContext) -> None:
    """Records each event; fails the first call of the events in ``NOTIFIER_FAIL``; the first
    call of ``NOTIFIER_GATE``'s event waits at the gate "notifier"."""
    wid = context.workflow_id
    RECORDS[wid].notices.append(
        (context.event, len(context.failed_pages), len(context.failed_items))
    )
    failing = NOTIFIER_FAIL.get(wid, set())
    if context.event in failing:
        failing.discard(context.event)
        raise ApplicationError(f"the notifier failed on {context.event}", non_retryable=True)
    if NOTIFIER_GATE.get(wid) == context.event:
        del NOTIFIER_GATE[wid]
        await wait_at(wid, "notifier")
