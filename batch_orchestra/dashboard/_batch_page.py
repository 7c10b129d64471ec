"""One batch's page: its progress, counts, failures, controls and details."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from .._model import BatchOrchestratorProgress, PageFailure
from .._read import (
    OPEN_STATUSES,
    BatchView,
    hook_label,
    hook_text,
    shown_progress,
)
from . import _sections as sections
from ._chrome import (
    Chrome,
    eta_cell,
    layout,
    percent_text,
    progress_bar,
    status_badge,
)
from ._data import average_rate
from ._markup import UNKNOWN, esc, esc_id
from ._markup import utc_time as _time

__all__ = [
    "PageFacts",
    "batch_page",
]


@dataclass(frozen=True)
class PageFacts:
    """What the batch's page knows besides its progress (from Temporal, not a worker)."""

    processor: str | None = None
    """The page processor's registered name."""
    started: datetime | None = None
    """When the batch started."""
    stale_at: datetime | None = None
    """When the progress shown was read, if no worker answered now."""
    total_items: int | None = None
    """The batch's estimate of its items (from its input)."""


def _item_cells(
    cell: Callable[[str, str, Callable[[BatchOrchestratorProgress], str]], str],
) -> list[str]:
    """The count cards of a batch of item workflows."""
    return [
        cell(
            "num_items_open",
            "item workflows open",
            lambda p: f"{p.num_items_open:,} of {p.max_open_items:,}",
        ),
        cell("num_items_started", "items started", lambda p: f"{p.num_items_started:,}"),
        cell("num_items_completed", "items completed", lambda p: f"{p.num_items_completed:,}"),
        cell("num_items_failed", "items failed", lambda p: f"{p.num_items_failed:,}"),
    ]


def _counts(view: BatchView, facts: PageFacts) -> str:
    """The count cards; "unknown" for each when no worker told us (never 0)."""

    def cell(field: str, label: str, value: Callable[[BatchOrchestratorProgress], str]) -> str:
        shown = value(p) if p is not None else UNKNOWN
        return f'<div><dt>{esc(label)}</dt><dd data-field="{field}">{esc(shown)}</dd></div>'

    p = shown_progress(view)
    total = p.total_items if p is not None else facts.total_items
    of = f" of {total:,}" if total is not None else ""
    average = average_rate(view)
    pages_average = average_rate(view, pages=True)
    return (
        '<dl class="counts">'
        + "".join(
            [
                cell("num_completed_pages", "pages done", lambda p: f"{p.num_completed_pages:,}"),
                cell("num_processing_pages", "running", lambda p: f"{p.num_processing_pages:,}"),
                cell("num_pending_pages", "pending", lambda p: f"{p.num_pending_pages:,}"),
                cell("num_retrying_pages", "retrying", lambda p: f"{p.num_retrying_pages:,}"),
                cell("num_stuck_pages", "stuck", lambda p: f"{p.num_stuck_pages:,}"),
                cell("num_failed_pages", "failed", lambda p: f"{p.num_failed_pages:,}"),
                cell("num_skipped_pages", "skipped", lambda p: f"{p.num_skipped_pages:,}"),
                f'<div><dt>items</dt><dd data-field="num_completed_items">'
                f"{esc(f'{p.num_completed_items:,}' if p is not None else UNKNOWN)}{esc(of)}"
                "</dd></div>",
                cell("num_failed_items", "failed items", lambda p: f"{p.num_failed_items:,}"),
                *(_item_cells(cell) if p is not None and p.max_open_items is not None else []),
                cell(
                    "items_per_second",
                    "items/s (average)" if average is not None else "items/s",
                    lambda p: f"{average if average is not None else p.items_per_second:,.1f}",
                ),
                cell(
                    "pages_per_second",
                    "pages/s (average)" if average is not None else "pages/s",
                    lambda p: (
                        f"{p.pages_per_second if pages_average is None else pages_average:,.1f}"
                    ),
                ),
                cell("max_parallelism", "parallelism", _parallelism),
                cell(
                    "max_parallelism_achieved",
                    "highest reached",
                    lambda p: f"{p.max_parallelism_achieved}",
                ),
                cell("eta", "ETA", eta_cell),
                cell("num_runs", "runs", lambda p: f"{p.num_runs}"),
            ]
        )
        + "</dl>"
    )


