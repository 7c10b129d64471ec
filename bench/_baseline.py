"""The raw Temporal baselines, plain workflows with no pagination and no scheduler.

* ``RawBaseline``: N no-op activities under a cap. No signals: it is what the dev server and
  one worker can do at best with the same concurrency cap and the same continue-as-new rule as
  the BatchOrchestrator (continue as new at the same history budget, or every
  ``pages_per_run`` activities; in-flight activities are drained first). With
  ``signal_each=True`` every activity also sends one signal to its workflow before it works,
  the raw cost of a design where each page signals the orchestrator once.
* ``PlainChain``: one chain in the plain one-signal-per-page design: each activity signals
  the next index to its workflow, which starts that activity when the signal arrives. Its
  wall time / N is the bare hop cost of a signal-driven chain.

Only ``temporalio`` is imported, so the module loads cleanly in the workflow sandbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

BASELINE_WORKFLOW = "BenchRawBaseline"
BASELINE_ACTIVITY = "bench.raw_noop"
BASELINE_SIGNAL_ACTIVITY = "bench.raw_noop_signal"
BASELINE_SIGNAL = "bench.raw_page_signal"
PLAIN_CHAIN_WORKFLOW = "BenchPlainChain"
PLAIN_CHAIN_ACTIVITY = "bench.plain_chain_page"
PLAIN_CHAIN_SIGNAL = "bench.plain_chain_next"
# The same per-run history budget as batch_orchestra._workflow.
HISTORY_EVENTS_PER_RUN = 10_000
HISTORY_BYTES_PER_RUN = 8 * 1024 * 1024


def _history_budget_reached() -> bool:
    info = workflow.info()
    return (
        info.get_current_history_length() >= HISTORY_EVENTS_PER_RUN
        or info.get_current_history_size() >= HISTORY_BYTES_PER_RUN
    )


_GOLDEN = 0.6180339887498949


def page_duration(index: int, page_seconds: float, jitter: float) -> float:
    """How long page ``index`` sleeps: ``page_seconds`` spread evenly over
    ``[1 - jitter, 1 + jitter] * page_seconds`` by a fixed low-discrepancy sequence, so that
    the baseline and the orchestrator see exactly the same durations (mean ``page_seconds``)."""
    if page_seconds <= 0:
        return 0.0
    u = (index * _GOLDEN) % 1.0
    return page_seconds * (1.0 + jitter * (2.0 * u - 1.0))


@dataclass
class RawNoopInput:
    index: int
    page_seconds: float = 0.0
    jitter: float = 0.0


@activity.defn(name=BASELINE_ACTIVITY)
async def raw_noop(inp: RawNoopInput) -> int:
    """Do nothing (or sleep ``page_seconds``)."""
    seconds = page_duration(inp.index, inp.page_seconds, inp.jitter)
    if seconds > 0:
        await asyncio.sleep(seconds)
    return 1


@activity.defn(name=BASELINE_SIGNAL_ACTIVITY)
async def raw_noop_signal(inp: RawNoopInput) -> int:
    """Send one signal to this activity's workflow, then do what ``raw_noop`` does."""
    info = activity.info()
    await (
        activity.client()
        .get_workflow_handle(info.workflow_id or "")
        .signal(BASELINE_SIGNAL, inp.index)
    )
    return await raw_noop(inp)


@dataclass
class RawBaselineInput:
    total: int
    parallelism: int
    page_seconds: float = 0.0
    jitter: float = 0.0
    pages_per_run: int | None = None
    page_timeout_seconds: float = 300.0
    done: int = 0
    """Activities finished in earlier runs (the only state carried across continue-as-new)."""
    signal_each: bool = False
    """Every activity sends one signal to the workflow before it works."""


