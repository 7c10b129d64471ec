"""A batch that gets nowhere says so, hooks that fail are visible, typed args are checked at start.

End to end on the real dev server, through the API, the command line and the dashboard.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Replayer

from batch_orchestra import (
    BatchNotifierConfig,
    BatchNotifierContext,
    BatchOrchestrator,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    BatchPage,
    BatchProcessorContext,
    BatchTrackerConfig,
    BatchTrackerContext,
    EmbeddedTemporal,
    Health,
    HealthCheckConfig,
    HealthCheckContext,
    InvalidArgsError,
    PageProcessor,
    batch_notifier,
    batch_tracker,
    health_check,
    page_processor,
)
from batch_orchestra._exceptions import INVALID_ARGS_ERROR_TYPE
from batch_orchestra._model import input_to_wire
from batch_orchestra.dashboard import create_app
from tests.helpers import assert_eventually, batch_id, run_histories
from tests.test_cli import assert_error, assert_ok, run_cli

ATTEMPTS: dict[str, list[float]] = defaultdict(list)
"""batch_id -> ``time.monotonic()`` of every page attempt."""
EVENTS: dict[str, list[tuple[str, str | None, BatchOrchestratorProgress]]] = defaultdict(list)
"""batch_id -> every notifier call: (event, reason, progress)."""
NOTIFIER_FAILS_ON: dict[str, set[str]] = defaultdict(set)
TRACKER_FAILS: set[str] = set()
GATES: dict[str, asyncio.Event] = {}
SEEN_ARGS: dict[str, list[Any]] = defaultdict(list)

_QUICK = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=10,
)


@dataclass
class DbArgs:
    db_path: str
    percent: int = 10


@page_processor
class WrongKeyArgs(PageProcessor):
    """Reads its args as a new user might, ``DbArgs(**json.loads(...))``: a wrong key raises
    TypeError on every attempt."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = _QUICK

    async def run(self, context: BatchProcessorContext) -> int:
        ATTEMPTS[context.batch_id].append(time.monotonic())
        args = DbArgs(**json.loads(context.args_str))
        return args.percent


@page_processor
class FailsThenWorks(PageProcessor):
    """A chain of ``pages``; page ``bad_page`` fails its first ``failures`` attempts the same way."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=200), maximum_attempts=2
    )
    extended_retry_interval_seconds = 1

    async def run(self, context: BatchProcessorContext) -> int:
        args = json.loads(context.args_str)
        ATTEMPTS[context.batch_id].append(time.monotonic())
        if context.page_num == args["bad_page"] and context.attempt <= args["failures"]:
            raise ConnectionError("the partner API refused the connection")
        if context.page_num + 1 < args["pages"]:
            await context.enqueue_next_page(BatchPage(str(context.page_num + 1), 1))
        return 1


@page_processor
class GatedChain(PageProcessor):
    """A chain of ``pages``; page 0 waits for the batch's gate before it enqueues the next."""

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        if context.page_num == 0:
            await GATES[context.batch_id].wait()
        if context.page_num + 1 < json.loads(context.args_str)["pages"]:
            await context.enqueue_next_page(BatchPage(str(context.page_num + 1), 1))
        return 1


@page_processor
class TypedDb(PageProcessor):
    """Declares its args type: the args are checked when the batch starts."""

    args_type = DbArgs
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def run(self, context: BatchProcessorContext) -> int:
        args = context.args()
        SEEN_ARGS[context.batch_id].append(args)
        return int(args.percent)


@batch_notifier
async def stall_notes(context: BatchNotifierContext) -> None:
    EVENTS[context.batch_id].append((context.event, context.reason, context.progress))
    if context.event in NOTIFIER_FAILS_ON[context.batch_id]:
        raise RuntimeError(f"chat is down ({context.event})")


@batch_tracker
async def flaky_tracker(context: BatchTrackerContext) -> None:
    if context.batch_id in TRACKER_FAILS:
        raise ValueError("the status page is down")


@health_check
async def broken_health(context: HealthCheckContext) -> Health:
    raise ConnectionError("the replica lag metric is unavailable")


def events(bid: str) -> list[str]:
    return [event for event, _, _ in EVENTS[bid]]


async def assert_replays(orchestra: BatchOrchestratorClient, bid: str) -> None:
    """Every run of the batch replays without nondeterminism (the new commands included)."""
    for history in await run_histories(orchestra.client, bid):
        await Replayer(workflows=[BatchOrchestrator]).replay_workflow(history)


