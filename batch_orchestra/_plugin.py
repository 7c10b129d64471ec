"""BatchOrchestraPlugin: everything a worker needs, in one object."""

from __future__ import annotations

from temporalio.plugin import SimplePlugin

from ._activities import describe_batch, process_page, run_batch_tracker
from ._workflow import BatchOrchestrator

__all__ = ["BatchOrchestraPlugin"]


class BatchOrchestraPlugin(SimplePlugin):
    """Registers the ``BatchOrchestrator`` workflow and its activities on a worker.

    ``Worker(client, task_queue="q", plugins=[BatchOrchestraPlugin()])``. The processors and
    trackers the worker runs are those registered (imported) in the worker's process.
    """

    def __init__(self) -> None:
        super().__init__(
            "batch_orchestra.BatchOrchestraPlugin",
            workflows=[BatchOrchestrator],
            activities=[describe_batch, process_page, run_batch_tracker],
        )
