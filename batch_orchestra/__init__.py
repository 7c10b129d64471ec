"""Batch Orchestra: reliable, controllably parallel, observable batch jobs on Temporal.

Write one page processor; the orchestrator runs the pages of your data in parallel under a cap,
with retries, stuck-page handling, pause and resume, progress and continue-as-new.
"""

from __future__ import annotations

from ._client import BatchOrchestratorClient, BatchOrchestratorHandle
from ._devserver import DEV_SERVER_DYNAMIC_CONFIG, EmbeddedTemporal
from ._exceptions import (
    BatchOrchestraError,
    InvalidBatchInputError,
    ProcessorDefinitionError,
    ProcessorUsageError,
    UnknownBatchTrackerError,
    UnknownPageProcessorError,
)
from ._plugin import BatchOrchestraPlugin
from ._processor import (
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    RetryMode,
    page_processor,
    registered_page_processors,
)
from ._ranges import KeyRange, split_hex_range, split_int_range, split_uuid_range
from ._tracker import BatchTrackerContext, batch_tracker, registered_batch_trackers
from ._types import (
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    BatchTrackerConfig,
    PageFailure,
)
from ._workflow import BatchOrchestrator

__version__ = "0.1.0"

__all__ = [
    "BatchOrchestraError",
    "BatchOrchestraPlugin",
    "BatchOrchestrator",
    "BatchOrchestratorClient",
    "BatchOrchestratorHandle",
    "BatchOrchestratorInput",
    "BatchOrchestratorProgress",
    "BatchPage",
    "BatchProcessorContext",
    "BatchTrackerConfig",
    "BatchTrackerContext",
    "DEV_SERVER_DYNAMIC_CONFIG",
    "EmbeddedTemporal",
    "InvalidBatchInputError",
    "KeyRange",
    "PageFailure",
    "PageProcessor",
    "ProcessorDefinitionError",
    "ProcessorUsageError",
    "RetryMode",
    "UnknownBatchTrackerError",
    "UnknownPageProcessorError",
    "batch_tracker",
    "page_processor",
    "registered_batch_trackers",
    "registered_page_processors",
    "split_hex_range",
    "split_int_range",
    "split_uuid_range",
]