async def test_bad_args_are_named_within_seconds_and_the_batch_pauses_itself(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Callable[..., Any],
) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor=WrongKeyArgs,
        page_size=10,
        max_parallelism=4,
        args='{"db": "x"}',
        batch_id=bid,
        notifier=BatchNotifierConfig(name="stall_notes"),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def named() -> float:
            p = await handle.get_progress()
            assert p.no_progress, p
            return time.monotonic()

        seen = await assert_eventually(named, timeout=30, interval=0.05)
        assert seen - ATTEMPTS[bid][0] < 10, "the error is named within seconds"
        p = await handle.get_progress()
        assert p.no_progress and "no page has completed yet" in p.no_progress
        assert "TypeError: DbArgs.__init__() got an unexpected keyword argument 'db'" in (
            p.no_progress
        )

        async def paused() -> BatchOrchestratorProgress:
            p = await handle.get_progress()
            assert p.is_paused, p
            return p

        p = await assert_eventually(paused, timeout=30)
        assert p.pause_reason and "unexpected keyword argument 'db'" in p.pause_reason
        assert "no_progress_attempts=5" in p.pause_reason and "resume" in p.pause_reason
        assert p.num_stuck_pages == 0 and p.num_retrying_pages == 1, "within its initial retries"
        assert p.retrying_pages[0].attempts == 5 and len(ATTEMPTS[bid]) == 5

        async def told() -> None:
            assert "paused" in events(bid)

        await assert_eventually(told)
        [(_, reason, _)] = [e for e in EVENTS[bid] if e[0] == "paused"]
        assert reason == p.pause_reason
        assert "stalled" not in events(bid), "a batch that pauses is not also 'stalled'"

        out = assert_ok(await run_cli(temporal, "status", bid))
        assert "PAUSED" in out and "no progress" in out
        assert "the last 5 page attempts failed with TypeError" in out
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(orchestra.client)),
            base_url="http://127.0.0.1",
        ) as ui:
            page = (await ui.get(f"/batches/{bid}")).text
            assert 'data-field="no_progress">no progress: no page has completed yet' in page
        await handle.workflow_handle.terminate("test over")
    await assert_replays(orchestra, bid)


async def test_a_stall_is_told_once_and_shown_until_a_page_completes(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Callable[..., Any]
) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor=FailsThenWorks,
        page_size=1,
        max_parallelism=2,
        args=json.dumps({"pages": 2, "bad_page": 1, "failures": 5}),
        first_cursor_str="0",
        batch_id=bid,
        notifier=BatchNotifierConfig(name="stall_notes"),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_completed_pages == 2 and not result.is_paused
    assert result.no_progress is None, "a page completed: the stall is over"
    assert events(bid) == ["stalled", "finished"], "told once per stall"
    [(_, reason, progress)] = [e for e in EVENTS[bid] if e[0] == "stalled"]
    assert reason and reason.startswith("no progress: since ")
    assert "only retries of failing pages can run (0 retrying, 1 stuck, next retry at" in reason
    assert "failed with ConnectionError: the partner API refused the connection" in reason
    assert progress.no_progress == reason and progress.num_stuck_pages == 1
    await assert_replays(orchestra, bid)


async def test_failing_hooks_show_in_progress_status_and_the_final_result(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Callable[..., Any],
) -> None:
    bid = batch_id()
    GATES[bid] = asyncio.Event()
    TRACKER_FAILS.add(bid)
    NOTIFIER_FAILS_ON[bid] = {"finished"}
    inp = BatchOrchestratorInput(
        page_processor=GatedChain,
        page_size=1,
        max_parallelism=2,
        args=json.dumps({"pages": 6}),
        first_cursor_str="0",
        batch_id=bid,
        pages_per_run=2,  # hook errors travel across hand-overs
        batch_tracker=BatchTrackerConfig(name="flaky_tracker", interval=timedelta(seconds=0.5)),
        health_check=HealthCheckConfig(
            name="broken_health",
            interval=timedelta(seconds=0.5),
            failures_before_unhealthy=1_000,  # keep the batch running
        ),
        notifier=BatchNotifierConfig(name="stall_notes"),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def both_failing() -> BatchOrchestratorProgress:
            p = await handle.get_progress()
            kinds = {h.kind: h for h in p.hook_errors}
            assert {"tracker", "health_check"} <= set(kinds), p.hook_errors
            assert kinds["tracker"].consecutive_failures >= 1
            return p

        p = await assert_eventually(both_failing, timeout=30)
        tracker, health = (
            next(h for h in p.hook_errors if h.kind == k) for k in ("tracker", "health_check")
        )
        assert tracker.name == "flaky_tracker"
        assert tracker.last_error == "ValueError: the status page is down"
        assert health.name == "broken_health"
        assert health.last_error == "ConnectionError: the replica lag metric is unavailable"
        out = assert_ok(await run_cli(temporal, "status", bid))
        assert "tracker failing" in out and "ValueError: the status page is down" in out
        assert "health check failing" in out and "replica lag metric is unavailable" in out

        TRACKER_FAILS.discard(bid)

        async def tracker_recovered() -> None:
            p = await handle.get_progress()
            [t] = [h for h in p.hook_errors if h.kind == "tracker"]
            assert t.consecutive_failures == 0 and t.recovered_at is not None, t

        await assert_eventually(tracker_recovered, timeout=30)
        GATES[bid].set()
        result = await asyncio.wait_for(handle.result(), 90)

    assert result.num_completed_pages == 6 and result.num_runs >= 3
    hooks = {h.kind: h for h in result.hook_errors}
    assert set(hooks) == {"tracker", "notifier", "health_check"}
    assert hooks["tracker"].consecutive_failures == 0 and hooks["tracker"].total_failures >= 1
    assert hooks["health_check"].consecutive_failures >= 1, "failing across the hand-overs"
    notifier = hooks["notifier"]
    assert notifier.event == "finished" and notifier.name == "stall_notes"
    assert notifier.last_error == "RuntimeError: chat is down (finished)"
    assert notifier.consecutive_failures == notifier.total_failures == 1
    assert events(bid).count("finished") == 3, "an event is tried three times before it is dropped"

    out = assert_ok(await run_cli(temporal, "status", bid))
    assert "COMPLETED" in out and "notifier failing" in out
    assert "event 'finished' not delivered: RuntimeError: chat is down (finished)" in out
    assert "tracker recovered" in out and "works again since" in out
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(orchestra.client)),
        base_url="http://127.0.0.1",
    ) as ui:
        page = (await ui.get(f"/batches/{bid}")).text
        assert "notifier failing: stall_notes: 1 failed in a row" in page
        assert "event &#x27;finished&#x27; not delivered" in page
        state = (await ui.get(f"/api/batches/{bid}")).json()
        assert any("notifier failing" in line for line in state["hooks"])
        assert state["progress"]["hook_errors"][0]["kind"] == "tracker"
    await assert_replays(orchestra, bid)


