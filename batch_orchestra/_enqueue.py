"""Moved to ``batch_orchestra._worker``: re-exports for the importers outside the worker lane.

The lead removes it once every importer reads the new module.
"""

from __future__ import annotations

from ._worker.enqueue import WorkerSettings

__all__ = ["WorkerSettings"]
