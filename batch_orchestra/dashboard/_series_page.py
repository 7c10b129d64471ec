"""The dashboard's series pages: the list of series and one series (schedule, mark, runs).

Routes (relative to where the app is mounted)::

    GET  /series                  the series, with schedule, state, mark and last run
    GET  /series/{name}           one series: schedule, next runs, mark, recent runs, controls
    GET  /api/series/{name}       its description as JSON
    POST /series-actions/{action} pause | resume | trigger (form: name, csrf_token[, note])

Rendered on the server like the batch pages; every value passes through ``esc``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from temporalio.service import RPCError

from .._client import BatchOrchestratorClient
from .._client.series import description_json
from .._exceptions import UnknownSeriesError
from .._read import CliError, format_duration
from .._series.types import SeriesDescription, SeriesRun
from . import _html as html
from ._forms import read_form
from ._markup import utc_time

if TYPE_CHECKING:
    from ._handlers import Dashboard

__all__ = ["series_path", "series_routes"]

SERIES_ACTIONS = ("pause", "resume", "trigger")
_MESSAGES = {
    "paused": "Paused: no tick starts a run until it is resumed.",
    "resumed": "Resumed: the next run covers what arrived meanwhile.",
    "triggered": "Triggered: a run starts now, or as soon as the running one ends.",
}
_LIST_TIMEOUT = timedelta(seconds=2)


def series_path(base: str, name: str) -> str:
    """The path of a series' page."""
    return f"{base}/series/{quote(name, safe='')}"


def _run_row(base: str, r: SeriesRun) -> str:
    batch = (
        f'<a href="{html.esc(html.batch_path(base, r.batch_id))}">{html.esc(r.batch_id)}</a>'
        if r.batch_id
        else "-"
    )
    pages = "-" if r.kind == "skipped" else f"{r.num_completed_pages:,}"
    if r.num_failed_pages:
        pages += f" ({r.num_failed_pages:,} failed)"
    items = "-" if r.kind == "skipped" else f"{r.num_completed_items:,}"
    reason = f"<div class=note>{html.esc(r.reason)}</div>" if r.reason else ""
    return (
        f"<tr><td>{html.esc(utc_time(r.started_at))}</td><td>{html.esc(r.kind)}</td>"
        f"<td class=cursor>{html.esc(r.window.text() if r.window else '-')}</td>"
        f'<td><span class="status o-{html.esc(r.outcome)}">{html.esc(r.outcome)}</span>'
        f'{reason}</td><td class="num">{pages}</td><td class="num">{items}</td>'
        f'<td class="id">{batch}</td></tr>'
    )


def _control(chrome: html.Chrome, name: str, action: str, label: str, confirm: str) -> str:
    return (
        f'<form method="post" action="{html.esc(chrome.base)}/series-actions/{action}" '
        f'data-confirm="{html.esc(confirm)}" class="control">'
        f'<input type="hidden" name="csrf_token" value="{html.esc(chrome.csrf)}">'
        f'<input type="hidden" name="name" value="{html.esc(name)}">'
        f'<button type="submit" id="series-{action}-button">{html.esc(label)}</button></form>'
    )


