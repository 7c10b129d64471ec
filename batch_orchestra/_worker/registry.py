"""One registry type for what a worker runs by name: processors, trackers, notifiers, checks.

Each kind has one process-wide registry, filled at import time by its decorator
(``@page_processor``, ``@batch_tracker``, ...). A worker reads a registry of its own that adds
what its plugin was given (``BatchOrchestraPlugin(processors=[...])``) in front of the
process-wide one (``Registry.extended``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from .._exceptions import BatchOrchestraError, ProcessorDefinitionError

__all__ = ["Registry", "check_async_function"]

T = TypeVar("T")
_logger = logging.getLogger("batch_orchestra")

Check = Callable[[Any, str], T]
"""Validates an item about to be registered: ``check(item, how)`` returns it typed or raises
``ProcessorDefinitionError``; ``how`` names what takes it ("@batch_tracker decorates")."""


class Registry(Generic[T]):
    """Named items of one kind (classes or functions), registered under their ``__name__``."""

    def __init__(
        self,
        *,
        kind: str,
        decorator: str,
        what: str,
        missing: type[BatchOrchestraError],
        error_type: str,
        check: Check[T],
        parent: Registry[T] | None = None,
    ) -> None:
        """Create an empty registry.

        Args:
            kind: what an item is, in messages ("page processor").
            decorator: the decorator that registers items ("@page_processor").
            what: what the decorator decorates, in messages ("class", "function").
            missing: the error a look-up of an unknown name raises.
            error_type: the ``ApplicationError.type`` an activity reports it as.
            check: validates an item before it is registered.
            parent: a registry whose items this one also holds (behind its own).
        """
        self.kind, self.decorator, self.what = kind, decorator, what
        self.missing, self.error_type = missing, error_type
        self._check, self._parent = check, parent
        self._items: dict[str, T] = {}

    def register(self, item: Any, how: str | None = None) -> T:
        """Check ``item`` and register it under its ``__name__`` (a later one replaces it).

        Args:
            item: the class or function.
            how: what takes it, for the error message; default "<decorator> decorates".

        Raises:
            ProcessorDefinitionError: ``item`` is not of this registry's kind.
        """
        checked = self._check(item, how or f"{self.decorator} decorates")
        name = item.__name__
        if self._items.get(name, checked) is not checked:
            _logger.debug("%s %s re-registered", self.kind, name)
        self._items[name] = checked
        return checked

    def unregister(self, name: str) -> T:
        """Remove and return the item registered here under ``name``.

        Raises:
            KeyError: nothing is registered here under that name.
        """
        return self._items.pop(name)

    def find(self, name: str) -> T | None:
        """The item registered under ``name``, or None."""
        if name in self._items:
            return self._items[name]
        return None if self._parent is None else self._parent.find(name)

    def get(self, name: str) -> T:
        """The item registered under ``name``.

        Raises:
            BatchOrchestraError: (this registry's ``missing`` class) nothing is registered
                under that name; the message lists what is.
        """
        found = self.find(name)
        if found is None:
            known = ", ".join(self.names()) or "none"
            raise self.missing(
                f"no {self.kind} named {name!r} is registered on this worker (registered: "
                f"{known}); import the module that defines it in the worker and decorate the "
                f"{self.what} with {self.decorator}"
            )
        return found

    def holds(self, item: Any) -> bool:
        """Whether ``item`` itself is what its name finds here."""
        return self.find(getattr(item, "__name__", "")) is item

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        names = set(self._items)
        if self._parent is not None:
            names.update(self._parent.names())
        return sorted(names)

    def extended(self, items: Iterable[Any], how: str) -> Registry[T]:
        """A registry with ``items`` in front of this one's (which it goes on reading).

        Args:
            items: the classes or functions to add, each checked as ``register`` does.
            how: what takes them, for error messages ("BatchOrchestraPlugin(processors=...)").

        Raises:
            ProcessorDefinitionError: an item is not of this registry's kind.
            ValueError: two different items share a name.
        """
        child = Registry(
            kind=self.kind,
            decorator=self.decorator,
            what=self.what,
            missing=self.missing,
            error_type=self.error_type,
            check=self._check,
            parent=self,
        )
        for item in items:
            checked = child._check(item, f"{how} takes")
            name = item.__name__
            if child._items.get(name, checked) is not checked:
                raise ValueError(
                    f"{how} lists two different {self.kind}s named {name!r}; give each a "
                    "name of its own"
                )
            child._items[name] = checked
        return child


def check_async_function(kind: str) -> Check[Any]:
    """The check of a registry of ``async def <kind>(context)`` functions."""

    def check(fn: Any, how: str) -> Any:
        if not inspect.iscoroutinefunction(fn):
            raise ProcessorDefinitionError(
                f"{how} `async def {kind}(context)` functions, got {fn!r}"
            )
        return fn

    return check
