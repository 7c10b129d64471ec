"""Registries of user functions by name (trackers, notifiers): one shape for both."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ._exceptions import BatchOrchestraError, ProcessorDefinitionError

__all__ = ["FunctionRegistry"]

F = TypeVar("F", bound=Callable[..., Any])


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
