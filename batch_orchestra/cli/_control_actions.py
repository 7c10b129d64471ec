"""What ``pause``, ``resume``, ``set-parallelism``, ``set-rate``, ``cancel`` and ``terminate`` do.

Each steering command waits for a worker to acknowledge its update, then prints the batch's
progress line.
"""

from __future__ import annotations

from typing import Any

import click
from temporalio.client import Client

from .._client import BatchOrchestratorClient
from .._read import (
    OPEN_STATUSES,
    BatchView,
    CliError,
    Target,
    acknowledged,
    find_batch,
    load_view,
    progress_line,
    rate_text,
    wait_closed,
)

__all__ = [
    "ack",
    "cancel_batch",
    "pause_batch",
    "resume_batch",
    "set_parallelism",
    "set_rate",
    "steerable",
    "terminate_batch",
]


def ack(view: BatchView, message: str) -> None:
    """Print what a command did, the batch's progress line and its UI link."""
    click.echo(message)
    if view.progress is not None:
        click.echo(f"  {progress_line(view.progress)}")
    click.echo(f"UI {view.url}")


async def steerable(target: Target, batch_id: str) -> tuple[Client, BatchView]:
    """The batch's client and view, or ``CliError`` unless a worker can take an update now."""
    client = await target.connect()
    view = await load_view(client, target, batch_id)
    if view.status != "RUNNING":
        raise CliError(f"batch {batch_id!r} is {view.status}; only a running batch can be steered")
    if view.progress is None:  # no worker: the update would wait for one
        raise CliError(view.note or "no worker answered")
    return client, view


async def pause_batch(target: Target, batch_id: str) -> None:
    """Pause a batch through its acknowledged ``pause`` update."""
    client, view = await steerable(target, batch_id)
    before = view.progress.max_parallelism if view.progress else 0
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await acknowledged(view, "pause", handle.pause())
    msg = f"paused batch {batch_id!r} (resume returns to parallelism {before})"
    if p.num_processing_pages:
        msg += f"; {p.num_processing_pages} running page(s) will finish, no new page starts"
    ack(view, msg)


async def resume_batch(target: Target, batch_id: str) -> None:
    """Resume a paused batch through its acknowledged ``resume`` update."""
    client, view = await steerable(target, batch_id)
    was_paused = view.progress is not None and view.progress.is_paused
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await acknowledged(view, "resume", handle.resume())
    if not was_paused:
        msg = f"batch {batch_id!r} was not paused; parallelism stays {p.max_parallelism}"
    else:
        msg = f"resumed batch {batch_id!r} at parallelism {p.max_parallelism}"
    ack(view, msg)


async def set_parallelism(target: Target, batch_id: str, n: int) -> None:
    """Change a batch's parallelism cap through its acknowledged update."""
    client, view = await steerable(target, batch_id)
    before = view.progress.max_parallelism if view.progress else 0
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await acknowledged(view, "set-parallelism", handle.set_max_parallelism(n))
    msg = f"batch {batch_id!r}: parallelism {before} -> {p.max_parallelism}"
    if p.is_paused and n > 0:
        msg += "; it stays paused until resume"
    ack(view, msg)


async def set_rate(
    target: Target, batch_id: str, pages: float | None | bool, items: float | None | bool
) -> None:
    """Change a batch's rate limits through its acknowledged update.

    False leaves a limit as it is; None lifts it.
    """
    client, view = await steerable(target, batch_id)
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    limits: dict[str, Any] = {}
    if pages is not False:
        limits["max_pages_per_second"] = pages
    if items is not False:
        limits["max_items_per_second"] = items
    if not limits:
        raise CliError("give --pages-per-second and/or --items-per-second (a number, or none)")
    view.progress = p = await acknowledged(view, "set-rate", handle.set_rate_limit(**limits))
    ack(view, f"batch {batch_id!r}: rate limit {rate_text(p)}")


async def _open_batch(target: Target, batch_id: str, verb: str) -> Client:
    """A client to a batch that is still open.

    Raises ``CliError`` saying there is nothing to ``verb`` if it is not.
    """
    client = await target.connect()
    desc = await find_batch(client, target, batch_id)
    status = desc.status.name if desc.status else "UNKNOWN"
    if status not in OPEN_STATUSES:
        raise CliError(f"batch {batch_id!r} is already {status}; nothing to {verb}")
    return client


async def cancel_batch(target: Target, batch_id: str, wait: float) -> None:
    """Request cancellation and report the state the batch reaches within ``wait`` seconds."""
    client = await _open_batch(target, batch_id, "cancel")
    await BatchOrchestratorClient(client).get_handle(batch_id).workflow_handle.cancel()
    view = await wait_closed(client, target, batch_id, wait)
    if view.status in OPEN_STATUSES:
        ack(
            view,
            (
                f"cancellation of batch {batch_id!r} requested; it is still {view.status} "
                f"(no worker has handled the request yet; is one running on task queue "
                f"{view.task_queue!r}?)"
            ),
        )
        return
    msg = f"batch {batch_id!r} is {view.status}"
    p = view.progress
    if p is not None and p.num_processing_pages:
        msg += f"; {p.num_processing_pages} page(s) that were running are abandoned"
    ack(view, msg)


async def terminate_batch(target: Target, batch_id: str, reason: str) -> None:
    """Terminate a batch at once (no worker needed), e.g. one that no worker ever picked up."""
    client = await _open_batch(target, batch_id, "terminate")
    await client.get_workflow_handle(batch_id).terminate(reason=reason)
    click.echo(f"terminated batch {batch_id!r}: {reason}")
    click.echo(f"UI {target.url(batch_id)}")
