"""A page of a batch: ``BatchPage``, a cursor and a size."""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import InvalidBatchInputError
from .._model import check_cursor
from .._model.typed import TypedPageMixin

__all__ = ["BatchPage"]


@dataclass(frozen=True)
class BatchPage(TypedPageMixin):
    """A page to process: an opaque cursor and how many items to fetch from it.

    Args are positional as in the seed: ``BatchPage(next_cursor, page.size)``.
    """

    cursor_str: str
    """Where the page starts, serialized by the processor (JSON is a good choice)."""
    size: int
    """How many items the page holds at most."""

    def __post_init__(self) -> None:
        check_cursor(self.cursor_str, "BatchPage.cursor_str")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise InvalidBatchInputError(f"BatchPage.size must be an int >= 1, got {self.size!r}")
