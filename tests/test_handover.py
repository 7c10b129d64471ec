"""Continue-as-new at scale: dozens of hand-overs, exact counts, a hand-over state that does
not grow with the pages processed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client

import batch_orchestra._engine.history as history_module
from batch_orchestra import BatchOrchestratorClient, BatchOrchestratorInput, BatchTrackerConfig
from batch_orchestra._engine.continuation import unpack_pages
from tests.helpers import batch_id, continue_as_new_payloads, run_histories
from tests.processors import HISTORY_SEEN, RECORDS


async def _continue_as_new_inputs(client, workflow_id: str) -> list[dict]:
    """The continue-as-new input of every hand-over, in order."""
    histories = await run_histories(client, workflow_id)
    return [json.loads(p[0].data) for p in continue_as_new_payloads(histories)]


async def test_dozens_of_handovers_exact_counts_bounded_state(
    client, orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    chains = [str(k * 1000) for k in range(4)]
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=5,
        max_parallelism=8,
        batch_id=bid,
        args=json.dumps({"n": 1000, "chain_len": 1000}),
        first_cursor_strs=chains,
        pages_per_run=80,
    )
    # each chain k covers [1000k, 1000k + 1000) with n per chain: see processors.run_script
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 240)
        handovers = await _continue_as_new_inputs(client, bid)
    rec = RECORDS[bid]
    assert result.num_completed_pages == 800
    assert sorted(rec.pages) == list(range(800)), "every page processed exactly once"
    assert sorted(rec.items) == list(range(4000))
    assert len(handovers) >= 9 and result.num_runs == len(handovers) + 1
    sizes = [len(json.dumps(h)) for h in handovers]
    first, last = (
        handovers[0]["continuation"]["scheduler"],
        handovers[-1]["continuation"]["scheduler"],
    )
    assert len(last["recent"]) == len(first["recent"])  # a full window from the first hand-over
    held = unpack_pages(last["pages"])
    assert len(held["pages"].get("num", [])) <= len(chains)  # only the pending pages are carried
    # Without pending pages, sizes vary only by counters' digits and the cursors' lengths.
    assert max(sizes) <= min(sizes) + 100 * len(chains), sizes


async def test_pages_running_at_a_handover_finish_in_the_next_run(
    client, orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=1,
        max_parallelism=4,
        batch_id=bid,
        args=json.dumps({"n": 16, "sleep": 2.5}),
        first_cursor_strs=["0", "4", "8", "12"],
        pages_per_run=6,
        handover_wait=timedelta(milliseconds=500),
    )
    # chains of 4 pages each, from 0, 4, 8 and 12 (processors.run_script with chain_len)
    inp.args = json.dumps({"chain_len": 4, "sleep": 2.5})
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 120)
        handovers = await _continue_as_new_inputs(client, bid)
    rec = RECORDS[bid]
    assert result.num_completed_pages == 16 and result.num_failed_pages == 0
    assert sorted(rec.items) == list(range(16))
    assert all(attempt == 1 for _, attempt in rec.attempts), "no page ran twice"
    carried = [h["continuation"]["scheduler"]["running"] for h in handovers]
    assert any(carried), "some hand-over carried running pages"


async def test_the_batch_s_history_goes_on_across_hand_overs_into_its_result(
    client: Client,
    orchestra: BatchOrchestratorClient,
    task_queue: str,
    new_worker: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each hand-over carries the samples so far; the result's history reaches back to the
    first run; trackers get progress without it."""
    monkeypatch.setattr(history_module, "SAMPLE_SECONDS", 0.1)  # a minute in production
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=1,
        max_parallelism=2,
        batch_id=bid,
        args=json.dumps({"n": 30, "sleep": 0.1}),
        pages_per_run=8,
        batch_tracker=BatchTrackerConfig(
            name="history_tracker", interval=timedelta(milliseconds=500)
        ),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
        handovers = await _continue_as_new_inputs(client, bid)
    assert result.num_completed_pages == 30 and result.num_runs == len(handovers) + 1 >= 3
    carried = [h["continuation"]["history"]["rows"] for h in handovers]
    assert all(carried) and [len(rows) for rows in carried] == sorted(len(r) for r in carried)
    first_run_ends = carried[0][-1][0]
    h = result.history
    assert h[0].t <= first_run_ends < h[-1].t  # from the first run to the end
    assert h[-1].completed_pages == 30 and h[-1].completed_items == 30
    done = [s.completed_pages for s in h]
    assert done == sorted(done) and len(h) > len(carried[-1])
    assert any(s.pages_per_second > 0 for s in h)
    seen = HISTORY_SEEN[bid]
    assert seen and set(seen) == {0}, seen  # the tracker's progress leaves the history out
