"""Key ranges: split a key space into several first cursors (one chain each).

A chain that starts from a ``KeyRange`` cursor pages through ``[lo, hi)`` and stops at ``hi``:
query ``WHERE key >= lo AND key < hi ORDER BY key LIMIT size + 1``; if the extra row came back,
enqueue ``KeyRange(extra_row_key, hi)``; otherwise the range (and the chain) is done.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TypeAlias

from .._exceptions import InvalidBatchInputError

__all__ = ["KeyRange", "split_hex_range", "split_int_range", "split_uuid_range"]

Key: TypeAlias = int | str


@dataclass(frozen=True)
class KeyRange:
    """The keys ``lo <= key < hi`` (``hi`` None: no upper bound), as a cursor."""

    lo: Key
    """The first key of the range (inclusive)."""
    hi: Key | None = None
    """The end of the range (exclusive); None for no end."""

    def to_cursor(self) -> str:
        """The range as a ``cursor_str``."""
        return json.dumps({"lo": self.lo, "hi": self.hi}, separators=(",", ":"))

    @classmethod
    def from_cursor(cls, cursor_str: str) -> KeyRange:
        """Parse ``to_cursor()``'s output.

        Raises:
            InvalidBatchInputError: the string is not a KeyRange cursor.
        """
        try:
            d = json.loads(cursor_str)
            return cls(d["lo"], d["hi"])
        except (ValueError, KeyError, TypeError):
            raise InvalidBatchInputError(
                f"{cursor_str!r} is not a KeyRange cursor; build it with KeyRange(...).to_cursor()"
            ) from None

    def contains(self, key: Key) -> bool:
        """Whether ``key`` falls in the range."""
        return self.lo <= key and (self.hi is None or key < self.hi)  # type: ignore[operator]

    def starting_at(self, key: Key) -> KeyRange:
        """The rest of the range from ``key`` on (for the next page's cursor)."""
        return KeyRange(key, self.hi)


def split_int_range(lo: int, hi: int, k: int) -> list[str]:
    """``k`` cursors whose ranges cover the integers ``[lo, hi)`` once, in near-equal parts.

    Sizes differ by at most one; there are fewer than ``k`` when the range has fewer than ``k``
    keys.

    Raises:
        InvalidBatchInputError: ``k < 1`` or ``hi < lo``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidBatchInputError(f"k must be an int >= 1, got {k!r}")
    if hi < lo:
        raise InvalidBatchInputError(f"the range is empty or reversed: lo={lo!r} > hi={hi!r}")
    n = hi - lo
    parts = min(k, n) or 1
    bounds = [lo + (n * i) // parts for i in range(parts + 1)]
    return [KeyRange(bounds[i], bounds[i + 1]).to_cursor() for i in range(parts)]


def split_hex_range(k: int, *, digits: int = 32) -> list[str]:
    """``k`` cursors splitting fixed-width lowercase hex string keys (``digits`` long) evenly.

    The first range starts at "" and the last has no upper bound, so every string key, even one
    outside the hex alphabet, falls in exactly one range.
    """
    bounds = [KeyRange.from_cursor(c) for c in split_int_range(0, 16**digits, k)]
    fmt = f"{{:0{digits}x}}"
    out = []
    for i, r in enumerate(bounds):
        lo = "" if i == 0 else fmt.format(r.lo)
        hi = None if i == len(bounds) - 1 else fmt.format(r.hi)
        out.append(KeyRange(lo, hi).to_cursor())
    return out


def split_uuid_range(k: int) -> list[str]:
    """``k`` cursors splitting canonical UUID string keys ("8-4-4-4-12", lowercase) evenly."""
    out = []
    for c in split_hex_range(k, digits=32):
        r = KeyRange.from_cursor(c)
        lo = str(uuid.UUID(hex=str(r.lo))) if r.lo else ""
        hi = str(uuid.UUID(hex=str(r.hi))) if r.hi is not None else None
        out.append(KeyRange(lo, hi).to_cursor())
    return out
