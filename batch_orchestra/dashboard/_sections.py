"""The parts of a batch's page beyond its counts: errors, changes, more controls, the chart.

What went wrong, who changed what, the controls the command line also has (rates, redrives,
one page at a time), and the chart. Every value passes through ``esc``; the page's script
refreshes ``#details`` by fetching the page again and swapping in the server's escaped markup,
never by building HTML from data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from .._model import BatchOrchestratorProgress, PageFailure
from .._read import OPEN_STATUSES, BatchView, format_duration, group_errors, one_line, rate_text
from ._markup import batch_path, clock, esc, esc_id, utc_time

__all__ = [
    "Controls",
    "change_log_section",
    "chart_section",
    "errors_section",
    "extra_controls",
    "failed_items_section",
    "health_line",
    "message_cell",
    "redrive_link",
    "row_actions",
]


@dataclass(frozen=True)
class Controls:
    """What a form needs to post: where the dashboard lives, its CSRF token, the batch."""

    base: str
    """The path the dashboard is mounted at."""
    csrf: str
    """The token every control form carries."""
    batch_id: str
    """The batch the form acts on."""

    def form(
        self,
        action: str,
        label: str,
        confirm: str,
        *,
        fields: str = "",
        cls: str = "",
        hidden: bool = False,
        button_id: str | None = None,
    ) -> str:
        """A control form: posts ``action`` after the page's script asks ``confirm``."""
        bid = button_id or f"{action}-button"
        return (
            f'<form method="post" action="{esc(self.base)}/actions/{esc(action)}" '
            f'data-confirm="{esc(confirm)}" class="control {esc(cls)}"'
            f"{' hidden' if hidden else ''}>"
            f'<input type="hidden" name="csrf_token" value="{esc(self.csrf)}">'
            f'<input type="hidden" name="batch_id" value="{esc(self.batch_id)}">{fields}'
            f'<button type="submit" id="{esc(bid)}">{esc(label)}</button></form>'
        )


def message_cell(message: str) -> str:
    """An error message: its first line, and the whole of it on demand if there is more."""
    first = one_line(message, 200)
    if first == message.strip():
        return f"<td class=msg>{esc(message)}</td>"
    return (
        f"<td class=msg><details><summary>{esc(first)}</summary>"
        f"<pre class=whole>{esc(message)}</pre></details></td>"
    )


def row_actions(controls: Controls, view: BatchView) -> Callable[[PageFailure], str]:
    """The retry and skip buttons of one retrying or stuck page's row."""

    def actions(f: PageFailure) -> str:
        n = f.page_num
        retry = controls.form(
            "retry-page",
            "Retry now",
            f"Retry page {n} of batch {view.id} now, first in line?",
            fields=f'<input type="hidden" name="page_num" value="{n}">',
            cls="row-action",
            button_id=f"retry-page-{n}-button",
        )
        skip = controls.form(
            "skip-page",
            "Skip",
            f"Skip page {n} of batch {view.id}? It is let go, counted as skipped. Reason: "
            "{reason}",
            fields=(
                f'<input type="hidden" name="page_num" value="{n}">'
                f'<input type="text" name="reason" required placeholder="reason" '
                f'aria-label="why skip page {n}" id="skip-reason-{n}">'
            ),
            cls="row-action",
            button_id=f"skip-page-{n}-button",
        )
        return f"<td class=actions>{retry}{skip}</td>"

    return actions


def extra_controls(controls: Controls, view: BatchView) -> str:
    """Rate limits and redrives: the controls beyond pause, resume, parallelism and cancel."""
    p = view.progress
    forms = []
    if view.status in OPEN_STATUSES:
        limits = rate_text(p) if p is not None else "unknown"
        forms.append(
            controls.form(
                "set-rate",
                "Set rate limits",
                f"Set the rate limits of batch {view.id} to {{pages_per_second}} pages/s and "
                "{items_per_second} items/s? (empty: unchanged, none: no limit)",
                fields=(
                    '<input type="text" name="pages_per_second" id="pages-rate-input" '
                    'inputmode="decimal" placeholder="pages/s" aria-label="pages per second">'
                    '<input type="text" name="items_per_second" id="items-rate-input" '
                    'inputmode="decimal" placeholder="items/s" aria-label="items per second">'
                    f'<small class=now data-field="rate_limits">now: {esc(limits)}</small>'
                ),
                cls="when-open rates",
            )
        )
    if view.status in OPEN_STATUSES or view.status == "COMPLETED":
        failed = p.num_failed_pages if p is not None else 0
        items = p.num_failed_items if p is not None else 0
        again = (
            "queue them again in this batch, each with a fresh retry budget"
            if view.status in OPEN_STATUSES
            else "start a new batch over them, linked to this one"
        )
        forms.append(
            controls.form(
                "redrive",
                "Redrive failed pages",
                f"Redrive the failed pages of batch {view.id}: {again}?",
                cls="when-failed-pages",
                hidden=not failed,
            )
        )
        forms.append(
            controls.form(
                "redrive-items",
                "Redrive failed items",
                f"Start a new batch that runs the listed failed items of batch {view.id} "
                "again, through the processor's run_items?",
                cls="when-failed-items",
                hidden=not items,
            )
        )
    return "".join(forms)


