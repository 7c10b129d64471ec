"""The embedded dev server's configuration."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError

from batch_orchestra import DEV_SERVER_DYNAMIC_CONFIG, EmbeddedTemporal


def test_dynamic_config_starts_from_the_defaults() -> None:
    assert DEV_SERVER_DYNAMIC_CONFIG["history.transferProcessorMaxPollRPS"] > 20
    assert EmbeddedTemporal().dynamic_config == DEV_SERVER_DYNAMIC_CONFIG
    custom = EmbeddedTemporal(dynamic_config={"limit.maxIDLength": 50})
    assert custom.dynamic_config == {**DEV_SERVER_DYNAMIC_CONFIG, "limit.maxIDLength": 50}
    stock = EmbeddedTemporal(dynamic_config={k: None for k in DEV_SERVER_DYNAMIC_CONFIG})
    assert stock.dynamic_config == {}


async def test_dynamic_config_reaches_the_server() -> None:
    async with EmbeddedTemporal(use_env=False, dynamic_config={"limit.maxIDLength": 40}) as t:
        with pytest.raises(RPCError, match=r"WorkflowId exceeds maximum allowed length \(41/40\)"):
            await t.client.start_workflow("NoSuchWorkflow", id="x" * 41, task_queue="tq")
        await t.client.start_workflow("NoSuchWorkflow", id="short-id", task_queue="tq")
