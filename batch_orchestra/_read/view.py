"""What the CLI and the dashboard know about one batch (``BatchView``), and its status as shown."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from .._engine.budgets import MAX_ITEM_WORKFLOW_KEY
from .._model import BatchOrchestratorProgress

__all__ = [
    "OPEN_STATUSES",
    "BatchView",
    "shown_progress",
    "status_label",
]


OPEN_STATUSES = ("RUNNING", "CONTINUED_AS_NEW")
"""The workflow statuses of a batch that has not ended (a run handing over is still open)."""


@dataclass
class BatchView:
    """Everything the CLI and the dashboard know about one batch at one moment."""

    id: str
    """The batch's workflow ID."""
    status: str
    """The workflow's status name: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, ..."""
    task_queue: str
    """The task queue its workers poll."""
    url: str
    """Its page in the Temporal Web UI."""
    progress: BatchOrchestratorProgress | None = None
    """Its progress, when a worker answered (or from the result of a completed batch)."""
    close_time: datetime | None = None
    """When the batch's workflow closed, if it has."""
    failure: str | None = None
    """Why the workflow ended without completing (failed, cancelled, terminated, timed out)."""
    note: str | None = None
    """Something the reader should know, e.g. that no worker answered the progress query."""
    workflows_url: str = ""
    """The Temporal Web UI's workflow pages in the batch's namespace: a workflow's page is this
    and its escaped ID ("" when unknown)."""

    def item_url(self, key: str) -> str | None:
        """The Web UI page of this batch's item workflow with this key.

        None when the batch starts no item workflows (``max_open_items``) or the key cannot be
        an item workflow's (longer than an item key may be, or shortened for display).
        """
        p = self.progress
        prefix = getattr(p, "item_workflow_prefix", "") if p is not None else ""
        if not prefix or not self.workflows_url or not key or len(key) > MAX_ITEM_WORKFLOW_KEY:
            return None
        return self.workflows_url + quote(prefix + key, safe="")


def status_label(status: str, progress: BatchOrchestratorProgress | None) -> str:
    """The status to show: the workflow's, with PAUSED for a running batch at parallelism 0."""
    if status == "RUNNING" and progress is not None and progress.is_paused:
        return "PAUSED"
    return status


def shown_progress(view: BatchView) -> BatchOrchestratorProgress | None:
    """The batch's progress as shown to people: an ended batch shows no pause or stall.

    A batch paused when its last page ended (skipped, say) still reports ``is_paused`` and
    its pause reason; once it has completed or been cancelled those only mislead.
    """
    p = view.progress
    if p is None:
        return None
    if view.status in OPEN_STATUSES and not (p.is_finished or p.is_cancelled):
        return p
    return dataclasses.replace(
        p,
        is_paused=False,
        pause_reason=None,
        no_progress=None,
        effective_parallelism=p.max_parallelism,
    )
