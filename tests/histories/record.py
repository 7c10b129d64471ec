"""Record BatchOrchestrator histories for the replay tests (``tests/test_replay.py``).

Run once per release whose workflow code changed, from a checkout of that release::

    python -m tests.histories.record tests/histories/<version> [scenario ...]

Each scenario runs a real batch on an embedded dev server and writes one JSON history per
workflow run (``<scenario>-<run>.json``; ``<scenario>-<label>-<run>.json`` when it records
several batches; gzipped, ``.json.gz``, past 256 KB: big cursors, args and values are mostly
padding). The suite replays every file under ``tests/histories/`` against the current workflow
code, so a change that would break a batch still running on an older release (nondeterminism)
fails ``make test``. A scenario that does not reach the state it waits for (or does not take
the path it records) raises ``ScenarioError`` and the recorder stops with an error; every
history is replayed before it is written; a scenario's files from an earlier recording are
replaced. The scenarios' processors are in ``tests/history_processors.py``.

Scenarios (v0.1.0 recorded the first fourteen, v0.2.0 the first fifteen, v0.3.0 all of them;
``v0.3.0.dev1`` holds all but ``checkpoints`` as recorded from the main branch before the 0.3.0
release's last fixes, since a batch may have been started from a clone of it):

- ``chains_retry_handover``: two chains, a retried page, hand-overs (``pages_per_run``), a tracker.
- ``controls``: pause/resume, set and restore parallelism, by update and by signal.
- ``stuck_then_recovers``: a page through its initial retries into extended retries, then done.
- ``failures``: at-most-once pages that fail for good.
- ``non_retryable``: a non-retryable error before the enqueue ends a chain.
- ``no_extended``: initial retries exhausted, no extended retries: the page fails.
- ``double_enqueue``: a second enqueue in one run is refused.
- ``lookahead``: one page enqueues several successors; its leader fails after enqueueing.
- ``looping``: a processor that re-enqueues its own cursor is caught.
- ``timeout``: attempts past ``page_timeout``.
- ``handover_running``: pages running at hand-overs report by signal.
- ``cancelled``: a cancelled batch with a tracker.
- ``signal_enqueue``: enqueues by signal instead of update.
- ``invalid_input``: an unknown processor at describe.
- ``outage_pause``: the failure policy pauses the batch (notifier), resumed once fixed.
- ``recovery``: discovery apart (``next_page``) with a failing discovery, across hand-overs;
  ``retry_page`` and ``skip_page``.
- ``flow_rates``: ramp-up and rate limits (pages and items) across hand-overs; ``set_rate_limit``
  by update and by signal (a bad signal ignored, bad updates refused); limits lifted. Started
  paused (see ``_go``), then set going.
- ``flow_health``: a health check that says slow_down, stop, fails (raises) until "failing",
  then healthy, across hand-overs (a page handed over while it runs).
- ``flow_adaptive_canary``: adaptive parallelism cut by overloads and slow pages, with ramp-up
  (started paused, then set going); the canary pauses the batch (a notifier hears it), resume
  ramps up again.
- ``result_reduce``: a batch result folded by ``reduce`` in an activity (a page without a
  value); a failing fold leaves values unreduced across hand-overs; pages handed over while
  running report their values by signal; the fold at the end fails and is retried 30 s later.
- ``result_pause``: values waiting for a failing ``reduce`` pass 512 KB and pause the batch;
  fixed and resumed, it folds them all.
- ``items_notify``: per-item failures (``record_failure``): the notifier's ``items_failed``
  events, ``FailurePolicy.max_failed_items`` pausing the batch; pages failed for good
  (``pages_failed``, whose first notifier call fails); a tracker every 0.3 s, one call failing;
  an earlier retry arriving while a stuck page waits; all across hand-overs.
- ``redrive_running``: ``redrive()`` of a running, paused batch (its failed pages queued again,
  a second redrive finds none), then resumed.
- ``redrive_finished``: a finished batch with failed pages; ``BatchOrchestratorClient.redrive``
  starts a batch over them (``redrive_pages``, one that had enqueued its successor), and
  ``redrive_items`` one over item keys (``item_keys``, ``run_items``); all three recorded.
- ``no_progress``: no page completes and the same error repeats: the failure policy's
  ``no_progress_attempts`` pauses the batch; resumed, it progresses until only a failing page's
  retries can run: a stall, which the notifier hears of once ("stalled"); across hand-overs.
- ``cancel_held``: a cancelled batch whose final tracker call waits: a fold, a discovery, a
  tracker call and a notifier call in flight at the cancellation, a redrive and a page retry
  refused while it closes; retries and skips refused while it ran.
- ``handover_lost``: at a hand-over, attempts running (they say so by signal, then report
  success or failure by signal), one that never reports (timed out at its deadline, then its
  late report ignored) and one that waited for a worker slot and never started (run again).
- ``heartbeat_lost``: a page whose heartbeats stop (its event loop blocked) is retried.
- ``atmostonce_slots``: an at-most-once attempt that no worker slot takes in time
  (schedule-to-start timeout) runs again; hand-overs of an at-most-once batch.
- ``reused_id``: a batch started under the ID of a cancelled one whose page then enqueues and
  reports to it: those messages are ignored (both batches recorded).
- ``unknown_processor``: a batch started paused (``max_parallelism=0``: resume refused) whose
  worker lacks the processor when its first page runs: the attempt did no work and is retried.
- ``windows``: a batch over a series' window (its attempts and discoveries carry it), and one
  over an empty window, which ends at once with 0 pages (both recorded).
- ``bad_input``: an input that fails validation in the workflow.
- ``enqueue_coalesced``: a worker that coalesces pages' enqueues into one ``enqueue_many``.
- ``start_budget``: big args: a workflow task starts only a few attempts, the rest next task.
- ``big_state``: unfinished pages with big cursors: a hand-over put off (and one already
  draining called back) until the state fits, and new pages held while pages fail past the
  held-state budget.
- ``discovery_edges``: a discovery that times out, one running at a hand-over (run again by
  the next run), a successor cursor that repeats its page's and is ignored.
- ``checkpoints``: pages that fail after seven of their ten items (``context.items``) and
  resume at the eighth, their checkpoints carried across a hand-over after every page, with
  the failed item recorded before the failure; a processor's own checkpoint
  (``context.checkpoint``) read back (both recorded).
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.worker import Replayer, Worker

import tests.checkpoint_processors  # noqa: F401
import tests.history_processors  # noqa: F401  (registers the scenarios' processors)
import tests.processors  # noqa: F401  (registers the test processors)
import tests.recovery_processors  # noqa: F401
from batch_orchestra import (
    BatchNotifierConfig,
    BatchOrchestraPlugin,
    BatchOrchestrator,
    BatchOrchestratorClient,
    BatchOrchestratorHandle,
    BatchOrchestratorInput,
    BatchTrackerConfig,
    BatchWindow,
    EmbeddedTemporal,
    FailurePolicy,
    HealthCheckConfig,
    WorkerSettings,
)
from tests.helpers import run_histories
from tests.history_processors import (
    BROKEN,
    FAIL_AFTER_GATE,
    FOLD_GATE,
    HEALTH_PLAN,
    NOTIFIER_FAIL,
    NOTIFIER_GATE,
    RECORDS,
    REDUCE_BROKEN,
    REDUCE_REFUSES,
    RETRY_GATES,
    TRACKER_FAIL,
    TRACKER_FINAL_GATE,
    TRACKER_GATE,
    open_gate,
    reached,
)

Recorded = BatchOrchestratorHandle | dict[str, BatchOrchestratorHandle] | None
Scenario = Callable[[BatchOrchestratorClient, str, str], Awaitable[Any]]
GZIP_ABOVE_BYTES = 256 * 1024
"""A history whose JSON is bigger than this is written gzipped (``.json.gz``)."""


class ScenarioError(RuntimeError):
    """A scenario did not reach the state it waits for, or did not take the path it records."""


async def _start(orchestra: BatchOrchestratorClient, bid: str, tq: str, **kw: Any) -> Any:
    return await orchestra.start(BatchOrchestratorInput(batch_id=bid, **kw), id=bid, task_queue=tq)


async def _until(
    what: str, check: Callable[[], Any], timeout: float = 60.0, bid: str | None = None
) -> None:
    """Poll ``check`` (sync or async) until it is true; raise ``ScenarioError`` naming ``what``
    (and, given ``bid``, what the batch's pages did in this process)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        if loop.time() > deadline:
            seen = ""
            if bid is not None:
                rec = RECORDS[bid]
                seen = f" (attempts {rec.attempts}, completed {rec.completed})"
            raise ScenarioError(f"not reached within {timeout:g} s: {what}{seen}")
        await asyncio.sleep(0.05)


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ScenarioError(f"the scenario did not take its path: {what}")


async def _refused(call: Awaitable[Any], what: str) -> None:
    """``call`` (an update) must be refused by the batch."""
    try:
        await call
    except WorkflowUpdateFailedError:
        return
    raise ScenarioError(f"the batch accepted {what}, which it should refuse")


async def _events(handle: BatchOrchestratorHandle) -> list[Any]:
    """Every event of every run of the batch so far."""
    client = handle.workflow_handle._client
    return [e for h in await _histories(client, handle) for e in h.events]


async def _histories(client: Any, handle: BatchOrchestratorHandle) -> list[Any]:
    """The histories of the runs of the execution ``handle`` started (or the latest one)."""
    run_id = handle.workflow_handle.first_execution_run_id
    if run_id is None:
        return list(await run_histories(client, handle.id))
    histories = []
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = None
        for event in history.events:
            if event.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = (
                    event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                )
    return histories


def _chains(n: int) -> list[str]:
    return [f"{c}:0" for c in range(n)]


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

    async def both_retrying() -> bool:
        p = await h.get_progress()
        return {f.page_num for f in p.retrying_pages} == {2, 5} and p.num_completed_pages == 8

    await _until("pages 2 and 5 retrying, 8 pages completed", both_retrying)
    await h.skip_page(5, "recorded skip")
    await h.retry_page(2)
    await h.result()
    return h


# -- v0.3.0: flow control ------------------------------------------------------------------


async def _go(h: BatchOrchestratorHandle, parallelism: int, **limits: float | None) -> None:
    """Start a batch that was started paused (``max_parallelism=0``), with its rate limits set
    again first.

    Flow control's clock (the ramp-up's start, the rate limits' buckets) then starts in an
    update's workflow task. Started running, it would start in the task that resolves the
    describe local activity, whose time differs between the live run and a replay (by the
    local activity's completion time, some ms): a ramp-up step or a token falling in between
    makes the history fail to replay.
    """

    async def started() -> bool:
        p = await h.get_progress()
        return p.start_time is not None and p.is_paused

    await _until("the batch started, paused", started)
    if limits:
        await h.set_rate_limit(**limits)
    await h.set_max_parallelism(parallelism)


async def flow_rates(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Ramp-up and rate limits across hand-overs; set_rate_limit by update and by signal."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=5,
        max_parallelism=0,
        first_cursor_strs=_chains(4),
        args=json.dumps({"n": 6, "sleep": 0.05}),
        pages_per_run=8,
        ramp_up=timedelta(seconds=1.5),
        max_pages_per_second=8.0,
        max_items_per_second=30.0,
    )
    await _go(h, 4, max_pages_per_second=8.0, max_items_per_second=30.0)

    async def started() -> bool:
        return (await h.get_progress()).num_completed_pages >= 6

    await _until("6 pages completed under the limits", started)
    wh = h.workflow_handle
    await h.set_rate_limit(max_items_per_second=60.0)
    for bad in ({"bogus": 1.0}, {"max_pages_per_second": -1.0}):
        await _refused(wh.execute_update("set_rate_limit", args=[bad, None]), f"limits {bad}")
    await wh.signal("set_rate_limit_signal", {"max_pages_per_second": -1.0})  # ignored
    await wh.signal("set_rate_limit_signal", {"bogus": 1.0})  # ignored
    await wh.signal("set_rate_limit_signal", {"max_pages_per_second": 12.0})
    p = await h.set_rate_limit(max_pages_per_second=None, max_items_per_second=None)
    _expect(p.max_pages_per_second is None and p.max_items_per_second is None, "limits lifted")
    p = await h.result()
    _expect(p.num_completed_pages == 24 and p.num_runs >= 2, f"24 pages in runs: {p}")
    return h


async def flow_health(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A health check: slow_down, stop, failing (it raises), healthy, across hand-overs."""
    HEALTH_PLAN[bid] = [
        "healthy",
        "slow_down",
        "slow_down",
        "stop",
        "raise",
        "raise",
        "healthy",
        "stop",
        "healthy",
    ]
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=5,
        max_parallelism=4,
        first_cursor_strs=_chains(2),
        args=json.dumps({"n": 10, "sleep": 0.1, "gate": {"0:9": "end"}}),
        pages_per_run=6,
        handover_wait=timedelta(milliseconds=500),
        health_check=HealthCheckConfig(
            name="hist_health", interval=timedelta(milliseconds=200), failures_before_unhealthy=2
        ),
    )
    await _until("the health check gave its scripted verdicts", lambda: reached(bid, "health_done"))
    await _until("page 0:9 waits at its gate", lambda: reached(bid, "end"))
    open_gate(bid, "end")
    p = await h.result()
    changes = " | ".join(c.change for c in p.control_changes)
    _expect(p.num_completed_pages == 20 and p.health == "healthy", f"healthy at the end: {p}")
    _expect("failing" in changes and "stop" in changes and "slow_down" in changes, changes)
    return h


async def flow_adaptive_canary(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Adaptive parallelism (overloads, slow pages) with ramp-up; the canary pauses, resume."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=5,
        max_parallelism=0,
        first_cursor_strs=_chains(6),
        args=json.dumps({"n": 4, "sleep": 0.05, "slow": {"2:1": 0.6, "3:2": 0.6}, "capacity": 3}),
        pages_per_run=8,
        adaptive=True,
        target_page_latency=timedelta(milliseconds=400),
        ramp_up=timedelta(seconds=1),
        canary_pages=5,
        notifier=BatchNotifierConfig(name="hist_notifier"),
        failure_policy=FailurePolicy.disabled(),
    )
    await _go(h, 6)

    async def canary() -> bool:
        p = await h.get_progress()
        return p.is_paused and "canary" in (p.pause_reason or "")

    await _until("the canary paused the batch", canary)
    await h.resume()
    p = await h.result()
    _expect(p.num_completed_pages == 24 and p.adaptive_parallelism is not None, f"adaptive: {p}")
    _expect(("paused", 0, 0) in RECORDS[bid].notices, f"notices: {RECORDS[bid].notices}")
    return h


# -- v0.3.0: the batch result --------------------------------------------------------------


async def result_reduce(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Values folded by reduce across hand-overs and signals; failing folds; the end's retry."""
    REDUCE_BROKEN.add(bid)
    REDUCE_REFUSES[bid] = 11  # the last page's value: the fold at the end fails
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistReduce",
        page_size=10,
        max_parallelism=3,
        first_cursor_str="0:0",
        args=json.dumps(
            {
                "n": 12,
                "slow": {"0:3": 0.6, "0:7": 0.6},
                "fail": {"0:4": 1},
                "hold": {"0:5": "hold"},
                "gate": {"0:11": "last"},
                "no_value": ["0:2"],
            }
        ),
        pages_per_run=4,
        handover_wait=timedelta(milliseconds=300),
    )

    async def fold_failed() -> bool:
        return (await h.get_progress()).result_error is not None

    await _until("page 0:5 holds its chain", lambda: reached(bid, "hold"))
    await _until("a fold failed", fold_failed)
    REDUCE_BROKEN.discard(bid)
    open_gate(bid, "hold")

    async def all_but_the_last() -> bool:
        return reached(bid, "last") and (await h.get_progress()).num_completed_pages == 11

    # The last page completes last, so its value (which reduce refuses) is first folded at the
    # end: the fold that fails there is the end's own, which is retried 30 s later.
    await _until("every page but the last completed", all_but_the_last)
    open_gate(bid, "last")

    async def end_fold_failed() -> bool:
        p = await h.get_progress()
        return p.is_finished and p.result_error is not None

    await _until("the fold at the end failed", end_fold_failed)
    del REDUCE_REFUSES[bid]  # its retry, 30 s later, folds
    p = await asyncio.wait_for(h.result(), 60)
    _expect(p.result == {"sum": sum(range(12)) - 2, "pages": 11}, f"result {p.result}")
    _expect(p.num_runs >= 3 and p.num_unreduced_pages == 0, f"runs and unreduced: {p}")
    return h


async def result_pause(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Values waiting for a failing reduce pass 512 KB: the batch pauses; fixed, resumed."""
    REDUCE_BROKEN.add(bid)
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistReduce",
        page_size=1,
        max_parallelism=4,
        first_cursor_strs=_chains(4),
        args=json.dumps({"n": 12, "value_pad": 15_000}),
        pages_per_run=40,
    )

    async def paused() -> bool:
        p = await h.get_progress()
        return p.is_paused and "reduce" in (p.pause_reason or "")

    await _until("the batch paused itself for its unreduced values", paused)
    REDUCE_BROKEN.discard(bid)
    await h.resume()
    p = await h.result()
    _expect(p.result == {"sum": 4 * sum(range(12)), "pages": 48}, f"result {p.result}")
    return h


# -- v0.3.0: failed items and pages, notifier and tracker ----------------------------------


async def items_notify(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Item failures: items_failed events, max_failed_items pausing; pages_failed; a tracker."""
    BROKEN.add(bid)
    TRACKER_FAIL[bid] = {1}
    NOTIFIER_FAIL[bid] = {"pages_failed"}
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=10,
        max_parallelism=4,
        first_cursor_strs=_chains(2),
        args=json.dumps(
            {
                "n": 8,
                "sleep": 0.02,
                "fatal": ["1:3"],
                "fail": {"0:5": 4, "1:5": 1},
                "gate": {"1:5": "earlier"},
                "hold": {"0:6": "items", "1:6": "items"},
                "items": {"0:1": 1, "0:6": 2, "1:6": 2},
            }
        ),
        pages_per_run=5,
        handover_wait=timedelta(milliseconds=300),
        failure_policy=FailurePolicy(max_failed_items=3),
        notifier=BatchNotifierConfig(name="hist_notifier"),
        batch_tracker=BatchTrackerConfig(name="hist_tracker", interval=timedelta(seconds=0.3)),
    )
    rec = RECORDS[bid]

    async def stuck() -> bool:
        return reached(bid, "earlier") and (await h.get_progress()).num_stuck_pages == 1

    # Page 1:5 fails while 0:5 waits for its extended retry: its retry is due earlier.
    await _until("page 0:5 stuck while 1:5 waits at its gate", stuck)
    open_gate(bid, "earlier")
    await _until("pages 0:5 and 1:5 completed", lambda: {"0:5", "1:5"} <= set(rec.completed))
    open_gate(bid, "items")  # their failed items pass max_failed_items, pages still to run

    async def paused() -> bool:
        p = await h.get_progress()
        return p.is_paused and "items recorded as failed" in (p.pause_reason or "")

    await _until("max_failed_items paused the batch", paused)
    await h.resume()
    p = await h.result()
    events = {e for e, _, _ in rec.notices}
    _expect(p.num_failed_items == 5 and p.num_failed_pages == 1, f"failed items and pages: {p}")
    _expect({"items_failed", "pages_failed", "paused", "finished"} <= events, f"events {events}")
    _expect(len(rec.trackers) >= 3 and p.num_runs >= 3, f"tracker calls, runs: {p}")
    return h


async def no_progress(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """No page completes and the same error repeats: the batch pauses itself; later, only a
    failing page's retries can run: a stall, told to the notifier once."""
    BROKEN.add(bid)
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=10,
        max_parallelism=2,
        first_cursor_str="0:0",
        args=json.dumps({"n": 4, "flaky": ["0:0", "0:2"], "hold": {"0:2": "stall"}}),
        pages_per_run=3,
        handover_wait=timedelta(milliseconds=300),
        notifier=BatchNotifierConfig(name="hist_notifier"),
    )

    async def paused() -> bool:
        p = await h.get_progress()
        return p.is_paused and "no progress" in (p.pause_reason or "")

    await _until("the batch paused itself for lack of progress", paused)
    BROKEN.discard(bid)
    await h.resume()
    await _until("page 0:2 waits at its gate", lambda: reached(bid, "stall"))
    BROKEN.add(bid)  # 0:2 fails, and nothing else can run
    open_gate(bid, "stall")
    rec = RECORDS[bid]
    await _until("the notifier heard of the stall", lambda: ("stalled", 0, 0) in rec.notices)
    BROKEN.discard(bid)
    p = await h.result()
    events = [e for e, _, _ in rec.notices]
    _expect(p.num_completed_pages == 4 and p.num_runs >= 2, f"{p}")
    _expect(events.count("stalled") == 1 and "paused" in events, f"notices {rec.notices}")
    return h


async def redrive_running(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """redrive() of a running, paused batch; a second redrive finds nothing; resumed."""
    BROKEN.add(bid)
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=10,
        max_parallelism=2,
        first_cursor_str="0:0",
        args=json.dumps({"n": 6, "fatal": ["0:1", "0:3"], "gate": {"0:5": "end"}}),
        pages_per_run=4,
        notifier=BatchNotifierConfig(name="hist_notifier"),
    )

    async def two_failed() -> bool:
        return reached(bid, "end") and (await h.get_progress()).num_failed_pages == 2

    await _until("pages 0:1 and 0:3 failed for good, 0:5 running", two_failed)
    await h.pause()
    BROKEN.discard(bid)
    await o.redrive(bid)  # a running batch: the handle's redrive()
    p = await h.get_progress()
    _expect(p.num_redriven_pages == 2 and p.num_failed_pages == 0 and p.is_paused, f"{p}")
    p = await h.redrive()
    _expect(p.num_redriven_pages == 2, f"a second redrive found more: {p}")
    await h.resume()

    async def redriven() -> bool:
        return (await h.get_progress()).num_completed_pages == 5

    await _until("the redriven pages completed", redriven)
    open_gate(bid, "end")
    p = await h.result()
    _expect(p.num_completed_pages == 6 and p.num_failed_pages == 0, f"{p}")
    return h


async def redrive_finished(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A finished batch's failed pages (redrive) and failed items (redrive_items) run again."""
    BROKEN.add(bid)
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=2,
        max_parallelism=2,
        first_cursor_str="0:0",
        args=json.dumps(
            {"n": 6, "fatal": ["0:1"], "fatal_early": ["0:3"], "items": {"0:0": 1, "0:2": 2}}
        ),
    )
    old = await h.result()
    _expect(old.num_failed_pages == 2 and old.num_completed_pages == 2, f"old batch {old}")
    redrive = await o.redrive(bid)
    p = await redrive.result()
    # 0:1 had enqueued 0:2 (it is not enqueued again); 0:3 had not: its chain goes on to 0:5.
    _expect(p.num_completed_pages == 4 and p.redrive_of == bid, f"redrive batch {p}")
    keys = [f.key for f in old.failed_items] + ["0:0/0", "extra-1", "extra-2"]  # one twice
    items = await o.redrive_items(bid, keys)
    p = await items.result()
    _expect(p.num_completed_items == 5 and p.num_completed_pages == 3, f"items batch {p}")
    return {"old": h, "redrive": redrive, "items": items}


async def cancel_held(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Cancelled while a fold, a discovery, a tracker and a notifier call are in flight;
    refusals while it closes and while it ran."""
    BROKEN.add(bid)
    TRACKER_GATE.add(bid)
    TRACKER_FINAL_GATE.add(bid)
    FOLD_GATE.add(bid)
    NOTIFIER_GATE[bid] = "pages_failed"
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistApartReduce",
        page_size=10,
        max_parallelism=3,
        first_cursor_strs=["0:0", "1:0"],  # pages 0 and 1 (which fails for good)
        args=json.dumps(
            {
                "n": 5,
                "fatal": ["1:0"],
                "discover_gate": {"0:1": "discovery"},
                "gate": {"0:1": "page"},
            }
        ),
        batch_tracker=BatchTrackerConfig(name="hist_tracker", interval=timedelta(seconds=1)),
        notifier=BatchNotifierConfig(name="hist_notifier"),
    )
    for gate in ("discovery", "page", "fold", "tracker", "notifier"):
        await _until(f"the {gate} waits at its gate", lambda gate=gate: reached(bid, gate))
    # Page 2 (0:1) runs, page 0 completed, page 1 failed for good, page 7 was never discovered.
    await _refused(h.retry_page(2), "a retry of a running page")
    await _refused(h.retry_page(0), "a retry of a completed page")
    await _refused(h.retry_page(1), "a retry of a page failed for good")
    await _refused(h.skip_page(7, "not there"), "a skip of an unknown page")
    await _refused(
        h.workflow_handle.execute_update("skip_page", args=[2, " ", None]),
        "a skip without a reason",
    )
    await h.workflow_handle.cancel()
    await _until("the final tracker call waits", lambda: reached(bid, "final_tracker"))
    await _refused(h.redrive(), "a redrive of a cancelled batch")
    await _refused(h.retry_page(2), "a retry in a cancelled batch")
    open_gate(bid, "discovery")
    await _until(
        "the cancelled batch heard its discovery end", lambda: _handled(h, "discover-2-attempt-1")
    )
    for gate in ("fold", "page", "tracker", "notifier", "final_tracker"):
        open_gate(bid, gate)
    try:
        await h.result()
    except WorkflowFailureError:
        pass
    else:
        raise ScenarioError("the cancelled batch completed")
    return h


async def _handled(h: BatchOrchestratorHandle, activity_id: str) -> bool:
    """Whether the activity ``activity_id`` completed and a workflow task handled it since."""
    events = await _events(h)
    scheduled = {
        e.event_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_id == activity_id
    }
    for i, e in enumerate(events):
        done = e.activity_task_completed_event_attributes
        if e.HasField("activity_task_completed_event_attributes") and (
            done.scheduled_event_id in scheduled
        ):
            return any(x.HasField("workflow_task_completed_event_attributes") for x in events[i:])
    return False


# -- v0.3.0: hand-overs, lost attempts, workers ----------------------------------------------


async def handover_lost(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Attempts at a hand-over that say they run and report, one that never reports (deadline)
    and one that waited for a worker slot and never started (confirm-by)."""
    slots = f"{tq}-slots"
    cursors = ["a:0", "b:0", "c:0", "d:0"]
    async with Worker(
        o.client, task_queue=slots, plugins=[BatchOrchestraPlugin()], max_concurrent_activities=3
    ):
        h = await _start(
            o,
            bid,
            slots,
            page_processor="HistChain",
            page_size=1,
            max_parallelism=4,
            first_cursor_strs=cursors,
            args=json.dumps({"gate": {c: c for c in cursors}}),
            pages_per_run=4,
            handover_wait=timedelta(milliseconds=300),
            # The attempt that never started is taken back 1 + 15 s after the hand-over, before
            # the one that never reports counts as timed out (10 + 10 s).
            heartbeat_timeout=timedelta(seconds=1),
            page_timeout=timedelta(seconds=10),
        )

        # Three attempts take the worker's three slots and wait at their gates; the fourth
        # waits for a slot.
        def running() -> list[str]:
            return [c for c in cursors if reached(bid, c)]

        await _until("three attempts wait at their gates", lambda: len(running()) == 3)

        async def handed_over() -> bool:
            return (await h.get_progress()).num_runs >= 2

        await _until("the run handed its four attempts over", handed_over)
        lost, failing, ok = running()
        (unstarted,) = set(cursors) - {lost, failing, ok}
        # They say they run (by signal), then report by signal: one fails, one succeeds. The
        # attempt that waited for a slot was dropped with the old run: it runs again later.
        FAIL_AFTER_GATE[bid] = {failing}
        RETRY_GATES[bid] = {lost: "end"}  # the batch stays open for the late report
        open_gate(bid, failing)
        open_gate(bid, ok)
        rec = RECORDS[bid]
        await _until(
            f"{unstarted} ran again", lambda: unstarted in rec.completed, timeout=40, bid=bid
        )
        # The lost attempt never reports: at its deadline it counts as timed out and runs
        # again; only then does the first attempt report, too late.
        await _until(
            f"{lost}'s retry started", lambda: (lost, 2) in rec.attempts, timeout=40, bid=bid
        )
        reports = await _signals(h, "batch_orchestra.page_finished")
        open_gate(bid, lost)

        async def late_report() -> bool:
            return await _signals(h, "batch_orchestra.page_finished") > reports

        await _until(f"{lost}'s first attempt reported late", late_report)
        open_gate(bid, "end")
        p = await asyncio.wait_for(h.result(), 60)
    _expect(p.num_completed_pages == 4 and p.num_failed_pages == 0, f"{p}")
    _expect((unstarted, 1) not in rec.attempts, f"{unstarted}'s first attempt ran: {rec.attempts}")
    _expect((unstarted, 2) in rec.attempts, f"{unstarted} did not run again: {rec.attempts}")
    return h


async def _signals(h: BatchOrchestratorHandle, name: str) -> int:
    """How many signals called ``name`` the batch's runs received so far."""
    return sum(
        e.workflow_execution_signaled_event_attributes.signal_name == name for e in await _events(h)
    )


async def heartbeat_lost(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A page whose heartbeats stop (its worker's event loop blocked) is retried."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=10,
        max_parallelism=2,
        first_cursor_str="0:0",
        args=json.dumps({"n": 4, "block": {"0:1": 3.0}}),
        heartbeat_timeout=timedelta(seconds=1),
    )
    p = await h.result()
    _expect(p.num_completed_pages == 4, f"{p}")
    _expect(("0:1", 2) in RECORDS[bid].attempts, f"0:1 was not retried: {RECORDS[bid].attempts}")
    return h


async def atmostonce_slots(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """An at-most-once attempt no worker slot takes in time runs again; hand-overs."""
    slots = f"{tq}-amo"
    async with Worker(
        o.client, task_queue=slots, plugins=[BatchOrchestraPlugin()], max_concurrent_activities=2
    ):
        h = await _start(
            o,
            bid,
            slots,
            page_processor="HistAtMostOnce",
            page_size=1,
            max_parallelism=3,
            first_cursor_strs=["a:0", "b:0", "c:0"],
            # two of the three first attempts take the worker's slots and wait
            args=json.dumps({"n": 2, "gate": {c: "slots" for c in ("a:0", "b:0", "c:0")}}),
            pages_per_run=4,
        )

        async def timed_out() -> bool:
            return any(
                e.HasField("activity_task_timed_out_event_attributes") for e in await _events(h)
            )

        await _until("an attempt timed out waiting for a worker slot", timed_out, timeout=40)
        open_gate(bid, "slots")
        p = await asyncio.wait_for(h.result(), 60)
    _expect(p.num_completed_pages == 6 and p.num_failed_pages == 0 and p.num_runs >= 2, f"{p}")
    return h


async def reused_id(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A batch under the ID of a cancelled one, whose page then enqueues and reports to it."""
    old = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=1,
        max_parallelism=2,
        first_cursor_str="0:0",
        # it works a moment after its enqueue: the enqueue goes out on its own, not held
        # for its result (this worker finds HistChain's pages quick)
        args=json.dumps({"n": 2, "hold": {"0:0": "old"}, "slow": {"0:0": 0.2}}),
        heartbeat_timeout=None,  # the old page does not hear of the cancellation
        handover_wait=timedelta(milliseconds=20),  # ... and reports by signal
    )
    await _until("the old batch's page waits", lambda: reached(bid, "old"))
    await old.workflow_handle.cancel()
    try:
        await old.result()
    except WorkflowFailureError:
        pass
    new = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=1,
        max_parallelism=2,
        first_cursor_str="0:0",
        args=json.dumps({"n": 2, "hold": {"0:0": "new"}}),
    )
    await _until("the new batch's page waits", lambda: reached(bid, "new"))
    open_gate(bid, "old")

    async def reported() -> bool:
        return any(
            e.workflow_execution_signaled_event_attributes.signal_name
            == "batch_orchestra.page_finished"
            for e in await _events(new)
        )

    await _until("the old page's enqueue and report reached the new batch", reported)
    enqueues = [
        e
        for e in await _events(new)
        if e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == "batch_orchestra.enqueue"
    ]
    _expect(len(enqueues) == 1, f"{len(enqueues)} enqueue updates reached the new batch")
    open_gate(bid, "new")
    p = await new.result()
    _expect(p.num_completed_pages == 2 and p.num_discovered_pages == 2, f"{p}")
    return {"old": old, "new": new}


async def unknown_processor(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Started paused (resume refused); the worker lacks the processor when a page runs."""
    from batch_orchestra._worker.processor import PROCESSORS

    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistVanishing",
        page_size=10,
        max_parallelism=0,
        first_cursor_str="0:0",
        args=json.dumps({"n": 3}),
    )

    async def started() -> bool:  # its scheduler is built: the resume validator can judge
        p = await h.get_progress()
        return p.start_time is not None and p.is_paused

    await _until("the batch started, paused", started)
    await _refused(h.resume(), "a resume of a batch started at max_parallelism 0")
    cls = PROCESSORS.unregister("HistVanishing")
    try:
        await h.set_max_parallelism(2)

        async def not_run() -> bool:
            p = await h.get_progress()
            return any(e.error_type == "BatchOrchestraUnknownPageProcessor" for e in p.errors)

        await _until("a page found no processor on its worker", not_run)
    finally:
        PROCESSORS.register(cls)
    p = await h.result()
    _expect(p.num_completed_pages == 3 and p.num_failed_pages == 0, f"{p}")
    return h


async def windows(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A batch over a window of a series (its pages and discoveries carry it), and one over an
    empty window, which ends at once with 0 pages."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistApart",
        page_size=10,
        max_parallelism=2,
        first_cursor_str="0:0",
        args=json.dumps({"n": 3}),
        window=BatchWindow(kind="watermark", low="10", high="20", series="record"),
    )
    p = await h.result()
    _expect(p.num_completed_pages == 3 and p.window is not None, f"{p}")
    empty = await _start(
        o,
        f"{bid}-empty",
        tq,
        page_processor="HistChain",
        page_size=10,
        max_parallelism=2,
        first_cursor_str="0:0",
        window=BatchWindow(kind="watermark", low="20", high="20", series="record"),
    )
    p = await empty.result()
    _expect(p.is_finished and p.num_completed_pages == 0, f"an empty window ran pages: {p}")
    return {"window": h, "empty": empty}


async def bad_input(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """An input the workflow itself refuses (not through the validating client)."""
    wh = await o.client.start_workflow(
        "BatchOrchestrator",
        {"page_processor": "HistChain", "page_size": 0, "max_parallelism": 1, "batch_id": bid},
        id=bid,
        task_queue=tq,
    )
    try:
        await wh.result()
    except WorkflowFailureError:
        return o.get_handle(bid)
    raise ScenarioError("the workflow took an input with page_size 0")


async def enqueue_coalesced(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A worker with one update in flight per batch coalesces enqueues into enqueue_many."""
    plugin = BatchOrchestraPlugin(settings=WorkerSettings(max_updates_in_flight=1))
    async with Worker(o.client, task_queue=f"{tq}-coalesce", plugins=[plugin]):
        h = await _start(
            o,
            bid,
            f"{tq}-coalesce",
            page_processor="HistChain",
            page_size=1,
            max_parallelism=8,
            first_cursor_strs=_chains(8),
            args=json.dumps({"n": 3, "sleep": 0.2}),
        )
        p = await h.result()
    many = [
        e
        for e in await _events(h)
        if e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == "batch_orchestra.enqueue_many"
    ]
    _expect(p.num_completed_pages == 24 and bool(many), "no enqueue_many update was accepted")
    return h


async def start_budget(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Args of 200 KB: a workflow task starts four attempts, the rest start in the next ones."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistChain",
        page_size=1,
        max_parallelism=10,
        first_cursor_strs=_chains(10),
        args=json.dumps({"n": 1, "pad": "p" * 200_000}),
    )
    p = await h.result()
    _expect(p.num_completed_pages == 10, f"{p}")
    return h


async def big_state(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """Big cursors: a hand-over put off (and one draining called back) until the state fits;
    new pages held while pages fail past the held-state budget."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistBig",
        page_size=1,
        max_parallelism=20,
        first_cursor_strs=[f"s:{k}" for k in range(20)],
        args=json.dumps(
            {"spawners": 2, "spawn": 55, "pad": 15_000, "fail": ["0:0", "0:1"], "sleep": 0.05}
        ),
        pages_per_run=20,
        handover_wait=timedelta(seconds=5),
    )
    p = await h.result()
    _expect(p.num_completed_pages == 130 and p.num_runs >= 3, f"{p}")
    return h


async def discovery_edges(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    """A discovery that times out, one running at a hand-over, a repeated cursor ignored."""
    h = await _start(
        o,
        bid,
        tq,
        page_processor="HistApart",
        page_size=10,
        max_parallelism=3,
        first_cursor_str="0:0",
        # One chain: nothing else starts (no hand-over) while 0:0's discovery outlasts
        # page_timeout; 0:3, the run's fourth attempt, hands over with its discovery running.
        args=json.dumps({"n": 8, "discover_slow": {"0:0": 1.5, "0:3": 1.0}, "dup": ["0:1"]}),
        page_timeout=timedelta(seconds=1.2),
        pages_per_run=4,
        handover_wait=timedelta(milliseconds=300),
    )
    p = await h.result()
    discoveries = RECORDS[bid].discoveries
    _expect(p.num_completed_pages == 8 and p.num_runs >= 2, f"{p}")
    _expect({("0:0", 2), ("0:3", 2)} <= set(discoveries), f"discoveries {discoveries}")
    return h


async def checkpoints(o: BatchOrchestratorClient, bid: str, tq: str) -> Any:
    from tests.checkpoint_processors import RESUMED

    h = await _start(
        o,
        bid,
        tq,
        page_processor="FailsAfterSeven",
        page_size=10,
        max_parallelism=2,
        first_cursor_str="0",
        args=json.dumps({"pages": 3}),
        pages_per_run=1,
        handover_wait=timedelta(milliseconds=200),
    )
    p = await h.result()
    _expect(p.num_runs >= 3 and p.num_completed_items == 30, f"{p}")
    _expect(sorted(set(RESUMED[bid])) == [(1, 0), (2, 7)], f"resumed {RESUMED[bid]}")
    manual = f"{bid}-manual"
    m = await _start(
        o,
        manual,
        tq,
        page_processor="ManualCheckpoint",
        page_size=10,
        max_parallelism=2,
        args="{}",
    )
    p = await m.result()
    _expect(RESUMED[manual] == [None, {"next": 7}], f"resumed {RESUMED[manual]}")
    return {"pages": h, "manual": m}


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
        flow_rates,
        flow_health,
        flow_adaptive_canary,
        result_reduce,
        result_pause,
        items_notify,
        no_progress,
        redrive_running,
        redrive_finished,
        cancel_held,
        handover_lost,
        heartbeat_lost,
        atmostonce_slots,
        reused_id,
        unknown_processor,
        windows,
        bad_input,
        enqueue_coalesced,
        start_budget,
        big_state,
        discovery_edges,
        checkpoints,
    )
}


def _write(out_dir: Path, stem: str, text: str) -> int:
    """Write one history, gzipped past ``GZIP_ABOVE_BYTES``; returns the bytes written."""
    data = text.encode()
    if len(data) > GZIP_ABOVE_BYTES:
        data = gzip.compress(data, 9, mtime=0)
        (out_dir / f"{stem}.json.gz").write_bytes(data)
    else:
        (out_dir / f"{stem}.json").write_bytes(data)
    return len(data)


def _coverage_context(name: str) -> None:
    """Under ``coverage run``, label the lines each scenario runs with its name (see them with
    ``coverage html --show-contexts``)."""
    try:
        import coverage
    except ImportError:
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(name)


async def _tell_progress(orchestra: BatchOrchestratorClient, name: str, bid: str) -> None:
    """Print where the scenario's batch was (to see why it did not get where it should)."""
    try:
        p = await orchestra.get_handle(bid).get_progress()
    except Exception as err:  # the batch may not exist, or have closed
        print(f"{name} failed; its batch {bid}: {err!r}", file=sys.stderr)
        return
    print(
        f"{name} failed; its batch {bid}: {p.num_completed_pages} pages completed, "
        f"{p.num_processing_pages} running, {p.num_pending_pages} pending, "
        f"{p.num_stuck_pages} stuck, {p.num_failed_pages} failed, runs {p.num_runs}, "
        f"finished {p.is_finished}, paused {p.is_paused} ({p.pause_reason}), "
        f"errors {[(e.error_type, e.error_message[:80]) for e in p.errors[:5]]}",
        file=sys.stderr,
    )


async def record(out_dir: Path, names: list[str]) -> None:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    async with EmbeddedTemporal(use_env=False) as temporal:
        client = temporal.client
        orchestra = BatchOrchestratorClient(client)
        tq = f"record-{uuid.uuid4()}"
        async with Worker(client, task_queue=tq, plugins=[BatchOrchestraPlugin()]):
            for name in names:
                bid = f"{name}-{uuid.uuid4().hex[:8]}"
                _coverage_context(name)
                try:
                    recorded: Recorded = await asyncio.wait_for(
                        SCENARIOS[name](orchestra, bid, tq), 180
                    )
                except BaseException:
                    await _tell_progress(orchestra, name, bid)
                    raise
                if recorded is None:
                    print(f"{name}: not applicable to this release")
                    continue
                batches = recorded if isinstance(recorded, dict) else {"": recorded}
                for old in [*out_dir.glob(f"{name}-*.json"), *out_dir.glob(f"{name}-*.json.gz")]:
                    old.unlink()  # an earlier recording's runs (their number may differ)
                total, runs = 0, []
                for label, handle in batches.items():
                    histories = await _histories(client, handle)
                    prefix = f"{name}-{label}" if label else name
                    for i, history in enumerate(histories):
                        # what the suite will check, checked now: a history that does not
                        # replay on the code that recorded it is no history of that code
                        try:
                            await Replayer(workflows=[BatchOrchestrator]).replay_workflow(history)
                        except Exception:
                            bad = out_dir / f"{prefix}-{i}.nondeterministic"
                            bad.write_text(history.to_json())
                            print(
                                f"{name}: run {i} does not replay; kept as {bad}", file=sys.stderr
                            )
                            raise
                        total += _write(out_dir, f"{prefix}-{i}", history.to_json())
                    runs.append(f"{label + ': ' if label else ''}{len(histories)} run(s)")
                print(f"{name}: {', '.join(runs)}, {total / 1024:.0f} KB")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/histories/current")
    names = sys.argv[2:] or list(SCENARIOS)
    asyncio.run(record(out, names))


if __name__ == "__main__":
    main()
