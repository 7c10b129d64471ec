"""The dashboard's pages, rendered on the server as plain HTML.

Every value that comes from Temporal or the user (batch IDs, errors, cursors, processor names)
passes through ``esc`` (HTML escaping, quotes included), so a batch ID with markup in it shows as
text. The page's script (``static/dashboard.js``) updates the page through ``textContent`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from .._model import BatchOrchestratorProgress, PageFailure
from .._read import BatchView, format_duration, hook_label, hook_text, shown_progress, status_label
from . import _sections as sections
from ._data import STATUS_FILTERS, BatchRow, average_rate
from ._markup import UNKNOWN, batch_path, clock, esc, esc_id
from ._markup import utc_time as _time

__all__ = [
    "Chrome",
    "PageFacts",
    "batch_page",
    "batch_path",
    "clock",
    "error_page",
    "esc",
    "list_page",
    "start_page",
]

_OPEN = ("RUNNING", "CONTINUED_AS_NEW")


@dataclass(frozen=True)
class Chrome:
    """What every page shows around its content."""

    base: str
    """The path the dashboard is mounted at ("" at the root)."""
    namespace: str
    """The Temporal namespace."""
    address: str
    """The Temporal server's address."""
    read_only: bool
    """Whether controls are hidden."""
    csrf: str
    """The token control forms carry."""
    poll_ms: int = 1000
    """Milliseconds between a batch page's refreshes."""


def _layout(chrome: Chrome, title: str, body: str, *, page: str = "") -> str:
    start = "" if chrome.read_only else f'<a href="{esc(chrome.base)}/start">Start a batch</a>'
    mode = '<span class="badge">read-only</span>' if chrome.read_only else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · Batch Orchestra</title>
