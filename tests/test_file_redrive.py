"""Item redrive of a CSV job: the failed items' records are found by key in the file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchProcessorContext,
    PageProcessor,
    ProcessorDefinitionError,
    ProcessorUsageError,
    page_processor,
)
from batch_orchestra.sources import FilePageProcessor, FileSource
from tests.helpers import batch_id
from tests.test_sources_files import write_csv, write_jsonl

_calls: dict[str, list[tuple[int, str]]] = {}
_broken: set[str] = {"7", "23", "51"}


@page_processor
class CsvRedriven(FilePageProcessor):
    """Rows 7, 23 and 51 fail (recorded by their id) until the test mends them."""

    source = FileSource(lambda args: json.loads(args or "{}")["path"], key="id")
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, records: list[Any]) -> int:
        done = 0
        for r in records:
            _calls.setdefault(context.batch_id, []).append((context.attempt, r["id"]))
            if r["id"] in _broken:
                context.record_failure(r["id"], ConnectionError("503"))
                continue
            assert r["note"] is not None  # the whole record, not a bare key
            done += 1
        return done


async def test_redrive_items_of_a_csv_job_finds_the_rows_by_key(
    tmp_path: Path, orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    rows = write_csv(tmp_path / "orders.csv", 80)
    args = json.dumps({"path": str(tmp_path / "orders.csv")})
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=CsvRedriven,
                args=args,
                batch_id=bid,
                page_size=10,
                max_parallelism=4,
            ),
            id=bid,
            task_queue=task_queue,
        )
        first = await asyncio.wait_for(handle.result(), 60)
        assert first.num_failed_items == 3
        _broken.clear()
        before = len(_calls[bid])
        again = await orchestra.redrive_items(bid, id=f"{bid}-items")
        second = await asyncio.wait_for(again.result(), 60)
    assert sorted(i for _, i in _calls[bid][before:]) == ["23", "51", "7"]  # the redrive's
    assert second.num_completed_items == 3 and second.num_failed_items == 0
    by_id = {r["id"]: r for r in rows}
    found = await CsvRedriven.source.find(["51", "nope"], args=args)
    assert found == {"51": by_id["51"]}


async def test_jsonl_records_are_found_by_a_field(tmp_path: Path) -> None:
    records = write_jsonl(tmp_path / "events.jsonl", 40)
    source = FileSource(tmp_path / "events.jsonl", key="id")
    assert await source.find(["3", "39"]) == {"3": records[3], "39": records[39]}


async def test_find_needs_a_key(tmp_path: Path) -> None:
    write_csv(tmp_path / "orders.csv", 3)
    with pytest.raises(ProcessorUsageError, match="key="):
        await FileSource(tmp_path / "orders.csv").find(["1"])
    with pytest.raises(ProcessorDefinitionError, match="header"):
        FileSource(tmp_path / "orders.csv", format="csv", header=False, key="id")
