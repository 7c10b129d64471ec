"""A throwaway PostgreSQL server for the tests (and the sources benchmark).

``postgres_url`` (session-scoped) is ``BATCH_ORCHESTRA_TEST_POSTGRES_URL`` when set; otherwise it
makes a cluster in a temp dir with ``initdb``, starts it on a free loopback port and removes it
at the end of the session. The server refuses to run as root, so under root it runs as the
``postgres`` system user (``runuser``). Without PostgreSQL's binaries the tests that use it skip
with one line saying how to run them; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_orchestra.testing import free_port

POSTGRES_URL_ENV = "BATCH_ORCHESTRA_TEST_POSTGRES_URL"
"""A SQLAlchemy URL (``postgresql+psycopg://user:pw@host:port/db``) of a server to use instead."""

MISSING = (
    "PostgreSQL tests skipped: no initdb/pg_ctl found; install the server "
    "(apt-get install postgresql) or set BATCH_ORCHESTRA_TEST_POSTGRES_URL=postgresql+psycopg://..."
)


def find_binaries() -> tuple[str, str] | None:
    """(initdb, pg_ctl), from the PATH or Debian's versioned folders (newest first)."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for folder in [None, *folders]:
        initdb = shutil.which("initdb", path=folder)
        pg_ctl = shutil.which("pg_ctl", path=folder) or shutil.which("pg_ctl")
        if initdb and pg_ctl:
            return initdb, pg_ctl
    return None


def _version(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


class PostgresCluster:
    """A PostgreSQL cluster in a temp dir, on a free loopback port, as a context manager.

    ``url`` is a SQLAlchemy URL for the psycopg driver; ``async_url`` the same for its async
    flavour. Tuned for throwaway data (no fsync).
    """

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self._initdb = initdb
        self._pg_ctl = pg_ctl
        self._dir = Path(tempfile.mkdtemp(prefix="bo-postgres-"))
        self._data = self._dir / "data"
        self._port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self._port}/postgres"
        self.async_url = self.url.replace("+psycopg:", "+psycopg_async:")

    def _as_owner(self, *cmd: str) -> list[str]:
        if os.geteuid() != 0:
            return list(cmd)
        return ["runuser", "-u", "postgres", "--", *cmd]

    def __enter__(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self._dir, user="postgres", group="postgres")
        try:
            self._run(
                self._initdb,
                "-D",
                str(self._data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            options = (
                f"-p {self._port} -k {self._dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            self._run(
                self._pg_ctl,
                "-D",
                str(self._data),
                "-l",
                str(self._dir / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self._pg_ctl, "-D", str(self._data), "-m", "immediate", "-w", "stop")
        finally:
            self._remove()

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(self._as_owner(*cmd), capture_output=True, text=True, cwd=self._dir)
        if done.returncode:
            log = self._dir / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    def _remove(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (psycopg driver) of a PostgreSQL server for this test session."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail(MISSING.replace("skipped", "cannot run under CI=true"))
        pytest.skip(MISSING)
    with PostgresCluster(*binaries) as cluster:
        yield cluster.url
