"""How ``batch-orchestra worker`` logs: the batch's and the user's own loggers, not everyone's.

``--log-level`` applies to Batch Orchestra's loggers and to the modules the worker imports (the
user's processors); every other library (httpx, botocore, ...) stays at WARNING, so that a
processor's HTTP client does not log each request. A failed page attempt is one WARNING line
naming the batch, the page, the attempt and the error, its traceback shown at DEBUG only; a page
that fails for good adds one ERROR line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from .._read import one_line

__all__ = ["LOG_FORMAT", "AttemptFailureFilter", "configure_worker_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The worker's log line."""
_ACTIVITY_FAILURE = "ActivityFailure"
"""The marker temporalio puts on its "Completing activity as failed" record."""
_ATTEMPT_ID = re.compile(r"^(page|discover)-(\d+)-attempt-(\d+)$")
_MAX_ERROR = 300
"""Characters of the error message in the one-line record."""


class AttemptFailureFilter(logging.Filter):
    """One line per failed page attempt, instead of a traceback and a second line for the same.

    temporalio logs a failed attempt with its traceback where the attempt ran; the batch's
    workflow logs what becomes of the page ("page retry: ..."). The first becomes one line (the
    traceback stays only when ``traceback`` is true, at ``--log-level DEBUG``); of the second,
    only a page that failed for good is kept (one line), the rest said the same again.
    """

    def __init__(self, *, traceback: bool) -> None:
        super().__init__()
        self.traceback = traceback

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the records of failed attempts in place; drop the duplicates."""
        if getattr(record, "__temporal_error_identifier", None) == _ACTIVITY_FAILURE:
            record.msg = attempt_failure_line(record)
            record.args = None
            if not self.traceback:
                record.exc_info = None
                record.exc_text = None
            return True
        outcome = _page_outcome(record)
        if outcome is None:
            return True
        if outcome[0] != _FAILED_FOR_GOOD:
            return self.traceback
        record.msg = page_failed_line(record, outcome[1], outcome[2])
        record.args = None
        return True


_PAGE_OUTCOME_FORMAT = "page %s: %s: %s"
"""How the batch's workflow logs what becomes of a page after a failed attempt."""
_FAILED_FOR_GOOD = "failed"


def _page_outcome(record: logging.LogRecord) -> tuple[str, str, str] | None:
    """(outcome, error type, message) of a workflow's page-outcome record, else None."""
    if not record.name.startswith("temporalio.workflow"):
        return None
    if not str(record.msg).startswith(_PAGE_OUTCOME_FORMAT):
        return None
    args = record.args
    if not isinstance(args, tuple) or len(args) != 3:
        return None
    return str(args[0]), str(args[1]), str(args[2])


def page_failed_line(record: logging.LogRecord, kind: str, message: str) -> str:
    """``page 7 of batch 'b' failed for good: RuntimeError: HTTP 500 ...``."""
    info = getattr(record, "temporal_workflow", None) or {}
    page = getattr(record, "page_num", "?")
    batch = info.get("workflow_id", "?")
    text = one_line(message, _MAX_ERROR)
    return f"page {page} of batch {batch!r} failed for good: {kind}" + (f": {text}" if text else "")


def attempt_failure_line(record: logging.LogRecord) -> str:
    """``page 7 of batch 'b' failed (attempt 3): RuntimeError: HTTP 500 ...``."""
    info = getattr(record, "temporal_activity", None) or {}
    activity_id = str(info.get("activity_id", ""))
    batch = info.get("workflow_id", "?")
    match = _ATTEMPT_ID.match(activity_id)
    if match:
        kind, page, attempt = match.groups()
        what = f"page {page}" if kind == "page" else f"finding the pages after page {page}"
        where = f"{what} of batch {batch!r} failed (attempt {attempt})"
    else:
        kind_name = info.get("activity_type", "activity")
        where = f"{kind_name} of batch {batch!r} failed (attempt {info.get('attempt', '?')})"
    err = record.exc_info[1] if record.exc_info else None
    if err is None:
        return where
    message = one_line(str(err), _MAX_ERROR)
    return f"{where}: {type(err).__name__}" + (f": {message}" if message else "")


def configure_worker_logging(level: str, modules: Iterable[str]) -> None:
    """Log to stderr: ``level`` for Batch Orchestra and ``modules``, WARNING for the rest."""
    numeric = logging.getLevelName(level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(AttemptFailureFilter(traceback=numeric <= logging.DEBUG))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in {"batch_orchestra", *(m.split(".")[0] for m in modules)}:
        logging.getLogger(name).setLevel(numeric)
    # Temporal's own INFO lines are about the worker's plumbing; its warnings (a failed
    # attempt, above) are worth seeing unless a quieter level was asked for.
    temporal = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    logging.getLogger("temporalio").setLevel(temporal)
