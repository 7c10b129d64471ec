"""What one worker runs by name: its processors, trackers, notifiers and health checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .health import HEALTH_CHECKS, HealthCheckFn
from .notifier import NOTIFIERS, NotifierFn
from .processor import PROCESSORS, PageProcessor
from .registry import Registry
from .tracker import TRACKERS, TrackerFn

__all__ = ["WorkerCatalog"]


@dataclass(frozen=True, kw_only=True)
class WorkerCatalog:
    """The registries one worker's activities look names up in.

    By default the process-wide ones (filled by the decorators at import time); a plugin given
    ``processors=[...]`` and the like reads those in front of them.
    """

    processors: Registry[type[PageProcessor]] = PROCESSORS
    """The page processors, by class name."""
    trackers: Registry[TrackerFn] = TRACKERS
    """The batch trackers, by function name."""
    notifiers: Registry[NotifierFn] = NOTIFIERS
    """The batch notifiers, by function name."""
    health_checks: Registry[HealthCheckFn] = HEALTH_CHECKS
    """The health checks, by function name."""

    @classmethod
    def with_own(
        cls,
        *,
        processors: Iterable[Any] = (),
        trackers: Iterable[Any] = (),
        notifiers: Iterable[Any] = (),
        health_checks: Iterable[Any] = (),
    ) -> WorkerCatalog:
        """The process-wide registries, with these in front (for this worker only).

        Raises:
            ProcessorDefinitionError: an item is not of its kind (a processor that is not a
                ``PageProcessor`` subclass or whose settings contradict each other, a tracker
                that is not an ``async def`` function, ...).
            ValueError: two different items of one kind share a name, or a string was given
                instead of a list.
        """

        def own(registry: Registry[Any], items: Iterable[Any], field: str) -> Registry[Any]:
            if isinstance(items, str):
                raise ValueError(f"BatchOrchestraPlugin({field}=...) takes a list, got {items!r}")
            items = list(items)
            if not items:
                return registry
            return registry.extended(items, f"BatchOrchestraPlugin({field}=...)")

        return cls(
            processors=own(PROCESSORS, processors, "processors"),
            trackers=own(TRACKERS, trackers, "trackers"),
            notifiers=own(NOTIFIERS, notifiers, "notifiers"),
            health_checks=own(HEALTH_CHECKS, health_checks, "health_checks"),
        )
