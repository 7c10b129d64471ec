"""What the dashboard reads from Temporal: the connection, batch rows and their JSON form.

The lookups themselves are the read model the CLI shares (``batch_orchestra._read``); this module
adds what only a long-running server needs: a lazily opened client, a bounded cache of each run's
processor name, and the status filter of the batch list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution as WorkflowExecutionProto
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecution
from temporalio.service import ServiceClient

from .._model import BatchOrchestratorProgress
from .._read import (
    OPEN_STATUSES,
    BatchView,
    CliError,
    Target,
    hook_label,
    hook_text,
    progress_json,
    progress_line,
    shown_progress,
    status_label,
)
from .._worker.processor import registered_page_processors

__all__ = [
    "STATUS_FILTERS",
    "Backend",
    "BatchRow",
    "Bounded",
    "InputSummary",
    "average_rate",
    "dashboard_identity",
    "view_json",
]

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
    stale_at: datetime | None = None
    """When its progress was last read, if no worker answered now (None: it is current)."""


@dataclass(frozen=True)
class InputSummary:
    """What the dashboard reads from a batch's input (the first event of its latest run)."""

    processor: str | None = None
    """The page processor's registered name."""
    total_items: int | None = None
    """The estimate of its items, for percent and ETA."""


def dashboard_identity(user: str | None = None) -> str:
    """Who the dashboard acts as in a batch's change log: ``dashboard@host``, or the user."""
    where = f"dashboard@{socket.gethostname()}"
    return f"{user} ({where})" if user else where


_LAST_KNOWN_SIZE = 1024
_IDENTITY_CLIENTS = 64


class Backend:
    """The dashboard's connection to Temporal and its small caches; one per app."""

    def __init__(self, target: Target, client: Client | None) -> None:
        self.target = target
        self._client = client
        self._connecting: asyncio.Lock | None = None
        self._summaries: Bounded[InputSummary] = Bounded(_PROCESSOR_CACHE_SIZE)
        self._as: dict[str, Client] = {}
        self.closed_rows: Bounded[tuple[BatchView, datetime | None]] = Bounded(_CLOSED_CACHE_SIZE)
        """Rows of closed runs already read (a closed run never changes)."""
        self.last_known: Bounded[tuple[BatchOrchestratorProgress, datetime]] = Bounded(
            _LAST_KNOWN_SIZE
        )
        """The last progress read of each batch and when, shown when no worker answers."""

    async def client(self) -> Client:
        """The Temporal client, connected on first use; ``CliError`` when unreachable."""
        if self._client is None:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                if self._client is None:
                    self._client = await self.target.connect()
        return self._client

    async def client_as(self, identity: str) -> Client:
        """A client that acts as ``identity``, which the batch records in its change log.

        The batch's control updates carry the caller's client identity (``handle._by``), so each
        identity gets its own connection, made from the dashboard's (same server, TLS and key).
        """
        base = await self.client()
        if base.identity == identity:
            return base
        if identity not in self._as:
            if len(self._as) >= _IDENTITY_CLIENTS:
                self._as.pop(next(iter(self._as)))
            connect = dataclasses.replace(base.service_client.config, identity=identity)
            try:
                service = await ServiceClient.connect(connect)
            except (RuntimeError, OSError) as err:
                raise CliError(f"cannot connect as {identity!r}: {err}") from None
            config_as = base.config()
            config_as["service_client"] = service
            self._as[identity] = Client(**config_as)
        return self._as[identity]

    async def processor(self, execution: WorkflowExecution) -> str | None:
        """The processor name from the first event of a run's history (cached per run)."""
        return (await self.summary(execution)).processor

    async def summary(self, execution: WorkflowExecution) -> InputSummary:
        """The processor and total items from the first event of a run's history (cached)."""
        key = f"{execution.id}\x00{execution.run_id}"
        if key in self._summaries:
            self._summaries.move_to_end(key)
            return self._summaries[key]
        client = await self.client()
        found = InputSummary()
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
            if isinstance(raw, dict):
                name, total = raw.get("page_processor"), raw.get("total_items")
                found = InputSummary(
                    processor=name if isinstance(name, str) else None,
                    total_items=total if isinstance(total, int) else None,
                )
        except Exception:  # an unreadable input (another codec, a purged history): no name
            found = InputSummary()
        self._summaries[key] = found
        return found

    def remember(self, view: BatchView) -> datetime | None:
        """Keep a batch's progress for when no worker answers; fill it in when none did.

        Returns when the progress shown was read, if it is the last known one (None: current).
        """
        if view.progress is not None:
            self.last_known[view.id] = (view.progress, datetime.now(timezone.utc))
            return None
        known = self.last_known.get(view.id)
        if known is None:
            return None
        view.progress, at = known
        return at

    def known_processors(self) -> list[str]:
        """Processor names this process registered or has seen in batches, for the start form.

        Workers register processors in their own processes, which Temporal does not list, so
        this is a suggestion, not a check.
        """
        seen = {s.processor for s in self._summaries.values() if s.processor}
        return sorted(seen | set(registered_page_processors()))


def average_rate(view: BatchView, *, pages: bool = False) -> float | None:
    """Items (or pages) per second over a finished batch's whole life (None while it runs)."""
    p = view.progress
    if p is None or p.start_time is None or view.close_time is None:
        return None
    seconds = (view.close_time - p.start_time).total_seconds()
    done = p.num_completed_pages if pages else p.num_completed_items
    return done / seconds if seconds > 0 else None


def view_json(
    view: BatchView,
    processor: str | None,
    *,
    started: datetime | None = None,
    stale_at: datetime | None = None,
    total_items: int | None = None,
) -> dict[str, Any]:
    """A batch's state as the batch page's JSON endpoint returns it.

    ``progress`` is None when it is unknown (no worker answered and none was read before);
    ``stale_at`` says when the progress shown was read when it is the last known one. An
    ended batch's progress says it is not paused (``shown_progress``), as the page shows it.
    """
    p = shown_progress(view)
    return {
        "id": view.id,
        "status": view.status,
        "label": status_label(view.status, p),
        "is_open": view.status in OPEN_STATUSES,
        "processor": processor,
        "task_queue": view.task_queue,
        "url": view.url,
        "failure": view.failure,
        "note": view.note,
        "close_time": view.close_time.isoformat() if view.close_time else None,
        "started": started.isoformat() if started else None,
        "stale_at": stale_at.isoformat() if stale_at else None,
        "total_items": p.total_items if p is not None else total_items,
        "average_items_per_second": average_rate(view),
        "average_pages_per_second": average_rate(view, pages=True),
        "summary": progress_line(p) if p is not None else None,
        "progress": json.loads(progress_json(p)) if p is not None else None,
        "hooks": [f"{hook_label(h)}: {hook_text(h)}" for h in p.hook_errors] if p else [],
    }
