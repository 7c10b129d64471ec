"""``FileSource``: a CSV or JSON Lines file read as a batch, a page being a byte range."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Callable
from typing import IO, Any, Literal, TypeAlias

from .._exceptions import InvalidBatchInputError, ProcessorDefinitionError, ProcessorUsageError
from ._common import SourcePage, dump_cursor, load_cursor
from ._lookahead import LookaheadPacer

__all__ = ["FileSource", "PathFactory"]

PathFactory: TypeAlias = Callable[[str | None], str]
"""A callable that gets the batch's args string (None without args) and returns the path or
URL to read."""

FileFormat: TypeAlias = Literal["csv", "jsonl"]

_CHUNK = 1 << 20


class FileSource:
    """The records of a CSV or JSON Lines file, read page by page by byte offset.

    A page's cursor is a small JSON string holding the byte offset where the page starts
    (``"o"``) and, for a chain made by ``split``, the offset where the chain ends (``"e"``,
    exclusive). The first cursor ``""`` is the whole file. A page seeks to its offset and reads
    ``size`` records and one more: that one's offset is the next page's cursor, so reading a
    page never rereads the pages before it.

    CSV records may span lines: a field in double quotes may hold newlines (RFC 4180). A
    record ends at the first line end outside quotes, which is where the quotes read since the
    record's start are even in number; pages and split points are aligned on such ends, never
    inside a quoted field. JSON Lines records are single lines; blank lines are skipped.

    **Lookahead.** A page that finds more records can go on reading the following pages'
    records without parsing them, only to find where they start, and enqueue several pages at
    once: a chain then discovers that many pages per hop. By default each worker learns per
    batch how many (2 to 32; see ``SqlSource``, which does the same, and docs/tuning.md);
    ``lookahead=k`` fixes it (1: the next page only). Each page's bytes are then read twice,
    once by the page before it (to find the boundaries) and once by the page itself.

    Local paths are opened directly. A URL with a protocol (``s3://``, ``gs://``,
    ``memory://``, ...) is opened through fsspec, which must then be installed
    (``pip install 'batch-orchestra[files]'`` plus the filesystem's own package). Reads run in
    a thread so the worker's event loop stays free.

    Args:
        path: The file's path or URL, or a callable that gets the batch's args string (None
            without args) and returns it, so a batch can name its file in its args.
        format: ``"csv"`` or ``"jsonl"``; None (default) infers it from the name's extension
            (``.csv``; ``.jsonl``, ``.ndjson``).
        header: CSV only: the first record holds the field names, and records are dicts keyed
            by them (True, default); or there is no header and records are lists of strings.
        encoding: The text encoding (default UTF-8).
        delimiter: CSV only: the field separator.
        key: The field that identifies a record (a CSV header's column, a JSON object's
            field), for ``find``: a redrive of failed items by key (``redrive_items``) gets
            their records back. Keys are compared as text.
        lookahead: How many successor pages a page enqueues when more records follow. None
            (default): as many as the batch needs, learned while it runs; an int fixes it.

    Raises:
        ProcessorDefinitionError: ``format`` is neither "csv" nor "jsonl", ``key`` is
            given for a CSV file without a header, or ``lookahead`` is neither None nor an
            int >= 1.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | PathFactory,
        *,
        format: FileFormat | None = None,
        header: bool = True,
        encoding: str = "utf-8",
        delimiter: str = ",",
        key: str | None = None,
        lookahead: int | None = None,
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key):
            raise ProcessorDefinitionError(f"FileSource key must be a field name, got {key!r}")
        if key is not None and not header and format == "csv":
            raise ProcessorDefinitionError(
                "FileSource key names a column of the header, but header=False; keep the header"
            )
        if format not in (None, "csv", "jsonl"):
            raise ProcessorDefinitionError(
                f"FileSource format must be 'csv', 'jsonl' or None (from the extension), "
                f"got {format!r}"
            )
        self._path = path if callable(path) else os.fspath(path)
        self._format = format
        self._header = header
        self._encoding = encoding
        self._delimiter = delimiter
        self.key = key
        """The field that identifies a record (None: records cannot be found by key)."""
        self._pacer = LookaheadPacer(lookahead, source="FileSource")

    @property
    def lookahead(self) -> int | None:
        """How many successor pages a page enqueues when more records follow (None: adaptive)."""
        return self._pacer.fixed

    @property
    def pacer(self) -> LookaheadPacer:
        """What this process has learned of each batch's lookahead (for tests and benchmarks)."""
        return self._pacer

    def path(self, args: str | None = None) -> str:
        """The path or URL for a batch with these args."""
        return self._path(args) if callable(self._path) else self._path

    def file_format(self, path: str) -> FileFormat:
        """The format of the file at ``path`` (given or inferred from its extension).

        Raises:
            ProcessorDefinitionError: no format was given and the extension says none.
        """
        if self._format is not None:
            return self._format
        lower = path.lower().removesuffix("/")
        if lower.endswith(".csv"):
            return "csv"
        if lower.endswith((".jsonl", ".ndjson")):
            return "jsonl"
        raise ProcessorDefinitionError(
            f"cannot tell the format of {path!r} from its extension; pass "
            "FileSource(..., format='csv') or format='jsonl'"
        )

    async def read(self, cursor_str: str, size: int, *, args: str | None = None) -> SourcePage[Any]:
        """Read the page at ``cursor_str`` (at most ``size`` records) and its successor's cursor.

        Raises:
            InvalidBatchInputError: the cursor is not one of this source's.
        """
        cur = load_cursor(cursor_str, source="FileSource", keys=("o", "e"))
        self._pacer.arrived(cursor_str)
        path = self.path(args)
        key = self._pacer.batch_key(args, size)
        end = cur.get("e")
        depth = self._pacer.depth(key, 2 * len(dump_cursor(_cursor(1 << 40, end))))
        page, scanned = await asyncio.to_thread(self._read, path, cur.get("o"), end, size, depth)
        if depth > 1 and page.next_cursors:
            self._pacer.found(key, page.next_cursors[-1], depth, scanned)
        return page

    async def split(self, k: int, *, args: str | None = None) -> list[str]:
        """Up to ``k`` first cursors covering the file once, in near-equal byte ranges.

        The ranges are aligned to record starts. Pass them as ``first_cursor_strs``: one chain each.

        A JSON Lines split point is the line start after ``i * size / k``. A CSV split point
        needs the quote count before it, so this reads the file once, counting quotes (fast:
        no parsing); pages themselves never do.

        Raises:
            InvalidBatchInputError: ``k`` is not an int >= 1.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidBatchInputError(f"split(k) needs an int k >= 1, got {k!r}")
        return await asyncio.to_thread(self._split, self.path(args), k)

    async def find(self, keys: list[str], *, args: str | None = None) -> dict[str, Any]:
        """The records whose ``key`` field is one of ``keys``, by key (missing keys left out).

        One pass over the file, which stops once every key is found: a redrive's page of keys
        costs a read of (up to) the whole file, not an index. With several records under one
        key, the first is returned.

        Raises:
            ProcessorUsageError: the source was declared without ``key``.
        """
        if self.key is None:
            raise ProcessorUsageError(
                "FileSource.find needs the key field: declare FileSource(..., key='id') so a "
                "redrive of failed items can find their records"
            )
        return await asyncio.to_thread(self._find, self.path(args), set(keys))

    def _find(self, path: str, wanted: set[str]) -> dict[str, Any]:
        fmt = self.file_format(path)
        found: dict[str, Any] = {}
        with _open(path) as f:
            fields, pos = self._header_of(f, fmt)
            f.seek(pos)
            while len(found) < len(wanted):
                raw = _read_record(f, fmt)
                if not raw:
                    break
                if raw.strip():
                    record = self._parse(raw, fmt, fields, pos, path)
                    value = record.get(self.key) if isinstance(record, dict) else None
                    if value is not None and str(value) in wanted:
                        found.setdefault(str(value), record)
                pos += len(raw)
        return found

    def _read(
        self, path: str, offset: int | None, end: int | None, size: int, depth: int = 1
    ) -> tuple[SourcePage[Any], float]:
        """The page and its successors' cursors (``depth`` of them at most).

        And the seconds the scan for the boundaries past the first took.
        """
        fmt = self.file_format(path)
        with _open(path) as f:
            fields, start = self._header_of(f, fmt)
            pos = start if offset is None else offset
            f.seek(pos)
            items: list[Any] = []
            while end is None or pos < end:
                raw = _read_record(f, fmt)
                if not raw:
                    break
                if raw.strip():
                    if len(items) == size:
                        began = self._pacer.clock()
                        starts = _page_starts(f, fmt, pos, len(raw), end, size, depth)
                        scanned = self._pacer.clock() - began
                        ends: list[int | None] = [*starts[1:], end]
                        cursors = [
                            dump_cursor(_cursor(s, e)) for s, e in zip(starts, ends, strict=True)
                        ]
                        return SourcePage(items, cursors), scanned
                    items.append(self._parse(raw, fmt, fields, pos, path))
                pos += len(raw)
        return SourcePage(items), 0.0

    def _split(self, path: str, k: int) -> list[str]:
        fmt = self.file_format(path)
        with _open(path) as f:
            _, start = self._header_of(f, fmt)
            f.seek(0, io.SEEK_END)
            total = f.tell()
            targets = sorted({start + (total - start) * i // k for i in range(1, k)})
            targets = [t for t in targets if start < t < total]
            bounds = _record_starts(f, fmt, start, targets)
        bounds = sorted({b for b in bounds if start < b < total})
        lows: list[int | None] = [None, *bounds]
        highs: list[int | None] = [*bounds, None]
        return [dump_cursor(_cursor(lo, hi)) for lo, hi in zip(lows, highs, strict=True)]

    def _header_of(self, f: IO[bytes], fmt: FileFormat) -> tuple[list[str] | None, int]:
        if fmt != "csv" or not self._header:
            return None, 0
        f.seek(0)
        raw = _read_record(f, fmt)
        return self._csv_row(raw), len(raw)

    def _parse(
        self, raw: bytes, fmt: FileFormat, fields: list[str] | None, pos: int, path: str
    ) -> Any:
        if fmt == "jsonl":
            try:
                return json.loads(raw.decode(self._encoding))
            except ValueError as err:
                raise InvalidBatchInputError(
                    f"{path}: the line at byte {pos} is not JSON ({err}): {raw[:80]!r}"
                ) from None
        row = self._csv_row(raw)
        if fields is None:
            return row
        return dict(zip(fields, row, strict=False))

    def _csv_row(self, raw: bytes) -> list[str]:
        text = raw.decode(self._encoding)
        if text.startswith("\ufeff"):
            text = text[1:]
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter), [])


def _cursor(offset: int | None, end: int | None) -> dict[str, Any]:
    cur: dict[str, Any] = {}
    if offset is not None:
        cur["o"] = offset
    if end is not None:
        cur["e"] = end
    return cur


def _page_starts(
    f: IO[bytes], fmt: FileFormat, pos: int, first_len: int, end: int | None, size: int, depth: int
) -> list[int]:
    """Where the next ``depth`` pages start (fewer at the end), the first at ``pos``.

    The record at ``pos`` (``first_len`` bytes) has been read; the following records are
    read without parsing, only to count them.
    """
    starts, count, p = [pos], 1, pos + first_len
    while len(starts) < depth and (end is None or p < end):
        raw = _read_record(f, fmt)
        if not raw:
            break
        if raw.strip():
            if count == size:
                starts.append(p)
                count = 0
            count += 1
        p += len(raw)
    return starts


def _open(path: str) -> IO[bytes]:
    if "://" not in path or path.startswith("file://"):
        return open(path.removeprefix("file://"), "rb")
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise ProcessorDefinitionError(
            f"reading {path!r} needs fsspec: pip install 'batch-orchestra[files]' (and the "
            "package for that filesystem, e.g. s3fs for s3://)"
        ) from None
    opened: IO[bytes] = fsspec.open(path, "rb").open()
    return opened


def _read_record(f: IO[bytes], fmt: FileFormat) -> bytes:
    """The next record's bytes, line end included; b"" at the end of the file."""
    line = f.readline()
    if fmt == "jsonl":
        return line
    quotes = line.count(b'"')
    parts = [line]
    while quotes % 2 and line:
        line = f.readline()
        quotes += line.count(b'"')
        parts.append(line)
    return b"".join(parts)


def _record_starts(f: IO[bytes], fmt: FileFormat, start: int, targets: list[int]) -> list[int]:
    """For each target offset, the first record start at or after it."""
    if fmt == "jsonl":
        out = []
        for t in targets:
            f.seek(t - 1)
            f.readline()  # to the end of the line holding byte t - 1
            out.append(f.tell())
        return out
    # CSV: a line end is a record end when the quotes since `start` are even in number.
    out = []
    f.seek(start)
    pos, quotes, ti = start, 0, 0
    while ti < len(targets):
        chunk = f.read(_CHUNK)
        if not chunk:
            break
        i = 0
        while ti < len(targets) and targets[ti] - 1 < pos + len(chunk):
            j = max(i, targets[ti] - 1 - pos)
            quotes += chunk.count(b'"', i, j)
            nl = chunk.find(b"\n", j)
            if nl < 0:
                i = j
                break
            quotes += chunk.count(b'"', j, nl)
            i = nl + 1
            if quotes % 2 == 0:
                out.append(pos + i)
                while ti < len(targets) and targets[ti] <= pos + i:
                    ti += 1
        quotes += chunk.count(b'"', i)
        pos += len(chunk)
    return out
