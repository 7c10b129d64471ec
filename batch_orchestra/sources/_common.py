"""What both sources share: the page they return and JSON-safe key values for cursors."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .._exceptions import InvalidBatchInputError

__all__ = ["SourcePage", "decode_value", "encode_value", "dump_cursor", "load_cursor"]

T = TypeVar("T")


@dataclass(frozen=True)
class SourcePage(Generic[T]):
    """One page read from a source: its items and the cursors of the pages that follow it."""

    items: list[T]
    """The page's items (SQLAlchemy ``Row`` objects, CSV records, JSON values), in source order."""
    next_cursors: list[str] = field(default_factory=list)
    """Cursors to enqueue (``BatchPage(cursor, size)`` each): none when this page ends its
    chain, one for the next page, several with lookahead."""


# Tagged forms for key values JSON cannot carry as they are; decoded back to the same type so
# that the database compares them as the column's type, not as strings.
_TAGS: dict[str, Callable[[str], Any]] = {
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
    "bytes": bytes.fromhex,
}


def encode_value(value: Any, *, column: str) -> Any:
    """``value`` as something ``json.dumps`` keeps exactly (tagged when JSON has no such type).

    Raises:
        InvalidBatchInputError: the value is NULL or of a type a cursor cannot carry.
    """
    if value is None:
        raise InvalidBatchInputError(
            f"key column {column!r} holds NULL in a row; keyset pagination cannot place NULL "
            "keys, so such rows would be skipped silently: make the column NOT NULL or filter "
            "the rows out in the source's where clause"
        )
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"time": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    raise InvalidBatchInputError(
        f"key column {column!r} holds {value!r} of type {type(value).__name__}, which a cursor "
        "cannot carry; use key columns of type int, str, float, date/time, UUID, Decimal or "
        "bytes"
    )


def decode_value(value: Any) -> Any:
    """The inverse of ``encode_value``."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        return _TAGS[tag](text)
    return value


def dump_cursor(obj: dict[str, Any]) -> str:
    """A compact JSON cursor string."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def load_cursor(cursor_str: str, *, source: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Parse a cursor written by ``dump_cursor``; "" is the empty dict (the whole source).

    Raises:
        InvalidBatchInputError: the string is not such a cursor.
    """
    if cursor_str == "":
        return {}
    try:
        obj = json.loads(cursor_str)
        if isinstance(obj, dict) and set(obj) <= set(keys):
            return obj
    except ValueError:
        pass
    raise InvalidBatchInputError(
        f'{cursor_str!r} is not a {source} cursor; start the batch with first_cursor_str="" '
        f"(the whole source) or with the cursors {source}.split(k) returns"
    )