async def test_typed_args_are_checked_once_when_the_batch_starts(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Callable[..., Any]
) -> None:
    def inp(bid: str, args: str) -> BatchOrchestratorInput:
        return BatchOrchestratorInput(
            page_processor="TypedDb", page_size=1, max_parallelism=1, args=args, batch_id=bid
        )

    async with new_worker():
        # the class is known here: refused before anything starts
        refused = batch_id()
        with pytest.raises(InvalidArgsError, match="field 'db_path' is missing") as info:
            await orchestra.start(inp(refused, '{"db": "x"}'), id=refused, task_queue=task_queue)
        assert "unknown key(s) ['db']" in str(info.value)
        assert "did you mean 'db_path'?" in str(info.value)
        with pytest.raises(RPCError):
            await orchestra.client.get_workflow_handle(refused).describe()

        # started by name from a client that does not know the class: the worker refuses
        bad = batch_id()
        wire = input_to_wire(inp(bad, '{"db_path": "x", "percent": "ten"}'))
        wf = await orchestra.client.start_workflow(
            "BatchOrchestrator", wire, id=bad, task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(wf.result(), 30)
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == INVALID_ARGS_ERROR_TYPE
        assert cause.non_retryable
        assert "the batch's args do not fit DbArgs, the args_type of TypedDb: " in cause.message
        assert "field 'percent' is 'ten'" in cause.message
        assert SEEN_ARGS[bad] == [], "no page ran"

        good = batch_id()
        handle = await orchestra.start(
            inp(good, '{"db_path": "p.db", "percent": 7}'), id=good, task_queue=task_queue
        )
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.num_completed_items == 7
    assert SEEN_ARGS[good] == [DbArgs(db_path="p.db", percent=7)], "context.args() used args_type"


async def test_the_command_line_refuses_bad_typed_args_in_one_line(
    temporal: EmbeddedTemporal,
    task_queue: str,
    new_worker: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def start(wid: str) -> list[str]:
        return [
            "start",
            "TypedDb",
            *("-q", task_queue, "--id", wid, "--page-size", "1", "--max-parallelism", "1"),
            *("--args", '{"db": "x"}'),
        ]

    async with new_worker():
        wid = batch_id()
        result = await run_cli(temporal, *start(wid))
        assert_error(result, "the batch's args do not fit DbArgs, the args_type of TypedDb")
        assert "field 'db_path' is missing" in result.stderr and "started" not in result.stdout

        # a command line that does not import the processor: the worker refuses at start
        monkeypatch.setattr("batch_orchestra._client.client.find_page_processor", lambda name: None)
        wid = batch_id()
        result = await run_cli(temporal, *start(wid))
        assert_error(result, f"batch {wid!r} failed: the batch's args do not fit DbArgs")
        assert "field 'db_path' is missing" in result.stderr
        assert "started" not in result.stdout, "a batch the worker refused did not start"
    # with no worker to answer, `list` shows the failure: it does not squeeze the status out
    out = assert_ok(await run_cli(temporal, "list", "--limit", "100"))
    row = next(line for line in out.splitlines() if wid in line)
    assert "FAILED" in row and "the batch's args do not fit DbArgs" in row, out
