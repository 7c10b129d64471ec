"""Bad input fails fast with a message that names the bad value, in the client and in the
workflow (for batches started some other way)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from batch_orchestra import (
    BatchOrchestratorInput,
    BatchPage,
    BatchTrackerConfig,
    InvalidBatchInputError,
    PageProcessor,
    ProcessorDefinitionError,
    page_processor,
)
from batch_orchestra._model import input_to_wire
from tests.helpers import batch_id


def _inp(**kw: Any) -> BatchOrchestratorInput:
    base: dict[str, Any] = {"page_processor": "Scripted", "page_size": 10, "max_parallelism": 2}
    base.update(kw)
    return BatchOrchestratorInput(**base)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"page_size": 0}, "page_size must be an int >= 1, got 0"),
        ({"max_parallelism": -1}, "max_parallelism must be an int >= 0 (0 starts paused), got -1"),
        ({"args": {"a": 1}}, "args must be a str or None, got dict {'a': 1}"),
        ({"first_cursor_str": 5}, "first_cursor_str must be a str, got int 5"),
        ({"first_cursor_strs": []}, "first_cursor_strs must be a non-empty list"),
        ({"first_cursor_strs": ["a"], "first_cursor_str": "b"}, "not both"),
        ({"page_timeout": timedelta(0)}, "page_timeout must be a positive timedelta"),
        ({"pages_per_run": 0}, "pages_per_run must be None or an int >= 1, got 0"),
    ],
)
async def test_client_rejects_bad_input(orchestra, task_queue, fields, message) -> None:
    with pytest.raises(InvalidBatchInputError) as info:
        await orchestra.start(_inp(**fields), id=batch_id(), task_queue=task_queue)
    assert message in str(info.value)


async def test_client_rejects_an_unregistered_class(orchestra, task_queue) -> None:
    class NotRegistered(PageProcessor):
        async def run(self, context):  # type: ignore[no-untyped-def]
            return None

        @property
        def retry_mode(self) -> PageProcessor.RetryMode:
            return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    with pytest.raises(InvalidBatchInputError, match="not a registered page processor"):
        await orchestra.start(
            _inp(page_processor=NotRegistered), id=batch_id(), task_queue=task_queue
        )


async def _started_raw(client, task_queue, raw: dict[str, Any]) -> ApplicationError:
    """Start BatchOrchestrator with a raw JSON input, as the CLI or another SDK would."""
    handle = await client.start_workflow(
        "BatchOrchestrator", raw, id=batch_id(), task_queue=task_queue
    )
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), 20)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"page_size": 0}, "page_size must be an int >= 1, got 0"),
        ({"max_parallelism": -3}, "max_parallelism must be an int >= 0"),
        ({"args": 5}, "args must be a str or None, got int 5"),
        ({"page_timeout": "soon"}, "page_timeout must be a number of seconds"),
        ({"nonsense": 1}, "unknown BatchOrchestrator input field(s) ['nonsense']"),
    ],
)
async def test_workflow_rejects_bad_raw_input(
    client, task_queue, new_worker, patch, message
) -> None:
    raw = input_to_wire(_inp())
    raw.update(patch)
    async with new_worker():
        err = await _started_raw(client, task_queue, raw)
    assert message in err.message
    assert err.type == "BatchOrchestraInvalidInput"


async def test_unknown_processor_lists_registered_ones(client, task_queue, new_worker) -> None:
    async with new_worker():
        err = await _started_raw(client, task_queue, input_to_wire(_inp(page_processor="Nope")))
    assert "no page processor named 'Nope'" in err.message
    assert "Scripted" in err.message
    assert err.type == "BatchOrchestraUnknownPageProcessor"


async def test_unknown_processor_through_the_client_fails_fast(orchestra, task_queue, new_worker):
    async with new_worker():
        handle = await orchestra.start(
            _inp(page_processor="Missing"), id=batch_id(), task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 20)
    assert "no page processor named 'Missing'" in str(info.value.cause)


async def test_unknown_tracker_fails_fast(client, task_queue, new_worker) -> None:
    inp = _inp(batch_tracker=BatchTrackerConfig(name="no_such_tracker"))
    async with new_worker():
        err = await _started_raw(client, task_queue, input_to_wire(inp))
    assert "no batch tracker named 'no_such_tracker'" in err.message
    assert "record_tracker" in err.message


def test_page_processor_on_a_non_processor() -> None:
    with pytest.raises(ProcessorDefinitionError, match="decorates PageProcessor subclasses"):

        @page_processor  # type: ignore[type-var]
        class NotAProcessor:
            pass


def test_page_processor_without_retry_mode() -> None:
    with pytest.raises(ProcessorDefinitionError, match="must define retry_mode"):

        @page_processor
        class NoMode(PageProcessor):  # type: ignore[misc]
            async def run(self, context):  # type: ignore[no-untyped-def]
                return None


def test_at_most_once_with_retries_is_rejected() -> None:
    with pytest.raises(ProcessorDefinitionError, match="maximum_attempts=5"):

        @page_processor
        class Retrying(PageProcessor):
            async def run(self, context):  # type: ignore[no-untyped-def]
                return None

            @property
            def retry_mode(self) -> PageProcessor.RetryMode:
                return PageProcessor.RetryMode.EXECUTE_AT_MOST_ONCE

            @property
            def initial_retry_policy(self) -> RetryPolicy:
                return RetryPolicy(maximum_attempts=5)


def test_at_most_once_with_extended_retries_is_rejected() -> None:
    with pytest.raises(ProcessorDefinitionError, match="use_extended_retries is True"):

        @page_processor
        class Extended(PageProcessor):
            async def run(self, context):  # type: ignore[no-untyped-def]
                return None

            @property
            def retry_mode(self) -> PageProcessor.RetryMode:
                return PageProcessor.RetryMode.EXECUTE_AT_MOST_ONCE

            @property
            def use_extended_retries(self) -> bool:
                return True


def test_bad_batch_page() -> None:
    with pytest.raises(InvalidBatchInputError, match="cursor_str must be a str, got dict"):
        BatchPage({"id": 3}, 10)  # type: ignore[arg-type]
    with pytest.raises(InvalidBatchInputError, match="size must be an int >= 1, got 0"):
        BatchPage("x", 0)


async def _one_page_result(orchestra, task_queue, new_worker, processor: str, args: Any):
    bid = batch_id()
    inp = BatchOrchestratorInput(
        page_processor=processor,
        page_size=10,
        max_parallelism=2,
        batch_id=bid,
        args=None if args is None else json.dumps(args),
    )
    async with new_worker():
        handle = await orchestra.start(inp, id=bid, task_queue=task_queue)
        return bid, await asyncio.wait_for(handle.result(), 30)


async def test_second_enqueue_fails_the_page_at_once(orchestra, task_queue, new_worker) -> None:
    bid, result = await _one_page_result(
        orchestra, task_queue, new_worker, "Scripted", {"n": 30, "double_enqueue": True}
    )
    # each page's first call enqueued its successor; the second call failed the page, unretried
    assert result.num_failed_pages == 2 and result.num_completed_pages == 1  # the last page
    failure = result.failed_pages[0]
    assert "called enqueue_next_page(s) a second time" in failure.error_message
    assert failure.attempts == 1 and failure.error_type == "BatchOrchestraProcessorUsage"


async def test_args_str_without_args_fails_the_page(orchestra, task_queue, new_worker) -> None:
    bid, result = await _one_page_result(orchestra, task_queue, new_worker, "Looping", None)
    assert result.num_completed_pages == 1  # Looping never reads args
    bid, result = await _one_page_result(orchestra, task_queue, new_worker, "SqliteRecorded", None)
    assert result.num_failed_pages == 1
    assert "context.args_str was read but the batch was started with args=None" in (
        result.failed_pages[0].error_message
    )
