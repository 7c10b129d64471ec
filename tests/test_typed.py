"""Typed cursors and args: dataclasses and pydantic models through a real batch."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.common import RetryPolicy

import batch_orchestra
from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchPage,
    BatchProcessorContext,
    FailurePolicy,
    InvalidArgsError,
    InvalidBatchInputError,
    InvalidCursorError,
    PageProcessor,
    ProcessorUsageError,
    args_str,
    cursor_str,
    page_processor,
)
from batch_orchestra._engine.budgets import MAX_CURSOR_BYTES
from tests.helpers import batch_id, run_histories

try:
    import pydantic
except ImportError:  # the pydantic test skips (outside CI) when it is missing
    pydantic = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Cursor:
    after: int
    chain: str = "a"
    seen: list[int] = field(default_factory=list)


@dataclass
class Args:
    n: int
    step: int = 1


SEEN: dict[str, list[tuple[int, Any]]] = defaultdict(list)


async def run_typed(context: BatchProcessorContext, cursor_model: Any, args_model: Any) -> int:
    """Items are [after, after + size) below args.n; each page's cursor is recorded."""
    cur = context.cursor(cursor_model, default=cursor_model(after=0))
    args = context.args(args_model)
    end = min(cur.after + context.page.size, args.n)
    if end < args.n:
        await context.enqueue_next_page(
            BatchPage.of(cursor_model(after=end, chain=cur.chain), context.page.size)
        )
    SEEN[context.batch_id].append((context.page_num, cur))
    return (end - cur.after) // args.step


@page_processor
class TypedDataclass(PageProcessor):
    async def run(self, context: BatchProcessorContext) -> int:
        return await run_typed(context, Cursor, Args)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


@page_processor
class TypedStrict(PageProcessor):
    """Reads the cursor without a default; retried (so a retry would show)."""

    async def run(self, context: BatchProcessorContext) -> int:
        cur = context.cursor(Cursor)
        context.args(Args)
        return cur.after

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
    initial_retry_policy = RetryPolicy(maximum_attempts=3)


if pydantic is not None:

    class PCursor(pydantic.BaseModel):
        after: int
        chain: str = "a"

    class PArgs(pydantic.BaseModel):
        n: int
        step: int = 1


@page_processor
class TypedPydantic(PageProcessor):
    async def run(self, context: BatchProcessorContext) -> int:
        return await run_typed(context, PCursor, PArgs)

    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE


def test_cursor_str_is_deterministic_and_compact() -> None:
    a = Cursor(after=5, chain="b", seen=[1, 2])
    assert cursor_str(a) == '{"after":5,"chain":"b","seen":[1,2]}'
    assert cursor_str(Cursor(after=5, chain="b", seen=[1, 2])) == cursor_str(a)
    assert BatchPage.of(a, 7) == BatchPage(cursor_str(a), 7)
    assert args_str(Args(n=3)) == '{"n":3,"step":1}'


def test_cursor_str_rejects_what_it_cannot_carry() -> None:
    with pytest.raises(InvalidBatchInputError, match="a str is already a cursor"):
        cursor_str("after=5")
    with pytest.raises(InvalidBatchInputError, match=f"at most {MAX_CURSOR_BYTES:,}"):
        BatchPage.of(Cursor(after=0, seen=list(range(5000))), 10)
    with pytest.raises(InvalidBatchInputError, match="cannot be serialized"):
        cursor_str(Cursor(after=object()))  # type: ignore[arg-type]


def test_typed_names_are_exported() -> None:
    assert {"args_str", "cursor_str", "InvalidArgsError", "InvalidCursorError"} <= set(
        batch_orchestra.__all__
    )
    assert issubclass(InvalidCursorError, InvalidBatchInputError)  # never retried


async def make_context(cursor: str, args: str | None) -> BatchProcessorContext:
    return BatchProcessorContext(
        page=BatchPage(cursor, 10),
        page_num=4,
        attempt=1,
        args=args,
        batch_id="b",
        successor_enqueued=False,
        enqueue=lambda pages: asyncio.get_running_loop().create_future(),
        logger=logging.LoggerAdapter(logging.getLogger("test")),
    )


async def test_context_reads_typed_values_and_defaults() -> None:
    ctx = await make_context(cursor_str(Cursor(after=3)), args_str(Args(n=7)))
    assert ctx.cursor(Cursor) == Cursor(after=3) and ctx.args(Args) == Args(n=7)
    empty = await make_context("", None)
    assert empty.cursor(Cursor, default=None) is None
    assert empty.args(Args, default=Args(n=1)) == Args(n=1)
    with pytest.raises(ProcessorUsageError, match="started with args=None"):
        empty.args(Args)
    with pytest.raises(ProcessorUsageError, match=r"context.cursor\(\) takes a dataclass"):
        ctx.cursor(int)
    long = await make_context("x" * 500, "[1]")
    with pytest.raises(InvalidCursorError, match=r"'x{120}'\.\.\. \(500 chars\)") as err:
        long.cursor(Cursor)
    assert err.value.page_num == 4 and err.value.model is Cursor and err.value.text == "x" * 500
    with pytest.raises(InvalidArgsError, match="page 4: the batch's args do not parse as Args"):
        long.args(Args)


