"""What the dashboard reads from Temporal: the connection, batch rows and their JSON form.

The lookups themselves are the command line's (``batch_orchestra.cli._lookup``); this module adds
what only a long-running server needs: a lazily opened client, a bounded cache of each run's
processor name, and the status filter of the batch list.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution as WorkflowExecutionProto
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecution, WorkflowUpdateFailedError

from .._client import BatchOrchestratorClient
from .._processor import registered_page_processors
from ..cli._lookup import CliError, Target, cause_text, load_view
from ..cli._render import (
    BatchView,
    hook_label,
    hook_text,
    progress_json,
    progress_line,
    status_label,
)

__all__ = ["STATUS_FILTERS", "UPDATE_TIMEOUT", "Backend", "BatchRow", "Bounded", "view_json"]

STATUS_FILTERS: dict[str, str | None] = {
    "all": None,
    "running": "Running",
    "paused": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}
"""The batch list's status filters and the visibility status each one queries. A paused batch is
a running workflow at parallelism 0, so ``paused`` queries running batches and keeps the paused
ones."""

UPDATE_TIMEOUT = 20.0
"""Seconds a worker gets to acknowledge a control action."""
_OPEN = ("RUNNING", "CONTINUED_AS_NEW")
_PROCESSOR_CACHE_SIZE = 4096
_CLOSED_CACHE_SIZE = 1024
T = TypeVar("T")


class Bounded(OrderedDict[str, T]):
    """A dict that forgets its oldest entries past ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: str, value: T) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class BatchRow:
    """One batch as the list shows it."""

    view: BatchView
    """Its status and progress."""
    processor: str | None
    """The page processor's registered name, when the batch's input could be read."""
    started: datetime | None
    """When it started."""


class Backend:
    """The dashboard's connection to Temporal and its small caches; one per app."""

    def __init__(self, target: Target, client: Client | None) -> None:
        self.target = target
        self._client = client
        self._connecting: asyncio.Lock | None = None
        self._processors: OrderedDict[str, str | None] = OrderedDict()
        self.closed_rows: Bounded[tuple[BatchView, datetime | None]] = Bounded(_CLOSED_CACHE_SIZE)
        """Rows of closed runs already read (a closed run never changes)."""

    async def client(self) -> Client:
        """The Temporal client, connected on first use; ``CliError`` when unreachable."""
        if self._client is None:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                if self._client is None:
                    self._client = await self.target.connect()
        return self._client

    async def processor(self, execution: WorkflowExecution) -> str | None:
        """The processor name from the first event of a run's history (cached per run)."""
        key = f"{execution.id}\x00{execution.run_id}"
        if key in self._processors:
            self._processors.move_to_end(key)
            return self._processors[key]
        client = await self.client()
        name: str | None = None
        try:
            resp = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecutionProto(
                        workflow_id=execution.id, run_id=execution.run_id
                    ),
                    maximum_page_size=1,
                )
            )
            payloads = resp.history.events[0].workflow_execution_started_event_attributes.input
            raw = (await client.data_converter.decode(payloads.payloads, [dict]))[0]
            if isinstance(raw, dict) and isinstance(raw.get("page_processor"), str):
                name = raw["page_processor"]
        except Exception:  # an unreadable input (another codec, a purged history): no name
            name = None
        self._processors[key] = name
        while len(self._processors) > _PROCESSOR_CACHE_SIZE:
            self._processors.popitem(last=False)
        return name

    async def steer(self, action: str, batch_id: str, n: int | None = None) -> str:
        """Pause, resume, set the parallelism of (to ``n``) or cancel a running batch.

        Returns the name of what was done. ``CliError`` when the batch is not running, no worker
        answers, or the batch refuses.
        """
        client = await self.client()
        view = await load_view(client, self.target, batch_id)
        if view.status != "RUNNING":
            raise CliError(
                f"batch {batch_id!r} is {view.status}; only a running batch can be steered"
            )
        handle = BatchOrchestratorClient(client).get_handle(batch_id)
        if action == "cancel":
            await handle.workflow_handle.cancel()
            return "canceled"
        if view.progress is None:  # no worker: an update would wait for one
            raise CliError(view.note or f"no worker answered for batch {batch_id!r}")
        calls: dict[str, tuple[str, Callable[[], Awaitable[object]]]] = {
            "pause": ("paused", handle.pause),
            "resume": ("resumed", handle.resume),
            "set-parallelism": ("parallelism", lambda: handle.set_max_parallelism(n or 0)),
        }
        done, call = calls[action]
        try:
            await asyncio.wait_for(call(), UPDATE_TIMEOUT)
        except asyncio.TimeoutError:
            raise CliError(
                f"no worker acknowledged {action} of batch {batch_id!r} within "
                f"{UPDATE_TIMEOUT:g}s; is a worker running on task queue {view.task_queue!r}? "
                "(the request may still apply when one picks it up)"
            ) from None
        except WorkflowUpdateFailedError as err:
            raise CliError(
                f"batch {batch_id!r} refused {action}: {cause_text(err.cause)}"
            ) from None
        return done

    def known_processors(self) -> list[str]:
        """Processor names this process registered or has seen in batches, for the start form.

        Workers register processors in their own processes, which Temporal does not list, so
        this is a suggestion, not a check.
        """
        seen = {name for name in self._processors.values() if name}
        return sorted(seen | set(registered_page_processors()))


def view_json(view: BatchView, processor: str | None) -> dict[str, Any]:
    """A batch's state as the batch page's JSON endpoint returns it."""
    p = view.progress
    return {
        "id": view.id,
        "status": view.status,
        "label": status_label(view.status, p),
        "is_open": view.status in _OPEN,
        "processor": processor,
        "task_queue": view.task_queue,
        "url": view.url,
        "failure": view.failure,
        "note": view.note,
        "close_time": view.close_time.isoformat() if view.close_time else None,
        "summary": progress_line(p) if p is not None else None,
        "progress": json.loads(progress_json(p)) if p is not None else None,
        "hooks": [f"{hook_label(h)}: {hook_text(h)}" for h in p.hook_errors] if p else [],
    }
