"""Payload budgets at the public limits, and the failure ledger, on the real dev server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from batch_orchestra import (
    BatchNotifierConfig,
    BatchOrchestrator,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchTrackerConfig,
    EmbeddedTemporal,
    FailurePolicy,
)
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_to_wire,
    scheduler_to_state,
)
from batch_orchestra._engine.ledger import ReadLedgerInput
from batch_orchestra._engine.scheduler import Scheduler
from batch_orchestra._ledger_history import collect_failures, read_chunk
from batch_orchestra._model import input_to_wire
from batch_orchestra._worker.processor import processor_settings
from tests.helpers import assert_eventually, batch_id, continue_as_new_payloads, run_histories
from tests.ledger_processors import FIXED, GATE, SEEN, FanOutFailing, big_cursor, page_of
from tests.test_cli import assert_ok, run_cli

MB = 1024 * 1024
_TRANSIENT = {RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE}
_TRANSPORT = ("Timeout expired", "h2 protocol error", "transport error")


def _size(value: Any) -> int:
    return len(json.dumps(dataclasses.asdict(value), default=str, separators=(",", ":")))


async def _problems(handle: Any) -> str:
    """Why the batch is not getting anywhere: its failed workflow tasks, if any."""
    history = await handle.workflow_handle._client.get_workflow_handle(handle.id).fetch_history()
    failed = [
        e.workflow_task_failed_event_attributes
        for e in history.events
        if e.HasField("workflow_task_failed_event_attributes")
    ]
    causes = {str(f.cause) + ": " + f.failure.message[:200] for f in failed}
    return f"{len(failed)} failed workflow tasks ({len(history.events)} events): {causes}"


async def _replays(client: Any, workflow_id: str) -> list[Any]:
    histories = await run_histories(client, workflow_id)
    replayer = Replayer(workflows=[BatchOrchestrator])
    for history in histories:
        await replayer.replay_workflow(history)
    return histories


@pytest.mark.slow
async def test_worst_case_payloads_stay_within_budget_and_the_batch_finishes(
    orchestra: BatchOrchestratorClient,
    temporal: EmbeddedTemporal,
    task_queue: str,
    new_worker: Any,
) -> None:
    """The worst the public limits allow, at once: 220 pages in a tree with 16 KB incompressible
    cursors, the even ones failing for good with long errors, the odd ones stuck twice and then
    recording failed items with 1,000-character keys, a value of 16 KB per page folded into a
    result near its 256 KB limit, a tracker every second, a notifier, no failure policy, and a
    hand-over every 40 attempts. Before payloads had budgets, every workflow task failed after
    about 180 pages (TMPRL1103: payloads over 2 MB), and the batch was wedged for good."""
    bid = batch_id()
    pages = 220
    inp = BatchOrchestratorInput(
        page_processor="WorstCase",
        page_size=10,
        max_parallelism=20,
        args=json.dumps({"pages": pages, "items": 1}),
        first_cursor_str=big_cursor(0),
        batch_id=bid,
        batch_tracker=BatchTrackerConfig(
            name="measuring_tracker",
            args=json.dumps({"wid": bid}),
            interval=timedelta(seconds=1),
        ),
        notifier=BatchNotifierConfig(name="collecting_notifier"),
        failure_policy=FailurePolicy.disabled(),
        pages_per_run=40,
    )
    SEEN[bid].cursors[0] = inp.first_cursor_str
    largest_progress, reads, unreadable, slow = 0, 0, [], []
    async with new_worker(max_concurrent_activities=100):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        done = asyncio.ensure_future(handle.result())
        deadline = asyncio.get_running_loop().time() + 150
        while not done.done():  # progress stays readable throughout
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{await _problems(handle)}; queries failed: {unreadable}")
            try:
                p = await handle.get_progress(rpc_timeout=timedelta(seconds=10))
                largest_progress = max(largest_progress, _size(p))
                reads += 1
            except RPCError as err:
                # A query that times out or loses its connection on a loaded machine is
                # slow, not wedged; one the server or the worker refuses (a payload over its
                # limit) is a failure.
                transient = err.status in _TRANSIENT or any(w in str(err) for w in _TRANSPORT)
                (slow if transient else unreadable).append(f"{err.status}: {err}")
            await asyncio.wait([done], timeout=0.5)
        assert not unreadable, unreadable
        assert reads >= 10 and len(slow) <= reads // 4, (reads, slow)
        result = await asyncio.wait_for(done, 5)
        odd = pages // 2
        assert result.is_finished
        assert result.num_completed_pages == odd and result.num_failed_pages == pages - odd
        assert result.num_stuck_pages == result.num_pending_pages == 0
        assert result.num_failed_items == odd
        assert result.num_runs > 3
        # progress lists carry previews of long cursors, with their full length
        assert len(result.failed_pages) == 100
        for f in result.failed_pages:
            whole = SEEN[bid].cursors[page_of(f.cursor_str)]  # tree node, not page number
            assert f.cursor_length == len(whole)
            assert len(f.cursor_str) < 300 and not f.cursor_is_whole
            assert whole.startswith(f.cursor_str[:-1]), (f.page_num, f.cursor_str[:40], whole[:40])
        seen = SEEN[bid]
        assert seen.trackers > 3
        events = [event for event, *_ in seen.notices]
        assert "pages_failed" in events and "items_failed" in events and events[-1] == "finished"
        # the notifier got every failed page with its full cursor
        failed_cursors = {c for n, c in seen.cursors.items() if n % 2 == 0}
        assert seen.notified_cursors == failed_cursors

        out = assert_ok(await run_cli(temporal, "failures", bid, "--json"))
        listed = json.loads(out)
        assert listed["num_failed_pages"] == pages - odd
        assert len(listed["failed_pages"]) == 100
        latest = {f.page_num for f in result.failed_pages}
        assert {f["page_num"] for f in listed["failed_pages"]} == latest
        for f in listed["failed_pages"]:  # every listed page with its full cursor
            assert f["cursor_str"] == seen.cursors[page_of(f["cursor_str"])], f["page_num"]
            assert f["cursor_length"] == len(f["cursor_str"]) > 16_000
        assert len(listed["failed_items"]) == 100
        assert {i["key"] for i in listed["failed_items"]} <= set(seen.item_keys)

        histories = await _replays(orchestra.client, bid)
    handovers = [sum(p.ByteSize() for p in ps) for ps in continue_as_new_payloads(histories)]
    inputs = _activity_inputs(histories)
    result_size = _result_size(histories[-1])
    assert handovers and max(handovers) < 2 * MB
    assert largest_progress < 1 * MB and max(seen.progress_sizes) < 1 * MB
    assert max(max(sizes) for sizes in inputs.values()) < 1.5 * MB and result_size < 1 * MB
    largest = ", ".join(f"{name.split('.')[-1]} {max(sizes):,} B" for name, sizes in inputs.items())
    print(
        f"\nworst case: largest progress {largest_progress:,} B (tracker's "
        f"{max(seen.progress_sizes):,} B), largest hand-over {max(handovers):,} B over "
        f"{len(handovers)} hand-overs, result {result_size:,} B; largest inputs: {largest}"
    )


def _activity_inputs(histories: list[Any]) -> dict[str, list[int]]:
    """Input sizes of every activity the workflow scheduled, by activity type."""
    sizes: dict[str, list[int]] = {}
    for h in histories:
        for e in h.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                attrs = e.activity_task_scheduled_event_attributes
                size = sum(p.ByteSize() for p in attrs.input.payloads)
                sizes.setdefault(attrs.activity_type.name, []).append(size)
    return sizes


def _result_size(history: Any) -> int:
    for e in history.events:
        if e.HasField("workflow_execution_completed_event_attributes"):
            attrs = e.workflow_execution_completed_event_attributes
            return sum(p.ByteSize() for p in attrs.result.payloads)
    return 0


def _handovers(histories: list[Any]) -> list[int]:
    return [sum(p.ByteSize() for p in ps) for ps in continue_as_new_payloads(histories)]


@pytest.mark.slow
async def test_a_thousand_failed_pages_and_items_are_all_listed_and_all_redriven(
    orchestra: BatchOrchestratorClient,
    temporal: EmbeddedTemporal,
    task_queue: str,
    new_worker: Any,
) -> None:
    """1,000 pages fail for good and 10 pages record 100 failed items each, across hand-overs:
    ``failures --all`` lists every one with its cursor or key, and ``redrive`` / ``redrive
    --items`` run exactly those (the progress lists only the latest 100 of each)."""
    bid = batch_id()
    n = 1_000
    inp = BatchOrchestratorInput(
        page_processor="FanOutFailing",
        page_size=10,
        max_parallelism=100,
        args=json.dumps({"pages": n, "item_pages": 10, "items": 100}),
        first_cursor_strs=["root", "items-root"],
        batch_id=bid,
        pages_per_run=300,
        failure_policy=FailurePolicy.disabled(),
    )
    async with new_worker(max_concurrent_activities=200):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        t0 = time.monotonic()
        result = await asyncio.wait_for(handle.result(), 120)
        print(f"\nbatch {time.monotonic() - t0:.1f}s")
        assert result.num_failed_pages == n and result.num_failed_items == 1_000
        assert len(result.failed_pages) == len(result.failed_items) == 100
        assert result.num_runs > 2 and result.num_ledger_records > 0

        t0 = time.monotonic()
        out = assert_ok(await run_cli(temporal, "failures", bid, "--all", "--json"))
        print(f"failures --all {time.monotonic() - t0:.1f}s")
        listed = json.loads(out)
        assert listed["complete"] and listed["unavailable_runs"] == 0
        assert sorted(f["cursor_str"] for f in listed["failed_pages"]) == sorted(
            f"p-{i}" for i in range(n)
        )
        assert all(f["error_message"].endswith("is broken") for f in listed["failed_pages"])
        assert len({f["page_num"] for f in listed["failed_pages"]}) == n
        assert sorted(i["key"] for i in listed["failed_items"]) == sorted(SEEN[bid].item_keys)
        latest = json.loads(assert_ok(await run_cli(temporal, "failures", bid, "--json")))
        assert [f["page_num"] for f in latest["failed_pages"]] == [
            f.page_num for f in result.failed_pages
        ]

        FIXED.add(bid)  # "deploy the fix"; the redrive batches share the batch_id label
        assert_ok(await run_cli(temporal, "redrive", bid))
        pages = orchestra.get_handle(f"{bid}-redrive-1")
        t0 = time.monotonic()
        redriven = await asyncio.wait_for(pages.result(), 120)
        print(f"redrive {time.monotonic() - t0:.1f}s {redriven.num_runs} runs")
        seen = SEEN[pages.id]
        assert redriven.redrive_of == bid and redriven.num_failed_pages == 0
        assert redriven.num_completed_pages == n
        assert sorted(seen.completed) == sorted(f"p-{i}" for i in range(n))  # exactly those
        assert set(seen.attempts.values()) == {1}  # each once

        assert_ok(await run_cli(temporal, "redrive", bid, "--items"))
        items = orchestra.get_handle(f"{bid}-items-1")
        t0 = time.monotonic()
        rerun = await asyncio.wait_for(items.result(), 120)
        print(f"items {time.monotonic() - t0:.1f}s")
        assert rerun.num_failed_pages == 0
        assert sorted(SEEN[items.id].completed) == sorted(f"item:{k}" for k in SEEN[bid].item_keys)

        sizes = []
        for wid in (bid, pages.id, items.id):
            sizes += _handovers(await _replays(orchestra.client, wid))
    assert sizes and max(sizes) < 1.5 * MB


async def test_redrive_of_a_running_batch_reaches_every_failed_page(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    """150 failed pages (more than the 100 progress lists) are all queued again by a running
    batch's redrive, keep their page numbers, and run once more each, across hand-overs."""
    bid = batch_id()
    n = 150
    GATE[bid] = asyncio.Event()
    inp = BatchOrchestratorInput(
        page_processor="FanOutFailing",
        page_size=10,
        max_parallelism=50,
        args=json.dumps({"pages": n, "hold": True}),
        first_cursor_str="root",
        batch_id=bid,
        pages_per_run=60,
        failure_policy=FailurePolicy.disabled(),
        handover_wait=timedelta(seconds=1),
    )
    async with new_worker(max_concurrent_activities=100):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)

        async def failed() -> Any:
            p = await handle.get_progress()
            assert p.num_failed_pages == n, p.num_failed_pages
            return p

        await assert_eventually(failed, timeout=60)
        before = await handle.failures(all=True)
        assert len(before.failed_pages) == n and before.complete
        numbers = {f.cursor_str: f.page_num for f in before.failed_pages}
        FIXED.add(bid)
        p = await handle.redrive()
        assert p.num_failed_pages == 0 and p.num_redriven_pages == n
        assert p.num_pending_pages + p.num_processing_pages + p.num_completed_pages >= n

        async def all_ran() -> None:
            assert sorted(SEEN[bid].completed) == sorted(numbers), len(SEEN[bid].completed)

        await assert_eventually(all_ran, timeout=60)
        after = await handle.failures(all=True)
        assert after.failed_pages == [] and after.num_failed_pages == 0
        GATE[bid].set()
        result = await asyncio.wait_for(handle.result(), 60)
        histories = await _replays(orchestra.client, bid)
    assert result.num_failed_pages == 0 and result.num_completed_pages == n + 1
    assert all(SEEN[bid].attempts[c] == 2 for c in numbers)  # failed once, then redriven once
    assert result.num_redriven_pages == n and result.num_runs > 1
    # page numbers kept: the redriven attempts are numbered as the failed ones were
    ran = _attempted_pages(histories)
    assert {numbers[c] for c in numbers} <= ran
    assert max(_handovers(histories)) < 1.5 * MB


