"""``SqlSource``: a table or a SELECT read as a batch by keyset pagination (SQLAlchemy 2 Core)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import decimal
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Engine,
    Executable,
    FromClause,
    Row,
    Select,
    and_,
    create_engine,
    func,
    literal,
    make_url,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .._exceptions import InvalidBatchInputError, ProcessorDefinitionError
from .._model import BatchWindow
from ._common import SourcePage, decode_value, dump_cursor, encode_value, load_cursor
from ._lookahead import LookaheadPacer

__all__ = ["EngineFactory", "SqlSource"]

EngineLike: TypeAlias = Engine | AsyncEngine | str
EngineFactory: TypeAlias = Callable[[str | None], Engine | AsyncEngine | str]
"""A callable that gets the batch's args string (None without args) and returns an engine or a
database URL."""

# Dialects known to compare row values, (a, b) > (x, y), the way keyset pagination needs.
_ROW_VALUE_DIALECTS = frozenset({"postgresql", "sqlite", "mysql", "mariadb", "duckdb"})


class SqlSource:
    """The rows of a table (or of a SELECT), read page by page in key order.

    A page's cursor is a small JSON string: the key of the row before the page (``"a"``,
    exclusive) and, for a chain made by ``split`` or lookahead, the last key the chain may read
    (``"u"``, inclusive). The first cursor ``""`` is the whole table. Every query is
    ``WHERE key > a AND key <= u ORDER BY key LIMIT size + 1``: never OFFSET, so a page costs the
    same at the end of a large table as at its start, and the extra row says whether a next page
    exists without a second query.

    **Lookahead by itself.** By default each worker learns, per batch, how many pages a chain
    finds per hop (2 to 32): more while discovery is the limit, fewer once pages wait for the
    cap (docs/tuning.md). Each page's keys are still scanned once, so no more of the table is read.

    What that guarantees while a batch runs: a row inserted behind a chain's cursor is not read,
    a row inserted ahead of it is read once, a deleted row not yet read is skipped, and every
    row present at the start and not deleted is in exactly one page.

    **The engine** is created lazily, on the first page a process reads, and then kept on this
    object, which is a class attribute of your processor and so lives once per worker process:
    one connection pool per process, never one per page, and nothing is connected at import
    time (a pool inherited through ``fork`` would be shared by two processes). Pass an
    ``Engine``/``AsyncEngine``, a URL, or a callable that takes the batch's args string (None
    without args) and returns either; the callable runs once per distinct args in a process,
    so a batch can name its database in its args while the same processor serves several
    databases. A sync engine's queries run in a thread (``asyncio.to_thread``) so the worker's
    event loop stays free; an async engine (or a URL with an async driver such as
    ``postgresql+psycopg_async``) is awaited directly.

    Args:
        table_or_select: A ``Table`` (or any FROM clause) or a ``Select`` whose selected
            columns include the key columns.
        key: The key column name, or several for a composite key (e.g.
            ``("tenant_id", "id")``); together they must be unique and NOT NULL.
        engine: The engine, URL or engine factory (see above).
        where: An extra filter on the table's columns, e.g. ``orders.c.status == "open"``.
        lookahead: How many successor pages a page enqueues when more rows follow. None
            (default): as many as the batch needs, learned while it runs (2 to 32, see below).
            An int fixes it (1: the next page only). With more than one, a page reads only the
            key columns of the following pages to find their boundaries and enqueues them all
            at once; a chain then discovers that many pages per hop.
        row_values: Compare composite keys as row values (``(a, b) > (x, y)``) or in the
            expanded form (``a > x OR (a = x AND b > y)``). None (default) chooses by dialect:
            row values where they are known to work.
        allow_nullable_key: Accept a key column declared nullable, when the where clause or
            the data guarantees it holds no NULL. A NULL key met while reading still raises.
        window_column: The column a series' window applies to (docs/series.md): its pages
            read only the rows whose value is in the run's window, and the next window ends
            at the column's largest value. Default: the key column (a single-column key); give
            e.g. ``"updated_at"`` to sync rows by modification time.

    Raises:
        ProcessorDefinitionError: a key column is missing or declared nullable, or
            ``lookahead`` is neither None nor an int >= 1.
    """

    def __init__(
        self,
        table_or_select: FromClause | Select[Any],
        *,
        key: str | Sequence[str],
        engine: EngineLike | EngineFactory,
        where: ColumnElement[bool] | None = None,
        lookahead: int | None = None,
        row_values: bool | None = None,
        allow_nullable_key: bool = False,
        window_column: str | None = None,
    ) -> None:
        names = (key,) if isinstance(key, str) else tuple(key)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ProcessorDefinitionError(
                f"SqlSource key must be a column name or a sequence of them, got {key!r}"
            )
        if isinstance(table_or_select, Select):
            base: Select[Any] = table_or_select
            columns = base.selected_columns
            what = "the select"
        else:
            base = select(table_or_select)
            columns = table_or_select.c
            what = str(getattr(table_or_select, "name", None) or "the table")
        if where is not None:
            base = base.where(where)
        key_cols: list[ColumnElement[Any]] = []
        for name in names:
            if name not in columns:
                raise ProcessorDefinitionError(
                    f"SqlSource key column {name!r} is not a column of {what} "
                    f"(columns: {', '.join(columns.keys())})"
                )
            col = columns[name]
            if getattr(col, "nullable", False) and not allow_nullable_key:
                raise ProcessorDefinitionError(
                    f"SqlSource key column {what}.{name} is nullable; keyset pagination cannot "
                    "place NULL keys, so rows with one would be skipped silently. Declare the "
                    "column NOT NULL (nullable=False), or pass allow_nullable_key=True if your "
                    "where clause excludes NULLs"
                )
            key_cols.append(col)
        if window_column is not None and window_column not in columns:
            raise ProcessorDefinitionError(
                f"SqlSource window_column {window_column!r} is not a column of {what} "
                f"(columns: {', '.join(columns.keys())})"
            )
        window = (
            window_column if window_column is not None else names[0] if len(names) == 1 else None
        )
        self._window_col: ColumnElement[Any] | None = None if window is None else columns[window]
        self._base = base
        self._names = names
        self._key_cols = key_cols
        self._what = what
        self._engine_spec = engine
        self._pacer = LookaheadPacer(lookahead, source="SqlSource")
        self._row_values = row_values
        self._engines: dict[str | None, Engine | AsyncEngine] = {}

    @property
    def key(self) -> tuple[str, ...]:
        """The key column names, in order."""
        return self._names

    @property
    def lookahead(self) -> int | None:
        """How many successor pages a page enqueues when more rows follow (None: adaptive)."""
        return self._pacer.fixed

    @property
    def pacer(self) -> LookaheadPacer:
        """What this process has learned of each batch's lookahead (for tests and benchmarks)."""
        return self._pacer

    def engine(self, args: str | None = None) -> Engine | AsyncEngine:
        """The engine for a batch with these args, created on first use in this process.

        Raises:
            ProcessorDefinitionError: the engine factory returned something else than an
                engine or a URL.
        """
        cached = self._engines.get(args)
        if cached is not None:
            return cached
        spec = self._engine_spec
        made: Any = spec(args) if callable(spec) else spec
        if isinstance(made, str):
            made = (
                create_async_engine(made)
                if make_url(made).get_dialect().is_async
                else create_engine(made)
            )
        if not isinstance(made, (Engine, AsyncEngine)):
            raise ProcessorDefinitionError(
                f"SqlSource engine must be an Engine, an AsyncEngine, a URL, or a callable "
                f"returning one, got {made!r}"
            )
        self._engines[args] = made
        return made

    async def dispose(self) -> None:
        """Close the connection pools this source created.

        The engines are created again on next use. Engines passed in ready-made are disposed too.
        """
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            else:
                await asyncio.to_thread(engine.dispose)

    async def write(self, statement: Executable, *, args: str | None = None) -> int:
        """Run a write (INSERT, UPDATE, DELETE) in a transaction of its own on this source's engine.

        It is awaited for an async engine or run in a thread for a sync one. Returns the number of
        rows it affected as the driver reports it (-1 when the driver cannot tell, e.g. for some
        multi-row INSERTs).

        For a processor's writes to the same database, so that one engine (and pool) serves
        both the reads and the writes: ``await self.source.write(update(...), args=...)``.
        """
        engine = self.engine(args)
        if isinstance(engine, AsyncEngine):
            async with engine.begin() as conn:
                return (await conn.execute(statement)).rowcount
        return await asyncio.to_thread(_write_sync, engine, statement)

    applies_windows = True
    """A series' window reaches ``read`` (``window=``): the scan stays inside it."""

    async def read(
        self,
        cursor_str: str,
        size: int,
        *,
        args: str | None = None,
        window: BatchWindow | None = None,
    ) -> SourcePage[Row[Any]]:
        """Read the page at ``cursor_str`` (at most ``size`` rows) and its successors' cursors.

        With a ``window`` (a series run's, ``context.window``), only rows whose window column
        is in it are read.

        Raises:
            InvalidBatchInputError: the cursor is not one of this source's, or a row's key is
                NULL or of a type a cursor cannot carry.
        """
        cur = load_cursor(cursor_str, source="SqlSource", keys=("a", "u"))
        self._pacer.arrived(cursor_str)
        after = self._decode_key(cur.get("a"))
        upto = self._decode_key(cur.get("u"))
        engine = self.engine(args)
        row_values = self._use_row_values(engine)
        base = self._windowed(self._base, window)
        stmt = self._range(base, after, upto, row_values).limit(size + 1)
        rows = await _fetch(engine, stmt)
        self._check_no_null_key(rows)
        if len(rows) <= size:
            return SourcePage(list(rows))
        rows = rows[:size]
        last = self._key_of(rows[-1])
        following = self._cursor(last, upto)
        pace_key = self._pacer.batch_key(args, size)
        lookahead = self._pacer.depth(pace_key, 2 * len(following))
        if lookahead == 1:
            return SourcePage(list(rows), [following])
        # Keys only: where the next lookahead - 1 pages end, and whether a page follows them.
        keys_stmt = self._range(
            base.with_only_columns(*self._key_cols), last, upto, row_values
        ).limit((lookahead - 1) * size + 1)
        began = self._pacer.clock()
        keys = [self._key_of(k) for k in await _fetch(engine, keys_stmt)]
        scanned = self._pacer.clock() - began
        lows = [last] + [keys[i * size - 1] for i in range(1, lookahead) if len(keys) > i * size]
        highs: list[list[Any] | None] = [*lows[1:], upto]
        cursors = [self._cursor(lo, hi) for lo, hi in zip(lows, highs, strict=True)]
        self._pacer.found(pace_key, cursors[-1], lookahead, scanned)
        return SourcePage(list(rows), cursors)

    async def split(self, k: int, *, args: str | None = None) -> list[str]:
        """Up to ``k`` first cursors whose key ranges cover the rows once.

        Their row counts are near-equal as the table stands now. Pass them as ``first_cursor_strs``:
        one chain each.

        One query counts the rows and one numbers them in key order (a window function) to
        take the key at every ``n / k``-th row as a boundary. Each cursor carries its range's
        upper bound, so its chain stops there; the last range has none, so rows appended
        during the batch are read by the last chain.

        Raises:
            InvalidBatchInputError: ``k`` is not an int >= 1.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidBatchInputError(f"split(k) needs an int k >= 1, got {k!r}")
        engine = self.engine(args)
        count_stmt = select(func.count()).select_from(self._base.subquery())
        total = int((await _fetch(engine, count_stmt))[0][0])
        positions = sorted({total * i // k for i in range(1, k)} - {0, total})
        if not positions:
            return [""]
        rn = func.row_number().over(order_by=self._key_cols).label("_bo_rn")
        numbered = self._base.with_only_columns(*self._key_cols, rn).subquery()
        bounds_stmt = (
            select(*[numbered.c[n] for n in self._names])
            .where(numbered.c["_bo_rn"].in_(positions))
            .order_by(*[numbered.c[n] for n in self._names])
        )
        bounds = [self._key_of(r) for r in await _fetch(engine, bounds_stmt)]
        lows: list[list[Any] | None] = [None, *bounds]
        highs: list[list[Any] | None] = [*bounds, None]
        return [self._cursor(lo, hi) for lo, hi in zip(lows, highs, strict=True)]

    async def window_end(
        self,
        low: str | None,
        *,
        args: str | None = None,
        cutoff: _dt.datetime | None = None,
    ) -> str | None:
        """The end of a series' next window: the largest window-column value after ``low``.

        One query, ``SELECT max(col) ... WHERE col > low``; None when no row is after ``low``
        (the window is empty). With ``cutoff`` (a watermark's ``lag``), only values up to it
        count, for a column of times.

        Raises:
            InvalidBatchInputError: this source has no single window column, or ``low`` does
                not read as one of its values.
        """
        col = self._window_column()
        stmt = self._base.with_only_columns(func.max(col))
        if low is not None:
            stmt = stmt.where(col > literal(self._mark_value(low), type_=col.type))
        if cutoff is not None:
            stmt = stmt.where(col <= literal(cutoff, type_=col.type))
        rows = await _fetch(self.engine(args), stmt)
        value = rows[0][0] if rows else None
        return None if value is None else _mark_text(value)

    def _window_column(self) -> ColumnElement[Any]:
        if self._window_col is None:
            raise InvalidBatchInputError(
                f"SqlSource over {self._what} has the composite key {list(self._names)}; a "
                "series' window needs one column: pass window_column=... (e.g. the last key "
                "column, or updated_at)"
            )
        return self._window_col

    def _windowed(self, stmt: Select[Any], window: BatchWindow | None) -> Select[Any]:
        """``stmt`` restricted to the rows of a series' window (unchanged without one)."""
        if window is None:
            return stmt
        col = self._window_column()
        if window.kind == "time":
            start, end = window.start, window.end
            if start is not None:
                stmt = stmt.where(col >= literal(start, type_=col.type))
            return stmt.where(col < literal(end, type_=col.type))
        if window.low is not None:
            stmt = stmt.where(col > literal(self._mark_value(window.low), type_=col.type))
        return stmt.where(col <= literal(self._mark_value(window.high), type_=col.type))

    def _mark_value(self, mark: str) -> Any:
        """A high-water mark (text) as a value of the window column's type."""
        col = self._window_column()
        try:
            kind = col.type.python_type
        except NotImplementedError:
            return mark
        try:
            if kind is bool or kind is str:
                return mark
            if kind is int:
                return int(mark)
            if kind is float:
                return float(mark)
            if kind is decimal.Decimal:
                return decimal.Decimal(mark)
            if kind is _dt.datetime:
                return _dt.datetime.fromisoformat(mark)
            if kind is _dt.date:
                return _dt.date.fromisoformat(mark)
            if kind is _dt.time:
                return _dt.time.fromisoformat(mark)
            if kind is uuid.UUID:
                return uuid.UUID(mark)
            if kind is bytes:
                return bytes.fromhex(mark)
        except (ValueError, decimal.InvalidOperation):
            raise InvalidBatchInputError(
                f"the mark {mark!r} is not a {kind.__name__} value of column "
                f"{self._what}.{getattr(col, 'name', '?')}; set the series' mark to one "
                "(set_watermark) or fix Watermark(initial=...)"
            ) from None
        return mark

    def _use_row_values(self, engine: Engine | AsyncEngine) -> bool:
        if self._row_values is not None:
            return self._row_values
        return engine.dialect.name in _ROW_VALUE_DIALECTS

    def _range(
        self,
        stmt: Select[Any],
        after: list[Any] | None,
        upto: list[Any] | None,
        row_values: bool,
    ) -> Select[Any]:
        if after is not None:
            stmt = stmt.where(self._compare(after, ">", row_values))
        if upto is not None:
            stmt = stmt.where(self._compare(upto, "<=", row_values))
        return stmt.order_by(*self._key_cols)

    def _compare(self, values: list[Any], op: str, row_values: bool) -> ColumnElement[bool]:
        cols = self._key_cols
        binds = [literal(v, type_=c.type) for c, v in zip(cols, values, strict=True)]
        if len(cols) == 1:
            return cols[0] > binds[0] if op == ">" else cols[0] <= binds[0]
        if row_values:
            left, right = tuple_(*cols), tuple_(*binds)
            return left > right if op == ">" else left <= right
        # (c0, c1, ...) > (v0, v1, ...) expanded: c0 > v0 OR (c0 = v0 AND c1 > v1) OR ...;
        # the leading c0 >= v0 (or <=) lets an index on the key narrow the scan.
        terms: list[ColumnElement[bool]] = []
        for i, col in enumerate(cols):
            equal = [cols[j] == binds[j] for j in range(i)]
            strict = col > binds[i] if op == ">" else col < binds[i]
            terms.append(and_(*equal, strict))
        if op == "<=":
            terms.append(and_(*[c == b for c, b in zip(cols, binds, strict=True)]))
        lead = cols[0] >= binds[0] if op == ">" else cols[0] <= binds[0]
        return and_(lead, or_(*terms))

    def _check_no_null_key(self, rows: Sequence[Row[Any]]) -> None:
        for row in rows:
            mapping = row._mapping
            for name in self._names:
                if mapping[name] is None:
                    encode_value(None, column=f"{self._what}.{name}")  # raises, naming it

    def _key_of(self, row: Row[Any]) -> list[Any]:
        mapping = row._mapping
        return [mapping[n] for n in self._names]

    def _cursor(self, after: list[Any] | None, upto: list[Any] | None) -> str:
        cur: dict[str, Any] = {}
        if after is not None:
            cur["a"] = [encode_value(v, column=n) for n, v in zip(self._names, after, strict=True)]
        if upto is not None:
            cur["u"] = [encode_value(v, column=n) for n, v in zip(self._names, upto, strict=True)]
        return dump_cursor(cur)

    def _decode_key(self, values: Any) -> list[Any] | None:
        if values is None:
            return None
        if not isinstance(values, list) or len(values) != len(self._names):
            raise InvalidBatchInputError(
                f"SqlSource cursor key {values!r} does not match the key columns "
                f"{list(self._names)}; was the batch started for another source?"
            )
        return [decode_value(v) for v in values]


async def _fetch(engine: Engine | AsyncEngine, stmt: Select[Any]) -> Sequence[Row[Any]]:
    if isinstance(engine, AsyncEngine):
        async with engine.connect() as conn:
            result = await conn.execute(stmt)
            rows: Sequence[Row[Any]] = result.all()
            return rows
    return await asyncio.to_thread(_fetch_sync, engine, stmt)


def _mark_text(value: Any) -> str:
    """A window-column value as a high-water mark.

    As people write it (ints as digits, times in ISO 8601), read back by ``_mark_value``.
    """
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _write_sync(engine: Engine, statement: Executable) -> int:
    with engine.begin() as conn:
        return conn.execute(statement).rowcount


def _fetch_sync(engine: Engine, stmt: Select[Any]) -> Sequence[Row[Any]]:
    with engine.connect() as conn:
        return conn.execute(stmt).all()
