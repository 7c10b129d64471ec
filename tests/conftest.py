"""Shared fixtures: one real Temporal dev server per session, worker factories; the unit marker.

A test is marked ``unit`` (``pytest -m unit``, ``make test-unit``) when it starts no server and
is quick: it uses none of ``SERVER_FIXTURES`` (directly or through another fixture), is not
``slow``, is not listed in ``STARTS_ITS_OWN_SERVER`` and is not in ``NOT_UNIT_FILES``. A unit
test that starts an ``EmbeddedTemporal`` anyway fails, naming the list, so that a test which
gains a server of its own cannot stay marked by mistake.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import hypothesis  # noqa: F401  (see below)
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

import tests.history_processors  # noqa: F401  (the recorded histories' processors, same names)
import tests.processors  # noqa: F401  (registers the test processors and trackers)
import tests.shell_processors  # noqa: F401  (the shell fault tests' processors)
from batch_orchestra import BatchOrchestraPlugin, BatchOrchestratorClient, EmbeddedTemporal

logging.getLogger("temporalio").setLevel(logging.WARNING)
# hypothesis is imported up front: its pytest plugin imports it in the terminal summary of a run
# that collected no property test, and CPython 3.11 then failed once to compile it ("AST
# constructor recursion depth mismatch"), failing a run whose tests had all passed.


SERVER_FIXTURES = frozenset({"temporal", "postgres_url"})
"""Fixtures that start a Temporal dev server or PostgreSQL (tests/postgres.py)."""

STARTS_ITS_OWN_SERVER = frozenset(
    {
        # An EmbeddedTemporal of their own (restarted, or with other settings).
        "tests/test_core.py::test_enqueues_fall_back_to_signals_when_updates_are_refused",
        "tests/test_crash.py::test_server_restarted_on_same_db_mid_batch",
        "tests/test_item_faults.py::test_a_worker_killed_mid_start_and_a_server_restart_lose_no_item_and_run_none_twice",
        "tests/test_devserver.py::test_dynamic_config_reaches_the_server",
        "tests/test_series.py::test_worker_killed_and_server_restarted_mid_run_reattaches_and_commits_once",
        # A subprocess that starts one (the quickstart, `batch-orchestra server`).
        "tests/test_readme.py::test_readme_quickstart_runs",
        "tests/test_cli.py::test_server_command_serves_until_ctrl_c",
    }
)
"""Tests (file::function) that start a server without a fixture."""


def _starts_a_server(item: pytest.Item) -> bool:
    if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    # PostgreSQL cases take the session's server through request.getfixturevalue("postgres_url").
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        return True
    return item.nodeid.split("[")[0] in STARTS_ITS_OWN_SERVER


NOT_UNIT_FILES = frozenset({"tests/test_replay.py"})
"""Files whose tests start no server but are no quick check of one piece: the replays of every
recorded history through the SDK's replayer (about 20 s), run on their own after a workflow
change."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (
            item.get_closest_marker("slow") is None
            and item.nodeid.split("::")[0] not in NOT_UNIT_FILES
            and not _starts_a_server(item)
        ):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_server(request: pytest.FixtureRequest, monkeypatch: Any) -> None:
    if request.node.get_closest_marker("unit") is None:
        return

    async def refuse(self: EmbeddedTemporal, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"{request.node.nodeid} is marked unit but starts a Temporal server: "
            "list it in STARTS_ITS_OWN_SERVER (tests/conftest.py)"
        )

    monkeypatch.setattr(EmbeddedTemporal, "start", refuse)


@pytest_asyncio.fixture(scope="session")
async def temporal() -> AsyncIterator[EmbeddedTemporal]:
    """A real dev server on a free loopback port (or TEMPORAL_ADDRESS)."""
    async with EmbeddedTemporal() as server:
        yield server


@pytest.fixture
def client(temporal: EmbeddedTemporal) -> Client:
    return temporal.client


@pytest.fixture
def orchestra(client: Client) -> BatchOrchestratorClient:
    return BatchOrchestratorClient(client)


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@asynccontextmanager
async def _worker(
    client: Client, task_queue: str, plugin: BatchOrchestraPlugin | None = None, **kwargs: Any
) -> AsyncIterator[Worker]:
    worker = Worker(
        client, task_queue=task_queue, plugins=[plugin or BatchOrchestraPlugin()], **kwargs
    )
    async with worker:
        yield worker


@pytest.fixture
def new_worker(client: Client, task_queue: str) -> Callable[..., Any]:
    """``async with new_worker(): ...`` runs a worker with the plugin on this test's queue
    (``plugin=`` a ``BatchOrchestraPlugin`` of the test's own)."""

    def factory(**kwargs: Any) -> Any:
        return _worker(client, kwargs.pop("task_queue", task_queue), **kwargs)

    return factory
