"""The activities of a batch, in one object the plugin creates per worker.

``BatchActivities`` holds the page activities (``page_activity.py``) and the side activities
(``side_activities.py``), bound to the worker's ``EnqueueTransport``, resources and registries:
no state lives in module globals.
"""

from __future__ import annotations

from typing import Any

from .catalog import WorkerCatalog
from .enqueue import EnqueueTransport
from .items import ItemActivities
from .page_activity import PageActivities
from .resources import WorkerResources
from .side_activities import SideActivities

__all__ = ["BatchActivities"]


class BatchActivities:
    """The batch's activities, bound to one worker's transport, resources and registries."""

    def __init__(
        self,
        transport: EnqueueTransport,
        resources: WorkerResources | None = None,
        catalog: WorkerCatalog | None = None,
    ) -> None:
        catalog = catalog or WorkerCatalog()
        self.pages = PageActivities(transport, resources or WorkerResources(), catalog)
        """``process_page`` and ``discover_page``."""
        self.side = SideActivities(catalog)
        """Describe, tracker, notifier, health check, reduce and the failure ledger's."""

    def all(self) -> list[Any]:
        """Every activity, for the worker."""
        return self.pages.all() + self.side.all() + ItemActivities().all()
