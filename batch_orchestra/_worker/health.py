"""Health checks: user functions that tell a batch to go on, slow down, or stop for a while."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .._exceptions import UNKNOWN_HEALTH_CHECK_ERROR_TYPE, UnknownHealthCheckError
from .call_context import CallContext
from .registry import Registry, check_async_function

__all__ = [
    "HEALTH_CHECKS",
    "Health",
    "HealthCheckContext",
    "health_check",
    "registered_health_checks",
]


@dataclass(frozen=True)
class Health:
    """A health check's verdict.

    Build it with ``Health.healthy()``, ``Health.slow_down(why)`` or ``Health.stop(why)``.
    """

    state: str
    """"healthy", "slow_down" or "stop"."""
    reason: str | None = None
    """Why, shown in the batch's progress and status (e.g. "replica lag 12 s")."""

    @classmethod
    def healthy(cls, reason: str | None = None) -> Health:
        """All is well: parallelism grows back step by step if it was lowered."""
        return cls("healthy", reason)

    @classmethod
    def slow_down(cls, reason: str) -> Health:
        """The downstream struggles: halve the batch's parallelism (again at every call)."""
        return cls("slow_down", reason)

    @classmethod
    def stop(cls, reason: str) -> Health:
        """The downstream must rest: no page starts until a call says healthy again."""
        return cls("stop", reason)


class HealthCheckContext(CallContext):
    """What a health check gets: the batch's progress, its id and the check's args."""

    _CONFIG = "HealthCheckConfig"


HealthCheckFn = Callable[[HealthCheckContext], Awaitable[Health]]
_F = TypeVar("_F", bound=HealthCheckFn)
HEALTH_CHECKS: Registry[HealthCheckFn] = Registry(
    kind="health check",
    decorator="@health_check",
    what="function",
    missing=UnknownHealthCheckError,
    error_type=UNKNOWN_HEALTH_CHECK_ERROR_TYPE,
    check=check_async_function("health check"),
)
"""Every health check registered in this process (by ``@health_check``)."""


def health_check(fn: _F) -> _F:
    """Decorator: register a health check under its name, for ``HealthCheckConfig(name=...)``.

    The check is ``async def check(context: HealthCheckContext) -> Health``.

    Raises:
        ProcessorDefinitionError: ``fn`` is not an ``async def`` function.
    """
    HEALTH_CHECKS.register(fn)
    return fn


def registered_health_checks() -> list[str]:
    """The names of every registered health check, sorted."""
    return HEALTH_CHECKS.names()
