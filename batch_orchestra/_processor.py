"""Moved to ``batch_orchestra._worker``: re-exports for the importers outside the worker lane.

The lead removes it once every importer reads the new module.
"""

from __future__ import annotations

from ._worker.context import (
    MAX_ITEM_FAILURES_PER_PAGE,
    MAX_PAGES_PER_ENQUEUE,
    BatchProcessorContext,
    EnqueuedPages,
)
from ._worker.page import BatchPage
from ._worker.processor import (
    PageProcessor,
    RetryMode,
    find_page_processor,
    get_page_processor,
    has_reduce,
    is_registered,
    page_processor,
    processor_settings,
    registered_page_processors,
)

__all__ = [
    "BatchPage",
    "BatchProcessorContext",
    "EnqueuedPages",
    "MAX_ITEM_FAILURES_PER_PAGE",
    "MAX_PAGES_PER_ENQUEUE",
    "PageProcessor",
    "RetryMode",
    "find_page_processor",
    "get_page_processor",
    "has_reduce",
    "page_processor",
    "processor_settings",
    "registered_page_processors",
]

_is_registered = is_registered
