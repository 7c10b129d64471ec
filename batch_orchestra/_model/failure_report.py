"""What ``handle.failures()`` returns: every failure of a batch, with whole cursors and keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from .failures import ItemFailure, PageFailure
from .progress import BatchOrchestratorProgress

__all__ = [
    "BatchFailures",
]


@dataclass(kw_only=True)
class BatchFailures:
    """What failed in a batch, with whole cursors and keys (``handle.failures()``).

    Without ``all``, the same pages and items as progress lists (the most recent 100 of each
    kind); with it, every one. Failed pages and items come from the batch's failure ledger (its
    history), so a batch running longer than the namespace's retention period may have lost its
    earliest runs' (``unavailable_runs``); a notifier keeps them for good.
    """

    failed_pages: list[PageFailure] = field(default_factory=list)
    """Pages that failed for good (the latest failure of each), oldest first."""
    stuck_pages: list[PageFailure] = field(default_factory=list)
    """Pages waiting for extended retries."""
    retrying_pages: list[PageFailure] = field(default_factory=list)
    """Pages in their initial retries."""
    failing_discoveries: list[PageFailure] = field(default_factory=list)
    """Pages whose discovery apart (``next_page``) fails and is retried."""
    failed_items: list[ItemFailure] = field(default_factory=list)
    """Items recorded as failed, oldest first."""
    num_failed_pages: int = 0
    """Exact counts, as progress has them."""
    num_stuck_pages: int = 0
    num_retrying_pages: int = 0
    num_failed_items: int = 0
    complete: bool = False
    """Every failed, stuck and retrying page and every failed item is listed, each whole."""
    unavailable_runs: int = 0
    """Runs of the batch whose history is gone (past the namespace's retention period): the
    failures they recorded are not listed."""
    progress: BatchOrchestratorProgress | None = None
    """The progress the lists were read with."""
