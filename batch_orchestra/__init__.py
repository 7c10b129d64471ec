"""Batch Orchestra: reliable, controllably parallel, observable batch jobs on Temporal.

Write one page processor; the orchestrator runs the pages of your data in parallel under a cap,
with retries, stuck-page handling, pause and resume, progress and continue-as-new.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from ._client import BatchOrchestratorClient, BatchOrchestratorHandle
from ._client.series import SeriesHandle
from ._devserver import DEV_SERVER_DYNAMIC_CONFIG, EmbeddedTemporal
from ._engine.ranges import KeyRange, split_hex_range, split_int_range, split_uuid_range
from ._exceptions import (
    BatchOrchestraError,
    InvalidArgsError,
    InvalidBatchInputError,
    InvalidCursorError,
    ProcessorDefinitionError,
    ProcessorUsageError,
    UnknownBatchNotifierError,
    UnknownBatchTrackerError,
    UnknownHealthCheckError,
    UnknownPageProcessorError,
    UnknownSeriesError,
)
from ._model import (
    BatchFailures,
    BatchNotifierConfig,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    BatchTrackerConfig,
    BatchWindow,
    ControlChange,
    ErrorCount,
    FailurePolicy,
    HealthCheckConfig,
    HistorySample,
    HookError,
    ItemFailure,
    PageFailure,
    RedrivePage,
    RedriveSource,
)
from ._model.typed import args_str, cursor_str
from ._series.run import BatchSeriesRun
from ._series.types import (
    MarkChange,
    SeriesDescription,
    SeriesRun,
    SeriesSpec,
    TimeWindow,
    Watermark,
    WindowEndContext,
)
from ._series.workflow import BatchSeries
from ._worker.checkpoint import MAX_CHECKPOINT_BYTES, PageItems
from ._worker.context import BatchProcessorContext, EnqueuedPages
from ._worker.enqueue import WorkerSettings
from ._worker.health import Health, HealthCheckContext, health_check, registered_health_checks
from ._worker.items import ItemStarts, reports_to_batch
from ._worker.notifier import BatchNotifierContext, batch_notifier, registered_batch_notifiers
from ._worker.page import BatchPage
from ._worker.plugin import BatchOrchestraPlugin
from ._worker.processor import PageProcessor, RetryMode, page_processor, registered_page_processors
from ._worker.resources import WorkerResources
from ._worker.tracker import BatchTrackerContext, batch_tracker, registered_batch_trackers
from ._workflow import BatchOrchestrator

try:  # the version lives in pyproject.toml only
    __version__ = _version("batch-orchestra")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "BatchFailures",
    "BatchNotifierConfig",
    "BatchNotifierContext",
    "BatchOrchestraError",
    "BatchOrchestraPlugin",
    "BatchOrchestrator",
    "BatchOrchestratorClient",
    "BatchOrchestratorHandle",
    "BatchOrchestratorInput",
    "BatchOrchestratorProgress",
    "BatchPage",
    "BatchProcessorContext",
    "BatchSeries",
    "BatchSeriesRun",
    "BatchTrackerConfig",
    "BatchTrackerContext",
    "BatchWindow",
    "ControlChange",
    "DEV_SERVER_DYNAMIC_CONFIG",
    "EmbeddedTemporal",
    "EnqueuedPages",
    "ErrorCount",
    "FailurePolicy",
    "Health",
    "HealthCheckConfig",
    "HealthCheckContext",
    "HistorySample",
    "HookError",
    "InvalidArgsError",
    "InvalidBatchInputError",
    "InvalidCursorError",
    "ItemFailure",
    "ItemStarts",
    "KeyRange",
    "MAX_CHECKPOINT_BYTES",
    "MarkChange",
    "PageFailure",
    "PageItems",
    "PageProcessor",
    "ProcessorDefinitionError",
    "ProcessorUsageError",
    "RedrivePage",
    "RedriveSource",
    "RetryMode",
    "SeriesDescription",
    "SeriesHandle",
    "SeriesRun",
    "SeriesSpec",
    "TimeWindow",
    "UnknownBatchNotifierError",
    "UnknownBatchTrackerError",
    "UnknownHealthCheckError",
    "UnknownPageProcessorError",
    "UnknownSeriesError",
    "Watermark",
    "WindowEndContext",
    "WorkerResources",
    "WorkerSettings",
    "args_str",
    "batch_notifier",
    "batch_tracker",
    "cursor_str",
    "health_check",
    "page_processor",
    "registered_batch_notifiers",
    "registered_batch_trackers",
    "registered_health_checks",
    "registered_page_processors",
    "reports_to_batch",
    "split_hex_range",
    "split_int_range",
    "split_uuid_range",
]