<link rel="stylesheet" href="{esc(chrome.base)}/static/dashboard.css">
<script src="{esc(chrome.base)}/static/dashboard.js" defer></script>
</head><body data-page="{esc(page)}">
<header><a class="brand" href="{esc(chrome.base)}/">Batch Orchestra</a>
<nav><a href="{esc(chrome.base)}/">Batches</a><a href="{esc(chrome.base)}/series">Series</a>{start}
<a href="{esc(chrome.base)}/metrics">Metrics</a></nav>
<span class="where">namespace <b>{esc(chrome.namespace)}</b> at {esc(chrome.address)} {mode}</span>
</header>
<main>{body}</main>
</body></html>"""


def _percent(p: BatchOrchestratorProgress | None, status: str) -> float | None:
    if p is None:
        return None
    if p.percent_complete is not None:
        return max(0.0, min(100.0, p.percent_complete))
    if p.is_finished or status == "COMPLETED":
        return 100.0
    return None


def _bar(p: BatchOrchestratorProgress | None, status: str, data_id: str = "") -> str:
    pct = _percent(p, status)
    attr = f' id="{data_id}"' if data_id else ""
    if pct is None:
        why = "progress unknown" if p is None else "percent needs total_items"
        return f'<progress{attr} max="100" title="{why}"></progress>'
    return f'<progress{attr} max="100" value="{pct:.1f}" title="{pct:.1f}%"></progress>'


def _label(status: str, p: BatchOrchestratorProgress | None) -> str:
    label = status_label(status, p)
    return f'<span class="status s-{esc(label.lower())}" data-field="label">{esc(label)}</span>'


def _rate(p: BatchOrchestratorProgress | None) -> str:
    if p is None or p.is_finished:
        return "-"
    return f"{p.items_per_second:,.1f}"


def _eta(p: BatchOrchestratorProgress | None) -> str:
    if p is None or p.eta_seconds is None or p.is_finished or p.is_paused:
        return "-"
    return format_duration(p.eta_seconds)


def _list_row(base: str, row: BatchRow) -> str:
    view, p = row.view, row.view.progress
    pct = _percent(p, view.status)
    done = f"{pct:.0f}%" if pct is not None else ""
    failures = _list_failures(p)
    items = f"{p.num_completed_items:,}" if p is not None else UNKNOWN
    note = view.failure or view.note or ""
    if row.stale_at is not None:
        note = f"no worker answered: last known progress, from {clock(row.stale_at)}"
    window = p.window if p is not None else None
    if window is not None:  # a series' batch: the window it covers
        note = f"{window.text()}{' backfill' if window.backfill else ''}" + (
            f" · {note}" if note else ""
        )
    return (
        f'<tr><td class="id"><a href="{esc(batch_path(base, view.id))}">{esc_id(view.id)}</a>'
        f"{f'<div class=note>{esc(note)}</div>' if note else ''}</td>"
        f"<td>{_label(view.status, p)}</td><td class=opt>{esc(row.processor or '-')}</td>"
        f"<td>{_bar(p, view.status)} <span class=pct>{esc(done)}</span></td>"
        f'<td class="num" data-label="items">{items}</td><td class="num opt">{_rate(p)}</td>'
        f'<td class="num opt">{esc(_eta(p))}</td><td data-label="failures">{esc(failures)}</td>'
        f"<td class=opt>{esc(_time(row.started))}</td></tr>"
    )


def _list_failures(p: BatchOrchestratorProgress | None) -> str:
    """Failed and stuck pages, and failed items when there are any."""
    if p is None:
        return UNKNOWN
    text = f"{p.num_failed_pages:,} failed · {p.num_stuck_pages:,} stuck"
    if p.num_failed_items:
        text += f" · {p.num_failed_items:,} failed items"
    return text


def list_page(
    chrome: Chrome,
    rows: list[BatchRow],
    *,
    status: str,
    next_token: str | None,
    first_page: bool,
) -> str:
    """The batch list with its status filter, one page of rows, and a link to the next."""
    base = chrome.base
    tabs = "".join(
        f'<a class="tab{" on" if name == status else ""}" '
        f'href="{esc(base)}/?{esc(urlencode({"status": name}))}">{esc(name.replace("_", " "))}</a>'
        for name in STATUS_FILTERS
    )
    if not rows:
        body = f'<div class="filters">{tabs}</div>' + (
            _empty_state(chrome)
            if status == "all" and first_page
            else f'<p class="empty">No {esc(status.replace("_", " "))} batches.</p>'
        )
        return _layout(chrome, "Batches", body, page="list")
    more = ""
    if next_token:
        query = urlencode({"status": status, "page": next_token})
        more = f'<p class="more"><a href="{esc(base)}/?{esc(query)}">Older batches →</a></p>'
    if not first_page:
        more = f'<a href="{esc(base)}/?{esc(urlencode({"status": status}))}">← Newest</a>' + more
    table = (
        '<div class="scroll"><table class="batches" id="batches"><thead><tr><th>Batch</th>'
        "<th>Status</th><th class=opt>Processor</th><th>Progress</th><th>Items</th>"
        "<th class=opt>Items/s</th><th class=opt>ETA</th><th>Failures</th>"
        "<th class=opt>Started</th></tr></thead><tbody>"
        + "".join(_list_row(base, r) for r in rows)
        + "</tbody></table></div>"
    )
    body = f'<div class="filters">{tabs}</div>{table}{more}'
    return _layout(chrome, "Batches", body, page="list")


def _empty_state(chrome: Chrome) -> str:
    address = esc(chrome.address)
    start = (
        ""
        if chrome.read_only
        else f'<p>Or start one from the <a href="{esc(chrome.base)}/start">start form</a> once a '
        "worker runs.</p>"
    )
    return f"""<section class="empty-state">
<h2>No batches yet in namespace {esc(chrome.namespace)}</h2>
<p>A batch runs on workers that know its page processor. To start your first one:</p>
<ol>
<li>Run a worker that imports your processors:
<pre>batch-orchestra worker samples.inflate_prices.processor -q prices \\
  --address {address}</pre></li>
<li>Start a batch of one of them:
<pre>batch-orchestra start InflateProductPrices --task-queue prices --page-size 200 \\
    --max-parallelism 8 --address {address}</pre></li>
