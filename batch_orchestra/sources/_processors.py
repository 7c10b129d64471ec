"""Page processor bases over a source: the user writes ``process``, the base owns the cursor."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Protocol

from sqlalchemy import Row

from .._exceptions import ProcessorDefinitionError
from .._processor import BatchPage, BatchProcessorContext, PageProcessor
from ._common import SourcePage
from ._files import FileSource
from ._sql import SqlSource

__all__ = ["FilePageProcessor", "SqlPageProcessor"]


class _Source(Protocol):
    async def read(
        self, cursor_str: str, size: int, *, args: str | None = None
    ) -> SourcePage[Any]: ...


async def _read_and_enqueue(source: _Source, context: BatchProcessorContext) -> list[Any]:
    page = context.page
    args = context.args_str if context.has_args() else None
    read = await source.read(page.cursor_str, page.size, args=args)
    if read.next_cursors:
        # Before the user's work: the next pages run while this one is processed.
        await context.enqueue_next_pages([BatchPage(c, page.size) for c in read.next_cursors])
    return read.items


def _check_source(cls: type, expected: type) -> None:
    if getattr(cls.process, "__isabstractmethod__", False):  # type: ignore[attr-defined]
        return  # an intermediate base; the concrete class is checked
    source = getattr(cls, "source", None)
    if not isinstance(source, expected):
        raise ProcessorDefinitionError(
            f"{cls.__name__} must set the class attribute `source` to a {expected.__name__}, "
            f"got {source!r}; e.g. source = {expected.__name__}(...)"
        )


class SqlPageProcessor(PageProcessor):
    """A page processor over a ``SqlSource``: set ``source``, implement ``process`` and
    ``retry_mode``, decorate with ``@page_processor``.

    ``run`` reads the page's rows, enqueues the next page(s) before anything else, then calls
    ``process(context, rows)`` and returns its int, or the number of rows when it returns None.
    Start the batch with ``first_cursor_str=""`` (one chain) or with
    ``first_cursor_strs=await YourProcessor.source.split(k)`` (k chains).

    Example::

        @page_processor
        class MigrateOrders(SqlPageProcessor):
            source = SqlSource(orders, key="id", engine=lambda args: json.loads(args)["db"])
            retry_mode = PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE

            async def process(self, context, rows):
                ...
    """

    source: ClassVar[SqlSource]
    """Where the rows come from; one object per process, which also holds the engine."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_source(cls, SqlSource)

    async def run(self, context: BatchProcessorContext) -> int:
        """Read the page, enqueue its successors, ``process`` the rows; the items processed."""
        rows = await _read_and_enqueue(self.source, context)
        done = await self.process(context, rows)
        return len(rows) if done is None else done

    @abc.abstractmethod
    async def process(self, context: BatchProcessorContext, rows: list[Row[Any]]) -> int | None:
        """Process one page's rows (SQLAlchemy ``Row`` objects: ``row.id``, ``row._mapping``).

        Return how many items were processed, or None to count every row. Make it idempotent
        for ``EXECUTE_AT_LEAST_ONCE``: a retried page gets the same rows again.
        """


class FilePageProcessor(PageProcessor):
    """A page processor over a ``FileSource``: set ``source``, implement ``process`` and
    ``retry_mode``, decorate with ``@page_processor``.

    ``run`` reads the page's records, enqueues the next page before anything else, then calls
    ``process(context, records)`` and returns its int, or the number of records when it
    returns None. Start the batch with ``first_cursor_str=""`` (one chain) or with
    ``first_cursor_strs=await YourProcessor.source.split(k)`` (k chains).
    """

    source: ClassVar[FileSource]
    """The file to read; its path may come from the batch's args."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_source(cls, FileSource)

    async def run(self, context: BatchProcessorContext) -> int:
        """Read the page, enqueue its successor, ``process`` the records; the items processed."""
        records = await _read_and_enqueue(self.source, context)
        done = await self.process(context, records)
        return len(records) if done is None else done

    @abc.abstractmethod
    async def process(self, context: BatchProcessorContext, records: list[Any]) -> int | None:
        """Process one page's records: dicts keyed by the header for CSV (lists of strings
        without one), parsed JSON values for JSON Lines.

        Return how many items were processed, or None to count every record.
        """
