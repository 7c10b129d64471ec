"""Test processors and a worker interceptor for the orchestrator shell's fault tests.

``ShellGated``: a chain of pages whose pages wait at gates the test opens. ``HoldFirstTask``: a
workflow interceptor that fails the first workflow task of a batch's continued run until that
task carries a given message, so that the message is handled in the run's first task, before
the run has built its scheduler (a failed workflow task is retried by the server with every
message that arrived meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from batch_orchestra import (
    BatchNotifierContext,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    batch_notifier,
    page_processor,
)


@dataclass
class GateRecord:
    """What happened to one gated batch in this process."""

    attempts: list[tuple[int, int]] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    at_gate: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    open: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a page's work was cancelled (it was told to stop)."""


GATES: dict[str, GateRecord] = defaultdict(GateRecord)


async def _gate(rec: GateRecord, name: str | None) -> None:
    if name is None:
        return
    rec.at_gate[name].set()
    await rec.open[name].wait()


@page_processor
class ShellGated(PageProcessor):
    """A chain of ``n`` pages (cursor: the page's index). args: ``n``; ``before_enqueue`` and
    ``after_enqueue``: {page index: gate name} where the page waits for the test."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        rec = GATES[context.batch_id]
        rec.attempts.append((context.page_num, context.attempt))
        index = int(context.page.cursor_str)
        try:
            await _gate(rec, args.get("before_enqueue", {}).get(str(index)))
            if index + 1 < args["n"]:
                await context.enqueue_next_page(BatchPage(str(index + 1), context.page.size))
            await _gate(rec, args.get("after_enqueue", {}).get(str(index)))
        except asyncio.CancelledError:
            rec.cancelled.set()
            raise
        rec.done.append(index)
        return context.page.size

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@dataclass
class Hold:
    """Hold the first task of a batch's second run until it carries one of ``messages``."""

    messages: set[str]
    held: threading.Event = field(default_factory=threading.Event)
    """Set once the task was held (failed) at least once."""
    released: threading.Event = field(default_factory=threading.Event)
    """Set once the task ran with the message."""


HOLDS: dict[str, Hold] = {}


class HoldFirstTask(Interceptor):
    """Worker interceptor: see ``Hold``."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _HoldInbound


class _HoldInbound(WorkflowInboundInterceptor):
    def init(self, outbound: Any) -> None:
        self._seen: set[str] = set()
        super().init(outbound)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        self._seen.add(input.signal)
        await super().handle_signal(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        self._seen.add(input.update)
        return await super().handle_update_handler(input)

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        hold = HOLDS.get(info.workflow_id)
        if (
            hold is not None
            and not hold.released.is_set()
            and info.continued_run_id is not None
            and not workflow.unsafe.is_replaying()
        ):
            if not (self._seen & hold.messages):
                hold.held.set()
                raise RuntimeError("held by the test until a message arrives")  # fails the task
            hold.released.set()
        return await super().execute_workflow(input)


@page_processor
class BigEnqueue(PageProcessor):
    """Page 0 enqueues ``count`` pages with cursors of ``chars`` characters (the successors do
    nothing); 3 quick attempts, then the page fails."""

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        if context.page_num == 0:
            pad = "x" * args["chars"]
            await context.enqueue_next_pages(
                [BatchPage(f"{i}:{pad}", 1) for i in range(args["count"])]
            )
        return 1

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=100),
            backoff_coefficient=1.0,
            maximum_attempts=3,
        )

    @property
    def use_extended_retries(self) -> bool:
        return False


@page_processor
class ManyItemFailures(PageProcessor):
    """Each page (``pages`` of them, independent) records ``per_page`` item failures."""

    async def run(self, context: BatchProcessorContext) -> int:
        per_page = json.loads(context.args_str)["per_page"]
        context.record_failures((f"{context.page_num}:{i}", "bad item") for i in range(per_page))
        return per_page

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


NOTIFIED: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)


@batch_notifier
async def gated_notifier(context: BatchNotifierContext) -> None:
    """Records every call; its first items_failed call waits at the batch's gate "notifier"."""
    calls = NOTIFIED[context.batch_id]
    if context.event == "items_failed" and not any(e == "items_failed" for e, _ in calls):
        await _gate(GATES[context.batch_id], "notifier")
    calls.append((context.event, [f.key for f in context.failed_items]))
