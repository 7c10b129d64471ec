"""How many pages a source's chain finds ahead: learned per batch in the worker process.

A chain discovers pages one hop at a time: its leader page reads its rows, finds where the next
pages start, and hands them to the batch; a workflow task then starts them. With ``k`` pages found
per hop, one chain keeps about ``k x page time / hop`` pages running, so short pages need a
larger ``k`` to fill a cap. ``LookaheadPacer`` chooses ``k`` from what the worker sees, without the
user's help and without knowing the cap:

* **Delivery**: the time from a leader handing over its pages to the next leader's read starting
  (in this process). When it is about as short as the quickest delivery seen, nothing waited for
  a free slot: discovery is what limits the chain, and ``k`` doubles. When it is several times
  longer, the next leader waited behind pages the cap could not start yet: the chain is ahead of
  the cap, and ``k`` falls by one.
* **Cost**: the keys-only scan that finds the boundaries, in seconds per page found. ``k`` stays
  where that scan adds at most one delivery's time (at least 10 ms) to the leader (a slow scan
  keeps ``k`` low).
* **Bounds**: 2 to ``MAX_LOOKAHEAD`` (32) pages, and few enough that the cursors fit well inside
  an enqueue's budget.

The measurements live in the source object (a class attribute of the processor, so one per
worker process), keyed by batch (its workflow ID, args and page size), at most
``_MAX_BATCHES`` of them. Finding pages ahead does not read more of the table: every page's
keys are scanned once, by the leader before it. What it costs is the pages it holds pending
in the batch (at most ``k`` per chain, since a chain's next leader is queued behind them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio import activity

from .._engine.budgets import MAX_ENQUEUE_BYTES
from .._exceptions import ProcessorDefinitionError

__all__ = ["MAX_LOOKAHEAD", "LookaheadPacer"]

MAX_LOOKAHEAD = 32
"""The most pages an adaptive chain finds per hop."""
_START = 2
_MIN = 2
_MAX_BATCHES = 256
_MAX_WAITING = 4096
_QUEUED_FACTOR = 4.0
"""A delivery this many times the quickest (plus ``_QUEUED_SLACK``) means the leader waited."""
_QUEUED_SLACK = 0.02
_SCAN_BUDGET = 0.01
"""The scan may always take this long (seconds), however quick deliveries are."""
_COST_WEIGHT = 0.25


@dataclass
class _Pace:
    depth: int = _START
    quickest: float | None = None
    """The quickest delivery seen (drifting up slowly, so one lucky hop does not stay forever)."""
    scan_per_page: float = 0.0
    """Seconds the boundary scan took per page found (a moving average)."""
    deliveries: int = 0


class LookaheadPacer:
    """The lookahead of one source: fixed (``lookahead=k``) or adaptive (None)."""

    def __init__(self, fixed: int | None, *, source: str = "source") -> None:
        if fixed is not None and (
            isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 1
        ):
            raise ProcessorDefinitionError(
                f"{source} lookahead must be None (adaptive) or an int >= 1, got {fixed!r}"
            )
        self.fixed = fixed
        self.clock = time.monotonic
        """Where deliveries and scans are timed (a test may set a clock it advances itself)."""
        self._paces: dict[tuple[str, str | None, int], _Pace] = {}
        self._waiting: dict[str, tuple[float, tuple[str, str | None, int]]] = {}

    @staticmethod
    def batch_key(args: str | None, size: int) -> tuple[str, str | None, int]:
        """The batch a read belongs to: its workflow ID (inside a page activity), args, size."""
        workflow_id = (activity.info().workflow_id or "") if activity.in_activity() else ""
        return (workflow_id, args, size)

    def depth(self, key: tuple[str, str | None, int], cursor_bytes: int) -> int:
        """How many successor pages the next leader of this batch finds (1: the next only).

        ``cursor_bytes`` is about one successor cursor's size: the cursors of one enqueue stay
        within a quarter of its budget.
        """
        if self.fixed is not None:
            return self.fixed
        pace = self._paces.get(key)
        depth = _START if pace is None else pace.depth
        return max(1, min(depth, MAX_ENQUEUE_BYTES // (4 * max(1, cursor_bytes))))

    def arrived(self, cursor_str: str) -> None:
        """A read of ``cursor_str`` starts: if a leader here handed it over, learn from when."""
        if self.fixed is not None:
            return
        found = self._waiting.pop(cursor_str, None)
        if found is None:
            return
        at, key = found
        pace = self._paces.get(key)
        if pace is None:
            return
        delivery = self.clock() - at
        pace.deliveries += 1
        if pace.quickest is None or delivery < pace.quickest:
            pace.quickest = delivery
        else:  # drift up by 2 % of the gap: a server that slowed down is learned in ~50 hops
            pace.quickest += 0.02 * (delivery - pace.quickest)
        queued = delivery > _QUEUED_FACTOR * pace.quickest + _QUEUED_SLACK
        ceiling = self._ceiling(pace)
        if queued:
            pace.depth = max(_MIN, min(pace.depth - 1, ceiling))
        else:
            pace.depth = max(_MIN, min(2 * pace.depth, ceiling))

    def found(
        self,
        key: tuple[str, str | None, int],
        continuation: str,
        pages: int,
        scan_seconds: float,
    ) -> None:
        """A leader found ``pages`` successors in ``scan_seconds``; ``continuation`` leads next."""
        if self.fixed is not None:
            return
        pace = self._paces.get(key)
        if pace is None:
            if len(self._paces) >= _MAX_BATCHES:
                del self._paces[next(iter(self._paces))]  # the batch seen first: likely over
            pace = self._paces[key] = _Pace()
        if pages > 1:
            per_page = scan_seconds / (pages - 1)
            pace.scan_per_page += _COST_WEIGHT * (per_page - pace.scan_per_page)
            pace.depth = max(_MIN, min(pace.depth, self._ceiling(pace)))
        if len(self._waiting) >= _MAX_WAITING:
            del self._waiting[next(iter(self._waiting))]  # read by another worker, or never
        self._waiting[continuation] = (self.clock(), key)

    def learned(self, key: tuple[str, str | None, int]) -> tuple[int, float | None] | None:
        """(depth, quickest delivery in seconds) learned for a batch, None if none yet."""
        pace = self._paces.get(key)
        return None if pace is None else (pace.depth, pace.quickest)

    @staticmethod
    def _ceiling(pace: _Pace) -> int:
        """The deepest lookahead whose scan adds at most one delivery to the leader."""
        delivery = max(pace.quickest or 0.0, _SCAN_BUDGET)
        if pace.scan_per_page <= 0:
            return MAX_LOOKAHEAD
        return max(_MIN, min(MAX_LOOKAHEAD, 1 + int(delivery / pace.scan_per_page)))
