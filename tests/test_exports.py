"""The public import surface is pinned."""

from __future__ import annotations

import batch_orchestra


def test_exports_are_sorted_and_pinned() -> None:
    assert batch_orchestra.__all__ == sorted(batch_orchestra.__all__)
    for name in batch_orchestra.__all__:
        assert hasattr(batch_orchestra, name), name
    required = {
        "BatchOrchestraPlugin",
        "BatchOrchestratorClient",
        "BatchOrchestratorHandle",
        "BatchOrchestratorInput",
        "BatchOrchestratorProgress",
        "BatchPage",
        "BatchProcessorContext",
        "BatchTrackerConfig",
        "BatchTrackerContext",
        "PageProcessor",
        "batch_tracker",
        "page_processor",
        "EmbeddedTemporal",
        "DEV_SERVER_DYNAMIC_CONFIG",
        "MAX_CHECKPOINT_BYTES",
        "PageItems",
        "WorkerResources",
        "ItemStarts",
        "reports_to_batch",
    }
    assert required <= set(batch_orchestra.__all__)


def test_seed_retry_mode_alias() -> None:
    assert batch_orchestra.PageProcessor.RetryMode is batch_orchestra.RetryMode
    assert {m.name for m in batch_orchestra.RetryMode} == {
        "EXECUTE_AT_LEAST_ONCE",
        "EXECUTE_AT_MOST_ONCE",
    }


def test_workflow_type_name() -> None:
    from temporalio.workflow import _Definition

    defn = _Definition.from_class(batch_orchestra.BatchOrchestrator)
    assert defn is not None and defn.name == "BatchOrchestrator"
