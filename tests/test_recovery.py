"""Recovery: discovery apart (``next_page``), and retrying or skipping one page by hand.

The end-to-end tests run on the real dev server; the bookkeeping tests at the end are pure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Replayer

import tests.recovery_processors  # noqa: F401  (registers the processors)
from batch_orchestra import (
    BatchOrchestrator,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    EmbeddedTemporal,
    InvalidBatchInputError,
)
from batch_orchestra._engine.continuation import (
    scheduler_from_state,
    scheduler_to_state,
    unpack_pages,
)
from batch_orchestra._engine.scheduler import Scheduler
from batch_orchestra._model import FailurePolicy
from batch_orchestra._worker.processor import get_page_processor, processor_settings
from tests.helpers import assert_eventually, batch_id, continue_as_new_payloads, run_histories
from tests.recovery_processors import RECORDS
from tests.test_cli import assert_error, assert_ok, run_cli


def _input(
    processor: str, bid: str, inp: dict[str, Any] | None = None, **args: Any
) -> BatchOrchestratorInput:
    return BatchOrchestratorInput(
        **{
            "page_processor": processor,
            "page_size": 10,
            "batch_id": bid,
            "args": json.dumps(args),
            "max_parallelism": 4,
            **(inp or {}),
        }
    )


async def _replays(histories: list[Any]) -> None:
    """The workflow runs outside the sandbox: its new paths must replay deterministically."""
    replayer = Replayer(workflows=[BatchOrchestrator])
    for history in histories:
        await replayer.replay_workflow(history)


def _assert_exact(bid: str, p: BatchOrchestratorProgress, pages: int, items: int) -> None:
    rec = RECORDS[bid]
    assert p.is_finished
    assert p.num_completed_pages == pages and p.num_completed_items == items
    assert sorted(rec.items) == sorted(set(rec.items)) and len(rec.items) == items
    assert len(rec.done) == pages


async def test_a_failing_page_does_not_hold_back_the_pages_after_it(
    orchestra: BatchOrchestratorClient, new_worker: Callable[..., Any], task_queue: str
) -> None:
    """Page 2 fails its first 3 attempts (1 s apart) before it could enqueue anything; its
    successor was found apart, so the 17 pages after it complete while it waits."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("ApartOneSecond", bid, n=200, fail={"2": 3}), id=bid, task_queue=task_queue
        )
        p = await asyncio.wait_for(handle.result(), 60)
    _assert_exact(bid, p, 20, 200)
    assert p.num_failed_pages == p.num_skipped_pages == p.num_discovering_pages == 0
    rec = RECORDS[bid]
    later = [n for n, t in rec.done.items() if n > 2 and t < rec.done[2]]
    assert len(later) == 17, f"pages after 2 that finished before it: {sorted(later)}"
    # run's own enqueue (seed style) was ignored: one discovery per page, no duplicate pages
    assert sorted(n for n, _ in rec.discoveries) == list(range(20))
    assert p.num_discovered_pages == 20


async def test_at_most_once_chain_goes_on_past_a_failed_page(
    orchestra: BatchOrchestratorClient, new_worker: Callable[..., Any], task_queue: str
) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("ApartAtMostOnce", bid, n=120, fail={"3": 1}), id=bid, task_queue=task_queue
        )
        p = await asyncio.wait_for(handle.result(), 60)
    _assert_exact(bid, p, 11, 110)
    assert p.num_failed_pages == 1 and [f.page_num for f in p.failed_pages] == [3]
    assert p.num_discovered_pages == 12
    assert RECORDS[bid].attempts.count((3, 1)) == 1 and (3, 2) not in RECORDS[bid].attempts


async def test_a_failing_discovery_is_visible_then_retried(
    orchestra: BatchOrchestratorClient, new_worker: Callable[..., Any], task_queue: str
) -> None:
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("ApartOneSecond", bid, n=50, discovery_fail={"1": 2}),
            id=bid,
            task_queue=task_queue,
        )

        async def shown() -> BatchOrchestratorProgress:
            p = await handle.get_progress()
            assert [d.page_num for d in p.failing_discoveries] == [1]
            assert p.failing_discoveries[0].error_type == "ConnectionError"
            assert p.failing_discoveries[0].next_retry_at is not None
            assert any(
                "discovery (next_page) failed: keys query failed for page 1" in e.error_message
                for e in p.errors
            )
            assert p.num_discovering_pages >= 1 and not p.is_finished
            return p

        await assert_eventually(shown, timeout=20, interval=0.05)
        p = await asyncio.wait_for(handle.result(), 60)
    _assert_exact(bid, p, 5, 50)
    assert p.failing_discoveries == [] and p.errors == []
    assert [a for n, a in RECORDS[bid].discoveries if n == 1] == [1, 2, 3]


