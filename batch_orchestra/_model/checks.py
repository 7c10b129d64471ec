"""The checks of single input values shared by the batch's input, its window and the series."""

from __future__ import annotations

from typing import Any

from .._engine.budgets import MAX_CURSOR_BYTES
from .._exceptions import InvalidBatchInputError

__all__ = [
    "check_cursor",
    "check_rate",
    "fail",
    "is_int",
]


def is_int(v: Any) -> bool:
    """Whether ``v`` is an int and not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def fail(msg: str) -> InvalidBatchInputError:
    """The error for a bad input value (raise it)."""
    return InvalidBatchInputError(msg)


def check_cursor(cursor: Any, what: str) -> None:
    """Raise ``InvalidBatchInputError`` unless ``cursor`` is a str of a size the batch can keep."""
    if not isinstance(cursor, str):
        raise fail(
            f"{what} must be a str, got {type(cursor).__name__} {cursor!r}; serialize the "
            "cursor first, e.g. json.dumps(cursor)"
        )
    if len(cursor) > MAX_CURSOR_BYTES:
        raise fail(
            f"{what} is {len(cursor):,} characters ({cursor[:40]!r}...); a cursor may hold at "
            f"most {MAX_CURSOR_BYTES:,}: keep a key or offset in it, not the page's data"
        )


def check_rate(value: Any, what: str) -> None:
    """Raise ``InvalidBatchInputError`` unless ``value`` is None or a positive number."""
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or value == float("inf")
    ):
        raise fail(f"{what} must be None (no limit) or a positive number, got {value!r}")
