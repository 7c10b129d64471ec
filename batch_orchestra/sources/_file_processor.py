"""``FilePageProcessor``: a page processor over a ``FileSource``; the user writes ``process``."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from .._worker.context import BatchProcessorContext
from .._worker.processor import PageProcessor
from ._files import FileSource
from ._processor_base import check_source, read_and_enqueue

__all__ = ["FilePageProcessor"]


class FilePageProcessor(PageProcessor):
    """A page processor over a ``FileSource``.

    Set ``source``, implement ``process`` and ``retry_mode``, decorate with ``@page_processor``.

    ``run`` reads the page's records, enqueues the next page before anything else, then calls
    ``process(context, records)`` and returns its int, or the number of records when it
    returns None. Start the batch with ``first_cursor_str=""`` (one chain) or with
    ``first_cursor_strs=await YourProcessor.source.split(k)`` (k chains).

    With ``FileSource(..., key="id")``, ``run_items`` finds the records of failed items by key
    (record failures under that key: ``context.record_failure(row["id"], err)``), so
    ``redrive_items`` / ``redrive --items`` runs them through ``process`` again. A key no
    record has is recorded as a failed item ("not found").
    """

    source: ClassVar[FileSource]
    """The file to read; its path may come from the batch's args."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_source(cls, FileSource)

    async def run(self, context: BatchProcessorContext) -> int:
        """Read the page, enqueue its successor, ``process`` the records; the items processed."""
        records = await read_and_enqueue(self.source, context)
        done = await self.process(context, records)
        return len(records) if done is None else done

    async def run_items(self, context: BatchProcessorContext, keys: list[str]) -> int:
        """Find the records of these keys (``FileSource.find``) and ``process`` them."""
        found = await self.source.find(keys, args=context.args_str if context.has_args() else None)
        missing = [k for k in keys if k not in found]
        if missing:
            context.record_failures(
                (k, LookupError(f"no record has {self.source.key}={k!r}")) for k in missing
            )
        records = [found[k] for k in keys if k in found]
        if not records:
            return 0
        done = await self.process(context, records)
        return len(records) if done is None else done

    @abc.abstractmethod
    async def process(self, context: BatchProcessorContext, records: list[Any]) -> int | None:
        """Process one page's records.

        Records are dicts keyed by the header for CSV (lists of strings without one), parsed JSON
        values for JSON Lines.

        Return how many items were processed, or None to count every record.
        """
