"""``SqlPageProcessor``: a page processor over a ``SqlSource``; the user writes ``process``."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from sqlalchemy import Row

from .._series.types import WindowEndContext
from .._worker.context import BatchProcessorContext
from .._worker.processor import PageProcessor
from ._processor_base import check_source, read_and_enqueue
from ._sql import SqlSource

__all__ = ["SqlPageProcessor"]


class SqlPageProcessor(PageProcessor):
    """A page processor over a ``SqlSource``.

    Set ``source``, implement ``process`` and ``retry_mode``, decorate with ``@page_processor``.

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
        check_source(cls, SqlSource)

    async def run(self, context: BatchProcessorContext) -> int:
        """Read the page, enqueue its successors, ``process`` the rows; the items processed."""
        rows = await read_and_enqueue(self.source, context)
        done = await self.process(context, rows)
        return len(rows) if done is None else done

    async def window_end(self, context: WindowEndContext) -> str | None:
        """Where a series run's window ends.

        The source's largest key (or ``window_column``) after the committed mark; None when
        nothing is new (docs/series.md).
        """
        args = context.args_str if context.has_args() else None
        return await self.source.window_end(context.low, args=args, cutoff=context.cutoff)

    @abc.abstractmethod
    async def process(self, context: BatchProcessorContext, rows: list[Row[Any]]) -> int | None:
        """Process one page's rows (SQLAlchemy ``Row`` objects: ``row.id``, ``row._mapping``).

        Return how many items were processed, or None to count every row. Make it idempotent
        for ``EXECUTE_AT_LEAST_ONCE``: a retried page gets the same rows again.
        """
