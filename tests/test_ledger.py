"""Payload budgets at the public limits, and the failure ledger, on the real dev server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

from temporalio.service import RPCError
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
from tests.helpers import batch_id, continue_as_new_payloads, run_histories
from tests.ledger_processors import SEEN, big_cursor, page_of
from tests.test_cli import assert_ok, run_cli

MB = 1024 * 1024


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


async def test_worst_case_payloads_stay_within_budget_and_the_batch_finishes(
    orchestra: BatchOrchestratorClient,
    temporal: EmbeddedTemporal,
    task_queue: str,
    new_worker: Any,
) -> None:
    """The worst the public limits allow, at once: 240 pages in a tree with 16 KB incompressible
    cursors, the even ones failing for good with long errors, the odd ones stuck twice and then
    recording failed items with 1,000-character keys, a value of 16 KB per page folded into a
    result near its 256 KB limit, a tracker every second, a notifier, no failure policy, and a
    hand-over every 40 attempts. Before payloads had budgets, every workflow task failed after
    about 180 pages (TMPRL1103: payloads over 2 MB), and the batch was wedged for good."""
    bid = batch_id()
    pages = 240
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
    largest_progress, unreadable = 0, []
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
            except RPCError as err:
                unreadable.append(str(err))
            await asyncio.wait([done], timeout=0.5)
        assert not unreadable, unreadable
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
    assert handovers and max(handovers) < 2 * MB
    assert largest_progress < 1 * MB and max(seen.progress_sizes) < 1 * MB
    print(
        f"\nworst case: largest progress {largest_progress:,} B (tracker's "
        f"{max(seen.progress_sizes):,} B), largest hand-over {max(handovers):,} B over "
        f"{len(handovers)} hand-overs"
    )
