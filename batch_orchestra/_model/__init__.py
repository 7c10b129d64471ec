"""The dataclasses that cross the wire: the batch's input, its progress, settings, and checks.

One module a role: ``input`` (the batch's input), ``hooks`` and ``policy`` (its settings),
``window`` (a series run's slice), ``failures``, ``progress`` and ``failure_report`` (what a batch
reports), ``settings`` (a processor's), ``checks`` and ``validation`` (the input's checks) and
``wire`` (the input as the workflow takes it).
"""

from __future__ import annotations

from .checks import check_cursor, check_rate
from .failure_report import BatchFailures
from .failures import ErrorCount, ItemFailure, PageFailure
from .hooks import BatchNotifierConfig, BatchTrackerConfig, HealthCheckConfig
from .input import BatchOrchestratorInput, RedrivePage, RedriveSource
from .policy import FailurePolicy
from .progress import BatchOrchestratorProgress, ControlChange, HistorySample, HookError
from .settings import ProcessorSettings
from .validation import validate_input
from .window import MAX_MARK_CHARS, WINDOW_KINDS, BatchWindow, check_window
from .wire import input_from_wire, input_to_wire

__all__ = [
    "MAX_MARK_CHARS",
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
