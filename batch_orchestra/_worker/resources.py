"""Worker-wide resources: created when a worker starts, shared by its pages, closed at shutdown.

``BatchOrchestraPlugin(resources={"http": httpx.AsyncClient})`` creates an ``httpx.AsyncClient``
when the worker starts; every page reads it with ``context.resource("http")``; the worker closes
it when it shuts down. A factory is any callable without arguments (plain or ``async``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from .._exceptions import ProcessorUsageError

__all__ = ["ResourceFactory", "WorkerResources"]

ResourceFactory = Callable[[], Any]
"""Creates one resource: a callable without arguments, returning it (or an awaitable of it)."""

_logger = logging.getLogger("batch_orchestra")


class WorkerResources:
    """The resources of one worker: opened when it starts, closed (in reverse) when it stops.

    How a resource is opened and closed, by what its factory returns:

    - an async context manager (``httpx.AsyncClient``, ``aiohttp.ClientSession``) is entered,
      and exited at shutdown; so is a plain context manager;
    - else the first of ``aclose()``, ``close()``, ``dispose()`` it has is called at shutdown
      (awaited if it returns an awaitable: an SQLAlchemy ``AsyncEngine``'s ``dispose``);
    - anything else (a boto3 session, a dict) is just handed out.
    """

    def __init__(self, factories: Mapping[str, ResourceFactory] | None = None) -> None:
        """Declare the resources (nothing is created before the worker starts).

        Raises:
            ValueError: a name is not a non-empty string, or a factory is not callable
                (``resources`` names the field).
        """
        self._factories: dict[str, ResourceFactory] = {}
        for name, factory in (factories or {}).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"resources: names must be non-empty strings, got {name!r}")
            if not callable(factory):
                raise ValueError(
                    f"resources[{name!r}] must be a callable that creates the resource "
                    f"(e.g. httpx.AsyncClient, or lambda: create_engine(url)), got {factory!r}"
                )
            self._factories[name] = factory
        self._open: dict[str, Any] = {}
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def names(self) -> list[str]:
        """The declared names, sorted."""
        return sorted(self._factories)

    def get(self, name: str) -> Any:
        """The resource created under ``name`` (from any thread).

        Raises:
            ProcessorUsageError: no resource of that name is declared, or the worker has not
                started (or has shut down).
        """
        try:
            return self._open[name]
        except KeyError:
            pass
        if name not in self._factories:
            known = ", ".join(repr(n) for n in self.names) or "none"
            raise ProcessorUsageError(
                f"no worker resource named {name!r} (declared: {known}); declare it with "
                f"BatchOrchestraPlugin(resources={{{name!r}: factory}})"
            )
        raise ProcessorUsageError(
            f"worker resource {name!r} is not open: the worker has not started or has shut down"
        )

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        """Create every resource, in declaration order; close them in reverse on the way out.

        A factory that fails stops the worker from starting (after closing those created).
        """
        async with contextlib.AsyncExitStack() as stack:
            self._stack = stack
            stack.callback(self._open.clear)
            for name, factory in self._factories.items():
                created = factory()
                if inspect.isawaitable(created):
                    created = await created
                self._open[name] = await _enter(stack, name, created)
            yield
            self._stack = None


async def _enter(stack: contextlib.AsyncExitStack, name: str, created: Any) -> Any:
    """Register how ``created`` is closed; return what pages get."""
    if hasattr(created, "__aenter__") and hasattr(created, "__aexit__"):
        return await stack.enter_async_context(created)
    if hasattr(created, "__enter__") and hasattr(created, "__exit__"):
        return stack.enter_context(created)
    for method in ("aclose", "close", "dispose"):
        close = getattr(created, method, None)
        if callable(close):

            async def closing(close: Callable[[], Any] = close) -> None:
                try:
                    done = close()
                    if inspect.isawaitable(done):
                        await done
                except Exception:  # one resource failing to close must not keep the rest open
                    _logger.exception("closing worker resource %r failed", name)

            stack.push_async_callback(closing)
            break
    return created
