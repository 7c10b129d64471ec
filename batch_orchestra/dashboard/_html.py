"""The dashboard's pages, rendered on the server as plain HTML.

Every value that comes from Temporal or the user (batch IDs, errors, cursors, processor names)
passes through ``esc`` (HTML escaping, quotes included), so a batch ID with markup in it shows as
text. The page's script (``static/dashboard.js``) updates the page through ``textContent`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote, urlencode

from .._types import BatchOrchestratorProgress, PageFailure
from ..cli._render import BatchView, format_duration, hook_label, hook_text, status_label
from ._data import STATUS_FILTERS, BatchRow

__all__ = [
    "Chrome",
    "batch_page",
    "batch_path",
    "error_page",
    "esc",
    "list_page",
    "start_page",
]

_OPEN = ("RUNNING", "CONTINUED_AS_NEW")


def esc(value: object) -> str:
    """HTML-escape any value for text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def batch_path(base: str, batch_id: str) -> str:
    """The path of a batch's page (the ID percent-encoded, slashes included)."""
    return f"{base}/batches/{quote(batch_id, safe='')}"


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
<nav><a href="{esc(chrome.base)}/">Batches</a>{start}
<a href="{esc(chrome.base)}/metrics">Metrics</a></nav>
<span class="where">namespace <b>{esc(chrome.namespace)}</b> at {esc(chrome.address)} {mode}</span>
</header>
<main>{body}</main>
</body></html>"""


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


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
        return f'<progress{attr} max="100" title="percent needs total_items"></progress>'
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
    failures = (
        f"{p.num_failed_pages:,} failed · {p.num_stuck_pages:,} stuck" if p is not None else "-"
    )
    items = f"{p.num_completed_items:,}" if p is not None else "-"
    note = view.failure or view.note or ""
    return (
        f'<tr><td class="id"><a href="{esc(batch_path(base, view.id))}">{esc(view.id)}</a>'
        f"{f'<div class=note>{esc(note)}</div>' if note else ''}</td>"
        f"<td>{_label(view.status, p)}</td><td>{esc(row.processor or '-')}</td>"
        f"<td>{_bar(p, view.status)} <span class=pct>{esc(done)}</span></td>"
        f'<td class="num">{items}</td><td class="num">{_rate(p)}</td>'
        f'<td class="num">{esc(_eta(p))}</td><td>{esc(failures)}</td>'
        f"<td>{esc(_time(row.started))}</td></tr>"
    )


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
        '<table class="batches" id="batches"><thead><tr><th>Batch</th><th>Status</th>'
        "<th>Processor</th><th>Progress</th><th>Items</th><th>Items/s</th><th>ETA</th>"
        "<th>Failures</th><th>Started</th></tr></thead><tbody>"
        + "".join(_list_row(base, r) for r in rows)
        + "</tbody></table>"
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


def _counts(p: BatchOrchestratorProgress | None) -> str:
    def cell(field: str, label: str, value: object) -> str:
        return f'<div><dt>{esc(label)}</dt><dd data-field="{field}">{esc(value)}</dd></div>'

    if p is None:
        p = BatchOrchestratorProgress()
    total = f" of {p.total_items:,}" if p.total_items is not None else ""
    return (
        '<dl class="counts">'
        + "".join(
            [
                cell("num_completed_pages", "pages done", f"{p.num_completed_pages:,}"),
                cell("num_processing_pages", "running", f"{p.num_processing_pages:,}"),
                cell("num_pending_pages", "pending", f"{p.num_pending_pages:,}"),
                cell("num_stuck_pages", "stuck", f"{p.num_stuck_pages:,}"),
                cell("num_failed_pages", "failed", f"{p.num_failed_pages:,}"),
                cell("num_completed_items", "items", f"{p.num_completed_items:,}{total}"),
                cell("items_per_second", "items/s", f"{p.items_per_second:,.1f}"),
                cell("pages_per_second", "pages/s", f"{p.pages_per_second:,.1f}"),
                cell("max_parallelism", "parallelism", _parallelism(p)),
                cell(
                    "max_parallelism_achieved", "highest reached", f"{p.max_parallelism_achieved}"
                ),
                cell("eta", "ETA", _eta(p)),
                cell("num_runs", "runs", f"{p.num_runs}"),
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


def _failures(kind: str, failures: Iterable[PageFailure], total: int) -> str:
    stuck = kind == "stuck"
    rows = "".join(
        f"<tr><td class=num>{f.page_num}</td><td class=cursor>{esc(f.cursor_str)}</td>"
        f"<td class=num>{f.attempts}</td><td>{esc(f.error_type)}</td>"
        f"<td class=msg>{esc(f.error_message)}</td>"
        f"<td>{esc(_time(f.next_retry_at if stuck else f.failed_at))}</td></tr>"
        for f in failures
    )
    when = "next retry" if stuck else "failed at"
    hidden = "" if total else " hidden"
    return (
        f'<section id="{kind}-section"{hidden}><h3>{esc(kind.capitalize())} pages '
        f'<span data-field="num_{kind}_pages">{total:,}</span></h3>'
        f'<table class="failures" id="{kind}-pages"><thead><tr><th>Page</th><th>Cursor</th>'
        f"<th>Attempts</th><th>Error</th><th>Message</th><th>{when}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
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
    if chrome.read_only or view.status not in _OPEN:
        return ""
    p = view.progress
    paused = p is not None and p.is_paused
    cap = p.max_parallelism if p is not None else 1
    n_input = (
        f'<input type="number" name="n" min="0" value="{cap}" aria-label="parallelism" '
        'id="parallelism-input">'
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
                    cls="when-running",
                    hidden=paused,
                ),
                _form(
                    chrome,
                    view,
                    "resume",
                    "Resume",
                    f"Resume batch {view.id}?",
                    cls="when-paused",
                    hidden=not paused,
                ),
                _form(
                    chrome,
                    view,
                    "set-parallelism",
                    "Set parallelism",
                    f"Set the parallelism of batch {view.id} to {{n}}?",
                    extra=n_input,
                ),
                _form(
                    chrome,
                    view,
                    "cancel",
                    "Cancel batch",
                    f"Cancel batch {view.id}? It ends as CANCELED and cannot be resumed.",
                    cls="danger",
                ),
            ]
        )
        + "</div>"
    )


def batch_page(chrome: Chrome, view: BatchView, processor: str | None, message: str) -> str:
    """One batch: status, live bar and counts, chart, stuck and failed pages, controls."""
    p = view.progress
    api = f"{chrome.base}/api/batches/{quote(view.id, safe='')}"
    notice = f'<p class="flash" role="status">{esc(message)}</p>' if message else ""
    failure = f"<p class=failure>{esc(view.failure)}</p>" if view.failure else ""
    started = _time(p.start_time if p else None)
    body = f"""{notice}
