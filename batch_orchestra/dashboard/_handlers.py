"""The dashboard's route handlers and what they share: the backend, the settings, the CSRF token.

Routes and middleware are put together by ``create_app`` (``_app``).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from .._client import BatchOrchestratorClient
from .._exceptions import InvalidBatchInputError
from .._read import (
    BatchView,
    CliError,
    batches_query,
    failures_csv,
    failures_of,
    find_batch,
    list_batch_page,
    load_view,
)
from . import _html as html
from ._actions import ACTIONS, ActionInputError, perform
from ._data import STATUS_FILTERS, Backend, BatchRow, InputSummary, dashboard_identity, view_json
from ._forms import START_FIELDS, decode_token, encode_token, read_form, start_input
from ._metrics import collect, render
from ._security import USER_SCOPE_KEY, same_origin

__all__ = ["Dashboard"]

_LIST_QUERY_TIMEOUT = timedelta(seconds=1)
"""How long the list waits for each batch's progress (they are asked at once)."""
_MESSAGES = {
    "paused": "Paused: running pages finish, no new page starts.",
    "resumed": "Resumed.",
    "parallelism": "Parallelism changed.",
    "rate": "Rate limit changed.",
    "retried": "The page starts now, first in line.",
    "skipped": "The page was skipped.",
    "redriven": "Failed pages queued again.",
    "redrive-started": "Redrive started: this batch runs the failures again.",
    "canceled": "Cancellation requested.",
    "started": "Batch started.",
}


@dataclass
class _Loaded:
    """One batch as its page shows it."""

    view: BatchView
    summary: InputSummary
    started: datetime | None
    stale_at: datetime | None

    def json(self) -> dict[str, object]:
        return view_json(
            self.view,
            self.summary.processor,
            started=self.started,
            stale_at=self.stale_at,
            total_items=self.summary.total_items,
        )


