"""A batch result: pages' values folded by the processor's ``reduce``, exactly once per page,
across retries and continue-as-new hand-overs, on the real dev server."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    FetchWorkflowHistoryEventsInput,
    Interceptor,
    OutboundInterceptor,
    WorkflowHistoryEventAsyncIterator,
    WorkflowHistoryEventFilterType,
)
from temporalio.common import RetryPolicy
from temporalio.service import RPCError, RPCStatusCode

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    page_processor,
)
from tests.helpers import assert_eventually, batch_id

ATTEMPTS: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))


@page_processor
class Tally(PageProcessor):
    """Pages 0..n-1 of ten items each; item k counts as "even" or "odd"; every 7th page fails
    its first attempt after doing its work; pages sleep so that hand-overs find them running."""

    async def run(self, context: BatchProcessorContext) -> dict[str, Any]:
        args = json.loads(context.args_str)
        i = int(context.page.cursor_str)
        if i + 1 < args["n"]:
            await context.enqueue_next_page(BatchPage(str(i + 1), 10))
        ATTEMPTS[context.batch_id][i] += 1
        await asyncio.sleep(args.get("sleep", 0.0))
        if i % 7 == 3 and ATTEMPTS[context.batch_id][i] == 1:
            raise ConnectionError("lost the connection after the page's work")
        items = range(10 * i, 10 * i + 10)
        context.add_completed_items(10)
        return {
            "even": sum(1 for k in items if k % 2 == 0),
            "odd": sum(1 for k in items if k % 2),
            "max": max(items),
            "pages": 1,
        }

    def initial_result(self) -> dict[str, Any]:
        return {"even": 0, "odd": 0, "max": None, "pages": 0}

    def reduce(self, acc: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        return {
            "even": acc["even"] + value["even"],
            "odd": acc["odd"] + value["odd"],
            "max": value["max"] if acc["max"] is None else max(acc["max"], value["max"]),
            "pages": acc["pages"] + value["pages"],
        }

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    @property
    def initial_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=timedelta(seconds=0.2), maximum_attempts=5)


@page_processor
class Hoarder(PageProcessor):
    """A reduce that keeps every value: past the result's size limit it fails, visibly."""

    async def run(self, context: BatchProcessorContext) -> str:
        i = int(context.page.cursor_str)
        if i < 29:
            await context.enqueue_next_page(BatchPage(str(i + 1), 1))
        return "x" * 10_000

    def reduce(self, acc: list[str] | None, value: str) -> list[str]:
        return (acc or []) + [value]

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


async def test_page_values_fold_exactly_once_across_retries_and_handovers(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    n = 40
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=Tally,
                page_size=10,
                max_parallelism=4,
                batch_id=bid,
                args=json.dumps({"n": n, "sleep": 0.3}),
                first_cursor_str="0",
                pages_per_run=6,
                handover_wait=timedelta(seconds=0.2),
            ),
            id=bid,
            task_queue=task_queue,
        )
        p = await asyncio.wait_for(handle.result(), 120)
    assert p.num_completed_pages == n and p.num_completed_items == 10 * n
    assert sum(a > 1 for a in ATTEMPTS[bid].values()) >= 5  # retried pages were folded once
    assert p.num_runs > 3 and p.num_unreduced_pages == 0 and p.result_error is None
    assert p.result == {"even": 5 * n, "odd": 5 * n, "max": 10 * n - 1, "pages": n}


async def test_a_result_past_its_limit_is_an_error_in_progress_not_a_failed_batch(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="Hoarder",
                page_size=1,
                max_parallelism=2,
                batch_id=bid,
                first_cursor_str="0",
            ),
            id=bid,
            task_queue=task_queue,
        )

        async def failing():
            p = await handle.get_progress()
            assert p.result_error and "at most 262,144 bytes" in p.result_error, p
            return p

        p = await assert_eventually(failing, timeout=60)
        assert p.num_unreduced_pages > 0 and p.num_failed_pages == 0
        await handle.workflow_handle.terminate("test over")


async def test_run_locally_shows_each_pages_value_and_the_result(client) -> None:
    from batch_orchestra.testing import run_locally

    run = await run_locally(
        Tally,
        args=json.dumps({"n": 5}),
        first_cursor_str="0",
        page_size=10,
        client=client,
    )
    values = sorted((a.page_num, a.value["pages"]) for a in run.attempts if a.ok)
    assert values == [(i, 1) for i in range(5)]
    assert all(a.value is None for a in run.attempts if not a.ok)  # page 3's failed attempt
    assert run.progress.result == {"even": 25, "odd": 25, "max": 49, "pages": 5}


class _DeadlinePolls(Interceptor):
    """Answers the first ``n`` long-polls for a workflow's close event as a loaded server does:
    DEADLINE_EXCEEDED, "context deadline exceeded". The other calls reach the real server."""

    def __init__(self, n: int) -> None:
        self.left = n

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        polls = self

        class Outbound(OutboundInterceptor):
            def fetch_workflow_history_events(
                self, input: FetchWorkflowHistoryEventsInput
            ) -> WorkflowHistoryEventAsyncIterator:
                events = super().fetch_workflow_history_events(input)
                close = input.event_filter_type == WorkflowHistoryEventFilterType.CLOSE_EVENT
                if not (input.wait_new_event and close and polls.left > 0):
                    return events
                polls.left -= 1

                class TimesOut:
                    def __aiter__(self) -> TimesOut:
                        return self

                    async def __anext__(self) -> Any:
                        await asyncio.sleep(0.2)
                        raise RPCError(
                            "context deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""
                        )

                return TimesOut()  # type: ignore[return-value]

        return Outbound(next)


async def test_result_polls_again_when_the_servers_wait_for_the_close_times_out(
    client, task_queue, new_worker
) -> None:
    """A loaded server can answer the long-poll that waits for a run's close with
    DEADLINE_EXCEEDED; ``result()`` polls again instead of raising. Seen in a 100,000-item run."""
    polls = _DeadlinePolls(3)
    orchestra = BatchOrchestratorClient(Client(**{**client.config(), "interceptors": [polls]}))
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=Tally,
                page_size=10,
                max_parallelism=1,
                batch_id=bid,
                args=json.dumps({"n": 4, "sleep": 0.2}),
                first_cursor_str="0",
            ),
            id=bid,
            task_queue=task_queue,
        )
        p = await asyncio.wait_for(handle.result(), 60)
    assert polls.left == 0
    assert p.num_completed_pages == 4 and p.num_completed_items == 40