def _parallelism(p: BatchOrchestratorProgress) -> str:
    """The cap, and what may run now when that differs (paused, or held by a limit)."""
    effective = getattr(p, "effective_parallelism", None)
    if effective is None or effective == p.max_parallelism:
        return f"{p.max_parallelism}"
    return f"{p.max_parallelism} (now {effective})"


def _reasons(p: BatchOrchestratorProgress | None) -> str:
    """Why the batch is paused, held back or getting nowhere, and its failing hooks."""
    pause = getattr(p, "pause_reason", None) if p is not None and p.is_paused else None
    hold = getattr(p, "hold_reason", None) if p is not None else None
    throttle = getattr(p, "throttle_reason", None) if p is not None and not p.is_paused else None
    stalled = getattr(p, "no_progress", None) if p is not None else None
    hooks = "".join(
        f"<li>{esc(f'{hook_label(h)}: {hook_text(h)}')}</li>"
        for h in (getattr(p, "hook_errors", []) if p is not None else [])
    )
    return (
        f'<p class="failure" data-field="no_progress"{"" if stalled else " hidden"}>'
        f"{esc(stalled or '')}</p>"
        f'<ul class="note" id="hook-errors"{"" if hooks else " hidden"}>{hooks}</ul>'
        f'<p class="note" data-field="pause_reason"{"" if pause else " hidden"}>'
        f"{esc(f'paused: {pause}' if pause else '')}</p>"
        f'<p class="note" data-field="hold_reason"{"" if hold else " hidden"}>'
        f"{esc(f'held back: {hold}' if hold else '')}</p>"
        f'<p class="note" data-field="throttle_reason"{"" if throttle else " hidden"}>'
        f"{esc(f'throttled: {throttle}' if throttle else '')}</p>"
    )


def _failures(
    kind: str,
    failures: Iterable[PageFailure],
    total: int,
    actions: Callable[[PageFailure], str] | None = None,
    paused: bool = False,
) -> str:
    waiting = kind in ("stuck", "retrying")
    later = "on resume" if waiting and paused else None
    rows = "".join(
        f"<tr><td class=num>{f.page_num}</td><td class=cursor>{esc(f.cursor_str)}</td>"
        f"<td class=num>{f.attempts}</td><td>{esc(f.error_type)}</td>"
        f"{sections.message_cell(f.error_message)}"
        f"<td>{esc(later or _time(f.next_retry_at if waiting else f.failed_at))}</td>"
        f"{actions(f) if actions else ''}</tr>"
        for f in failures
    )
    when = "next retry" if waiting else "failed at"
    hidden = "" if total else " hidden"
    act = "<th>Actions</th>" if actions else ""
    return (
        f'<section id="{kind}-section"{hidden}><h3>{esc(kind.capitalize())} pages '
        f'<span data-field="num_{kind}_pages">{total:,}</span></h3><div class="scroll">'
        f'<table class="failures" id="{kind}-pages"><thead><tr><th>Page</th><th>Cursor</th>'
        f"<th>Attempts</th><th>Error</th><th>Message</th><th>{when}</th>{act}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _form(
    chrome: Chrome,
    view: BatchView,
    action: str,
    label: str,
    confirm: str,
    extra: str = "",
    cls: str = "",
    hidden: bool = False,
) -> str:
    return (
        f'<form method="post" action="{esc(chrome.base)}/actions/{action}" '
        f'data-confirm="{esc(confirm)}" class="control {cls}"{" hidden" if hidden else ""}>'
        f'<input type="hidden" name="csrf_token" value="{esc(chrome.csrf)}">'
        f'<input type="hidden" name="batch_id" value="{esc(view.id)}">{extra}'
        f'<button type="submit" id="{action}-button">{esc(label)}</button></form>'
    )


