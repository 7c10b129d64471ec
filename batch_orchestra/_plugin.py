"""BatchOrchestraPlugin: everything a worker needs, in one object."""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.plugin import SimplePlugin

from ._activities import BatchActivities
from ._enqueue import EnqueueTransport, WorkerSettings
from ._resources import ResourceFactory, WorkerResources
from ._series_activities import SeriesActivities
from ._series_run import BatchSeriesRun
from ._series_workflow import BatchSeries
from ._workflow import BatchOrchestrator

__all__ = ["BatchOrchestraPlugin"]


class BatchOrchestraPlugin(SimplePlugin):
    """Registers the ``BatchOrchestrator`` workflow and its activities on a worker.

    It also registers the series workflows (``BatchSeries``, ``BatchSeriesRun``) and theirs,
    so every worker runs periodic batches too (docs/series.md).

    ``Worker(client, task_queue="q", plugins=[BatchOrchestraPlugin()])``. The processors,
    trackers and notifiers the worker runs are those registered (imported) in its process. Each
    plugin holds its worker's page transport (in-flight enqueues, per-processor timing), so two
    workers in one process share nothing.
    """

    def __init__(
        self,
        *,
        settings: WorkerSettings | None = None,
        resources: Mapping[str, ResourceFactory] | None = None,
    ) -> None:
        """Create the plugin.

        Args:
            settings: tuning of how pages hand their successors over (defaults suit most).
            resources: worker-wide resources by name, each a callable without arguments that
                creates it (``{"http": httpx.AsyncClient}``). Each is created once when the
                worker starts, shared by every page the worker runs (``context.resource(name)``)
                and closed when the worker shuts down: an async or plain context manager is
                exited, else its ``aclose()``, ``close()`` or ``dispose()`` is called.

        Raises:
            ValueError: a resource name is empty or a factory is not callable.
        """
        self.settings = settings or WorkerSettings()
        self.transport = EnqueueTransport(self.settings)
        """This worker's page transport (what it learned of each processor's timing)."""
        self.resources = WorkerResources(resources)
        """This worker's resources (open while the worker runs)."""
        activities = BatchActivities(self.transport, self.resources)
        super().__init__(
            "batch_orchestra.BatchOrchestraPlugin",
            workflows=[BatchOrchestrator, BatchSeries, BatchSeriesRun],
            activities=activities.all() + SeriesActivities().all(),
            run_context=self.resources.opened if resources else None,
        )
