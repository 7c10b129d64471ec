"""Calling the user's code from an activity: plain or ``async def``, with a batch's logger."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = [
    "ContextLogger",
    "call_user",
    "json_size",
    "over_budget",
    "page_logger",
    "short",
    "tracker_logger",
]

page_logger = logging.getLogger("batch_orchestra.page")
"""The logger behind ``context.logger`` of page processors."""
tracker_logger = logging.getLogger("batch_orchestra.tracker")
"""The logger behind ``context.logger`` of trackers, notifiers and health checks."""


class ContextLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the batch's fields to every record, as ``extra`` and as a readable suffix."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        fields = ", ".join(f"{k}={v!r}" for k, v in (self.extra or {}).items())
        return f"{msg} ({fields})", kwargs


async def call_user(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``: awaited if ``async def``, else in a worker thread (for blocking drivers).

    A plain function that returns an awaitable after all has it awaited too.
    """
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    returned = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(returned):
        returned = await returned
    return returned


def json_size(value: Any) -> int | None:
    """How many characters ``value`` takes as compact JSON (None: it is not JSON-friendly)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), default=_no_default))
    except (TypeError, ValueError):
        return None


def over_budget(value: Any, limit: int) -> str | None:
    """Why ``value`` cannot travel as a JSON payload of at most ``limit`` bytes (None: it can).

    For an error message: "is not JSON-friendly" or "is N bytes as JSON".
    """
    size = json_size(value)
    if size is None:
        return "is not JSON-friendly"
    return f"is {size:,} bytes as JSON" if size > limit else None


def _no_default(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def short(value: Any) -> str:
    """``repr(value)``, cut to 80 characters for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