def redrive_link(base: str, p: BatchOrchestratorProgress | None) -> str:
    """`` · redrive of <batch>`` when this batch runs another's failures again."""
    if p is None or not p.redrive_of:
        return ""
    return (
        f' · redrive of <a href="{esc(batch_path(base, p.redrive_of))}" id="redrive-of">'
        f"{esc_id(p.redrive_of)}</a>"
    )


def health_line(p: BatchOrchestratorProgress | None) -> str:
    """The health check's verdict, when the batch has one."""
    health = p.health if p is not None else None
    if health is None:  # hidden until the batch has a health check: no "None" in the page
        return '<p class="note" data-field="health" hidden></p>'
    text = f"health: {health}" + (f": {p.health_reason}" if p and p.health_reason else "")
    cls = "note ok" if health == "healthy" else "note"
    return f'<p class="{cls}" data-field="health"{"" if health else " hidden"}>{esc(text)}</p>'


def errors_section(p: BatchOrchestratorProgress | None) -> str:
    """The distinct errors of held pages, with one sample each.

    Messages that differ only in numbers, URLs and IDs count as one.
    """
    groups = group_errors(p.errors) if p is not None else []
    rows = "".join(
        f"<tr><td class=num>{g.pages:,}</td><td>{esc(g.error_type)}</td>"
        f"<td class=num>{g.variants:,}</td>{message_cell(g.sample)}</tr>"
        for g in groups[:20]
    )
    return (
        f'<section id="errors-section"{"" if groups else " hidden"}><h3>Errors '
        "<small>(last error of each retrying, stuck or listed failed page; messages that "
        "differ only in numbers, URLs and IDs count as one)</small></h3>"
        '<div class="scroll"><table class="failures" id="errors"><thead><tr><th>Pages</th>'
        "<th>Error</th><th>Messages</th><th>Message (a sample)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def failed_items_section(base: str, view: BatchView) -> str:
    """The items the processor recorded as failed, and a CSV of every listed failure."""
    p = view.progress
    total = p.num_failed_items if p is not None else 0
    items = p.failed_items if p is not None else []
    shown = f" (latest {len(items):,} listed)" if total > len(items) else ""
    csv = f"{base}/failures.csv?batch_id={quote(view.id, safe='')}"
    rows = "".join(
        f"<tr><td class=key>{_item_key(view, f.key)}</td><td class=num>{f.page_num}</td>"
        f"<td>{esc(f.error_type)}</td>{message_cell(f.error_message)}"
        f"<td>{esc(utc_time(f.failed_at))}</td></tr>"
        for f in reversed(items)
    )
    return (
        f'<section id="failed-items-section"{"" if total else " hidden"}><h3>Failed items '
        f'<span data-field="num_failed_items">{total:,}</span>{esc(shown)} '
        f'<a class="download" id="failures-csv" href="{esc(csv)}" download>CSV of all listed '
        "failures</a></h3>"
        '<div class="scroll"><table class="failures" id="failed-items"><thead><tr><th>Key</th>'
        "<th>Page</th><th>Error</th><th>Message</th><th>When</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _item_key(view: BatchView, key: str) -> str:
    """A failed item's key; for an item workflow, a link to its page in the Temporal Web UI."""
    url = view.item_url(key)
    if url is None:
        return esc_id(key)
    return f'<a href="{esc(url)}" target="_blank" rel="noopener">{esc_id(key)}</a>'


def change_log_section(p: BatchOrchestratorProgress | None) -> str:
    """Who paused, resumed or re-limited the batch, and when (the latest first)."""
    changes = list(reversed(p.control_changes)) if p is not None else []
    rows = "".join(
        f"<tr><td>{esc(clock(c.at))}</td><td>{esc(c.change)}</td>"
        f"<td>{esc_id(c.by or 'the batch')}</td></tr>"
        for c in changes
    )
    return (
        f'<section id="changes-section"{"" if changes else " hidden"}><h3>Changes</h3>'
        '<div class="scroll"><table class="failures" id="changes"><thead><tr><th>When</th>'
        f"<th>Change</th><th>By</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _average(view: BatchView) -> str:
    p = view.progress
    if p is None or p.start_time is None or view.close_time is None:
        return ""
    seconds = (view.close_time - p.start_time).total_seconds()
    if seconds <= 0:
        return ""
    return (
        f"finished: {p.num_completed_items:,} items in {format_duration(seconds)}, "
        f"{p.num_completed_items / seconds:,.1f} items/s on average"
    )


def chart_section(view: BatchView) -> str:
    """Two small charts, one quantity each: items per second, and pages at once.

    Pages at once shows the pages running and the cap. The page's script draws them from the
    batch's history when its progress has one, else from what it sampled itself.
    """
    average = _average(view)
    return f"""<section class="chart" id="chart-section">
<h3>Throughput <small id="chart-source">(sampled by this page while it is open)</small></h3>
<p class="average" id="chart-average"{"" if average else " hidden"}>{esc(average)}</p>
<div class="panels">
<figure><figcaption>items per second</figcaption>
<svg id="chart-items" viewBox="0 0 640 160" role="img" aria-label="items per second"></svg>
</figure>
<figure><figcaption>pages at once: <span class="k running">running</span>
<span class="k cap">parallelism cap</span></figcaption>
<svg id="chart-pages" viewBox="0 0 640 160" role="img" aria-label="pages at once"></svg>
</figure></div></section>"""
