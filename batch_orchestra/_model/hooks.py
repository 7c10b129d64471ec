"""The settings that name a batch's hooks: its tracker, notifier and health check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = [
    "BatchNotifierConfig",
    "BatchTrackerConfig",
    "HealthCheckConfig",
]


@dataclass(kw_only=True)
class BatchTrackerConfig:
    """Which registered ``@batch_tracker`` to call during a batch, and how often."""

    name: str
    """The tracker's registered name (its function name)."""
    args: str | None = None
    """An opaque string handed to the tracker as ``context.args_str``."""
    interval: timedelta = timedelta(minutes=1)
    """How often the tracker is called while the batch runs (once more at the end)."""


@dataclass(kw_only=True)
class HealthCheckConfig:
    """Which registered ``@health_check`` the batch calls, how often, and how it reacts."""

    name: str
    """The health check's registered name (its function name)."""
    args: str | None = None
    """An opaque string handed to the check as ``context.args_str``."""
    interval: timedelta = timedelta(seconds=30)
    """How often the check is called while the batch runs."""
    timeout: timedelta = timedelta(seconds=10)
    """How long one call may take before it counts as a failed check."""
    failures_before_unhealthy: int = 3
    """A check that itself fails (raises or times out) this many times in a row holds the batch
    as if it had said stop, until a call succeeds again; it never fails the batch."""


@dataclass(kw_only=True)
class BatchNotifierConfig:
    """Which registered ``@batch_notifier`` to call about a batch's events."""

    name: str
    """The notifier's registered name (its function name)."""
    args: str | None = None
    """An opaque string handed to the notifier as ``context.args_str``."""
