"""Serving the dashboard with uvicorn: from the command line, or inside your own process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import Any

import click
import uvicorn
from starlette.types import ASGIApp

from .._read import CliError, Target
from ._app import create_app
from ._security import LOOPBACK_HOSTS, is_loopback, read_users_file

__all__ = ["TOKEN_ENV", "DashboardServer", "check_bind", "run_from_cli", "serve"]

TOKEN_ENV = "BATCH_ORCHESTRA_DASHBOARD_TOKEN"
"""The environment variable that holds the dashboard's access token."""


def check_bind(host: str, token: str | bool | None) -> None:
    """Refuse to serve beyond this machine without an access token.

    Raises:
        ValueError: ``host`` is not a loopback address and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise ValueError(
            f"refusing to serve the dashboard on {host!r} without an access token: anyone who "
            f"can reach it could pause or cancel batches. Pass --token (or set {TOKEN_ENV}), "
            "or bind to 127.0.0.1"
        )


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Inside someone else's process, leave its Ctrl-C handling alone.
        yield


class DashboardServer:
    """Serves an ASGI app in this event loop (for demos and tests).

    ``async with DashboardServer(app, port=p) as server:`` serves ``app``; ``server.url`` is its
    address.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8234) -> None:
        self.host = host
        self.port = port
        self.url = _url(host, port)
        """The dashboard's address, e.g. ``http://127.0.0.1:8234/``."""
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DashboardServer:
        """Start serving; ``OSError`` when the port is taken."""
        if _port_taken(self.host, self.port):
            raise OSError(f"port {self.port} on {self.host} is already in use")
        self._task = asyncio.ensure_future(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError(
                    f"the dashboard could not listen on {self.host}:{self.port}; "
                    "is the port in use?"
                )
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8234,
    token: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    users: Mapping[str, str] | None = None,
    **app_kwargs: Any,
) -> None:
    """Serve the dashboard until SIGINT/SIGTERM (what ``batch-orchestra dashboard`` runs).

    Without a token it answers only to loopback host names; ``token`` defaults to
    ``BATCH_ORCHESTRA_DASHBOARD_TOKEN``.

    Args:
        host: the interface to bind; anything but loopback needs ``token``.
        port: the TCP port.
        token: the access token every request must carry.
        on_ready: called with the dashboard's URL once it listens.
        users: user names and their own tokens (each user's actions are recorded by name).
        app_kwargs: passed to ``create_app`` (``address``, ``namespace``, ``read_only``, ...).

    Raises:
        ValueError: a non-loopback ``host`` without a token.
    """
    token = token or os.environ.get(TOKEN_ENV) or None
    check_bind(host, token or bool(users))
    trusted = None if token or users else list(LOOPBACK_HOSTS)
    app = create_app(token=token, trusted_hosts=trusted, users=users, **app_kwargs)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started and on_ready is not None:
        on_ready(_url(host, port))
    await task


async def run_from_cli(
    target: Target,
    *,
    host: str,
    port: int,
    token: str | None,
    read_only: bool,
    max_metrics_batches: int,
    users_file: str | None = None,
) -> None:
    """``batch-orchestra dashboard``: check the bind, connect, print the URL, serve."""
    try:
        users = read_users_file(users_file) if users_file else None
        check_bind(host, token or bool(users))
    except (ValueError, OSError) as err:
        raise CliError(str(err)) from None
    if _port_taken(host, port):
        raise CliError(f"port {port} on {host} is already in use; choose another with --port")
    client = await target.connect()

    def ready(url: str) -> None:
        shown = f"{url}?token=<your token>" if token or users else url
        mode = " (read-only)" if read_only else ""
        click.echo(
            f"dashboard{mode} at {shown} for namespace {target.namespace!r} at "
            f"{target.address}; Ctrl-C stops it"
        )

    await serve(
        host=host,
        port=port,
        token=token,
        on_ready=ready,
        users=users,
        client=client,
        ui_url=target.ui_url,
        read_only=read_only,
        max_metrics_batches=max_metrics_batches,
    )


def _port_taken(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError:
            return True
    return False
