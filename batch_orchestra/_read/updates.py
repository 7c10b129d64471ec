"""Waiting for a worker to apply a control update (pause, resume, ...), for CLI and dashboard."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from temporalio.client import WorkflowUpdateFailedError

from .._model import BatchOrchestratorProgress
from .lookup import cause_text
from .target import CliError
from .view import BatchView

__all__ = ["UPDATE_TIMEOUT", "acknowledged"]

UPDATE_TIMEOUT = 20.0
"""Seconds a worker gets to acknowledge a control update (pause, resume, set-parallelism, ...)."""


async def acknowledged(
    view: BatchView, what: str, update: Awaitable[BatchOrchestratorProgress]
) -> BatchOrchestratorProgress:
    """Wait for a worker to apply an update; ``CliError`` if none does or the batch refuses."""
    try:
        return await asyncio.wait_for(update, UPDATE_TIMEOUT)
    except asyncio.TimeoutError:
        raise CliError(
            f"no worker acknowledged {what} of batch {view.id!r} within {UPDATE_TIMEOUT:g}s; "
            f"is a worker running on task queue {view.task_queue!r}? (the request may still "
            "apply when one picks it up)"
        ) from None
    except WorkflowUpdateFailedError as err:
        raise CliError(f"batch {view.id!r} refused {what}: {cause_text(err.cause)}") from None