def _attempted_pages(histories: list[Any]) -> set[int]:
    pages = set()
    for h in histories:
        for e in h.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                attrs = e.activity_task_scheduled_event_attributes
                if attrs.activity_type.name == "batch_orchestra.process_page":
                    body = json.loads(attrs.input.payloads[0].data)
                    if body["attempt"] > 1:
                        pages.add(body["page_num"])
    return pages


async def test_failed_pages_a_run_of_an_older_version_kept_whole_are_recorded_and_redriven(
    orchestra: BatchOrchestratorClient,
    temporal: EmbeddedTemporal,
    task_queue: str,
    new_worker: Any,
) -> None:
    """A batch that continues as new onto this version carries failed pages kept whole in its
    state (no ledger yet): the new run writes them to the ledger, so they can still be listed
    and redriven, and keeps only previews."""
    bid = batch_id()
    old = [f"p-old-{i}-" + "o" * 400 for i in range(3)]
    settings = processor_settings(FanOutFailing)
    s = Scheduler(settings, 4, 0.0)
    s.enqueue(None, [(c, 10) for c in old] + [("q-0", 10)])
    s.take_runnable(3)
    for num in range(3):
        assert s.fail(num, "ApplicationError", "old", non_retryable=True, now=1.0).value == "failed"
    assert not any(p.recorded for p in s.failed)
    inp = BatchOrchestratorInput(
        page_processor="FanOutFailing",
        page_size=10,
        max_parallelism=4,
        args=json.dumps({"pages": 0, "items": 0}),
        batch_id=bid,
    )
    raw = input_to_wire(inp)
    raw["continuation"] = continuation_to_wire(
        BatchContinuation(settings=settings, scheduler=scheduler_to_state(s, None))
    )
    async with new_worker():
        await orchestra.client.start_workflow(
            "BatchOrchestrator", raw, id=bid, task_queue=task_queue
        )
        result = await asyncio.wait_for(orchestra.get_handle(bid).result(), 60)
        assert result.num_failed_pages == 3 and result.num_completed_pages == 1
        assert result.num_ledger_records >= 1
        assert all(not f.cursor_is_whole for f in result.failed_pages)
        listed = json.loads(assert_ok(await run_cli(temporal, "failures", bid, "--all", "--json")))
        assert sorted(f["cursor_str"] for f in listed["failed_pages"]) == sorted(old)
        FIXED.add(bid)
        handle = await orchestra.redrive(bid)
        again = await asyncio.wait_for(handle.result(), 60)
        assert again.num_completed_pages == 3 and sorted(SEEN[handle.id].completed) == sorted(old)
        await _replays(orchestra.client, bid)