<section class="batch" id="batch" data-api="{esc(api)}" data-interval="{chrome.poll_ms}"
 data-open="{int(view.status in _OPEN)}">
<h1><span class="id" id="batch-id">{esc(view.id)}</span> {_label(view.status, p)}</h1>
<p class="meta">processor <b>{esc(processor or "-")}</b> · task queue <b>{esc(view.task_queue)}</b>
 · started {esc(started)} · <a href="{esc(view.url)}" rel="noopener" target="_blank"
 id="temporal-link">open in Temporal Web UI</a></p>
{failure}<p class="note" data-field="note"{"" if view.note else " hidden"}>{esc(view.note)}</p>
{_reasons(p)}
<div class="bar">{_bar(p, view.status, "progress")}
<span data-field="percent">{esc(_pct_text(p, view.status))}</span></div>
{_counts(p)}
{_controls(chrome, view)}
<section class="chart"><h3>Throughput and parallelism
<small>(sampled while this page is open)</small></h3>
<svg id="chart" viewBox="0 0 640 200" role="img" aria-label="throughput chart"></svg>
<p class="legend"><span class="k items">items/s</span> <span class="k running">pages running</span>
<span class="k cap">parallelism cap</span></p></section>
{_failures("stuck", p.stuck_pages if p else [], p.num_stuck_pages if p else 0)}
{_failures("failed", p.failed_pages if p else [], p.num_failed_pages if p else 0)}
</section>"""
    return _layout(chrome, view.id, body, page="batch")


def _pct_text(p: BatchOrchestratorProgress | None, status: str) -> str:
    pct = _percent(p, status)
    return f"{pct:.1f}%" if pct is not None else "% needs total_items"


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