def series_page(chrome: html.Chrome, d: SeriesDescription, message: str) -> str:
    """One series: its schedule and state, the mark, counts, recent runs and controls."""
    base = chrome.base
    notice = (
        f'<p class="flash" id="flash" role="status"{"" if message else " hidden"}>'
        f"{html.esc(message)}</p>"
    )
    state = "PAUSED" if d.paused else "ACTIVE"
    mark = "-" if d.mark is None else d.mark
    moved = f" moved {utc_time(d.mark_moved_at)}" if d.mark_moved_at else ""
    behind = (
        f", {format_duration(d.behind.total_seconds())} behind now" if d.behind is not None else ""
    )
    nxt = ", ".join(utc_time(t) for t in d.next_runs[:3]) if not d.paused else "-"
    controls = ""
    if not chrome.read_only:
        toggle = (
            _control(chrome, d.name, "resume", "Resume", f"Resume series {d.name}?")
            if d.paused
            else _control(
                chrome,
                d.name,
                "pause",
                "Pause",
                f"Pause series {d.name}? No tick starts a run until it is resumed.",
            )
        )
        trigger = _control(
            chrome, d.name, "trigger", "Run now", f"Start a run of series {d.name} now?"
        )
        controls = f'<div class="controls" id="series-controls">{toggle}{trigger}</div>'
    running = "".join(
        f'<p class="note">running: <a href="{html.esc(html.batch_path(base, r.batch_id))}">'
        f"{html.esc(r.batch_id)}</a> {html.esc(r.window.text() if r.window else '')}</p>"
        for r in d.running
        if r.batch_id
    )
    worker = f'<p class="note">{html.esc(d.note_from_worker)}</p>' if d.note_from_worker else ""
    paused_note = f'<p class="note">{html.esc(d.note)}</p>' if d.paused and d.note else ""
    rows = "".join(_run_row(base, r) for r in d.runs[:25])

    def cell(field: str, label: str, value: object) -> str:
        return (
            f'<div><dt>{html.esc(label)}</dt><dd data-field="{field}">{html.esc(value)}</dd></div>'
        )

    body = f"""{notice}
<section class="series" id="series">
<h1><span class="id" id="series-name">{html.esc(d.name)}</span>
<span class="status s-{state.lower()}" id="series-state">{state}</span></h1>
<p class="meta">{html.esc(d.schedule)} · overlap {html.esc(d.overlap)} · processor
<b>{html.esc(d.processor)}</b> · task queue <b>{html.esc(d.task_queue)}</b> · window
<b>{html.esc(d.window)}</b> · on failure {html.esc(d.on_failure)}</p>
<p class="meta">mark{html.esc(moved + behind) or " not moved yet"} · next runs
<span data-field="next_runs">{html.esc(nxt)}</span></p>
{paused_note}{worker}{running}
<dl class="counts">{
        "".join(
            [
                cell("mark", "mark", mark),
                cell("num_runs", "runs", f"{d.num_runs:,}"),
                cell("num_committed", "committed", f"{d.num_committed:,}"),
                cell("num_held", "held", f"{d.num_held:,}"),
                cell("num_empty", "empty", f"{d.num_empty:,}"),
                cell("num_skipped", "ticks skipped", f"{d.num_skipped:,}"),
                cell("num_backfills", "backfills", f"{d.num_backfills:,}"),
            ]
        )
    }</dl>
{controls}
<h3>Recent runs</h3>
<table class="runs" id="series-runs"><thead><tr><th>Started</th><th>Kind</th><th>Window</th>
<th>Outcome</th><th>Pages</th><th>Items</th><th>Batch</th></tr></thead>
<tbody>{rows}</tbody></table>
</section>"""
    return html.layout(chrome, f"series {d.name}", body, page="series")