async def test_discovery_survives_continue_as_new(
    orchestra: BatchOrchestratorClient,
    client: Any,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    """Three chains, hand-overs every 3 attempts, with discoveries running (one outlasts the
    hand-over's wait) or waiting for their retry at the hand-overs: every page once, none lost,
    none twice."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input(
                "ApartOneSecond",
                bid,
                {
                    "pages_per_run": 3,
                    "max_parallelism": 3,
                    "first_cursor_strs": ["0", "50", "100"],
                    "handover_wait": timedelta(seconds=1),
                },
                chain_len=50,
                discover_sleep={"5": 2.5},
                discovery_fail={"4": 1, "9": 2},
                fail={"6": 1},
            ),
            id=bid,
            task_queue=task_queue,
        )
        p = await asyncio.wait_for(handle.result(), 90)
    _assert_exact(bid, p, 15, 150)
    assert p.num_runs >= 5 and p.num_failed_pages == 0 and p.num_discovered_pages == 15
    histories = await run_histories(client, bid)
    await _replays(histories)
    inputs = [json.loads(x[0].data) for x in continue_as_new_payloads(histories)]
    handed = [
        unpack_pages(i["continuation"]["scheduler"]["pages"]).get("discovering") for i in inputs
    ]
    assert sum(1 for d in handed if d) >= 2, "no hand-over carried a discovery"
    assert any(d and any(d["failures"]) for d in handed), "none carried a failed discovery"
    # the slow discovery outlasted its hand-over's wait: the next run found its successor again
    assert [a for n, a in RECORDS[bid].discoveries if n == 5] == [1, 2]


async def test_retry_page_and_skip_page(
    orchestra: BatchOrchestratorClient,
    client: Any,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    """Page 1 waits an hour for its retry: retry_page runs it now. Page 3 keeps failing:
    skip_page lets it go, counted as skipped, and its chain (found apart) goes on."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("ApartSlowRetry", bid, n=60, fail={"1": 1, "3": 99}),
            id=bid,
            task_queue=task_queue,
        )

        async def waiting() -> None:
            p = await handle.get_progress()
            assert {f.page_num for f in p.retrying_pages} == {1, 3}
            assert p.num_completed_pages == 4

        await assert_eventually(waiting, timeout=30)
        for bad, why in ((0, "not pending, retrying or stuck"), (99, "never discovered")):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.retry_page(bad)
            assert why in str(err.value.cause)
        with pytest.raises(InvalidBatchInputError, match="page_num must be an int >= 0"):
            await handle.retry_page(-1)
        with pytest.raises(InvalidBatchInputError, match="needs a reason"):
            await handle.skip_page(3, " ")

        p = await handle.skip_page(3, "row 33 is corrupt; fixed by hand")
        assert p.num_skipped_pages == 1 and not p.is_finished
        change = p.control_changes[-1]
        assert "page 3 skipped (it was retrying): row 33 is corrupt" in change.change
        assert change.by == client.identity
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.skip_page(3, "again")
        assert "page 3 is not pending, retrying or stuck" in str(err.value.cause)
        p = await handle.retry_page(1, reason="the API is back")  # the last page left
        assert "page 1 retried now (it was retrying): the API is back" in (
            p.control_changes[-1].change
        )
        p = await asyncio.wait_for(handle.result(), 30)
    assert p.num_completed_pages == 5 and p.num_completed_items == 50
    assert p.num_skipped_pages == 1 and p.num_failed_pages == 0
    assert p.num_discovered_pages == 6 and p.errors == []
    assert sorted(RECORDS[bid].done) == [0, 1, 2, 4, 5]
    await _replays(await run_histories(client, bid))


async def test_skipping_a_page_that_never_ran_finds_its_successors_apart(
    orchestra: BatchOrchestratorClient, new_worker: Callable[..., Any], task_queue: str
) -> None:
    """A paused batch's first page is skipped before it ever ran: discovery runs for it, so
    the chain goes on without it."""
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            _input("ApartSlowRetry", bid, {"max_parallelism": 0}, n=40),
            id=bid,
            task_queue=task_queue,
        )

        async def started() -> None:
            assert (await handle.get_progress()).num_pending_pages == 1

        await assert_eventually(started, timeout=20)
        p = await handle.skip_page(0, "first rows done by hand")
        assert p.num_skipped_pages == 1 and p.num_discovering_pages == 1
        await handle.set_max_parallelism(2)
        p = await asyncio.wait_for(handle.result(), 30)
    assert p.num_completed_pages == 3 and p.num_completed_items == 30
    assert p.num_skipped_pages == 1 and sorted(RECORDS[bid].done) == [1, 2, 3]