@workflow.defn(name=BASELINE_WORKFLOW)
class RawBaseline:
    def __init__(self) -> None:
        self._running = 0
        self._done = 0
        self._dirty = False
        self.signals = 0

    @workflow.signal(name=BASELINE_SIGNAL)
    def on_page_signal(self, index: int) -> None:
        self.signals += 1

    def _on_done(self, fut: asyncio.Future[int]) -> None:
        fut.exception()  # a failed no-op still counts as done; do not leave it unobserved
        self._running -= 1
        self._done += 1
        self._dirty = True

    def _should_continue_as_new(self, inp: RawBaselineInput, started_here: int) -> bool:
        if inp.pages_per_run is not None and started_here >= inp.pages_per_run:
            return True
        return _history_budget_reached()

    @workflow.run
    async def run(self, inp: RawBaselineInput) -> int:
        self._done = inp.done
        next_index = inp.done  # the previous run drained, so started == done
        started_here = 0
        draining = False
        while True:
            while (
                not draining
                and self._running < inp.parallelism
                and next_index < inp.total
                and (inp.pages_per_run is None or started_here < inp.pages_per_run)
            ):
                handle = workflow.start_activity(
                    raw_noop_signal if inp.signal_each else raw_noop,
                    RawNoopInput(next_index, inp.page_seconds, inp.jitter),
                    start_to_close_timeout=timedelta(seconds=inp.page_timeout_seconds),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
                handle.add_done_callback(self._on_done)
                self._running += 1
                next_index += 1
                started_here += 1
            if self._done >= inp.total:
                return self._done
            if not draining and self._should_continue_as_new(inp, started_here):
                draining = True
            if draining and self._running == 0:
                workflow.continue_as_new(
                    RawBaselineInput(
                        total=inp.total,
                        parallelism=inp.parallelism,
                        page_seconds=inp.page_seconds,
                        jitter=inp.jitter,
                        pages_per_run=inp.pages_per_run,
                        page_timeout_seconds=inp.page_timeout_seconds,
                        done=self._done,
                        signal_each=inp.signal_each,
                    )
                )
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False


@dataclass
class PlainChainPageInput:
    index: int
    total: int
    page_seconds: float = 0.0
    jitter: float = 0.0


@activity.defn(name=PLAIN_CHAIN_ACTIVITY)
async def plain_chain_page(inp: PlainChainPageInput) -> int:
    """Signal the next index to this activity's workflow (if any), then work: the same order
    as a pipelined page processor."""
    if inp.index + 1 < inp.total:
        info = activity.info()
        await (
            activity.client()
            .get_workflow_handle(info.workflow_id or "")
            .signal(PLAIN_CHAIN_SIGNAL, inp.index + 1)
        )
    seconds = page_duration(inp.index, inp.page_seconds, inp.jitter)
    if seconds > 0:
        await asyncio.sleep(seconds)
    return 1


@dataclass
class PlainChainInput:
    total: int
    page_seconds: float = 0.0
    jitter: float = 0.0
    page_timeout_seconds: float = 300.0
    done: int = 0
    """Activities finished in earlier runs."""
    pending: list[int] = field(default_factory=lambda: [0])
    """Indexes signalled but not started yet (carried across continue-as-new)."""


@workflow.defn(name=PLAIN_CHAIN_WORKFLOW)
class PlainChain:
    """One chain, one signal per page: the next activity starts when its index is signalled."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._running = 0
        self._done = 0
        self._dirty = False

    @workflow.signal(name=PLAIN_CHAIN_SIGNAL)
    def next_page(self, index: int) -> None:
        self._pending.append(index)
        self._dirty = True

    def _on_done(self, fut: asyncio.Future[int]) -> None:
        fut.exception()
        self._running -= 1
        self._done += 1
        self._dirty = True

    @workflow.run
    async def run(self, inp: PlainChainInput) -> int:
        self._done = inp.done
        self._pending[:0] = inp.pending
        draining = False
        while True:
            while self._pending and not draining:
                handle = workflow.start_activity(
                    plain_chain_page,
                    PlainChainPageInput(
                        self._pending.pop(0), inp.total, inp.page_seconds, inp.jitter
                    ),
                    start_to_close_timeout=timedelta(seconds=inp.page_timeout_seconds),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
                handle.add_done_callback(self._on_done)
                self._running += 1
            if self._done >= inp.total:
                return self._done
            if not draining and _history_budget_reached():
                draining = True
            if draining and self._running == 0:
                # A running page signals before it completes, so nothing is in flight now.
                workflow.continue_as_new(
                    PlainChainInput(
                        total=inp.total,
                        page_seconds=inp.page_seconds,
                        jitter=inp.jitter,
                        page_timeout_seconds=inp.page_timeout_seconds,
                        done=self._done,
                        pending=list(self._pending),
                    )
                )
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False