@dataclass
class TypoArgs:
    db_path: str
    percent: int = 10


def test_a_misspelled_optional_args_key_is_refused_at_start_with_the_closest_field() -> None:
    from batch_orchestra._model.typed import check_args

    with pytest.raises(InvalidArgsError) as info:
        check_args(TypoArgs, '{"db_path": "x", "percentage": 20}', "Reprice")
    text = str(info.value)
    assert "unknown key(s) ['percentage']" in text and "fields: db_path, percent" in text
    assert "did you mean 'percent'?" in text and "\n" not in text
    check_args(TypoArgs, '{"db_path": "x", "percent": 20}', "Reprice")  # fits


async def test_context_args_refuses_unknown_keys_too() -> None:
    ctx = await make_context("", '{"n": 3, "stepp": 2}')
    with pytest.raises(InvalidArgsError, match=r"page 4: .*did you mean 'step'\?") as info:
        ctx.args(Args)
    assert info.value.page_num == 4 and "Not retried" in str(info.value)


def test_pydantic_args_refuse_unknown_keys_unless_the_model_allows_extra() -> None:
    pydantic = pytest.importorskip("pydantic")
    from batch_orchestra._model.typed import check_args

    class Strict(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        db_path: str
        percent: int = 10

    class Open(Strict):
        model_config = pydantic.ConfigDict(extra="allow")

    with pytest.raises(InvalidArgsError, match="did you mean 'percent'"):
        check_args(Strict, '{"db_path": "x", "percnt": 1}', "P")
    check_args(Open, '{"db_path": "x", "percnt": 1}', "P")  # the model takes extra keys


async def run_batch(orchestra: BatchOrchestratorClient, task_queue: str, **kw: Any) -> Any:
    bid = batch_id()
    handle = await orchestra.start(
        BatchOrchestratorInput(
            batch_id=bid,
            page_size=10,
            max_parallelism=3,
            failure_policy=FailurePolicy.disabled(),
            **kw,
        ),
        id=bid,
        task_queue=task_queue,
    )
    return bid, handle, await asyncio.wait_for(handle.result(), 60)


async def test_dataclass_cursors_and_args_round_trip_through_continue_as_new(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any, client: Any
) -> None:
    async with new_worker():
        bid, handle, progress = await run_batch(
            orchestra,
            task_queue,
            page_processor=TypedDataclass,
            args=args_str(Args(n=95)),
            first_cursor_strs=[cursor_str(Cursor(after=0, chain="x"))],
            pages_per_run=3,
        )
    assert progress.num_completed_pages == 10 and progress.num_failed_pages == 0
    assert progress.num_completed_items == 95
    assert len(await run_histories(client, bid)) > 1  # continue-as-new happened
    cursors = sorted(SEEN[bid], key=lambda s: s[0])
    assert [c for _, c in cursors] == [Cursor(after=a, chain="x") for a in range(0, 95, 10)]


async def test_pydantic_cursors_and_args_round_trip(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    if pydantic is None and os.environ.get("CI") != "true":
        pytest.skip("pydantic is not installed (pip install 'batch-orchestra[dev]')")
    assert importlib.util.find_spec("pydantic"), "pydantic is in the dev extra"
    async with new_worker():
        bid, _, progress = await run_batch(
            orchestra,
            task_queue,
            page_processor=TypedPydantic,
            args=args_str(PArgs(n=42, step=2)),
            pages_per_run=2,  # first cursor "": default
        )
    assert progress.num_completed_pages == 5 and progress.num_completed_items == 21
    assert sorted(c.after for _, c in SEEN[bid]) == [0, 10, 20, 30, 40]
    assert all(isinstance(c, PCursor) for _, c in SEEN[bid])
    ctx = await make_context('{"after": "x"}', None)
    with pytest.raises(InvalidCursorError, match="does not parse as PCursor.*ValidationError"):
        ctx.cursor(PCursor)


async def test_a_bad_cursor_or_args_fails_the_page_once_with_a_clear_message(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    good_args = args_str(Args(n=1))
    async with new_worker():
        results = await asyncio.gather(
            run_batch(
                orchestra,
                task_queue,
                page_processor=TypedStrict,
                args=good_args,
                first_cursor_str='{"after": "ten"}',
            ),
            run_batch(orchestra, task_queue, page_processor=TypedStrict, args=good_args),
            run_batch(
                orchestra,
                task_queue,
                page_processor=TypedStrict,
                args="n=1",
                first_cursor_str=cursor_str(Cursor(after=0)),
            ),
        )
    messages = []
    for _, _, progress in results:
        assert progress.is_finished and progress.num_failed_pages == 1
        (failed,) = progress.failed_pages
        assert failed.attempts == 1  # not retried
        messages.append(failed.error_message)
    bad, empty, bad_args = messages
    assert "page 0's cursor does not parse as Cursor" in bad
    assert """'{"after": "ten"}'""" in bad and "Expected value to be int" in bad
    assert "restart the batch from this cursor" in bad
    assert "page 0's cursor is empty" in empty
    assert "first_cursor_str=cursor_str(Cursor(...))" in empty and "default=" in empty
    assert "args do not parse as Args: 'n=1'" in bad_args
    assert "args=args_str(Args(...))" in bad_args
