"""Batch trackers: user functions called with the batch's progress while it runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._exceptions import UNKNOWN_TRACKER_ERROR_TYPE, UnknownBatchTrackerError
from .._model import BatchOrchestratorProgress
from .call_context import CallContext
from .registry import Registry, check_async_function

__all__ = [
    "TRACKERS",
    "BatchTrackerContext",
    "batch_tracker",
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
TRACKERS: Registry[TrackerFn] = Registry(
    kind="batch tracker",
    decorator="@batch_tracker",
    what="function",
    missing=UnknownBatchTrackerError,
    error_type=UNKNOWN_TRACKER_ERROR_TYPE,
    check=check_async_function("batch tracker"),
)
"""Every batch tracker registered in this process (by ``@batch_tracker``)."""


def batch_tracker(fn: _F) -> _F:
    """Decorator: register ``async def tracker(context: BatchTrackerContext)`` under its name.

    Raises:
        ProcessorDefinitionError: ``fn`` is not an ``async def`` function.
    """
    TRACKERS.register(fn)
    return fn


def registered_batch_trackers() -> list[str]:
    """The names of every registered tracker, sorted."""
    return TRACKERS.names()
