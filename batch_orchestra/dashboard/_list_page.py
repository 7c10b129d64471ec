"""The dashboard's front page: the batches, filtered by status, a page at a time."""

from __future__ import annotations

from urllib.parse import urlencode

from .._model import BatchOrchestratorProgress
from ._chrome import (
    Chrome,
    eta_cell,
    items_rate,
    layout,
    progress_bar,
    shown_percent,
    status_badge,
)
from ._data import STATUS_FILTERS, BatchRow
from ._markup import UNKNOWN, batch_path, clock, esc, esc_id
from ._markup import utc_time as _time

__all__ = [
    "list_page",
]


def _list_row(base: str, row: BatchRow) -> str:
    view, p = row.view, row.view.progress
    pct = shown_percent(p, view.status)
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
        f"<td>{status_badge(view.status, p)}</td><td class=opt>{esc(row.processor or '-')}</td>"
        f"<td>{progress_bar(p, view.status)} <span class=pct>{esc(done)}</span></td>"
        f'<td class="num" data-label="items">{items}</td><td class="num opt">{items_rate(p)}</td>'
        f'<td class="num opt">{esc(eta_cell(p))}</td><td data-label="failures">{esc(failures)}</td>'
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
        return layout(chrome, "Batches", body, page="list")
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
    return layout(chrome, "Batches", body, page="list")


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
