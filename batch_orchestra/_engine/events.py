"""The engine's interface types: its log, its patches, a failure as read, what to start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .scheduler import Attempt

__all__ = ["AttemptFailure", "Log", "Patched", "Patches", "Starts"]


class Log(Protocol):
    """Where the engine's log lines go (the shell adds the batch's ID and the page number)."""

    def info(self, msg: str, *args: Any, page_num: int | None = None) -> None: ...

    def warning(self, msg: str, *args: Any, page_num: int | None = None) -> None: ...

    def error(self, msg: str, *args: Any, page_num: int | None = None) -> None: ...


Patched = Callable[[str], bool]
"""Whether a Temporal patch is on for this run (asked the first time a path is taken)."""


@dataclass(kw_only=True)
class Patches:
    """The patches the shell decided when the run began (see ``_workflow``)."""

    budgets: bool = True
    """The failure ledger and the payload budgets."""
    no_progress: bool = True
    """The no-progress pause and "stalled" notices."""
    exact: bool = True
    """The pure core's fixes (``Scheduler.exact``, ``FlowControl.exact``)."""


@dataclass(kw_only=True)
class AttemptFailure:
    """How an attempt (or a discovery) failed, as ``classify`` in the shell read it."""

    kind: str
    message: str
    non_retryable: bool = False
    timeout: str | None = None
    """The timeout's kind ("start_to_close", "heartbeat", "schedule_to_start"), if it timed out."""
    checkpoint: str | None = None
    """The checkpoint the attempt left (in its error's details or its last heartbeat)."""
    text: str = ""
    """"Type: message" as hooks' failures show it."""
    detail: str = ""
    """The error's message alone."""
    cancelled: bool = False
    """The activity was cancelled (a hand-over, or the batch was)."""


@dataclass(kw_only=True)
class Starts:
    """What to start in this workflow task."""

    attempts: list[Attempt]
    discoveries: list[Any]
    more: bool
    """More would have started past this task's budget: start them in the next task."""
