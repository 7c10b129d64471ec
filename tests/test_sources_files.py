"""FileSource: CSV (quoted newlines) and JSON Lines read by byte offset, split, whole batches."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from batch_orchestra import (
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchProcessorContext,
    InvalidBatchInputError,
    PageProcessor,
    ProcessorDefinitionError,
    page_processor,
)
from batch_orchestra.sources import FilePageProcessor, FileSource
from tests.helpers import ManualClock, batch_id


def write_csv(path: Path, n: int, *, seed: int = 1) -> list[dict[str, str]]:
    """A CSV file whose fields hold quoted newlines, commas, quotes and long multi-line text,
    with CRLF record ends (as the csv module writes them)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = i % 5
        note = {
            0: "plain",
            1: "two\nlines",
            2: 'said "hi", left',
            3: "\n".join(f'line {j}, with "quotes"' for j in range(rng.randint(5, 40))),
            4: "",
        }[kind]
        rows.append({"id": str(i), "note": note, "amount": f"{rng.random() * 100:.2f}"})
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=["id", "note", "amount"])
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode())
    return rows


def write_jsonl(path: Path, n: int) -> list[Any]:
    records: list[Any] = [
        {"id": i, "text": "é\u2603" * (i % 7), "nested": {"x": [i]}} for i in range(n)
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(10, "")  # blank lines are skipped
    lines.insert(20, "   ")
    path.write_bytes("\n".join(lines).encode())  # no newline after the last record
    return records


async def drain(source: FileSource, cursors: list[str], size: int) -> list[list[Any]]:
    pages, todo = [], list(cursors)
    while todo:
        assert len(pages) < 10000, "the chain does not end"
        page = await source.read(todo.pop(0), size)
        assert len(page.items) <= size
        pages.append(page.items)
        todo.extend(page.next_cursors)
    return pages


def flat(pages: list[list[Any]]) -> list[Any]:
    return [item for page in pages for item in page]


@pytest.mark.parametrize("size", [1, 7, 1000])
async def test_csv_pages_follow_records_across_quoted_newlines(tmp_path: Path, size: int) -> None:
    rows = write_csv(tmp_path / "orders.csv", 120)
    source = FileSource(tmp_path / "orders.csv")
    pages = await drain(source, [""], size)
    assert flat(pages) == rows
    assert [len(p) for p in pages[:-1]] == [size] * (len(pages) - 1)
    first = await source.read("", 7)
    offset = json.loads(first.next_cursors[0])["o"]
    # The next page's cursor is the byte offset where record 7 starts: its line reads "7,...".
    assert (tmp_path / "orders.csv").read_bytes()[offset:].startswith(b"7,")


@pytest.mark.parametrize("k", [2, 5, 13, 300])
async def test_csv_split_points_never_fall_inside_a_quoted_field(tmp_path: Path, k: int) -> None:
    rows = write_csv(tmp_path / "orders.csv", 150, seed=k)
    source = FileSource(str(tmp_path / "orders.csv"))
    cursors = await source.split(k)
    assert 1 < len(cursors) <= k
    chains = [flat(await drain(source, [c], 4)) for c in cursors]
    assert sum(chains, []) == rows  # the ranges are in file order and cover each record once
    data = (tmp_path / "orders.csv").read_bytes()
    for c in cursors[1:]:  # each range starts on a record's first byte: "<id>,"
        start = json.loads(c)["o"]
        assert data[start - 1 : start] == b"\n" and data[start:].split(b",")[0].isdigit()


async def test_csv_without_header_gives_lists(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text('1,"a\nb"\n2,c\n')
    source = FileSource(tmp_path / "plain.txt", format="csv", header=False)
    assert flat(await drain(source, [""], 1)) == [["1", "a\nb"], ["2", "c"]]


@pytest.mark.parametrize("k", [1, 4, 9])
async def test_jsonl_pages_and_splits(tmp_path: Path, k: int) -> None:
    records = write_jsonl(tmp_path / "events.jsonl", 57)
    source = FileSource(tmp_path / "events.jsonl")
    cursors = await source.split(k)
    assert len(cursors) == k
    chains = [flat(await drain(source, [c], 5)) for c in cursors]
    assert sum(chains, []) == records
    sizes = [len(c) for c in chains]
    assert max(sizes) <= 2 * (len(records) // k) + 2  # byte ranges of similar size


async def test_fsspec_url(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    write_csv(tmp_path / "orders.csv", 40)
    url = f"memory://bo-test-{batch_id()}/orders.csv"
    with fsspec.open(url, "wb") as f:
        f.write((tmp_path / "orders.csv").read_bytes())
    source = FileSource(url)
    local = FileSource(tmp_path / "orders.csv")
    assert await source.split(3) == await local.split(3)
    chains = [flat(await drain(source, [c], 6)) for c in await source.split(3)]
    assert sum(chains, []) == flat(await drain(local, [""], 6))


async def test_misuse_is_named(tmp_path: Path) -> None:
    write_csv(tmp_path / "orders.csv", 3)
    source = FileSource(tmp_path / "orders.csv")
    with pytest.raises(InvalidBatchInputError, match="is not a FileSource cursor"):
        await source.read("[1]", 5)
    with pytest.raises(InvalidBatchInputError, match="k >= 1, got 0"):
        await source.split(0)
    with pytest.raises(ProcessorDefinitionError, match="cannot tell the format of"):
        await FileSource(tmp_path / "orders.txt").read("", 5)
    with pytest.raises(ProcessorDefinitionError, match="format must be"):
        FileSource("x.csv", format="xml")  # type: ignore[arg-type]
    (tmp_path / "bad.jsonl").write_text('{"ok": 1}\nnot json\n')
    with pytest.raises(InvalidBatchInputError, match="line at byte 10 is not JSON"):
        await FileSource(tmp_path / "bad.jsonl").read("", 5)
    with pytest.raises(ProcessorDefinitionError, match="must set the class attribute `source`"):

        class NoSource(FilePageProcessor):
            retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

            async def process(self, context: BatchProcessorContext, records: list[Any]) -> None:
                pass


_seen: dict[str, list[tuple[int, str]]] = {}


@page_processor
class CsvSourceRecorder(FilePageProcessor):
    """Records each CSV record's id with its page; the file comes from the batch's args."""

    source = FileSource(lambda args: json.loads(args or "{}")["path"])
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, records: list[Any]) -> None:
        _seen.setdefault(context.batch_id, []).extend((context.page_num, r["id"]) for r in records)


async def test_csv_batch_in_four_chains_on_the_dev_server(
    tmp_path: Path, orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    rows = write_csv(tmp_path / "orders.csv", 200)
    args = json.dumps({"path": str(tmp_path / "orders.csv")})
    cursors = await CsvSourceRecorder.source.split(4, args=args)
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=CsvSourceRecorder,
                args=args,
                batch_id=bid,
                page_size=9,
                max_parallelism=4,
                first_cursor_strs=cursors,
                page_timeout=timedelta(seconds=30),
            ),
            id=bid,
            task_queue=task_queue,
        )
        progress = await handle.result()
    ids = [i for _, i in _seen[bid]]
    assert sorted(ids, key=int) == [r["id"] for r in rows]  # every record once
    assert progress.num_completed_items == len(rows)
    assert progress.num_completed_pages == len({p for p, _ in _seen[bid]})


def test_sources_exports_and_file_source_without_sqlalchemy() -> None:
    import subprocess
    import sys

    import batch_orchestra.sources as sources

    assert sources.__all__ == sorted(sources.__all__)
    for name in sources.__all__:
        assert getattr(sources, name) is not None, name
    # FileSource must not need the sql extra: importing it leaves SQLAlchemy unimported.
    code = (
        "import sys; from batch_orchestra.sources import FileSource, FilePageProcessor; "
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
async def test_pages_found_ahead_cover_each_record_once_in_file_order(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"records.{kind}"
    rows = write_csv(path, 400) if kind == "csv" else write_jsonl(path, 400)
    source = FileSource(path)
    assert source.lookahead is None
    source.pacer.clock = ManualClock()  # every hand-over instant, every scan free
    pages = await drain(source, [""], 3)
    assert flat(pages) == rows  # quoted newlines and blank lines never shift a boundary
    assert [len(p) for p in pages[:-1]] == [3] * (len(pages) - 1)
    learned = source.pacer.learned(("", None, 3))
    assert learned is not None and learned[0] == 32  # handed over at once: as deep as allowed
    assert len((await source.read("", 3)).next_cursors) == 32
    # Split chains find pages ahead too, and stop at their range's end.
    chains = [flat(await drain(source, [c], 2)) for c in await source.split(3)]
    assert sum(chains, []) == rows


async def test_file_lookahead_one_enqueues_the_next_page_only(tmp_path: Path) -> None:
    rows = write_jsonl(tmp_path / "r.jsonl", 50)
    source = FileSource(tmp_path / "r.jsonl", lookahead=1)
    assert len((await source.read("", 4)).next_cursors) == 1
    assert flat(await drain(source, [""], 4)) == rows
    with pytest.raises(ProcessorDefinitionError, match="lookahead must be None"):
        FileSource(tmp_path / "r.jsonl", lookahead=True)


@page_processor
class JsonlShortPages(FilePageProcessor):
    """Records each record's id after 30 ms of work; no lookahead set."""

    source = FileSource(lambda args: json.loads(args or "{}")["path"])
    retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

    async def process(self, context: BatchProcessorContext, records: list[Any]) -> None:
        await asyncio.sleep(0.03)
        _seen.setdefault(context.batch_id, []).extend((context.page_num, r["id"]) for r in records)


async def test_one_file_chain_of_short_pages_fills_the_cap_without_lookahead_set(
    tmp_path: Path, orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any
) -> None:
    records = write_jsonl(tmp_path / "r.jsonl", 300)
    bid = batch_id()
    async with new_worker():
        handle = await orchestra.start(
            BatchOrchestratorInput(
                page_processor=JsonlShortPages,
                args=json.dumps({"path": str(tmp_path / "r.jsonl")}),
                batch_id=bid,
                page_size=2,
                max_parallelism=40,
                page_timeout=timedelta(seconds=30),
            ),
            id=bid,
            task_queue=task_queue,
        )
        progress = await handle.result()
    assert sorted(i for _, i in _seen[bid]) == [r["id"] for r in records]  # every record once
    assert progress.num_completed_pages == 150
    # One page per hop keeps 2-3 pages of 30 ms running; found ahead, many more.
    assert progress.max_parallelism_achieved >= 10
