"""Moved to ``batch_orchestra._worker``: re-exports for the importers outside the worker lane.

The lead removes it once every importer reads the new module.
"""

from __future__ import annotations

from ._worker.tracker import BatchTrackerContext, batch_tracker, registered_batch_trackers

__all__ = ["BatchTrackerContext", "batch_tracker", "registered_batch_trackers"]
