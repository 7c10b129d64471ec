"""What the processor bases over a source share: read the page, enqueue, then process."""

from __future__ import annotations

from typing import Any, Protocol

from .._exceptions import ProcessorDefinitionError
from .._worker.context import BatchProcessorContext
from .._worker.page import BatchPage
from ._common import SourcePage

__all__ = ["check_source", "read_and_enqueue"]


class _Source(Protocol):
    async def read(
        self, cursor_str: str, size: int, *, args: str | None = None
    ) -> SourcePage[Any]: ...


async def read_and_enqueue(source: _Source, context: BatchProcessorContext) -> list[Any]:
    page = context.page
    args = context.args_str if context.has_args() else None
    # A series' window narrows the scan of a source that knows how (SqlSource).
    window = {"window": context.window} if getattr(source, "applies_windows", False) else {}
    reader: Any = source.read
    read: SourcePage[Any] = await reader(page.cursor_str, page.size, args=args, **window)
    if read.next_cursors:
        # Before the user's work: the next pages run while this one is processed.
        await context.enqueue_next_pages([BatchPage(c, page.size) for c in read.next_cursors])
    return read.items


def check_source(cls: type, expected: type) -> None:
    if getattr(cls.process, "__isabstractmethod__", False):  # type: ignore[attr-defined]
        return  # an intermediate base; the concrete class is checked
    source = getattr(cls, "source", None)
    if not isinstance(source, expected):
        raise ProcessorDefinitionError(
            f"{cls.__name__} must set the class attribute `source` to a {expected.__name__}, "
            f"got {source!r}; e.g. source = {expected.__name__}(...)"
        )
