"""The batch's side activities: describe it; call its tracker, notifier, health check, reduce.

And the failure ledger's two: record (a no-op whose input is the record) and read.
"""

from __future__ import annotations

import inspect
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .._engine.budgets import MAX_RESULT_BYTES
from .._engine.ledger import ReadLedgerInput, ReadLedgerResult
from .._exceptions import PROCESSOR_USAGE_ERROR_TYPE
from .._ledger_history import read_chunk
from .._model import ProcessorSettings
from .._model.messages import (
    CHECK_HEALTH,
    DESCRIBE_BATCH,
    NOTIFY,
    READ_LEDGER,
    RECORD_FAILURES,
    REDUCE_RESULTS,
    RUN_TRACKER,
    DescribeBatchInput,
    HealthCheckInput,
    NotifyInput,
    ReduceInput,
    TrackerInput,
)
from .catalog import WorkerCatalog
from .checks import check_args_and_hooks, checked_processor
from .failures import application_error, look_up
from .health import Health, HealthCheckContext
from .notifier import BatchNotifierContext
from .tracker import BatchTrackerContext
from .user_code import ContextLogger, over_budget, short, tracker_logger

__all__ = ["SideActivities"]


class SideActivities:
    """The activities around a batch's pages, reading one worker's registries."""

    def __init__(self, catalog: WorkerCatalog) -> None:
        self._catalog = catalog

    def all(self) -> list[Any]:
        """Every side activity, for the worker."""
        return [
            self.describe_batch,
            self.run_batch_tracker,
            self.notify,
            self.check_health,
            self.reduce_results,
            self.record_failures,
            self.read_ledger,
        ]

    @activity.defn(name=RECORD_FAILURES)
    async def record_failures(self, record: Any) -> None:
        """Nothing: a failure-ledger record is this activity's input, which Temporal keeps.

        (``_ledger.py``; the input is left undecoded, as the activity does not read it.)
        """

    @activity.defn(name=READ_LEDGER)
    async def read_ledger(self, inp: ReadLedgerInput) -> ReadLedgerResult:
        """Read a chunk of a batch's failure ledger from its history (for a redrive)."""
        return await read_chunk(activity.client(), inp)

    @activity.defn(name=DESCRIBE_BATCH)
    async def describe_batch(self, inp: DescribeBatchInput) -> ProcessorSettings:
        """Read the processor's retry settings; check the args, tracker and notifier.

        The settings are recorded in history. Args that do not fit the processor's
        ``args_type`` fail the batch here, before any page runs.
        """
        cls, settings = checked_processor(self._catalog, inp.processor)
        check_args_and_hooks(self._catalog, cls, inp)
        return settings

    @activity.defn(name=RUN_TRACKER)
    async def run_batch_tracker(self, inp: TrackerInput) -> None:
        """Call a registered tracker with the batch's progress."""
        fn = look_up(self._catalog.trackers, inp.name, retryable=True)
        await fn(BatchTrackerContext(is_final=inp.is_final, **_call_fields(inp)))

    @activity.defn(name=REDUCE_RESULTS)
    async def reduce_results(self, inp: ReduceInput) -> Any:
        """Fold pages' values into the batch result with the processor's ``reduce``."""
        proc = look_up(self._catalog.processors, inp.processor, retryable=True)()
        acc = inp.result
        if not inp.started:
            initial = getattr(proc, "initial_result", None)
            acc = initial() if callable(initial) else None
            if inspect.isawaitable(acc):
                acc = await acc
        reduce: Any = getattr(proc, "reduce", None)
        if not callable(reduce):
            raise ApplicationError(
                f"{inp.processor} has no reduce method on this worker", non_retryable=True
            )
        for value in inp.values:
            acc = reduce(acc, value)
            if inspect.isawaitable(acc):
                acc = await acc
        what = over_budget(acc, MAX_RESULT_BYTES)
        if what is not None:
            raise application_error(
                f"{inp.processor}.reduce returned a result that {what} ({short(acc)}); a batch "
                f"result may hold at most {MAX_RESULT_BYTES:,} bytes of JSON: keep counts, "
                "sums or a bounded sample, not every value",
                PROCESSOR_USAGE_ERROR_TYPE,
            )
        return acc

    @activity.defn(name=CHECK_HEALTH)
    async def check_health(self, inp: HealthCheckInput) -> Health:
        """Call a registered health check; anything but a ``Health`` verdict is an error."""
        fn = look_up(self._catalog.health_checks, inp.name, retryable=True)
        verdict = await fn(HealthCheckContext(**_call_fields(inp)))
        if not isinstance(verdict, Health) or verdict.state not in ("healthy", "slow_down", "stop"):
            raise application_error(
                f"health check {inp.name!r} returned {verdict!r}; return Health.healthy(), "
                "Health.slow_down(reason) or Health.stop(reason)",
                PROCESSOR_USAGE_ERROR_TYPE,
            )
        return verdict

    @activity.defn(name=NOTIFY)
    async def notify(self, inp: NotifyInput) -> None:
        """Call a registered notifier about one event of a batch."""
        fn = look_up(self._catalog.notifiers, inp.name, retryable=True)
        await fn(
            BatchNotifierContext(
                event=inp.event,
                reason=inp.reason,
                failed_pages=inp.failed_pages,
                workflow_id=inp.workflow_id,
                failed_items=inp.failed_items,
                **_call_fields(inp),
            )
        )


def _call_fields(inp: TrackerInput | HealthCheckInput | NotifyInput) -> dict[str, Any]:
    """What every tracker, notifier and health-check context takes from its activity's input."""
    return {
        "progress": inp.progress,
        "batch_id": inp.batch_id,
        "args": inp.args,
        "logger": ContextLogger(tracker_logger, {"batch_id": inp.batch_id}),
    }
