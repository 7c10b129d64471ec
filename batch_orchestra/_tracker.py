"""Batch trackers: user functions called with the batch's progress while it runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._exceptions import UnknownBatchTrackerError
from ._registry import CallContext, FunctionRegistry
from ._types import BatchOrchestratorProgress

__all__ = [
    "BatchTrackerContext",
    "batch_tracker",
    "get_batch_tracker",
    "registered_batch_trackers",
]


class BatchTrackerContext(CallContext):
    """What a tracker gets: the batch's progress, its id and the tracker's args."""

    _CONFIG = "BatchTrackerConfig"

    def __init__(
        self,
        *,
        progress: BatchOrchestratorProgress,
        batch_id: str,
        args: str | None,
        is_final: bool,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        super().__init__(progress=progress, batch_id=batch_id, args=args, logger=logger)
        self._is_final = is_final

    @property
    def is_final(self) -> bool:
        """True for the last call, made once the batch has finished."""
        return self._is_final


TrackerFn = Callable[[BatchTrackerContext], Awaitable[None]]
_F = TypeVar("_F", bound=TrackerFn)
_registry: FunctionRegistry[TrackerFn] = FunctionRegistry(
    "@batch_tracker", "batch tracker", UnknownBatchTrackerError
)


def batch_tracker(fn: _F) -> _F:
    """Decorator: register ``async def tracker(context: BatchTrackerContext)`` under its name.

    Raises:
        ProcessorDefinitionError: ``fn`` is not an ``async def`` function.
    """
    _registry.register(fn)
    return fn


def registered_batch_trackers() -> list[str]:
    """The names of every registered tracker, sorted."""
    return _registry.names()


def get_batch_tracker(name: str) -> TrackerFn:
    """The tracker registered under ``name``.

    Raises:
        UnknownBatchTrackerError: nothing is registered under that name.
    """
    return _registry.get(name)
