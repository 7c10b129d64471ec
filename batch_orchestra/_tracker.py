"""Batch trackers: user functions called with the batch's progress while it runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._exceptions import ProcessorUsageError, UnknownBatchTrackerError
from ._registry import FunctionRegistry
from ._types import BatchOrchestratorProgress

__all__ = [
    "BatchTrackerContext",
    "batch_tracker",
    "get_batch_tracker",
    "registered_batch_trackers",
]


class BatchTrackerContext:
    """What a tracker gets: the batch's progress, its id and the tracker's args."""

    def __init__(
        self,
        *,
        progress: BatchOrchestratorProgress,
        batch_id: str,
        args: str | None,
        is_final: bool,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._progress = progress
        self._batch_id = batch_id
        self._args = args
        self._is_final = is_final
        self._logger = logger

    @property
    def progress(self) -> BatchOrchestratorProgress:
        """The batch's progress when the tracker was called."""
        return self._progress

    @property
    def batch_id(self) -> str:
        """The batch's ``batch_id`` ("" when none was given)."""
        return self._batch_id

    @property
    def args_str(self) -> str:
        """The ``BatchTrackerConfig.args`` string.

        Raises:
            ProcessorUsageError: the tracker was configured without args.
        """
        if self._args is None:
            raise ProcessorUsageError(
                "context.args_str was read but BatchTrackerConfig.args is None; "
                "pass args=... in BatchTrackerConfig"
            )
        return self._args

    @property
    def is_final(self) -> bool:
        """True for the last call, made once the batch has finished."""
        return self._is_final

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``batch_id``."""
        return self._logger


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