def series_list_page(chrome: html.Chrome, found: list[tuple[str, Any]]) -> str:
    """The series of the namespace, one row each."""
    base = chrome.base
    if not found:
        body = (
            '<p class="empty">No series yet. Create one with <code>batch-orchestra series '
            "create NAME --processor P -q QUEUE --every 1h ...</code> (docs/series.md).</p>"
        )
        return html.layout(chrome, "Series", body, page="series-list")
    rows = []
    for name, d in found:
        link = f'<a href="{html.esc(series_path(base, name))}">{html.esc(name)}</a>'
        if isinstance(d, SeriesDescription):
            last = next((r for r in d.runs if r.kind != "skipped"), None)
            state = "paused" if d.paused else "active"
            last_text = f"{last.outcome} at {utc_time(last.started_at)}" if last else "-"
            rows.append(
                f'<tr><td class="id">{link}</td><td>{html.esc(d.schedule)}</td>'
                f"<td>{state}</td><td class=cursor>{html.esc(d.mark or '-')}</td>"
                f"<td>{html.esc(last_text)}</td></tr>"
            )
        else:
            rows.append(f'<tr><td class="id">{link}</td><td colspan=4>{html.esc(d)}</td></tr>')
    body = (
        '<h1>Series</h1><table class="batches" id="series-list"><thead><tr><th>Series</th>'
        "<th>Schedule</th><th>State</th><th>Mark</th><th>Last run</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return html.layout(chrome, "Series", body, page="series-list")


def series_routes(dash: Dashboard) -> list[Route]:
    """The series routes of a dashboard (``dash``: the app's ``Dashboard``)."""

    async def orchestra() -> BatchOrchestratorClient:
        return BatchOrchestratorClient(await dash.backend.client())

    async def guarded(
        request: Request, work: Callable[[], Coroutine[Any, Any, Response]]
    ) -> Response:
        try:
            return await work()
        except UnknownSeriesError as err:
            return dash._error(
                request, 404, "Series not found", str(err), dash.chrome(request).base + "/series"
            )
        except CliError as err:
            return dash._error(request, 503, "Temporal is unreachable", err.message)
        except RPCError as err:
            return dash._error(
                request, 502, "Temporal refused", dash.backend.target.rpc_error(err).message
            )

    async def list_(request: Request) -> Response:
        async def work() -> Response:
            o = await orchestra()
            names = await o.list_series()
            descs = await asyncio.gather(
                *(o.get_series(n).describe(rpc_timeout=_LIST_TIMEOUT) for n in names),
                return_exceptions=True,
            )
            found = [
                (n, d if isinstance(d, SeriesDescription) else str(d))
                for n, d in zip(names, descs, strict=True)
            ]
            return HTMLResponse(series_list_page(dash.chrome(request), found))

        return await guarded(request, work)

    async def page(request: Request) -> Response:
        name = request.path_params["name"]

        async def work() -> Response:
            d = await (await orchestra()).get_series(name).describe()
            message = _MESSAGES.get(request.query_params.get("done", ""), "")
            return HTMLResponse(series_page(dash.chrome(request), d, message))

        return await guarded(request, work)

    async def api(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            d = await (await orchestra()).get_series(name).describe()
        except UnknownSeriesError as err:
            return JSONResponse({"error": str(err)}, status_code=404)
        except CliError as err:
            return JSONResponse({"error": err.message}, status_code=503)
        return JSONResponse(description_json(d))

    async def action(request: Request) -> Response:
        what = request.path_params["action"]
        # The page's script posts for JSON and then goes to "location"; without it, a redirect.
        wants_json = "application/json" in request.headers.get("accept", "")
        form = await read_form(request)
        name = str(form.get("name", ""))
        back = series_path(dash.chrome(request).base, name)

        def fail(status: int, title: str, message: str) -> Response:
            if wants_json:
                return JSONResponse({"ok": False, "title": title, "error": message}, status)
            return dash._error(request, status, title, message, back)

        refusal = await dash._post_refusal(request)
        if refusal is not None:
            return fail(*refusal)
        if what not in SERIES_ACTIONS:
            return fail(
                404, "Unknown action", f"{what!r} is not one of {', '.join(SERIES_ACTIONS)}"
            )
        handle = (await orchestra()).get_series(name)
        note = str(form.get("note", "")) or f"from the dashboard by {dash._identity(request)}"
        calls = {
            "pause": lambda: handle.pause(note),
            "resume": lambda: handle.resume(note),
            "trigger": handle.trigger,
        }
        try:
            await calls[what]()
        except UnknownSeriesError as err:
            return fail(404, "Series not found", str(err))
        except CliError as err:
            return fail(503, "Temporal is unreachable", err.message)
        except RPCError as err:
            return fail(409, f"Could not {what}", dash.backend.target.rpc_error(err).message)
        done = {"pause": "paused", "resume": "resumed", "trigger": "triggered"}[what]
        location = f"{back}?done={done}"
        if wants_json:
            return JSONResponse({"ok": True, "message": _MESSAGES[done], "location": location})
        return RedirectResponse(location, status_code=303)

    return [
        Route("/series", list_, methods=["GET"]),
        Route("/series/{name:path}", page, methods=["GET"]),
        Route("/api/series/{name:path}", api, methods=["GET"]),
        Route("/series-actions/{action}", action, methods=["POST"]),
    ]
