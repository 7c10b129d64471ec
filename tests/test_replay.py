"""The orchestrator's histories replay deterministically (it runs outside the sandbox)."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from batch_orchestra import BatchOrchestrator, BatchOrchestratorInput
from tests.helpers import batch_id, run_histories


async def test_histories_replay_without_nondeterminism(orchestra, task_queue, new_worker) -> None:
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor="Scripted",
        page_size=10,
        max_parallelism=4,
        batch_id=bid,
        pages_per_run=7,
        first_cursor_strs=["0", "1000"],
        args=json.dumps({"chain_len": 100, "fail": {"3": {"attempts": 1}}}),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 120)
    assert result.num_completed_pages == 20 and result.num_runs >= 3
    histories = await run_histories(orchestra.client, bid)
    assert len(histories) == result.num_runs
    replayer = Replayer(workflows=[BatchOrchestrator])
    for history in histories:
        await replayer.replay_workflow(history)  # raises on any nondeterminism


_HISTORIES = Path(__file__).parent / "histories"
# Big histories (big cursors, args or values: mostly padding) are recorded gzipped.
_RECORDED = sorted([*_HISTORIES.glob("*/*.json"), *_HISTORIES.glob("*/*.json.gz")])


def _name(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".json")


@pytest.mark.parametrize("path", _RECORDED, ids=lambda p: f"{p.parent.name}/{_name(p)}")
async def test_recorded_histories_of_released_versions_replay(path: Path) -> None:
    """A batch started on an earlier release must keep running on this code (a deploy mid-batch):
    every history recorded from a release (``python -m tests.histories.record``) replays."""
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
    history = WorkflowHistory.from_json(_name(path), text)
    await Replayer(workflows=[BatchOrchestrator]).replay_workflow(history)


def test_histories_are_recorded() -> None:
    assert len(_RECORDED) >= 14, "tests/histories/ lost its recorded histories"
