"""``retry-page`` and ``skip-page``: the operator's actions on one page of a running batch."""

from __future__ import annotations

from .._client import BatchOrchestratorClient
from .._read import Target, acknowledged
from ._control_actions import ack, steerable

__all__ = ["retry_page", "skip_page"]


async def retry_page(
    target: Target, batch_id: str, page_num: int, reason: str | None = None
) -> None:
    """Retry one pending, retrying or stuck page now, through the acknowledged update."""
    client, view = await steerable(target, batch_id)
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await acknowledged(
        view, f"retry-page {page_num}", handle.retry_page(page_num, reason=reason)
    )
    if p.is_paused:
        msg = (
            f"batch {batch_id!r}: page {page_num} is first in line; it starts when the batch "
            "is resumed (it is paused)"
        )
    else:
        msg = f"batch {batch_id!r}: page {page_num} starts now, first in line"
    ack(view, msg)


async def skip_page(target: Target, batch_id: str, page_num: int, reason: str) -> None:
    """Skip one pending, retrying or stuck page, through the acknowledged update."""
    client, view = await steerable(target, batch_id)
    handle = BatchOrchestratorClient(client).get_handle(batch_id)
    view.progress = p = await acknowledged(
        view, f"skip-page {page_num}", handle.skip_page(page_num, reason)
    )
    ack(
        view,
        (
            f"batch {batch_id!r}: page {page_num} skipped ({reason}); "
            f"{p.num_skipped_pages} page(s) skipped so far"
        ),
    )
