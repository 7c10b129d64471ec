"""A batch's progress and failures as JSON and CSV (``--json``, ``--csv``, dashboard downloads)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime
from typing import Any

from .._model import BatchFailures, BatchOrchestratorProgress, PageFailure

__all__ = [
    "FAILURE_COLUMNS",
    "failures_csv",
    "failures_json",
    "failures_of",
    "progress_json",
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def progress_json(p: BatchOrchestratorProgress) -> str:
    """The progress as one JSON object, keyed by the ``BatchOrchestratorProgress`` field names."""
    return json.dumps(_jsonable(dataclasses.asdict(p)))


_PAGE_KINDS = ("failed", "stuck", "retrying")
FAILURE_COLUMNS = [
    "kind",
    "page_num",
    "key",
    "cursor_str",
    "attempts",
    "error_type",
    "error_message",
    "at",
    "successor_enqueued",
]
"""The columns of ``failures --csv``: one row per failed, stuck or retrying page (kind
"failed_page", "stuck_page", "retrying_page") and per recorded item failure ("item")."""


def _page_lists(p: BatchFailures) -> list[tuple[str, list[PageFailure]]]:
    return [("failed", p.failed_pages), ("stuck", p.stuck_pages), ("retrying", p.retrying_pages)]


def failures_json(p: BatchFailures) -> str:
    """Failed, stuck, retrying pages and recorded item failures, with counts, as one JSON object.

    Cursors and keys are whole.
    """
    data = {
        "num_failed_pages": p.num_failed_pages,
        "num_stuck_pages": p.num_stuck_pages,
        "num_retrying_pages": p.num_retrying_pages,
        "num_failed_items": p.num_failed_items,
        "complete": p.complete,
        "unavailable_runs": p.unavailable_runs,
        **{
            f"{kind}_pages": [dataclasses.asdict(f) for f in pages]
            for kind, pages in _page_lists(p)
        },
        "failing_discoveries": [dataclasses.asdict(f) for f in p.failing_discoveries],
        "failed_items": [dataclasses.asdict(f) for f in p.failed_items],
    }
    return json.dumps(_jsonable(data))


def failures_csv(p: BatchFailures) -> str:
    """The same as CSV, one row per page or item (``FAILURE_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FAILURE_COLUMNS)
    for kind, pages in _page_lists(p):
        for f in pages:
            when = f.failed_at if kind == "failed" else f.next_retry_at or f.failed_at
            writer.writerow(
                [
                    f"{kind}_page",
                    f.page_num,
                    "",
                    f.cursor_str,
                    f.attempts,
                    f.error_type,
                    f.error_message,
                    when.isoformat(),
                    f.successor_enqueued,
                ]
            )
    for item in p.failed_items:
        writer.writerow(
            [
                "item",
                item.page_num,
                item.key,
                "",
                "",
                item.error_type,
                item.error_message,
                item.failed_at.isoformat(),
                "",
            ]
        )
    return out.getvalue()


def failures_of(q: BatchOrchestratorProgress) -> BatchFailures:
    """The failures a progress lists (with previews of long cursors and keys)."""
    return BatchFailures(
        failed_pages=q.failed_pages,
        stuck_pages=q.stuck_pages,
        retrying_pages=q.retrying_pages,
        failing_discoveries=q.failing_discoveries,
        failed_items=q.failed_items,
        num_failed_pages=q.num_failed_pages,
        num_stuck_pages=q.num_stuck_pages,
        num_retrying_pages=q.num_retrying_pages,
        num_failed_items=q.num_failed_items,
        progress=q,
    )
