"""The read model the CLI and the dashboard share: find batches, load their state, word it.

``target`` says where the batches live (and ``CliError``, the one-line error of every expected
failure), ``lookup`` finds batches and loads a ``BatchView`` (``view``), ``text`` words progress
in short plain text, ``errors`` groups error messages by their shape, ``export`` writes
progress and failures as JSON and CSV, and ``updates`` waits for a control update to apply.
Nothing here prints or renders HTML.
"""

from __future__ import annotations

from .errors import ErrorGroup, group_errors, normalize_message, one_line
from .export import FAILURE_COLUMNS, failures_csv, failures_json, failures_of, progress_json
from .lookup import (
    QUERY_TIMEOUT,
    batches_query,
    cause_text,
    find_batch,
    list_batch_page,
    list_batches,
    load_failures,
    load_view,
    query_progress,
    wait_closed,
    wait_picked_up,
)
from .target import CONNECT_TIMEOUT, CliError, Target, cli_identity
from .text import (
    eta_text,
    format_duration,
    hook_label,
    hook_text,
    item_workflows_text,
    percent_done,
    plural,
    progress_line,
    progress_parts,
    rate_text,
    recent_rate,
    window_text,
)
from .updates import UPDATE_TIMEOUT, acknowledged
from .view import OPEN_STATUSES, BatchView, shown_progress, status_label

__all__ = [
    "CONNECT_TIMEOUT",
    "OPEN_STATUSES",
    "FAILURE_COLUMNS",
    "QUERY_TIMEOUT",
    "UPDATE_TIMEOUT",
    "BatchView",
    "CliError",
    "ErrorGroup",
    "Target",
    "acknowledged",
    "batches_query",
    "cause_text",
    "cli_identity",
    "eta_text",
    "failures_csv",
    "failures_json",
    "failures_of",
    "find_batch",
    "format_duration",
    "group_errors",
    "hook_label",
    "hook_text",
    "item_workflows_text",
    "list_batch_page",
    "list_batches",
    "load_failures",
    "load_view",
    "normalize_message",
    "one_line",
    "percent_done",
    "plural",
    "progress_json",
    "progress_line",
    "progress_parts",
    "query_progress",
    "rate_text",
    "recent_rate",
    "shown_progress",
    "status_label",
    "wait_closed",
    "wait_picked_up",
    "window_text",
]
