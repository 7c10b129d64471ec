"""Moved to ``batch_orchestra._worker``: re-exports for the importers outside the worker lane.

The lead removes it once every importer reads the new module.
"""

from __future__ import annotations

from ._worker.series_activities import window_end_missing

__all__ = ["window_end_missing"]
