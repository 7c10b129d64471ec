"""The raw Temporal baseline: a plain workflow running N no-op activities under a cap.

No signals, no pagination, no scheduler: it is what the dev server and one worker can do at
best with the same concurrency cap and the same continue-as-new rule as the BatchOrchestrator
(continue as new when Temporal suggests it, past the same hard event cap, or every
``pages_per_run`` activities; in-flight activities are drained first). Only ``temporalio``
is imported, so the module loads cleanly in the workflow sandbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

BASELINE_WORKFLOW = "BenchRawBaseline"
BASELINE_ACTIVITY = "bench.raw_noop"
HISTORY_EVENTS_HARD_CAP = 20_000  # the same hard cap as batch_orchestra._workflow


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


@workflow.defn(name=BASELINE_WORKFLOW)
class RawBaseline:
    def __init__(self) -> None:
        self._running = 0
        self._done = 0
        self._dirty = False

    def _on_done(self, fut: asyncio.Future[int]) -> None:
        fut.exception()  # a failed no-op still counts as done; do not leave it unobserved
        self._running -= 1
        self._done += 1
        self._dirty = True

    def _should_continue_as_new(self, inp: RawBaselineInput, started_here: int) -> bool:
        if inp.pages_per_run is not None and started_here >= inp.pages_per_run:
            return True
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > HISTORY_EVENTS_HARD_CAP
        )

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
                    raw_noop,
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
                    )
                )
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False