class _Retained:
    """The client, as it would answer once the histories of ``gone`` runs are past the
    namespace's retention period (they are not found, and the visibility store forgets them)."""

    def __init__(self, client: Any, gone: set[str]) -> None:
        self._client, self._gone = client, gone
        self.data_converter = client.data_converter

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> Any:
        real = self._client.get_workflow_handle(workflow_id, run_id=run_id)
        gone = run_id in self._gone

        class Handle:
            async def _events(self, **kw: Any) -> Any:
                if gone:
                    raise RPCError("workflow execution not found", RPCStatusCode.NOT_FOUND, b"")
                async for event in real.fetch_history_events(**kw):
                    yield event

            def fetch_history_events(self, **kw: Any) -> Any:
                return self._events(**kw)

        return Handle()

    async def list_workflows(self, query: str) -> Any:
        async for e in self._client.list_workflows(query):
            if e.run_id not in self._gone:
                yield e


async def test_runs_gone_past_retention_are_counted_and_the_rest_is_read(
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Any,
) -> None:
    """The earliest runs of a batch are gone (past the namespace's retention period): listing
    and reading its ledger say how many, and give the failures of the runs still kept."""
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="FanOutFailing",
        page_size=10,
        max_parallelism=5,
        args=json.dumps({"pages": 40}),
        first_cursor_str="root",
        batch_id=bid,
        pages_per_run=10,
        failure_policy=FailurePolicy.disabled(),
    )
    client = orchestra.client
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.num_failed_pages == 40 and result.num_runs >= 3
    histories = await run_histories(client, bid)
    gone = [h.run_id for h in histories[:2]]
    lost = {e["page_num"] for h in histories[:2] for r in _records(h) for e in r["pages"]}
    assert lost  # the first runs recorded failures
    retained = _Retained(client, set(gone))
    latest, execution = histories[-1].run_id, histories[0].run_id
    found = await collect_failures(retained, bid, execution, latest, result.num_runs)  # type: ignore[arg-type]
    assert found.unavailable_runs == 2
    assert {p.page_num for p in found.pages} == set(range(1, 41)) - lost
    # the reader a redrive batch uses, a chunk at a time from the earliest run still kept
    read = await read_chunk(retained, ReadLedgerInput(workflow_id=bid, execution=execution))  # type: ignore[arg-type]
    assert read.done and read.unavailable_runs == 2
    assert {p.page_num for p in read.pages} == set(range(1, 41)) - lost
    everything = await collect_failures(client, bid, execution, latest, result.num_runs)
    assert everything.unavailable_runs == 0 and len(everything.pages) == 40


def _records(history: Any) -> list[dict[str, Any]]:
    out = []
    for e in history.events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "batch_orchestra.record_failures":
                out.append(json.loads(attrs.input.payloads[0].data))
    return out
