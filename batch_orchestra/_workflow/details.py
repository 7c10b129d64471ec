"""The ``failure_details`` query: whole cursors and keys of what the batch holds in memory."""

from __future__ import annotations

from collections.abc import Iterator

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .._engine.budgets import FAILURE_DETAILS_BYTES, wire_size
    from .._engine.engine import BatchEngine
    from .._engine.progress import discovery_failure, page_failure
    from .._engine.scheduler import PageState
    from .._model import PageFailure
    from .._model.messages import FailureDetails, FailureDetailsRequest

__all__ = ["failure_details"]


def failure_details(engine: BatchEngine, req: FailureDetailsRequest) -> FailureDetails:
    """Whole cursors and keys of failing pages and items the batch holds in memory.

    "stuck", "retrying" and "discovering": the pages it holds (progress shows previews);
    "failed" and "items": those not yet written to the ledger. At most ``max_bytes`` (and
    ``FAILURE_DETAILS_BYTES``) per answer; ``next_after`` says where the next page starts.
    """
    out = FailureDetails()
    if not engine.started:
        return out
    sched, book = engine.sched, engine.failures.book
    budget = min(max(1_024, req.max_bytes), FAILURE_DETAILS_BYTES)
    wanted = set(req.page_nums) if req.page_nums is not None else None
    if req.kind == "items":
        out.items = [i.as_failure() for i in book.buffered_items()]
        return out
    candidates: list[PageFailure] = []
    if req.kind in ("stuck", "retrying"):
        stuck = req.kind == "stuck"
        nums = sorted(n for n in sched.waiting if sched.pages[n].stuck == stuck)
        pages = [sched.pages[n] for n in nums]
        candidates = [page_failure(sched, p, whole=True) for p in _after(pages, req, wanted)]
    elif req.kind == "discovering":
        found = sorted(sched.failing_discoveries, key=lambda d: d.page_num)
        for d in found:
            if d.page_num > req.after and (wanted is None or d.page_num in wanted):
                candidates.append(discovery_failure(sched, d, whole=True))
    elif req.kind == "failed":
        whole = [p for p in sched.failed if not p.recorded]
        pages = sorted(whole, key=lambda p: p.page_num)
        candidates = [page_failure(sched, p, whole=True) for p in _after(pages, req, wanted)]
        for e in sorted(book.buffered_pages(), key=lambda e: e.page_num):
            if e.page_num > req.after and (wanted is None or e.page_num in wanted):
                candidates.append(e.as_failure())
        candidates.sort(key=lambda f: f.page_num)
    size = 0
    for f in candidates:
        cost = wire_size(f)
        if out.pages and size + cost > budget:
            out.next_after = out.pages[-1].page_num
            break
        out.pages.append(f)
        size += cost
    return out


def _after(
    pages: list[PageState], req: FailureDetailsRequest, wanted: set[int] | None
) -> Iterator[PageState]:
    return (p for p in pages if p.page_num > req.after and (wanted is None or p.page_num in wanted))
