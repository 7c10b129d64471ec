"""The dashboard's controls: every operator action the command line has, as one table.

Each action reads its fields from the posted form (``ActionInputError`` for a bad one, naming
it), acts through the public API with a client whose identity is the dashboard's (or the signed-in
user's), so the batch's change log says who did it, and answers with a message and, when the
action started a new batch (a redrive of a finished one), where to find it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from .._client import BatchOrchestratorClient, BatchOrchestratorHandle
from .._exceptions import BatchOrchestraError
from .._read import (
    OPEN_STATUSES,
    BatchView,
    CliError,
    acknowledged,
    load_view,
    rate_text,
)
from ._data import Backend

__all__ = ["ACTIONS", "ActionInputError", "ActionResult", "perform"]


class ActionInputError(ValueError):
    """A form field of an action is missing or out of range; the message names it."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


@dataclass(frozen=True)
class ActionResult:
    """What an action did."""

    done: str
    """A short key, for the page the browser is sent back to without script (``?done=``)."""
    message: str
    """What happened, in a sentence."""
    batch_id: str
    """The batch to show next: the one acted on, or the new batch a redrive started."""


@dataclass
class _Call:
    """An action at the moment it runs: the batch, its handle, the form."""

    client: Client
    view: BatchView
    handle: BatchOrchestratorHandle
    form: dict[str, str]


_Run = Callable[[_Call], Awaitable[ActionResult]]


def _int_field(form: dict[str, str], name: str, label: str) -> int:
    raw = form.get(name, "").strip()
    try:
        value = int(raw)
        if value < 0:
            raise ValueError
    except ValueError:
        raise ActionInputError(
            f"Bad {label}", f"{label} must be a whole number >= 0, got {raw!r}"
        ) from None
    return value


def _rate_field(form: dict[str, str], name: str, label: str) -> float | None | bool:
    """A rate limit: a positive number, "none" to lift it, or False (empty) to leave it."""
    raw = form.get(name, "").strip()
    if not raw:
        return False
    if raw.lower() == "none":
        return None
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not rate > 0 or rate == float("inf"):
        raise ActionInputError(
            "Bad rate limit", f"{label} must be a positive number or none, got {raw!r}"
        )
    return rate


async def _pause(call: _Call) -> ActionResult:
    p = await acknowledged(call.view, "pause", call.handle.pause())
    running = f"; {p.num_processing_pages} running page(s) finish" if p.num_processing_pages else ""
    return ActionResult("paused", f"Paused: no new page starts{running}.", call.view.id)


async def _resume(call: _Call) -> ActionResult:
    p = await acknowledged(call.view, "resume", call.handle.resume())
    return ActionResult("resumed", f"Resumed at parallelism {p.max_parallelism}.", call.view.id)


async def _set_parallelism(call: _Call) -> ActionResult:
    n = _int_field(call.form, "n", "parallelism")
    p = await acknowledged(call.view, "set-parallelism", call.handle.set_max_parallelism(n))
    stays = "; it stays paused until resume" if p.is_paused and n > 0 else ""
    return ActionResult(
        "parallelism", f"Parallelism set to {p.max_parallelism}{stays}.", call.view.id
    )


async def _set_rate(call: _Call) -> ActionResult:
    limits: dict[str, Any] = {}
    for field, key, label in (
        ("pages_per_second", "max_pages_per_second", "pages per second"),
        ("items_per_second", "max_items_per_second", "items per second"),
    ):
        value = _rate_field(call.form, field, label)
        if value is not False:
            limits[key] = value
    if not limits:
        raise ActionInputError(
            "No rate limit given",
            "give pages per second and/or items per second (a number, or none to lift it)",
        )
    p = await acknowledged(call.view, "set-rate", call.handle.set_rate_limit(**limits))
    return ActionResult("rate", f"Rate limit now {rate_text(p)}.", call.view.id)


async def _retry_page(call: _Call) -> ActionResult:
    n = _int_field(call.form, "page_num", "page number")
    reason = call.form.get("reason", "").strip() or None
    p = await acknowledged(call.view, f"retry-page {n}", call.handle.retry_page(n, reason=reason))
    if p.is_paused:
        text = f"Page {n} is first in line; it starts when the batch is resumed (it is paused)."
    else:
        text = f"Page {n} starts now, first in line."
    return ActionResult("retried", text, call.view.id)


