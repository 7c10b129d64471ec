"""``create_app``: the dashboard as a Starlette ASGI app, standalone or mounted in your own.

Routes (relative to where the app is mounted)::

    GET  /                      batch list (?status=running|paused|completed|..., ?page=TOKEN)
    GET  /batches/{id}          one batch: live progress, chart, stuck/failed pages, controls
    GET  /api/batches/{id}      that batch's state as JSON (the page polls it)
    GET  /failures.csv?batch_id=ID   its failed, stuck and retrying pages and failed items
    GET  /start                 the start-a-batch form;  POST /start starts it
    POST /actions/{action}      pause | resume | set-parallelism | set-rate | retry-page |
                                skip-page | redrive | redrive-items | cancel (form: batch_id,
                                and n, page_num, reason, pages_per_second, items_per_second);
                                JSON back when the request accepts it (the page's script)
    GET  /series, /series/{name} the series and one series (``_series_page``)
    GET  /metrics               Prometheus metrics of the running batches
    GET  /static/...            the page's CSS and script (no CDN)
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from temporalio.client import Client

from .._read import (
    Target,
)
from ._data import Backend
from ._handlers import Dashboard
from ._security import Guard, csrf_token
from ._series_page import series_routes

__all__ = ["create_app"]

_STATIC = Path(__file__).parent / "static"


def create_app(
    client: Client | None = None,
    *,
    address: str = "localhost:7233",
    namespace: str = "default",
    ui_url: str = "http://localhost:8233",
    token: str | None = None,
    read_only: bool = False,
    max_metrics_batches: int = 100,
    page_size: int = 25,
    trusted_hosts: Sequence[str] | None = None,
    poll_interval: timedelta = timedelta(seconds=1),
    users: Mapping[str, str] | None = None,
    identity: str | None = None,
) -> Starlette:
    """The dashboard as an ASGI app: serve it with uvicorn or mount it in your own app.

    ``app.mount("/batches", create_app(client))`` in a Starlette or FastAPI app serves it under
    ``/batches``.

    Args:
        client: a connected Temporal client; when None, one is connected to ``address`` and
            ``namespace`` on the first request.
        address: the Temporal server's host:port (when ``client`` is None).
        namespace: the namespace (when ``client`` is None; otherwise the client's).
        ui_url: the base URL of the Temporal Web UI, for links to a batch's workflow.
        token: when set, every request must carry it (``Authorization: Bearer``, or a cookie
            set by opening any page once with ``?token=``).
        read_only: hide every control and refuse control requests (403).
        max_metrics_batches: the most running batches ``/metrics`` exports (most recent first).
        page_size: batches per page of the list.
        trusted_hosts: when set, requests whose ``Host`` is not one of these names get 400
            (``batch-orchestra dashboard`` sets the loopback names when it runs without a token).
        poll_interval: how often a batch's page refreshes its progress.
        users: user names and each one's own access token; a request with a user's token
            acts as that user (recorded as ``NAME (dashboard@host)`` in a batch's change log).
        identity: who the dashboard's actions are recorded as when no user is signed in
            (default ``dashboard@<this host>``).

    Raises:
        ValueError: a setting out of range; the message names it.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size!r}")
    if max_metrics_batches < 1:
        raise ValueError(f"max_metrics_batches must be >= 1, got {max_metrics_batches!r}")
    if poll_interval < timedelta(milliseconds=100):
        raise ValueError(f"poll_interval must be at least 100 ms, got {poll_interval!r}")
    if token is not None and not token:
        raise ValueError("token must not be empty; pass None for no token")
    for name, user_token in (users or {}).items():
        if not name or not user_token:
            raise ValueError(f"users must map names to non-empty tokens, got {name!r}")
    if client is not None:
        namespace = client.namespace
        address = getattr(client.service_client.config, "target_host", address)
    backend = Backend(Target(address, namespace, ui_url), client)
    secret = token or _users_secret(users) or secrets.token_urlsafe(32)
    dash = Dashboard(
        backend,
        read_only=read_only,
        csrf=csrf_token(secret),
        max_metrics_batches=max_metrics_batches,
        page_size=page_size,
        poll_interval=poll_interval,
        identity=identity,
    )
    routes = [
        Route("/", dash.batch_list, methods=["GET"]),
        Route("/batches/{batch_id:path}", dash.batch_page, methods=["GET"]),
        Route("/api/batches/{batch_id:path}", dash.batch_json, methods=["GET"]),
        Route("/failures.csv", dash.failures, methods=["GET"]),
        Route("/start", dash.start_form, methods=["GET"]),
        Route("/start", dash.start, methods=["POST"]),
        Route("/actions/{action}", dash.action, methods=["POST"]),
        Route("/metrics", dash.metrics, methods=["GET"]),
        *series_routes(dash),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    middleware = [
        Middleware(
            Guard, token=token, secret=secret, trusted_hosts=trusted_hosts, users=users or None
        )
    ]
    return Starlette(routes=routes, middleware=middleware)


def _users_secret(users: Mapping[str, str] | None) -> str | None:
    """A secret that stays the same across restarts while the users' tokens do."""
    if not users:
        return None
    joined = "\n".join(f"{name}\t{token}" for name, token in sorted(users.items()))
    return hashlib.sha256(joined.encode()).hexdigest()