def _controls(chrome: Chrome, view: BatchView) -> str:
    if chrome.read_only:
        return ""
    extra = sections.extra_controls(sections.Controls(chrome.base, chrome.csrf, view.id), view)
    if view.status not in OPEN_STATUSES:
        return f'<div class="controls" id="controls">{extra}</div>' if extra else ""
    p = shown_progress(view)
    paused = p is not None and p.is_paused
    cap = p.max_parallelism if p is not None else ""
    n_input = (
        f'<input type="number" name="n" min="0" value="{cap}" aria-label="parallelism" '
        'id="parallelism-input" required>'
    )
    # Both pause and resume are rendered; the page's script shows the one that applies now.
    return (
        '<div class="controls" id="controls">'
        + "".join(
            [
                _form(
                    chrome,
                    view,
                    "pause",
                    "Pause",
                    f"Pause batch {view.id}? Running pages finish; no new page starts.",
                    cls="when-open when-running",
                    hidden=paused,
                ),
                _form(
                    chrome,
                    view,
                    "resume",
                    "Resume",
                    f"Resume batch {view.id}?",
                    cls="when-open when-paused",
                    hidden=not paused,
                ),
                _form(
                    chrome,
                    view,
                    "set-parallelism",
                    "Set parallelism",
                    f"Set the parallelism of batch {view.id} to {{n}}?",
                    extra=n_input,
                    cls="when-open",
                ),
                _form(
                    chrome,
                    view,
                    "cancel",
                    "Cancel batch",
                    f"Cancel batch {view.id}? It ends as CANCELED and cannot be resumed.",
                    cls="when-open danger",
                ),
            ]
        )
        + extra
        + "</div>"
    )


def batch_page(chrome: Chrome, view: BatchView, facts: PageFacts, message: str) -> str:
    """One batch: status, live bar and counts, controls, chart, and what went wrong."""
    p = shown_progress(view)
    api = f"{chrome.base}/api/batches/{quote(view.id, safe='')}"
    notice = f'<p class="flash" role="status" id="flash"{"" if message else " hidden"}>'
    notice += f"{esc(message)}</p>"
    failure = f"<p class=failure>{esc(view.failure)}</p>" if view.failure else ""
    body = f"""{notice}
<section class="batch" id="batch" data-api="{esc(api)}" data-interval="{chrome.poll_ms}"
 data-open="{int(view.status in OPEN_STATUSES)}" data-batch-id="{esc(view.id)}"
 data-close-time="{esc(view.close_time.isoformat() if view.close_time else "")}">
<h1><span class="id" id="batch-id">{esc_id(view.id)}</span> {status_badge(view.status, p)}</h1>
<p class="meta">processor <b>{esc(facts.processor or "-")}</b> · task queue
 <b>{esc_id(view.task_queue)}</b> · started {esc(_time(facts.started))} · <a href="{esc(view.url)}"
 rel="noopener" target="_blank" id="temporal-link">open in Temporal Web UI</a>
{_series_meta(chrome, p)}{sections.redrive_link(chrome.base, p)}</p>
{failure}<p class="note" data-field="note"{"" if view.note else " hidden"}>{esc(view.note)}</p>
{_reasons(p)}
{sections.health_line(p)}
<div class="bar">{progress_bar(p, view.status, "progress")}
<span data-field="percent">{esc(percent_text(p, view.status))}</span></div>
{_counts(view, facts)}
{_controls(chrome, view)}
{sections.chart_section(view)}
<div id="details">{_details(chrome, view)}</div>
</section>"""
    return layout(chrome, view.id, body, page="batch")


def _series_meta(chrome: Chrome, p: BatchOrchestratorProgress | None) -> str:
    """For a series' batch: its series (linked) and window."""
    w = p.window if p is not None else None
    if w is None or not w.series:
        return ""
    path = f"{chrome.base}/series/{quote(w.series, safe='')}"
    kind = " (backfill)" if w.backfill else ""
    return (
        f'· series <a href="{esc(path)}" id="series-link">{esc(w.series)}</a> window '
        f'<b id="batch-window">{esc(w.text())}</b>{kind}'
    )


def _details(chrome: Chrome, view: BatchView) -> str:
    """What went wrong and who changed what; the page's script swaps it in fresh."""
    p = shown_progress(view)
    steerable = not chrome.read_only and view.status in OPEN_STATUSES
    controls = sections.Controls(chrome.base, chrome.csrf, view.id)
    actions = sections.row_actions(controls, view) if steerable else None
    paused = p is not None and p.is_paused
    return "".join(
        [
            sections.errors_section(p),
            _failures(
                "retrying",
                p.retrying_pages if p else [],
                p.num_retrying_pages if p else 0,
                actions,
                paused,
            ),
            _failures(
                "stuck",
                p.stuck_pages if p else [],
                p.num_stuck_pages if p else 0,
                actions,
                paused,
            ),
            _failures("failed", p.failed_pages if p else [], p.num_failed_pages if p else 0),
            _failures(
                "discovery",
                p.failing_discoveries if p else [],
                len(p.failing_discoveries) if p else 0,
            ),
            sections.failed_items_section(chrome.base, view),
            sections.change_log_section(p),
        ]
    )
