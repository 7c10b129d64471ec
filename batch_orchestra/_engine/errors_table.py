"""The distinct errors of a batch's held pages, each kept once with a reference count."""

from __future__ import annotations

from .budgets import clip

__all__ = ["MAX_DISTINCT_ERRORS", "MAX_ERROR_MESSAGE", "MAX_ERROR_TYPE", "ErrorTable"]

MAX_DISTINCT_ERRORS = 200
"""Distinct (type, message) pairs kept; past it, new ones share one "(various)" entry."""
MAX_ERROR_MESSAGE = 500
"""Characters of an error message kept."""
MAX_ERROR_TYPE = 200
"""Characters of an error's type kept (an ``ApplicationError``'s type is any string)."""
_OVERFLOW_KEY = ("(various)", "more distinct errors than the batch keeps; see the worker logs")


class ErrorTable:
    """Errors by index, so that a thousand pages failing the same way keep one message.

    Pages hold an index (-1: none); ``acquire`` and ``release`` keep a count per entry and an
    entry whose count falls to zero is reused. Bounded by ``MAX_DISTINCT_ERRORS`` entries.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self.refs: list[int] = []
        self._index: dict[tuple[str, str], int] = {}
        self._free: list[int] = []

    def acquire(self, error_type: str, message: str) -> int:
        """The index of this error, counted once more."""
        # bounded in bytes too: 200 errors of escaped text would otherwise be 1 MB of state
        key = (clip(error_type, MAX_ERROR_TYPE), clip(message, MAX_ERROR_MESSAGE))
        i = self._index.get(key)
        if i is None:
            i = self._add(key)
        elif self.refs[i] == 0:
            self._free.remove(i)
        self.refs[i] += 1
        return i

    def _add(self, key: tuple[str, str]) -> int:
        if self._free:
            i = self._free.pop()
            del self._index[self.entries[i]]
            self.entries[i] = key
        elif len(self.entries) < MAX_DISTINCT_ERRORS - 1 or key == _OVERFLOW_KEY:
            i = len(self.entries)
            self.entries.append(key)
            self.refs.append(0)
        else:  # full of live errors: the rest share one entry
            i = self._index.get(_OVERFLOW_KEY, -1)
            return i if i >= 0 else self._add(_OVERFLOW_KEY)
        self._index[key] = i
        return i

    def release(self, i: int) -> None:
        """One reference to entry ``i`` fewer (-1 is no error)."""
        if 0 <= i < len(self.refs) and self.refs[i] > 0:
            self.refs[i] -= 1
            if self.refs[i] == 0:
                self._free.append(i)

    def get(self, i: int) -> tuple[str, str]:
        """(type, message) of entry ``i``; empty strings for -1."""
        return self.entries[i] if 0 <= i < len(self.entries) else ("", "")

    def counts(self) -> list[tuple[str, str, int]]:
        """Live entries with their counts, most referenced first."""
        live = [(t, m, n) for (t, m), n in zip(self.entries, self.refs, strict=True) if n > 0]
        return sorted(live, key=lambda e: -e[2])

    def restore(self, entries: list[tuple[str, str]]) -> None:
        """Reload entries carried across continue-as-new.

        Counts are rebuilt by the pages' ``acquire_index`` calls, then ``rebuild_free``.
        """
        self.entries = list(entries)
        self.refs = [0] * len(entries)
        self._index = {e: i for i, e in enumerate(self.entries)}
        self._free = []

    def acquire_index(self, i: int) -> None:
        """Count one more reference to an existing entry (-1 is no error)."""
        if 0 <= i < len(self.refs):
            self.refs[i] += 1

    def rebuild_free(self) -> None:
        """Entries with no reference become reusable."""
        self._free = [i for i, n in enumerate(self.refs) if n == 0]
