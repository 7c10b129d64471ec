"""Completed pages and items, and the samples progress measures rates from. Pure."""

from __future__ import annotations

from collections import deque

__all__ = ["RATE_WINDOW_SECONDS", "Throughput"]

RATE_WINDOW_SECONDS = 60.0
"""Rates in progress are measured over about this much running (not paused) time."""


class Throughput:
    """Counts of completed pages and items, and rate samples (at most one a second)."""

    def __init__(self) -> None:
        self.num_completed = 0
        self.num_completed_items = 0
        # (running time, completed pages, completed items), oldest first
        self.samples: deque[tuple[float, int, int]] = deque([(0.0, 0, 0)])

    def completed(self, items: int, clock: float) -> None:
        """A page with ``items`` items completed at ``clock`` seconds of running time."""
        self.num_completed += 1
        self.num_completed_items += max(0, items)
        if clock - self.samples[-1][0] >= 1.0:
            self.samples.append((clock, self.num_completed, self.num_completed_items))
            while clock - self.samples[0][0] > RATE_WINDOW_SECONDS:
                self.samples.popleft()

    def state(self) -> list[list[float]]:
        """The oldest and newest samples: they keep rates going, at a constant size."""
        samples = list(self.samples)
        return [list(x) for x in samples[:1] + samples[1:][-1:]]

    def restore(
        self, num_completed: int, num_completed_items: int, samples: list[list[float]]
    ) -> None:
        """What a hand-over carried."""
        self.num_completed, self.num_completed_items = num_completed, num_completed_items
        self.samples = deque((float(t), int(p), int(i)) for t, p, i in (samples or [[0.0, 0, 0]]))
