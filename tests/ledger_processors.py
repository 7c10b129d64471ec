"""Processors, a tracker and a notifier for the payload-budget and failure-ledger tests.

Records are keyed by the workflow ID (a redrive batch shares its ``batch_id`` label with the
batch it redrives).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from batch_orchestra import (
    BatchNotifierContext,
    BatchPage,
    BatchProcessorContext,
    BatchTrackerContext,
    PageProcessor,
    batch_notifier,
    batch_tracker,
    page_processor,
)

CURSOR_CHARS = 16 * 1024 - 16
"""Cursors of the worst-case test: just inside the client's 16 KB limit."""


def big_cursor(num: int, chars: int = CURSOR_CHARS) -> str:
    """``"<num>:"`` then incompressible text (base64 of random bytes), ``chars`` long."""
    head = f"{num}:"
    body = base64.b64encode(os.urandom(chars)).decode()
    return head + body[: chars - len(head)]


def page_of(cursor: str) -> int:
    return int(cursor.split(":", 1)[0] or 0)


def _wid() -> str:
    return activity.info().workflow_id or ""


@dataclass
class Seen:
    """What one batch (workflow ID) did in this process."""

    cursors: dict[int, str] = field(default_factory=dict)  # page -> cursor, as enqueued
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # cursor -> n
    completed: list[str] = field(default_factory=list)  # cursors (or "item:<key>")
    item_keys: list[str] = field(default_factory=list)  # keys recorded as failed
    progress_sizes: list[int] = field(default_factory=list)  # JSON size of trackers' progress
    trackers: int = 0
    notices: list[tuple[str, int, int, int]] = field(default_factory=list)
    """(event, pages, the longest cursor among them, items) of every notifier call."""
    notified_cursors: set[str] = field(default_factory=set)


SEEN: dict[str, Seen] = defaultdict(Seen)
GATE: dict[str, asyncio.Event] = {}
"""Workflow ID -> stuck pages keep failing until this event is set (when there is one)."""
FIXED: set[str] = set()
"""Workflow IDs (or ``batch_id`` labels) whose pages no longer fail ("the fix is deployed")."""

_STUCK_AT_ONCE = RetryPolicy(maximum_attempts=1)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


@page_processor
class WorstCase(PageProcessor):
    """A binary tree of ``args["pages"]`` pages with ~16 KB incompressible cursors.

    Every page enqueues its two children first. Then even pages fail for good with a long
    message; odd pages fail twice (stuck, extended retries every second; while ``GATE[wid]`` is
    not set they keep failing), then succeed, record ``args["items"]`` item failures with
    1,000-character keys and return a value of 16 KB for ``reduce``.
    """

    async def run(self, context: BatchProcessorContext) -> str:
        args, wid = json.loads(context.args_str), _wid()
        seen, num = SEEN[wid], page_of(context.page.cursor_str)
        seen.attempts[context.page.cursor_str] += 1
        children = [c for c in (2 * num + 1, 2 * num + 2) if c < args["pages"]]
        if children and not context.enqueued_successor:
            pages = []
            for child in children:
                seen.cursors[child] = cursor = big_cursor(child)
                pages.append(BatchPage(cursor, context.page.size))
            await context.enqueue_next_pages(pages)
        message = f"page {num} failed: " + "x" * 5_000
        if num % 2 == 0:
            raise ApplicationError(message, type="BrokenRecord" + "Z" * 300, non_retryable=True)
        gate = GATE.get(wid)
        if context.attempt <= 2 or (gate is not None and not gate.is_set()):
            raise RuntimeError(message)
        for i in range(args["items"]):
            key = f"{num}-{i}-" + "k" * 1_000
            key = key[:1_000]
            seen.item_keys.append(key)
            context.record_failure(key, ValueError("bad item " + "m" * 2_000))
        context.add_completed_items(context.page.size)
        seen.completed.append(context.page.cursor_str)
        return "v" * (16 * 1024 - 2)  # a JSON string of exactly 16 KB

    def initial_result(self) -> list[str]:
        return []

    def reduce(self, acc: list[str], value: str) -> list[str]:
        return (acc + [value])[-15:]  # 15 values of 16 KB: just under the 256 KB result limit

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return _STUCK_AT_ONCE

    @property
    def extended_retry_interval_seconds(self) -> int:
        return 1


@batch_tracker
async def measuring_tracker(context: BatchTrackerContext) -> None:
    seen = SEEN[json.loads(context.args_str)["wid"]]
    seen.trackers += 1
    seen.progress_sizes.append(_json_size(dataclasses.asdict(context.progress)))


@batch_notifier
async def collecting_notifier(context: BatchNotifierContext) -> None:
    seen = SEEN[context.workflow_id]
    longest = max((len(p.cursor_str) for p in context.failed_pages), default=0)
    seen.notices.append(
        (context.event, len(context.failed_pages), longest, len(context.failed_items))
    )
    seen.notified_cursors.update(p.cursor_str for p in context.failed_pages)


@page_processor
class FanOutFailing(PageProcessor):
    """A page with cursor "root" enqueues ``args["pages"]`` pages "p-<i>", which fail for good
    unless their workflow ID or ``batch_id`` is in ``FIXED``; one with cursor "items-root"
    enqueues ``args["item_pages"]`` pages "q-<j>", which each record ``args["items"]`` failed
    items (keys "q-<j>-<k>") and succeed.
    With ``args["hold"]``, the root page then waits for ``GATE[wid]`` (the batch keeps running).
    ``run_items`` records the keys it runs."""

    async def run(self, context: BatchProcessorContext) -> int:
        args, wid = json.loads(context.args_str), _wid()
        seen, cursor = SEEN[wid], context.page.cursor_str
        seen.attempts[cursor] += 1
        if cursor in ("root", "items-root"):
            if not context.enqueued_successor:
                if cursor == "root":
                    pages = [f"p-{i}" for i in range(args["pages"])]
                else:
                    pages = [f"q-{j}" for j in range(args["item_pages"])]
                await context.enqueue_next_pages([BatchPage(c, context.page.size) for c in pages])
            if args.get("hold"):
                await GATE[wid].wait()  # keeps the batch running
            return 0
        if cursor.startswith("q-"):
            for k in range(args["items"]):
                key = f"{cursor}-{k}"
                seen.item_keys.append(key)
                context.record_failure(key, "this item is bad")
            seen.completed.append(cursor)
            return 0
        if wid not in FIXED and context.batch_id not in FIXED:
            raise ApplicationError(f"{cursor} is broken", non_retryable=True)
        seen.completed.append(cursor)
        return 1

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        SEEN[_wid()].completed.extend(f"item:{k}" for k in keys)
        return len(keys)

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
