"""``/metrics``: Prometheus gauges and counters for the running batches.

Each scrape lists the most recent running batches (at most ``max_batches``), asks each for its
progress, and renders a fresh registry: nothing is kept between scrapes, so a batch that ends
simply stops being exported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from temporalio.client import WorkflowExecution

from .._model import BatchOrchestratorProgress
from .._read import batches_query, query_progress
from ._data import Backend

__all__ = ["OPERATOR_PAUSE_REASONS", "BatchSample", "collect", "render"]

_LABELS = ["batch_id", "processor"]
OPERATOR_PAUSE_REASONS = (
    "paused by an operator",
    "max_parallelism set to 0",
    "started with max_parallelism=0",
)
"""The ``pause_reason`` values of pauses that people asked for; any other reason is a batch
that paused itself."""


@dataclass
class BatchSample:
    """One running batch at scrape time."""

    batch_id: str
    """Its workflow ID."""
    processor: str
    """Its page processor's name ("" when unknown)."""
    progress: BatchOrchestratorProgress | None
    """Its progress; None when no worker answered in time."""


async def collect(backend: Backend, max_batches: int) -> tuple[list[BatchSample], int]:
    """The running batches (most recent first, at most ``max_batches``) and how many run."""
    client = await backend.client()
    query = batches_query("Running")
    running = (await client.count_workflows(query)).count
    it = client.list_workflows(query, page_size=max_batches, limit=max_batches)
    executions = [e async for e in it]

    async def one(e: WorkflowExecution) -> BatchSample:
        processor, progress = await asyncio.gather(
            backend.processor(e),
            query_progress(client, e.id, e.run_id, timeout=timedelta(seconds=2)),
        )
        return BatchSample(e.id, processor or "", progress)

    return list(await asyncio.gather(*(one(e) for e in executions))), running


class _Snapshot(Collector):
    def __init__(self, samples: list[BatchSample], running: int, max_batches: int) -> None:
        self.samples = samples
        self.running = running
        self.max_batches = max_batches

    def collect(self) -> Iterator[Metric]:
        yield from _families(self.samples, self.running, self.max_batches)


def _families(samples: list[BatchSample], running: int, max_batches: int) -> Iterable[Metric]:
    answered = [(s, s.progress) for s in samples if s.progress is not None]

    def gauge(name: str, doc: str, value: str) -> Metric:
        return _column(GaugeMetricFamily, name, doc, answered, value)

    def counter(name: str, doc: str, value: str) -> Metric:
        return _column(CounterMetricFamily, name, doc, answered, value)

    yield counter("pages_completed", "Pages the batch has completed.", "num_completed_pages")
    yield counter("items_completed", "Items the batch's pages reported.", "num_completed_items")
    yield gauge("pages_failed", "Pages that failed for good.", "num_failed_pages")
    yield gauge("pages_stuck", "Pages waiting for extended retries.", "num_stuck_pages")
    yield gauge("pages_skipped", "Pages an operator skipped.", "num_skipped_pages")
    yield gauge(
        "pages_discovering",
        "Pages whose successors are being found apart (next_page).",
        "num_discovering_pages",
    )
    yield gauge("pages_processing", "Pages running now.", "num_processing_pages")
    yield gauge("pages_pending", "Pages waiting for a slot.", "num_pending_pages")
    yield gauge("items_per_second", "Recent items per second.", "items_per_second")
    yield gauge("pages_per_second", "Recent pages per second.", "pages_per_second")
    yield gauge("max_parallelism", "The batch's parallelism cap (0: paused).", "max_parallelism")
    yield from _item_families([(s, p) for s, p in answered if getattr(p, "max_open_items", None)])
    yield _per_batch(
        "effective_parallelism",
        "How many pages may run now (0 while paused).",
        [(s, _effective(p)) for s, p in answered],
    )
    yield _per_batch(
        "paused",
        "1 while the batch is paused (by anyone or anything).",
        [(s, float(p.is_paused)) for s, p in answered],
    )
    yield _per_batch(
        "auto_paused",
        "1 while the batch paused itself (its failure policy), not an operator.",
        [(s, float(p.is_paused and _auto_pause(p))) for s, p in answered],
    )
    up = GaugeMetricFamily(
        "batch_orchestra_progress_up",
        "1 when a worker answered the batch's progress query at this scrape, else 0.",
        labels=_LABELS,
    )
    for s in samples:
        up.add_metric([s.batch_id, s.processor], float(s.progress is not None))
    yield up
    yield GaugeMetricFamily(
        "batch_orchestra_running_batches", "Running batches in the namespace.", value=running
    )
    yield GaugeMetricFamily(
        "batch_orchestra_exported_batches",
        f"Running batches exported (the most recent, at most {max_batches}).",
        value=len(samples),
    )


def _item_families(
    answered: list[tuple[BatchSample, BatchOrchestratorProgress]],
) -> Iterable[Metric]:
    """The item workflows of the batches that start them (``max_open_items``); others have none."""
    rows = [
        ("item_workflows_started", "Item workflows the batch started.", "num_items_started", True),
        (
            "item_workflows_completed",
            "Item workflows that completed.",
            "num_items_completed",
            True,
        ),
        (
            "item_workflows_failed",
            "Item workflows that failed, timed out, were terminated or cancelled.",
            "num_items_failed",
            True,
        ),
        ("item_workflows_open", "Item workflows started and not closed.", "num_items_open", False),
        ("max_open_items", "The batch's cap on open item workflows.", "max_open_items", False),
    ]
    for name, doc, value, is_counter in rows:
        kind = CounterMetricFamily if is_counter else GaugeMetricFamily
        yield _column(kind, name, doc, answered, value)


def _column(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    doc: str,
    answered: list[tuple[BatchSample, BatchOrchestratorProgress]],
    value: str,
) -> Metric:
    """One progress field of every answering batch, labelled by batch and processor."""
    family = kind(f"batch_orchestra_{name}", doc, labels=_LABELS)
    for s, p in answered:
        family.add_metric([s.batch_id, s.processor], float(getattr(p, value)))
    return family


def _per_batch(name: str, doc: str, values: list[tuple[BatchSample, float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"batch_orchestra_{name}", doc, labels=_LABELS)
    for s, value in values:
        family.add_metric([s.batch_id, s.processor], value)
    return family


def _effective(p: BatchOrchestratorProgress) -> float:
    # Older batches' progress has no effective_parallelism: the cap, or 0 while paused.
    default = 0 if p.is_paused else p.max_parallelism
    return float(getattr(p, "effective_parallelism", default))


def _auto_pause(p: BatchOrchestratorProgress) -> bool:
    reason = getattr(p, "pause_reason", None)
    return bool(reason) and reason not in OPERATOR_PAUSE_REASONS


def render(samples: list[BatchSample], running: int, max_batches: int) -> bytes:
    """The Prometheus text exposition of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(samples, running, max_batches))
    return generate_latest(registry)
