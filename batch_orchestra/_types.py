"""Shim: the wire dataclasses moved to ``batch_orchestra._model``; import them from there.

Kept so that modules not yet moved keep importing ``from ._types import ...``; the size limits
it used to re-export from ``_budgets`` stay here too.
"""

from __future__ import annotations

from ._budgets import (
    MAX_ARGS_BYTES,
    MAX_CURSOR_BYTES,
    MAX_ITEM_KEYS_BYTES,
    MAX_PAGE_VALUE_BYTES,
    MAX_RESULT_BYTES,
)
from ._model import (
    MAX_MARK_CHARS,
    WINDOW_KINDS,
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
    ProcessorSettings,
    RedrivePage,
    RedriveSource,
    check_cursor,
    check_rate,
    check_window,
    input_from_wire,
    input_to_wire,
    validate_input,
)

__all__ = [
    "MAX_ARGS_BYTES",
    "MAX_CURSOR_BYTES",
    "MAX_ITEM_KEYS_BYTES",
    "MAX_MARK_CHARS",
    "MAX_PAGE_VALUE_BYTES",
    "MAX_RESULT_BYTES",
    "WINDOW_KINDS",
    "BatchFailures",
    "BatchNotifierConfig",
    "BatchOrchestratorInput",
    "BatchOrchestratorProgress",
    "BatchTrackerConfig",
    "BatchWindow",
    "ControlChange",
    "ErrorCount",
    "FailurePolicy",
    "HealthCheckConfig",
    "HistorySample",
    "HookError",
    "ItemFailure",
    "PageFailure",
    "ProcessorSettings",
    "RedrivePage",
    "RedriveSource",
    "check_cursor",
    "check_rate",
    "check_window",
    "input_from_wire",
    "input_to_wire",
    "validate_input",
]
