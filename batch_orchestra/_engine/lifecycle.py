"""Where one run of a batch is."""

from __future__ import annotations

import enum

__all__ = ["Lifecycle"]


class Lifecycle(enum.Enum):
    """Where one run of a batch is."""

    STARTING = "starting"
    """The processor's settings are being read; no page has started."""
    RUNNING = "running"
    """Pages start as slots free up."""
    HANDING_OVER = "handing_over"
    """No page starts; the run waits (briefly) for running pages, then continues as new."""
    FINISHED = "finished"
    """No page is left: the batch is over."""
    CANCELLED = "cancelled"
    """The batch was cancelled: no page starts any more."""
