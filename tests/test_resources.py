"""Worker-wide resources: created once per worker, shared by all its pages, closed at shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    PageProcessor,
    ProcessorUsageError,
    page_processor,
)
from tests.helpers import batch_id


class _Client:
    """Stands in for an HTTP client: counts how many were made and closed."""

    made = 0
    closed = 0

    def __init__(self) -> None:
        type(self).made += 1
        self.calls = 0
        self.open = True

    async def __aenter__(self) -> _Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.open = False
        type(self).closed += 1


class _Engine:
    """Stands in for an SQLAlchemy engine: closed with dispose()."""

    disposed = 0

    def dispose(self) -> None:
        type(self).disposed += 1


SEEN: dict[str, set[int]] = {}


@page_processor
class UsesResources(PageProcessor):
    """Pages 0..n-1 (a chain); each uses the worker's client, from async and sync code."""

    async def run(self, context: BatchProcessorContext) -> int:
        i, n = int(context.page.cursor_str), json.loads(context.args_str)["n"]
        if i + 1 < n:
            await context.enqueue_next_page(BatchPage(str(i + 1), 1))
        client = context.resource("http")
        assert client.open
        client.calls += 1
        assert isinstance(context.resource("db"), _Engine)
        assert await asyncio.to_thread(context.resource, "http") is client
        SEEN.setdefault(context.batch_id, set()).add(id(client))
        return 1

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


async def test_a_resource_is_created_once_per_worker_and_closed_at_shutdown(
    orchestra, task_queue, new_worker
) -> None:
    made, closed, disposed = _Client.made, _Client.closed, _Engine.disposed
    plugin = BatchOrchestraPlugin(resources={"http": _Client, "db": _Engine})
    bid = batch_id()
    async with new_worker(plugin=plugin):
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=UsesResources,
                page_size=1,
                max_parallelism=8,
                batch_id=bid,
                args=json.dumps({"n": 50}),
                first_cursor_str="0",
            ),
            id=bid,
            task_queue=task_queue,
        )
        p = await asyncio.wait_for(handle.result(), 60)
        assert p.num_completed_pages == 50
        client = plugin.resources.get("http")
        assert _Client.made == made + 1 and client.calls >= 50
        assert SEEN[bid] == {id(client)}
        assert _Client.closed == closed and _Engine.disposed == disposed
    assert _Client.closed == closed + 1 and _Engine.disposed == disposed + 1
    assert not client.open
    with pytest.raises(ProcessorUsageError, match="not open"):
        plugin.resources.get("http")


def test_an_unknown_resource_names_the_declared_ones() -> None:
    plugin = BatchOrchestraPlugin(resources={"http": _Client})
    with pytest.raises(ProcessorUsageError, match="'http'"):
        plugin.resources.get("db")
    with pytest.raises(ValueError, match="resources"):
        BatchOrchestraPlugin(resources={"http": 3})  # type: ignore[dict-item]


async def test_run_locally_gives_pages_the_resources(client) -> None:
    from batch_orchestra.testing import run_locally

    made = _Client.made
    run = await run_locally(
        UsesResources,
        args=json.dumps({"n": 5}),
        first_cursor_str="0",
        page_size=1,
        client=client,
        resources={"http": _Client, "db": _Engine},
    )
    assert run.progress.num_completed_pages == 5 and run.progress.num_failed_pages == 0
    assert _Client.made == made + 1
