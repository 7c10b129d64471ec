"""Shared fixtures: one real Temporal dev server per session, worker factories."""

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