class Dashboard:
    """The route handlers and what they share: the backend, the settings, the CSRF token."""

    def __init__(
        self,
        backend: Backend,
        *,
        read_only: bool,
        csrf: str,
        max_metrics_batches: int,
        page_size: int,
        poll_interval: timedelta,
        identity: str | None = None,
    ) -> None:
        self.backend = backend
        self.identity = identity
        self.read_only = read_only
        self.csrf = csrf
        self.max_metrics_batches = max_metrics_batches
        self.page_size = page_size
        self.poll_ms = int(poll_interval.total_seconds() * 1000)

    def chrome(self, request: Request) -> html.Chrome:
        t = self.backend.target
        return html.Chrome(
            base=request.scope.get("root_path", "").rstrip("/"),
            namespace=t.namespace,
            address=t.address,
            read_only=self.read_only,
            csrf=self.csrf,
            poll_ms=self.poll_ms,
        )

    def _error(
        self, request: Request, status: int, title: str, message: str, back: str | None = None
    ) -> HTMLResponse:
        page = html.error_page(self.chrome(request), title, message, back)
        return HTMLResponse(page, status_code=status)

    async def _client(self) -> Client:
        return await self.backend.client()

    async def batch_list(self, request: Request) -> Response:
        status = request.query_params.get("status", "all")
        if status not in STATUS_FILTERS:
            return self._error(
                request,
                400,
                "Unknown status filter",
                f"status {status!r} is not one of {', '.join(STATUS_FILTERS)}",
            )
        token = decode_token(request.query_params.get("page"))
        try:
            client = await self._client()
            found, next_token = await list_batch_page(
                client,
                self.backend.target,
                query=batches_query(STATUS_FILTERS[status]),
                page_size=self.page_size,
                next_page_token=token,
                query_timeout=_LIST_QUERY_TIMEOUT,
                closed=self.backend.closed_rows,
            )
            processors = await asyncio.gather(*(self.backend.processor(e) for e, _, _ in found))
        except CliError as err:
            return self._error(request, 503, "Temporal is unreachable", err.message)
        except RPCError as err:
            return self._error(
                request,
                502,
                "Temporal refused the list",
                self.backend.target.rpc_error(err).message,
            )
        rows = [
            BatchRow(view, proc, started, stale_at=self.backend.remember(view))
            for (_, view, started), proc in zip(found, processors, strict=True)
        ]
        if status == "paused":
            rows = [r for r in rows if r.view.progress is not None and r.view.progress.is_paused]
        page = html.list_page(
            self.chrome(request),
            rows,
            status=status,
            next_token=encode_token(next_token),
            first_page=token is None,
        )
        return HTMLResponse(page)

    async def _load(self, batch_id: str) -> _Loaded:
        client = await self._client()
        desc = await find_batch(client, self.backend.target, batch_id)
        view, summary = await asyncio.gather(
            load_view(client, self.backend.target, batch_id, desc=desc),
            self.backend.summary(desc),
        )
        stale_at = self.backend.remember(view)
        if stale_at is not None:
            view.note = (
                "no worker answered: showing the last known progress, from "
                f"{html.clock(stale_at)}. " + (view.note or "")
            ).strip()
        started = view.progress.start_time if view.progress else None
        return _Loaded(view, summary, started or desc.start_time, stale_at)

    async def batch_page(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        try:
            loaded = await self._load(batch_id)
        except CliError as err:
            code = 404 if err.message.startswith("no batch") else 503
            return self._error(
                request,
                code,
                "Batch not found" if code == 404 else "Error",
                err.message,
                back=self.chrome(request).base + "/",
            )
        message = _MESSAGES.get(request.query_params.get("done", ""), "")
        page = html.batch_page(
            self.chrome(request),
            loaded.view,
            html.PageFacts(
                processor=loaded.summary.processor,
                started=loaded.started,
                stale_at=loaded.stale_at,
                total_items=loaded.summary.total_items,
            ),
            message,
        )
        return HTMLResponse(page)

    async def batch_json(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        try:
            loaded = await self._load(batch_id)
        except CliError as err:
            code = 404 if err.message.startswith("no batch") else 503
            return JSONResponse({"error": err.message}, status_code=code)
        return JSONResponse(loaded.json())

    async def failures(self, request: Request) -> Response:
        """The batch's failures as CSV (the same as ``batch-orchestra failures ID --csv``).

        With whole cursors and keys; ``?all=1``: every one (``--all``).
        """
        batch_id = request.query_params.get("batch_id", "")
        try:
            loaded = await self._load(batch_id)
        except CliError as err:
            code = 404 if err.message.startswith("no batch") else 503
            return Response(err.message + "\n", status_code=code, media_type="text/plain")
        if loaded.view.progress is None:
            message = loaded.view.note or "progress unavailable"
            return Response(message + "\n", status_code=503, media_type="text/plain")
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in batch_id)[:80]
        handle = BatchOrchestratorClient(await self._client()).get_handle(batch_id)
        try:
            found = await handle.failures(
                all=request.query_params.get("all") == "1", rpc_timeout=timedelta(seconds=10)
            )
        except (RPCError, WorkflowQueryFailedError):  # no worker: what progress lists
            found = failures_of(loaded.view.progress)
        return Response(
            failures_csv(found),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}-failures.csv"'},
        )

    def _identity(self, request: Request) -> str:
        """Who this request acts as: the signed-in user, else the dashboard's identity."""
        user = request.scope.get(USER_SCOPE_KEY)
        if user:
            return dashboard_identity(str(user))
        return self.identity or dashboard_identity()

    async def action(self, request: Request) -> Response:
        action = request.path_params["action"]
        wants_json = "application/json" in request.headers.get("accept", "")
        form = await read_form(request)
        batch_id = str(form.get("batch_id", ""))
        base = self.chrome(request).base
        back = html.batch_path(base, batch_id)

        def fail(status: int, title: str, message: str) -> Response:
            if wants_json:
                return JSONResponse({"ok": False, "title": title, "error": message}, status)
            return self._error(request, status, title, message, back)

        refusal = await self._post_refusal(request)
        if refusal is not None:
            return fail(*refusal)
        if action not in ACTIONS:
            return fail(404, "Unknown action", f"{action!r} is not one of {', '.join(ACTIONS)}")
        try:
            done = await perform(self.backend, action, batch_id, form, self._identity(request))
        except ActionInputError as err:
            return fail(400, err.title, err.message)
        except (CliError, RPCError) as err:
            message = (
                err.message
                if isinstance(err, CliError)
                else self.backend.target.rpc_error(err).message
            )
            return fail(409, f"Could not {action.replace('-', ' ')}", message)
        location = f"{html.batch_path(base, done.batch_id)}?done={done.done}"
        if wants_json:
            return JSONResponse({"ok": True, "message": done.message, "location": location})
        return RedirectResponse(location, status_code=303)

    async def _check_post(self, request: Request) -> Response | None:
        refusal = await self._post_refusal(request)
        return self._error(request, *refusal) if refusal is not None else None

    async def _post_refusal(self, request: Request) -> tuple[int, str, str] | None:
        """(status, title, message) when a control request must be refused, else None."""
        if self.read_only:
            return (
                403,
                "Read-only dashboard",
                "this dashboard was started with --read-only; controls are off",
            )
        if not same_origin(request):
            return (
                403,
                "Cross-site request refused",
                "this request came from another site's page; use the dashboard's own buttons",
            )
        form = await read_form(request)
        given = str(form.get("csrf_token", ""))
        if not secrets.compare_digest(given.encode(), self.csrf.encode()):
            return (
                403,
                "Form expired",
                "the form's security token is missing or stale (the dashboard "
                "restarted?); reload the page and try again",
            )
        return None

    async def _suggestions(self) -> tuple[list[str], list[str]]:
        """Processor names and task queues of recent batches, for the start form."""
        queues: set[str] = set()
        try:
            client = await self._client()
            recent = [e async for e in client.list_workflows(batches_query(), limit=50)]
            await asyncio.gather(*(self.backend.processor(e) for e in recent))
            queues = {e.task_queue for e in recent}
        except (CliError, RPCError):
            pass
        return self.backend.known_processors(), sorted(queues)

    async def start_form(self, request: Request) -> Response:
        if self.read_only:
            return self._error(
                request,
                403,
                "Read-only dashboard",
                "this dashboard was started with --read-only; it cannot start batches",
            )
        processors, queues = await self._suggestions()
        values = {"page_size": "100", "max_parallelism": "4"}
        values.update({k: v for k, v in request.query_params.items() if k in START_FIELDS})
        page = html.start_page(
            self.chrome(request), processors=processors, task_queues=queues, values=values
        )
        return HTMLResponse(page)

    async def start(self, request: Request) -> Response:
        refused = await self._check_post(request)
        if refused is not None:
            return refused
        form = await read_form(request)
        values = {k: str(form.get(k, "")).strip() for k in START_FIELDS}
        try:
            inp, wid, queue = start_input(values)
            client = await self._client()
            await BatchOrchestratorClient(client).start(inp, id=wid, task_queue=queue)
        except (ValueError, InvalidBatchInputError, CliError) as err:
            return await self._start_error(request, values, str(getattr(err, "message", err)))
        except RPCError as err:
            message = self.backend.target.rpc_error(err).message
            return await self._start_error(request, values, message)
        except WorkflowAlreadyStartedError:
            return await self._start_error(
                request,
                values,
                f"a batch with ID {values['batch_id']!r} is already running; pick another ID",
            )
        path = html.batch_path(self.chrome(request).base, wid)
        return RedirectResponse(f"{path}?done=started", status_code=303)

    async def _start_error(self, request: Request, values: dict[str, str], error: str) -> Response:
        processors, queues = await self._suggestions()
        page = html.start_page(
            self.chrome(request),
            processors=processors,
            task_queues=queues,
            values=values,
            error=error,
        )
        return HTMLResponse(page, status_code=400)

    async def metrics(self, request: Request) -> Response:
        try:
            samples, running = await collect(self.backend, self.max_metrics_batches)
        except CliError as err:
            return Response(f"# {err.message}\n", status_code=503, media_type="text/plain")
        body = render(samples, running, self.max_metrics_batches)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