async def _skip_page(call: _Call) -> ActionResult:
    n = _int_field(call.form, "page_num", "page number")
    reason = call.form.get("reason", "").strip()
    if not reason:
        raise ActionInputError("Reason needed", "skipping a page needs a reason (it is logged)")
    p = await acknowledged(call.view, f"skip-page {n}", call.handle.skip_page(n, reason))
    return ActionResult(
        "skipped",
        f"Page {n} skipped ({reason}); {p.num_skipped_pages} page(s) skipped so far.",
        call.view.id,
    )


async def _redrive(call: _Call) -> ActionResult:
    if call.view.status in OPEN_STATUSES:
        before = call.view.progress.num_failed_pages if call.view.progress else 0
        p = await acknowledged(call.view, "redrive", call.handle.redrive())
        paused = "; the batch is paused: resume it to run them" if p.is_paused else ""
        queued = before - p.num_failed_pages
        return ActionResult(
            "redriven", f"{queued} failed page(s) queued again{paused}.", call.view.id
        )
    if call.view.status != "COMPLETED":
        raise CliError(
            f"batch {call.view.id!r} is {call.view.status}, without a result to read its "
            "failed pages from; only a running or completed batch can be redriven"
        )
    new = await _new_batch(BatchOrchestratorClient(call.client).redrive(call.view.id))
    n = len(call.view.progress.failed_pages) if call.view.progress else 0
    return ActionResult(
        "redrive-started",
        f"Started batch {new.id!r} to run {n} failed page(s) of {call.view.id!r} again.",
        new.id,
    )


async def _redrive_items(call: _Call) -> ActionResult:
    new = await _new_batch(BatchOrchestratorClient(call.client).redrive_items(call.view.id))
    return ActionResult(
        "redrive-started",
        f"Started batch {new.id!r} to run the failed items of {call.view.id!r} again.",
        new.id,
    )


async def _new_batch(start: Awaitable[BatchOrchestratorHandle]) -> BatchOrchestratorHandle:
    try:
        return await start
    except BatchOrchestraError as err:
        raise CliError(str(err)) from None
    except WorkflowAlreadyStartedError:
        raise CliError("a batch with the redrive's ID already exists") from None


async def _cancel(call: _Call) -> ActionResult:
    await call.handle.workflow_handle.cancel()
    return ActionResult("canceled", "Cancellation requested: no new page starts.", call.view.id)


@dataclass(frozen=True)
class _Action:
    run: _Run
    needs_worker: bool = True
    """An update waits for a worker: without one answering, refuse at once."""
    running_only: bool = True
    """Only a running batch takes it (a redrive of a finished batch starts a new one)."""


ACTIONS: dict[str, _Action] = {
    "pause": _Action(_pause),
    "resume": _Action(_resume),
    "set-parallelism": _Action(_set_parallelism),
    "set-rate": _Action(_set_rate),
    "retry-page": _Action(_retry_page),
    "skip-page": _Action(_skip_page),
    "redrive": _Action(_redrive, running_only=False),
    "redrive-items": _Action(_redrive_items, running_only=False),
    "cancel": _Action(_cancel, needs_worker=False),
}
"""Every control, by the name the form posts to (``/actions/<name>``)."""


async def perform(
    backend: Backend, action: str, batch_id: str, form: dict[str, str], identity: str
) -> ActionResult:
    """Run ``action`` on a batch as ``identity``.

    Raises:
        ActionInputError: a form field is bad (nothing was sent to the batch).
        CliError: the batch cannot take the action now (not running, no worker, refused).
    """
    spec = ACTIONS[action]
    client = await backend.client_as(identity)
    view = await load_view(client, backend.target, batch_id)
    if spec.running_only and view.status != "RUNNING":
        raise CliError(f"batch {batch_id!r} is {view.status}; only a running batch can be steered")
    if spec.needs_worker and view.status in OPEN_STATUSES and view.progress is None:
        raise CliError(view.note or f"no worker answered for batch {batch_id!r}")
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    return await spec.run(_Call(client, view, handle, form))
