"""Which path a quick page's successors take to their batch: in its result, or by update.

A quick page (one that ends right after it enqueues) can carry its successors in its result: one
message instead of two, so one billable action less per page. But the two paths do not take the
same time everywhere. On a server that reads its transfer queue often (the embedded dev server)
the result is as quick as the update; on a stock server the activity completion's workflow task
waits for that queue's next read (20 a second), while an update's is dispatched at once. When a
batch is discovery-bound (its chains find pages one hop at a time), that wait is its throughput.

``PathChooser`` measures, per batch, the **hop** of each path as this worker sees it: from a page
handing its successors over to the first successor starting here. It keeps the result (the
cheaper path) unless the update's hop is clearly shorter (``_UPDATE_WINS``), and tries the other
path now and then so that a change (a tuned server, a batch that became cap-bound) is noticed.
When a batch is cap-bound both hops include the wait for a free slot, they come out alike, and the
result is kept: the update is paid for only where it buys throughput.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

__all__ = ["PathChooser"]

_UPDATE_WINS = 1.5
"""The update is chosen when its hop is this many times shorter than the result's."""
_WINDOW = 9
"""Each path's hop is the median of its latest this many samples (one slow hop moves nothing)."""
_FIRST_SAMPLES = 3
"""Samples of each path before the choice follows the measurements."""
_LEARNING_PAGES = 16
"""Pages of a batch that alternate while either path lacks samples (after that: the result)."""
_EXPLORE_EVERY = 32
"""Once measured, one page in this many takes the path not chosen."""
_MAX_BATCHES = 1_000
_MAX_WAITING = 4_096


@dataclass
class _Hops:
    result: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    update: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    pages: int = 0

    def fold(self, by_result: bool, hop: float) -> None:
        (self.result if by_result else self.update).append(hop)

    @property
    def learning(self) -> bool:
        return len(self.result) < _FIRST_SAMPLES or len(self.update) < _FIRST_SAMPLES

    @property
    def update_is_faster(self) -> bool:
        if not self.result or not self.update:
            return False
        return median(self.update) * _UPDATE_WINS < median(self.result)


class PathChooser:
    """Per batch (workflow ID): the measured hop of each path, and which one a quick page takes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._hops: dict[str, _Hops] = {}
        self._waiting: dict[tuple[str, str], tuple[float, bool]] = {}

    def by_result(self, workflow_id: str) -> bool:
        """Whether this quick page of the batch should hold its successors for its result."""
        hops = self._hops.get(workflow_id)
        if hops is None:
            if len(self._hops) >= _MAX_BATCHES:
                del self._hops[next(iter(self._hops))]  # the batch seen first: likely over
            hops = self._hops[workflow_id] = _Hops()
        hops.pages += 1
        if hops.learning and hops.pages <= _LEARNING_PAGES:
            # Alternate until both are measured (a cap-bound batch pays a few updates for it).
            return len(hops.result) <= len(hops.update)
        chosen_result = not hops.update_is_faster
        if hops.pages % _EXPLORE_EVERY == 0:
            return not chosen_result
        return chosen_result

    def handed(self, workflow_id: str, first_cursor: str, by_result: bool) -> None:
        """A page of the batch handed its successors over now, by result or by update."""
        if len(self._waiting) >= _MAX_WAITING:
            del self._waiting[next(iter(self._waiting))]  # started by another worker, or never
        self._waiting[(workflow_id, first_cursor)] = (self.clock(), by_result)

    def started(self, workflow_id: str, cursor: str) -> None:
        """A page of the batch starts here: if a page here handed it over, time that hop."""
        found = self._waiting.pop((workflow_id, cursor), None)
        hops = self._hops.get(workflow_id)
        if found is None or hops is None:
            return
        at, by_result = found
        hops.fold(by_result, self.clock() - at)

    def learned(self, workflow_id: str) -> tuple[float | None, float | None, bool] | None:
        """(median result hop, median update hop, update chosen) for a batch; None if unseen."""
        hops = self._hops.get(workflow_id)
        if hops is None:
            return None
        result = median(hops.result) if hops.result else None
        update = median(hops.update) if hops.update else None
        return (result, update, hops.update_is_faster)