</ol>{start}
<p>It appears here as soon as it starts.</p></section>"""


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
                cell("eta", "ETA", _eta),
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
    if view.status not in _OPEN:
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
 data-open="{int(view.status in _OPEN)}" data-batch-id="{esc(view.id)}"
 data-close-time="{esc(view.close_time.isoformat() if view.close_time else "")}">
<h1><span class="id" id="batch-id">{esc_id(view.id)}</span> {_label(view.status, p)}</h1>
<p class="meta">processor <b>{esc(facts.processor or "-")}</b> · task queue
 <b>{esc_id(view.task_queue)}</b> · started {esc(_time(facts.started))} · <a href="{esc(view.url)}"
 rel="noopener" target="_blank" id="temporal-link">open in Temporal Web UI</a>
{_series_meta(chrome, p)}{sections.redrive_link(chrome.base, p)}</p>
{failure}<p class="note" data-field="note"{"" if view.note else " hidden"}>{esc(view.note)}</p>
{_reasons(p)}
{sections.health_line(p)}
<div class="bar">{_bar(p, view.status, "progress")}
<span data-field="percent">{esc(_pct_text(p, view.status))}</span></div>
{_counts(view, facts)}
{_controls(chrome, view)}
{sections.chart_section(view)}
<div id="details">{_details(chrome, view)}</div>
</section>"""
    return _layout(chrome, view.id, body, page="batch")


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
    steerable = not chrome.read_only and view.status in _OPEN
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


def _pct_text(p: BatchOrchestratorProgress | None, status: str) -> str:
    pct = _percent(p, status)
    if pct is None:
        return UNKNOWN if p is None else "% needs total_items"
    return f"{pct:.1f}%"


def start_page(
    chrome: Chrome,
    *,
    processors: list[str],
    task_queues: list[str],
    values: dict[str, str],
    error: str = "",
) -> str:
    """The form that starts a batch."""

    def field(name: str, label: str, kind: str = "text", extra: str = "", hint: str = "") -> str:
        value = esc(values.get(name, ""))
        hint_html = f"<small>{esc(hint)}</small>" if hint else ""
        return (
            f'<label>{esc(label)}<input type="{kind}" name="{name}" id="f-{name}" '
            f'value="{value}" {extra}>{hint_html}</label>'
        )

    options = "".join(f'<option value="{esc(n)}">' for n in processors)
    queues = "".join(f'<option value="{esc(q)}">' for q in task_queues)
    err = f'<p class="failure" role="alert">{esc(error)}</p>' if error else ""
    body = f"""<h1>Start a batch</h1>{err}
<form method="post" action="{esc(chrome.base)}/start" class="start" id="start-form">
<input type="hidden" name="csrf_token" value="{esc(chrome.csrf)}">
{
        field(
            "processor",
            "Page processor",
            extra='list="processors" required',
            hint="the registered name; workers on the task queue must know it",
        )
    }
<datalist id="processors">{options}</datalist>
{field("task_queue", "Task queue", extra='list="task-queues" required')}
<datalist id="task-queues">{queues}</datalist>
{field("page_size", "Page size", "number", 'min="1" required')}
{field("max_parallelism", "Max parallelism", "number", 'min="0" required', "0 starts paused")}
<label>Args (JSON, read as context.args_str)
<textarea name="args" id="f-args" rows="3">{esc(values.get("args", ""))}</textarea></label>
{field("first_cursor", "First cursor")}
{field("total_items", "Total items (optional, for percent and ETA)", "number", 'min="0"')}
{field("batch_id", "Batch ID (optional)", hint="default: PROCESSOR-<random>")}
<button type="submit" id="start-button">Start batch</button>
</form>"""
    return _layout(chrome, "Start a batch", body, page="start")


def error_page(chrome: Chrome, title: str, message: str, back: str | None = None) -> str:
    """A page that says what went wrong, and where to go back to."""
    link = f'<p><a href="{esc(back)}">Back</a></p>' if back else ""
    body = f'<h1>{esc(title)}</h1><p class="failure" role="alert">{esc(message)}</p>{link}'
    return _layout(chrome, title, body, page="error")
