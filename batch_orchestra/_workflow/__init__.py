"""The batch workflow: a thin shell that runs the pure engine's decisions on Temporal.

``workflow.py`` holds ``BatchOrchestrator`` (its run and its message handlers), ``drive.py``
the loop that starts what the engine says and hands over, ``loops.py`` the background tasks
(timers, tracker, notifier, health check, reduce, failure ledger), ``calls.py`` every activity's
options and the one reading of a failure, ``details.py`` the ``failure_details`` query.
"""

from .._engine.failure_ledger import ITEM_PAGE_BYTES
from .._engine.lifecycle import Lifecycle
from .workflow import BatchOrchestrator

__all__ = ["ITEM_PAGE_BYTES", "BatchOrchestrator", "Lifecycle"]
