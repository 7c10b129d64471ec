"""BatchOrchestraPlugin: everything a worker needs, in one object."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping

from temporalio.plugin import SimplePlugin
from temporalio.worker import WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from .._series.run import BatchSeriesRun
from .._series.workflow import BatchSeries
from .._workflow import BatchOrchestrator
from .activities import BatchActivities
from .catalog import WorkerCatalog
from .enqueue import EnqueueTransport, WorkerSettings
from .health import HealthCheckFn
from .notifier import NotifierFn
from .processor import PageProcessor
from .resources import ResourceFactory, WorkerResources
from .series_activities import SeriesActivities
from .tracker import TrackerFn

__all__ = ["BatchOrchestraPlugin"]


class BatchOrchestraPlugin(SimplePlugin):
    """Registers the ``BatchOrchestrator`` workflow and its activities on a worker.

    It also registers the series workflows (``BatchSeries``, ``BatchSeriesRun``) and theirs,
    so every worker runs periodic batches too (docs/series.md).

    ``Worker(client, task_queue="q", plugins=[BatchOrchestraPlugin()])``. The processors,
    trackers, notifiers and health checks the worker runs are those registered (imported) in its
    process, and those given to the plugin (``processors=[...]`` and the like: for that worker
    only, no import-time registration needed). Each plugin holds its worker's page transport
    (in-flight enqueues, per-processor timing), so two workers in one process share nothing.
    """

    def __init__(
        self,
        *,
        settings: WorkerSettings | None = None,
        resources: Mapping[str, ResourceFactory] | None = None,
        processors: Iterable[type[PageProcessor]] = (),
        trackers: Iterable[TrackerFn] = (),
        notifiers: Iterable[NotifierFn] = (),
        health_checks: Iterable[HealthCheckFn] = (),
    ) -> None:
        """Create the plugin.

        Args:
            settings: tuning of how pages hand their successors over (defaults suit most).
            resources: worker-wide resources by name, each a callable without arguments that
                creates it (``{"http": httpx.AsyncClient}``). Each is created once when the
                worker starts, shared by every page the worker runs (``context.resource(name)``)
                and closed when the worker shuts down: an async or plain context manager is
                exited, else its ``aclose()``, ``close()`` or ``dispose()`` is called.
            processors: ``PageProcessor`` subclasses this worker runs (by class name) besides
                those registered with ``@page_processor``; checked as the decorator checks
                them. One of these wins over a registered class of the same name.
            trackers: ``async def`` batch trackers this worker runs besides the registered ones.
            notifiers: ``async def`` batch notifiers, likewise.
            health_checks: ``async def`` health checks, likewise.

        Raises:
            ValueError: a resource name is empty or a factory is not callable; two different
                items of one kind share a name.
            ProcessorDefinitionError: a processor, tracker, notifier or health check is not of
                its kind (as its decorator would say).
        """
        self.settings = settings or WorkerSettings()
        self.transport = EnqueueTransport(self.settings)
        """This worker's page transport (what it learned of each processor's timing)."""
        self.resources = WorkerResources(resources)
        """This worker's resources (open while the worker runs)."""
        self.catalog = WorkerCatalog.with_own(
            processors=processors,
            trackers=trackers,
            notifiers=notifiers,
            health_checks=health_checks,
        )
        """What this worker runs by name (the process-wide registries and the plugin's own)."""
        activities = BatchActivities(self.transport, self.resources, self.catalog)
        super().__init__(
            "batch_orchestra.BatchOrchestraPlugin",
            workflows=[BatchOrchestrator, BatchSeries, BatchSeriesRun],
            activities=activities.all() + SeriesActivities(self.catalog).all(),
            run_context=self._running,
            workflow_runner=_pass_library_through,
        )
        self._activities = activities
        self._has_resources = bool(resources)

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """While the worker runs: its resources open; after, its item follower stopped."""
        try:
            if self._has_resources:
                async with self.resources.opened():
                    yield
            else:
                yield
        finally:
            await self._activities.pages.stop_following()


def _pass_library_through(runner: WorkflowRunner | None) -> WorkflowRunner:
    """The worker's sandbox, with this library passed through.

    User workflows decorated with ``reports_to_batch`` import it; the library's workflow code is
    deterministic and shares no state between runs, so it needs no re-import per run.
    """
    if runner is None:
        runner = SandboxedWorkflowRunner()
    if isinstance(runner, SandboxedWorkflowRunner):
        return dataclasses.replace(
            runner, restrictions=runner.restrictions.with_passthrough_modules("batch_orchestra")
        )
    return runner
