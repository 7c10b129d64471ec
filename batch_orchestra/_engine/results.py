"""The batch's result: pages' values waiting to be folded by the processor's ``reduce``.

Each completed page's value is added once (only a page's current attempt reports); a fold takes
a batch of them (``REDUCE_BATCH`` values, ``REDUCE_BATCH_BYTES``, or what waited
``REDUCE_EVERY``) and, when ``reduce`` returns, they are dropped and the result replaced.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import timedelta
from typing import Any

from .budgets import REDUCE_INPUT_BYTES, wire_size
from .outbox import notice_chunk

__all__ = [
    "MAX_UNREDUCED_BYTES",
    "REDUCE_BATCH",
    "REDUCE_BATCH_BYTES",
    "REDUCE_EVERY",
    "REDUCE_RETRY_EVERY",
    "ResultFold",
]

REDUCE_BATCH = 200
"""Fold pages' values into the result once this many wait ..."""
REDUCE_BATCH_BYTES = 128 * 1024
"""... or this many bytes of them ..."""
REDUCE_EVERY = timedelta(seconds=2)
"""... or they have waited this long."""
REDUCE_RETRY_EVERY = timedelta(seconds=30)
"""After a fold failed (its own retries spent), how long until the next try."""
MAX_UNREDUCED_BYTES = 512 * 1024
"""Values waiting for a failing ``reduce`` past this pause the batch (so none is dropped and
the state carried across continue-as-new stays small)."""


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


class ResultFold:
    """The result so far and the values waiting to be folded into it."""

    def __init__(self) -> None:
        self.result: Any = None
        self.started = False
        self.error: str | None = None
        self.folding = False
        """A fold is in flight."""
        self.unreduced: list[Any] = []
        self.unreduced_bytes = 0
        self.result_bytes = 0

    @classmethod
    def carried(cls, result: Any, started: bool, unreduced: list[Any]) -> ResultFold:
        """The result and waiting values a hand-over carried."""
        fold = cls()
        fold.result, fold.started = result, started
        fold.result_bytes = wire_size(result)
        for value in unreduced:
            fold.add(value)
        return fold

    def add(self, value: Any) -> bool:
        """A completed page's value (None: nothing to fold); True if one was added."""
        if value is None:
            return False
        self.unreduced.append(value)
        self.unreduced_bytes += _size(value)
        return True

    def due(self, running: bool) -> bool:
        """Whether to fold now (or only after ``REDUCE_EVERY``)."""
        return len(self.unreduced) >= REDUCE_BATCH or (
            self.unreduced_bytes >= REDUCE_BATCH_BYTES or not running
        )

    def take(self, *, budgets: bool) -> list[Any]:
        """The values the next fold carries (with the payload budgets, ``REDUCE_INPUT_BYTES``)."""
        values = list(self.unreduced)
        if budgets:
            values = notice_chunk(deque(values), len(values), REDUCE_INPUT_BYTES)
        return values

    def folded(self, result: Any, count: int) -> None:
        """A fold of the first ``count`` waiting values returned ``result``."""
        self.result, self.started, self.error = result, True, None
        self.result_bytes = wire_size(result)
        del self.unreduced[:count]
        self.unreduced_bytes = sum(_size(v) for v in self.unreduced)

    @property
    def too_much_waiting(self) -> bool:
        """Values wait for a failing ``reduce`` past ``MAX_UNREDUCED_BYTES``: pause the batch."""
        return self.unreduced_bytes > MAX_UNREDUCED_BYTES
