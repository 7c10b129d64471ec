"""Where the batches live (``Target``) and the one-line error of every expected failure.

``CliError`` is what the CLI prints as ``error: ...`` and the dashboard shows on its pages.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from dataclasses import dataclass
from typing import IO, Any

import click
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from .._client.connect import Connection
from .._devserver import workflow_ui_url

__all__ = ["CONNECT_TIMEOUT", "CliError", "Target", "cli_identity"]

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the Temporal server to answer at all."""


class CliError(click.ClickException):
    """An expected failure, reported as one ``error:`` line on stderr with exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)


@dataclass(frozen=True)
class Target:
    """Where the batches live: the server's address, the namespace, and the Web UI."""

    address: str
    namespace: str
    ui_url: str
    connection: Connection | None = None
    """API key, TLS and headers for the server, when there are any (see ``_client.connect``)."""

    @classmethod
    def from_connection(cls, connection: Connection, ui_url: str) -> Target:
        """The target of a resolved connection."""
        return cls(connection.address, connection.namespace, ui_url, connection)

    def url(self, batch_id: str) -> str:
        """The Web UI page of a batch."""
        return workflow_ui_url(self.ui_url, self.namespace, batch_id)

    def unreachable(self) -> CliError:
        """The error for a server that does not answer."""
        return CliError(
            f"cannot reach a Temporal server at {self.address} (set --address or "
            "TEMPORAL_ADDRESS; `batch-orchestra server` runs one locally)"
        )

    def rpc_error(self, err: RPCError) -> CliError:
        """One line for a request the server refused."""
        if err.status == RPCStatusCode.UNAVAILABLE:
            return self.unreachable()
        if err.status == RPCStatusCode.NOT_FOUND and "namespace" in err.message.lower():
            return CliError(
                f"namespace {self.namespace!r} does not exist on the Temporal server at "
                f"{self.address} (set --namespace or TEMPORAL_NAMESPACE)"
            )
        return CliError(f"the Temporal server at {self.address} answered: {err.message}")

    async def connect(self) -> Client:
        """A client connected to the server, or ``CliError`` when it cannot be reached."""
        try:
            kwargs = (
                self.connection.connect_kwargs()
                if self.connection is not None
                else {"namespace": self.namespace}
            )
            kwargs.setdefault("identity", cli_identity())
            return await asyncio.wait_for(Client.connect(self.address, **kwargs), CONNECT_TIMEOUT)
        except (RuntimeError, OSError, RPCError, asyncio.TimeoutError, ValueError):
            raise self.unreachable() from None


def cli_identity() -> str:
    """Who the CLI acts as in the batch's change log: user@host (batch-orchestra CLI)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} (batch-orchestra CLI)"
