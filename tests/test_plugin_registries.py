"""Processors, trackers, notifiers and health checks given to a plugin, not registered at import.

``BatchOrchestraPlugin(processors=[...], trackers=[...], ...)``: what is listed runs on that
worker only, on the real dev server; the process-wide registries do not learn of it.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import WorkflowFailureError

from batch_orchestra import (
    BatchNotifierConfig,
    BatchNotifierContext,
    BatchOrchestraPlugin,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    BatchTrackerConfig,
    BatchTrackerContext,
    Health,
    HealthCheckConfig,
    HealthCheckContext,
    PageProcessor,
    ProcessorDefinitionError,
    registered_batch_notifiers,
    registered_batch_trackers,
    registered_health_checks,
    registered_page_processors,
)
from tests.helpers import batch_id

CALLS: dict[str, list[str]] = {}
CHECKED: dict[str, asyncio.Event] = {}
"""Set by the health check: the first page waits for it (so the check runs before the end)."""


def _checked(bid: str) -> asyncio.Event:
    return CHECKED.setdefault(bid, asyncio.Event())


class PluginOnlyChain(PageProcessor):
    """Pages 0..n-1, one chain; never decorated with @page_processor."""

    async def run(self, context: BatchProcessorContext) -> int:
        i, n = int(context.page.cursor_str), json.loads(context.args_str)["n"]
        if i == 0 and json.loads(context.args_str).get("await_health"):
            await asyncio.wait_for(_checked(context.batch_id).wait(), 30)
        if i + 1 < n:
            await context.enqueue_next_page(BatchPage(str(i + 1), 1))
        CALLS.setdefault(context.batch_id, []).append(f"page {i}")
        return 1

    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


async def plugin_only_tracker(context: BatchTrackerContext) -> None:
    if context.is_final:
        CALLS.setdefault(context.batch_id, []).append("tracker final")


async def plugin_only_notifier(context: BatchNotifierContext) -> None:
    CALLS.setdefault(context.batch_id, []).append(f"notifier {context.event}")


async def plugin_only_health(context: HealthCheckContext) -> Health:
    CALLS.setdefault(context.batch_id, []).append("health")
    _checked(context.batch_id).set()
    return Health.healthy()


def _input(bid: str, n: int, **hooks: object) -> BatchOrchestratorInput:
    health = "health_check" in hooks
    return BatchOrchestratorInput(
        page_processor="PluginOnlyChain",
        page_size=1,
        max_parallelism=2,
        batch_id=bid,
        args=json.dumps({"n": n, "await_health": health}),
        first_cursor_str="0",
        **hooks,  # type: ignore[arg-type]
    )


async def test_a_processor_and_hooks_given_only_to_the_plugin_run_a_batch(
    orchestra, task_queue, new_worker
) -> None:
    plugin = BatchOrchestraPlugin(
        processors=[PluginOnlyChain],
        trackers=[plugin_only_tracker],
        notifiers=[plugin_only_notifier],
        health_checks=[plugin_only_health],
    )
    bid = batch_id()
    inp = _input(
        bid,
        6,
        batch_tracker=BatchTrackerConfig(name="plugin_only_tracker"),
        notifier=BatchNotifierConfig(name="plugin_only_notifier"),
        health_check=HealthCheckConfig(name="plugin_only_health"),
    )
    async with new_worker(plugin=plugin):
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        p = await asyncio.wait_for(handle.result(), 60)
    assert p.num_completed_pages == 6 and p.num_failed_pages == 0 and p.hook_errors == []
    calls = CALLS[bid]
    assert sorted(c for c in calls if c.startswith("page")) == [f"page {i}" for i in range(6)]
    assert "tracker final" in calls and "health" in calls and "notifier finished" in calls
    # Nothing leaked into the process-wide registries (another worker does not see them).
    assert "PluginOnlyChain" not in registered_page_processors()
    assert "plugin_only_tracker" not in registered_batch_trackers()
    assert "plugin_only_notifier" not in registered_batch_notifiers()
    assert "plugin_only_health" not in registered_health_checks()


async def test_a_worker_without_it_refuses_the_batch_naming_what_it_has(
    orchestra, task_queue, new_worker
) -> None:
    bid = batch_id()
    async with new_worker():  # a plain plugin: PluginOnlyChain is not known here
        handle = await orchestra.start(_input(bid, 2), id=bid, task_queue=task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 60)
    text = str(getattr(info.value.cause, "message", info.value.cause))
    assert "no page processor named 'PluginOnlyChain' is registered on this worker" in text


def test_the_plugin_checks_what_it_is_given_as_the_decorators_do() -> None:
    with pytest.raises(ProcessorDefinitionError, match=r"BatchOrchestraPlugin\(processors=.*"):
        BatchOrchestraPlugin(processors=[object])  # type: ignore[list-item]

    class NoRetryMode(PageProcessor):
        async def run(self, context: BatchProcessorContext) -> None: ...

    with pytest.raises(ProcessorDefinitionError, match="must define retry_mode"):
        BatchOrchestraPlugin(processors=[NoRetryMode])  # type: ignore[type-abstract]

    def sync_tracker(context: BatchTrackerContext) -> None: ...

    with pytest.raises(ProcessorDefinitionError, match=r"BatchOrchestraPlugin\(trackers="):
        BatchOrchestraPlugin(trackers=[sync_tracker])  # type: ignore[list-item]

    other = type("PluginOnlyChain", (PluginOnlyChain,), {})
    with pytest.raises(ValueError, match="two different page processors named"):
        BatchOrchestraPlugin(processors=[PluginOnlyChain, other])
    with pytest.raises(ValueError, match="takes a list"):
        BatchOrchestraPlugin(processors="PluginOnlyChain")  # type: ignore[arg-type]


def test_the_plugin_s_own_come_first_and_its_unknown_error_names_both() -> None:
    from batch_orchestra import UnknownPageProcessorError, page_processor

    registered = page_processor(type("ShadowedByPlugin", (PluginOnlyChain,), {}))
    own = type("ShadowedByPlugin", (PluginOnlyChain,), {})
    plugin = BatchOrchestraPlugin(processors=[PluginOnlyChain, own])
    processors = plugin.catalog.processors
    assert processors.get("ShadowedByPlugin") is own  # on this worker, the plugin's class
    assert BatchOrchestraPlugin().catalog.processors.get("ShadowedByPlugin") is registered
    with pytest.raises(UnknownPageProcessorError) as info:
        processors.get("Missing")
    text = str(info.value)
    assert "no page processor named 'Missing' is registered on this worker" in text
    assert "PluginOnlyChain" in text and "ShadowedByPlugin" in text
