"""Record BatchOrchestrator histories for the replay tests (``tests/test_replay.py``).

Run once per release whose workflow code changed, from a checkout of that release::

    python -m tests.histories.record tests/histories/<version>

Each scenario runs a real batch on an embedded dev server and writes one JSON history per
workflow run (``<scenario>-<run>.json``). The suite replays every file under
``tests/histories/`` against the current workflow code, so a change that would break a batch
still running on an older release (nondeterminism) fails ``make test``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

import tests.processors  # noqa: F401  (registers the test processors)
import tests.recovery_processors  # noqa: F401
from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    BatchTrackerConfig,
    EmbeddedTemporal,
)
from tests.helpers import run_histories

Scenario = Callable[[BatchOrchestratorClient, str, str], Awaitable[BatchOrchestratorHandle]]


async def _start(orchestra: BatchOrchestratorClient, bid: str, tq: str, **kw: Any) -> Any:
    return await orchestra.start(BatchOrchestratorInput(batch_id=bid, **kw), id=bid, task_queue=tq)


async def chains_retry_handover(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Scripted",
        page_size=10,
        max_parallelism=4,
        pages_per_run=7,
        first_cursor_strs=["0", "1000"],
        args=json.dumps({"chain_len": 100, "fail": {"3": {"attempts": 1}}}),
        batch_tracker=BatchTrackerConfig(name="record_tracker", interval=timedelta(seconds=1)),
        total_items=200,
    )
    await h.result()
    return h


async def controls(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Scripted",
        page_size=10,
        max_parallelism=2,
        args=json.dumps({"n": 300, "sleep": 0.2}),
    )
    await asyncio.sleep(1)
    await h.pause()
    await asyncio.sleep(0.5)
    await h.resume()
    await h.set_max_parallelism(3)
    await h.restore_max_parallelism()
    wh = h.workflow_handle
    await wh.signal("pause_signal")
    await asyncio.sleep(0.3)
    await wh.signal("resume_signal")
    await wh.signal("set_max_parallelism_signal", 4)
    await wh.signal("set_max_parallelism_signal", -1)
    await h.result()
    return h


async def stuck_then_recovers(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Scripted",
        page_size=10,
        max_parallelism=3,
        args=json.dumps({"n": 60, "fail": {"2": {"attempts": 4}}}),
    )
    await h.result()
    return h


async def failures(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="ScriptedAtMostOnce",
        page_size=10,
        max_parallelism=3,
        args=json.dumps({"n": 60, "fail": {"1": {"attempts": 1}, "3": {"attempts": 1}}}),
    )
    await h.result()
    return h


async def non_retryable(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="ScriptedNonRetryable",
        page_size=10,
        max_parallelism=3,
        args=json.dumps({"n": 60, "fail": {"2": {"attempts": 1, "before_enqueue": True}}}),
    )
    await h.result()
    return h


async def no_extended(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="ScriptedNoExtended",
        page_size=10,
        max_parallelism=3,
        args=json.dumps({"n": 40, "fail": {"1": {"attempts": 5}}}),
    )
    await h.result()
    return h


async def double_enqueue(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Scripted",
        page_size=10,
        max_parallelism=3,
        args=json.dumps({"n": 30, "double_enqueue": True}),
    )
    await h.result()
    return h


async def lookahead(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Lookahead",
        page_size=10,
        max_parallelism=5,
        args=json.dumps({"n": 200, "k": 4, "fail_leader_once": True}),
        pages_per_run=9,
    )
    await h.result()
    return h


async def looping(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(o, bid, tq, page_processor="Looping", page_size=10, max_parallelism=3)
    await h.result()
    return h


async def timeout(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="ScriptedNoExtended",
        page_size=10,
        max_parallelism=2,
        args=json.dumps({"n": 20, "sleep": 1.5}),
        page_timeout=timedelta(seconds=1),
    )
    await h.result()
    return h


async def handover_running(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Scripted",
        page_size=10,
        max_parallelism=4,
        args=json.dumps({"n": 120, "sleep": 1.2}),
        pages_per_run=5,
        handover_wait=timedelta(milliseconds=400),
    )
    await h.result()
    return h


async def cancelled(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Scripted",
        page_size=10,
        max_parallelism=2,
        args=json.dumps({"n": 1000, "sleep": 0.5}),
        batch_tracker=BatchTrackerConfig(name="record_tracker", interval=timedelta(seconds=5)),
    )
    await asyncio.sleep(2)
    await h.workflow_handle.cancel()
    try:
        await h.result()
    except WorkflowFailureError:
        pass
    return h


async def signal_enqueue(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    from batch_orchestra import WorkerSettings

    plugin = BatchOrchestraPlugin(settings=WorkerSettings(enqueue_by_signal=True))
    async with Worker(o.client, task_queue=f"{tq}-signal", plugins=[plugin]):
        h = await _start(
            o,
            bid,
            f"{tq}-signal",
            page_processor="Scripted",
            page_size=10,
            max_parallelism=3,
            args=json.dumps({"n": 80, "sleep": 0.05}),
        )
        await h.result()
    return h


async def outage_pause(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """The failure policy pauses the batch, a notifier hears it; fixed and resumed, it ends."""
    from batch_orchestra import BatchNotifierConfig
    from tests.processors import OUTAGE

    OUTAGE[bid] = True
    h = await _start(
        o,
        bid,
        tq,
        page_processor="Outage",
        page_size=10,
        max_parallelism=4,
        args=json.dumps({"n": 600}),
        pages_per_run=25,
        notifier=BatchNotifierConfig(name="record_notifier"),
    )
    while not (await h.get_progress()).is_paused:
        await asyncio.sleep(0.2)
    OUTAGE[bid] = False
    await h.resume()
    await h.result()
    return h


async def invalid_input(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    h = await _start(o, bid, tq, page_processor="NoSuchProcessor", page_size=10, max_parallelism=2)
    try:
        await h.result()
    except WorkflowFailureError:
        pass
    return h


async def recovery(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Discovery apart (a failing discovery, hand-overs), retry_page and skip_page."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="ApartSlowRetry",
        page_size=10,
        max_parallelism=3,
        pages_per_run=4,
        args=json.dumps({"n": 100, "fail": {"2": 1, "5": 99}, "discovery_fail": {"3": 1}}),
    )
    for _ in range(600):
        p = await h.get_progress()
        if {f.page_num for f in p.retrying_pages} == {2, 5} and p.num_completed_pages == 8:
            break
        await asyncio.sleep(0.1)
    await h.skip_page(5, "recorded skip")
    await h.retry_page(2)
    await h.result()
    return h


SCENARIOS: dict[str, Scenario] = {
    f.__name__: f
    for f in (
        chains_retry_handover,
        controls,
        stuck_then_recovers,
        failures,
        non_retryable,
        no_extended,
        double_enqueue,
        lookahead,
        looping,
        timeout,
        handover_running,
        cancelled,
        signal_enqueue,
        invalid_input,
        outage_pause,
        recovery,
    )
}


async def record(out_dir: Path, names: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    async with EmbeddedTemporal(use_env=False) as temporal:
        client = temporal.client
        orchestra = BatchOrchestratorClient(client)
        tq = f"record-{uuid.uuid4()}"
        async with Worker(client, task_queue=tq, plugins=[BatchOrchestraPlugin()]):
            for name in names:
                bid = f"{name}-{uuid.uuid4().hex[:8]}"
                handle = await asyncio.wait_for(SCENARIOS[name](orchestra, bid, tq), 180)
                if handle is None:
                    print(f"{name}: not applicable to this release")
                    continue
                histories = await run_histories(client, bid)
                for i, history in enumerate(histories):
                    path = out_dir / f"{name}-{i}.json"
                    path.write_text(history.to_json())
                print(f"{name}: {len(histories)} run(s)")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/histories/current")
    names = sys.argv[2:] or list(SCENARIOS)
    asyncio.run(record(out, names))


if __name__ == "__main__":
    main()