async def test_cli_retry_page_and_skip_page(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
) -> None:
    """Seed style: page 1 fails before it enqueues. retry-page runs it now (it then succeeds
    and the chain goes on); in a second batch skip-page lets it go and its chain ends there."""
    bid, bid2 = batch_id(), batch_id()
    async with new_worker():
        h1 = await orchestra.start(
            _input("SeedSlowRetry", bid, n=40, fail={"1": 1}), id=bid, task_queue=task_queue
        )
        h2 = await orchestra.start(
            _input("SeedSlowRetry", bid2, n=40, fail={"1": 99}), id=bid2, task_queue=task_queue
        )
        for h in (h1, h2):

            async def retrying(h: Any = h) -> None:
                assert [f.page_num for f in (await h.get_progress()).retrying_pages] == [1]

            await assert_eventually(retrying, timeout=30)

        assert_error(
            await run_cli(temporal, "retry-page", bid, "7"),
            "page 7 is not pending, retrying or stuck",
        )
        out = assert_ok(await run_cli(temporal, "retry-page", bid, "1", "--reason", "fixed"))
        assert f"batch {bid!r}: page 1 starts now, first in line" in out
        p = await asyncio.wait_for(h1.result(), 30)
        assert p.num_completed_pages == 4 and p.num_completed_items == 40
        assert "page 1 retried now (it was retrying): fixed" in p.control_changes[-1].change

        out = assert_ok(
            await run_cli(temporal, "skip-page", bid2, "1", "--reason", "bad data in rows 10-19")
        )
        assert "page 1 skipped (bad data in rows 10-19); 1 page(s) skipped so far" in out
        p = await asyncio.wait_for(h2.result(), 30)
    assert p.num_completed_pages == 1 and p.num_skipped_pages == 1
    assert p.num_discovered_pages == 2  # the chain ended with the skipped page
    assert "its chain ends here" in p.control_changes[-1].change
    result = await run_cli(temporal, "skip-page", bid2, "1")
    assert result.exit_code == 2 and "--reason" in result.output


# -- the bookkeeping, pure ---------------------------------------------------------------------


def _sched(processor: str = "ApartOneSecond") -> Scheduler:
    settings = processor_settings(get_page_processor(processor))
    s = Scheduler(settings, 2, 1000.0, FailurePolicy.disabled())
    s.enqueue(None, [("0", 10)])
    return s


def test_settings_record_whether_a_processor_discovers_apart() -> None:
    assert processor_settings(get_page_processor("ApartAtMostOnce")).discovers_apart
    assert not processor_settings(get_page_processor("SeedSlowRetry")).discovers_apart


def test_discovery_starts_with_the_page_and_outlives_it() -> None:
    s = _sched("ApartAtMostOnce")
    [att] = s.take_runnable()
    [d] = s.take_discoveries()
    assert (d.page_num, d.attempts) == (att.page_num, 1)
    assert s.fail(0, "ValueError", "boom", non_retryable=False, now=1001.0).value == "failed"
    assert not s.is_finished and len(s.chains) == 1  # its discovery holds the chain open
    assert s.discovery_failed(0, "ConnectionError", "down", 1002.0) == 1.0
    assert any(m == "discovery (next_page) failed: down" for _, m, _ in s.errors.counts())
    assert s.release_due(1003.0) == 1
    [d] = s.take_discoveries()
    assert d.attempts == 2 and not s.is_current_discovery(0, 1)
    assert s.discovered(0, [("10", 10)]).added == [1]
    assert not s.discovering and list(s.ready) == [1] and len(s.chains) == 1


def test_discovery_backoff_doubles_to_a_minute() -> None:
    s = _sched()
    s.take_runnable()
    delays = []
    for i in range(10):
        s.take_discoveries()
        delays.append(s.discovery_failed(0, "E", "x", 1000.0 + i * 100))
        s.release_due(1000.0 + i * 100 + 99)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_discovery_and_skips_cross_continue_as_new() -> None:
    s = _sched()
    s.take_runnable()
    s.take_discoveries()
    s.discovery_failed(0, "ConnectionError", "down", 1001.0)
    s.enqueue(0, [("10", 10)])  # from the same page's run: ignored
    assert s.next_page_num == 1
    s2 = _sched()
    s2.take_runnable()
    s2.take_discoveries()  # running at the hand-over
    for sched, waiting in ((s, True), (s2, False)):
        sched.complete(0, 10, 1002.0)
        back = scheduler_from_state(sched.settings, sched.policy, scheduler_to_state(sched, None))
        assert list(back.discovering) == [0] and not back.is_finished
        assert (0 in back.discovery_waiting) is waiting
        assert (list(back.discovery_ready) == [0]) is not waiting
        if waiting:
            assert back.errors.counts()[0][2] == 1
            assert back.next_due() == pytest.approx(1002.0)
    s3 = _sched("SeedSlowRetry")
    s3.skip(0)
    back = scheduler_from_state(s3.settings, s3.policy, scheduler_to_state(s3, None))
    assert back.num_skipped == 1 and back.is_finished


def test_page_actions_refuse_what_they_cannot_do() -> None:
    s = _sched("SeedSlowRetry")
    assert s.refuse_page_action(0, "retry") is None  # pending
    s.take_runnable()
    assert "page 0 is running (attempt 1)" in (s.refuse_page_action(0, "skip") or "")
    s.fail(0, "ValueError", "boom", non_retryable=True, now=1001.0)
    assert "failed for good" in (s.refuse_page_action(0, "retry") or "")
    assert "never discovered" in (s.refuse_page_action(5, "retry") or "")
    assert "int >= 0" in (s.refuse_page_action(-1, "retry") or "")
    s.enqueue(None, [("a", 1), ("b", 1)])
    assert s.retry_now(2) == "pending" and list(s.ready) == [2, 1]
    assert s.skip(1) == ("pending", False) and s._fresh == 1 and list(s.ready) == [2]
