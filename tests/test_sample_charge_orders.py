"""samples/charge_orders end to end on the real server: 200 orders, one workflow each.

The worker runs in-process (the sample's page processor, item workflow and activities); the
check runs as the README says, as a command, and must pass after the batch and again after a
redrive of its failed (declined) orders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from batch_orchestra import BatchOrchestratorClient
from samples.charge_orders import db
from samples.charge_orders.activities import LOST_REPLY_EVERY
from samples.charge_orders.starter import batch_input
from samples.charge_orders.worker import worker_options

ROOT = Path(__file__).resolve().parent.parent
N = 200
DECLINED = {f"order-{i}" for i in range(db.DECLINED_EVERY, N + 1, db.DECLINED_EVERY)}


def _check(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "samples.charge_orders.orders", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


async def test_every_order_is_charged_once_and_the_declined_ones_refunded(
    orchestra: BatchOrchestratorClient, task_queue: str, new_worker: Any, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    db.create(path, N)
    inp = batch_input(path, warehouse_delay=0)
    async with new_worker(**worker_options()):
        handle = await orchestra.start(inp, id=f"charge-orders-{task_queue}", task_queue=task_queue)
        result = await handle.result()
        assert result.num_completed_pages == N // 10 and result.num_failed_pages == 0
        assert result.num_items_started == N and result.num_items_open == 0
        assert result.num_items_completed == N - len(DECLINED)
        assert result.num_items_failed == len(DECLINED) == 4
        assert {f.key for f in result.failed_items} == DECLINED
        # The first charge of every 7th order lost its reply: its retry charged nothing more.
        assert _check(path) == (
            f"OK: {N} orders: 196 charged, shipped and emailed once; 4 declined, charged and "
            f"refunded once, not shipped; none charged twice ({N // LOST_REPLY_EVERY} repeated "
            "requests absorbed)\n"
        )
        # A redrive runs the declined orders again (run_items): still declined, so they fail
        # again, and their charge and refund are not repeated.
        again = await (await orchestra.redrive_items(handle.id)).result()
    assert again.num_items_started == 4 and again.num_items_failed == 4
    assert again.num_items_completed == 0
    assert "none charged twice (36 repeated requests absorbed)" in _check(path)
