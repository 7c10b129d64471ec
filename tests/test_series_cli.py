"""``batch-orchestra series ...`` end to end, through click's runner against the real dev server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_orchestra import BatchOrchestratorClient, EmbeddedTemporal
from batch_orchestra.cli._series import parse_duration
from tests import series_processors as sp
from tests.helpers import assert_eventually
from tests.test_cli import assert_error, assert_ok, run_cli


def test_durations() -> None:
    assert parse_duration("90").total_seconds() == 90
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("2s").total_seconds() == 2
    assert parse_duration("1d").total_seconds() == 86400


async def test_series_commands_end_to_end(
    temporal: EmbeddedTemporal,
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    tmp_path: Path,
) -> None:
    db = tmp_path / "items.db"
    sp.create_db(db)
    sp.insert(db, range(1, 7))
    name = f"cli-{uuid.uuid4().hex[:8]}"
    create = [
        "series",
        "create",
        name,
        "--processor",
        "SeriesItems",
        "-q",
        task_queue,
        "--every",
        "1h",
        "--page-size",
        "4",
        "--max-parallelism",
        "2",
        "--args",
        json.dumps({"db": str(db)}),
        "--watermark-initial",
        "0",
    ]
    series = orchestra.get_series(name)
    async with new_worker():
        out = assert_ok(await run_cli(temporal, *create))
        assert f"created series {name!r}: every 1h, window watermark from mark '0'" in out
        assert_error(await run_cli(temporal, *create), "exists already")

        assert f"series {name!r}: triggered" in assert_ok(
            await run_cli(temporal, "series", "trigger", name)
        )

        async def committed() -> None:
            assert (await series.describe()).mark == "6"

        await assert_eventually(committed, timeout=30)
        text = assert_ok(await run_cli(temporal, "series", "status", name))
        assert "ACTIVE" in text and "mark" in text and "'6'" in text and "committed" in text
        data = json.loads(assert_ok(await run_cli(temporal, "series", "status", name, "--json")))
        assert data["mark"] == "6" and data["runs"][0]["outcome"] == "committed"
        assert data["runs"][0]["window"]["high"] == "6" and data["running"] == []
        listed = assert_ok(await run_cli(temporal, "series", "list"))
        assert name in listed and "active" in listed and "every 1h" in listed
        batch_id = data["runs"][0]["batch_id"]
        listed = assert_ok(await run_cli(temporal, "list", "--limit", "50"))
        assert any(batch_id in line and "(0, 6] ·" in line for line in listed.splitlines())
        assert f"{name} · window (0, 6]" in assert_ok(await run_cli(temporal, "status", batch_id))
        assert_error(await run_cli(temporal, "status", name), "is a series, not a batch")

        assert_ok(await run_cli(temporal, "series", "pause", name, "--note", "db upgrade"))
        text = assert_ok(await run_cli(temporal, "series", "status", name))
        assert "PAUSED" in text and "db upgrade" in text
        assert_ok(await run_cli(temporal, "series", "resume", name))
        assert "ACTIVE" in assert_ok(await run_cli(temporal, "series", "status", name))

        out = assert_ok(
            await run_cli(temporal, "series", "backfill", name, "--from", "0", "--to", "3")
        )
        assert "backfill started as batch" in out

        async def backfilled() -> None:
            d = await series.describe()
            assert any(r.kind == "backfill" and r.outcome == "done" for r in d.runs)
            assert d.mark == "6"

        await assert_eventually(backfilled, timeout=30)
        out = assert_ok(
            await run_cli(
                temporal, "series", "set-watermark", name, "2", "--reason", "reprocess 3-6"
            )
        )
        assert "mark '6' -> '2'" in out
        text = assert_ok(await run_cli(temporal, "series", "status", name))
        assert "mark set by operators" in text and "reprocess 3-6" in text
        # At 80 columns: every batch ID and the name whole on one line, nothing cut.
        narrow = assert_ok(await run_cli(temporal, "series", "status", name, columns=80))
        runs = (await series.describe()).runs
        for run in runs:
            if run.batch_id:
                assert any(run.batch_id in line for line in narrow.splitlines()), narrow
        assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
        listed = assert_ok(await run_cli(temporal, "series", "list", columns=80))
        assert "…" not in listed and all(len(line) <= 80 for line in listed.splitlines())
        assert any(
            line.strip() == name or line.startswith(f"{name} ") for line in listed.splitlines()
        )
        assert "every 1h" in listed and "active" in listed

        bad = [a if a != "1h" else "0.5" for a in create]
        bad[2] = f"{name}-x"
        assert_error(await run_cli(temporal, *bad), "at least 1 second")
        bad = [*create[:7], "--cron", "every day", *create[9:]]
        bad[2] = f"{name}-y"
        assert_error(await run_cli(temporal, *bad), "Temporal refused the schedule")
        assert_error(
            await run_cli(temporal, *create[:-2], "--lag", "5m"), "--lag needs a window", code=2
        )
        assert "deleted" in assert_ok(await run_cli(temporal, "series", "delete", name))
    assert_error(await run_cli(temporal, "series", "status", name), "no series named")
    assert name not in assert_ok(await run_cli(temporal, "series", "list"))
