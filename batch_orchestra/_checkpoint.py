"""Moved to ``batch_orchestra._worker``: re-exports for the importers outside the worker lane.

The lead removes it once every importer reads the new module.
"""

from __future__ import annotations

from ._worker.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    PageItems,
    checkpoint_of_details,
    with_checkpoint,
)

__all__ = ["MAX_CHECKPOINT_BYTES", "PageItems", "checkpoint_of_details", "with_checkpoint"]
