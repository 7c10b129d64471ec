"""Registries of user functions by name (trackers, notifiers): one shape for both."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ._exceptions import BatchOrchestraError, ProcessorDefinitionError, ProcessorUsageError
from ._types import BatchOrchestratorProgress

__all__ = ["CallContext", "FunctionRegistry"]

F = TypeVar("F", bound=Callable[..., Any])


class CallContext:
    """What every registered function gets: the batch's progress and id, its args, a logger."""

    _CONFIG = "its config"
    """The config class whose ``args`` ``args_str`` returns (named in its error)."""

    def __init__(
        self,
        *,
        progress: BatchOrchestratorProgress,
        batch_id: str,
        args: str | None,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._progress, self._batch_id, self._args, self._logger = progress, batch_id, args, logger

    @property
    def progress(self) -> BatchOrchestratorProgress:
        """The batch's progress when the function was called."""
        return self._progress

    @property
    def batch_id(self) -> str:
        """The batch's ``batch_id`` ("" when none was given)."""
        return self._batch_id

    @property
    def args_str(self) -> str:
        """The ``args`` string of the function's config.

        Raises:
            ProcessorUsageError: the function was configured without args.
        """
        if self._args is None:
            raise ProcessorUsageError(
                f"context.args_str was read but {self._CONFIG}.args is None; "
                f"pass args=... in {self._CONFIG}"
            )
        return self._args

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``batch_id``."""
        return self._logger


class FunctionRegistry(Generic[F]):
    """``async def`` functions registered by a decorator under their names.

    Like ``@page_processor``'s registry, this is filled at import time by decorators: the
    worker runs what its process imported.
    """

    def __init__(self, decorator: str, kind: str, missing: type[BatchOrchestraError]) -> None:
        self._decorator, self._kind, self._missing = decorator, kind, missing
        self._fns: dict[str, F] = {}

    def register(self, fn: F) -> F:
        """Register ``fn`` under its ``__name__``.

        Raises:
            ProcessorDefinitionError: ``fn`` is not an ``async def`` function.
        """
        candidate: Any = fn  # keep mypy from narrowing fn through iscoroutinefunction
        if not inspect.iscoroutinefunction(candidate):
            raise ProcessorDefinitionError(
                f"{self._decorator} decorates `async def {self._kind}(context)` functions, "
                f"got {fn!r}"
            )
        self._fns[fn.__name__] = fn
        return fn

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._fns)

    def get(self, name: str) -> F:
        """The function registered under ``name``; raises the registry's lookup error."""
        try:
            return self._fns[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise self._missing(
                f"no {self._kind} named {name!r} is registered on this worker (registered: "
                f"{known}); import the module that defines it in the worker and decorate the "
                f"function with {self._decorator}"
            ) from None
