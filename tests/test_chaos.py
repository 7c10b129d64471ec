"""The short chaos run (``bench.chaos``; ``make chaos`` is the long one): two worker processes,
one SIGKILLed mid-batch, a pause and resume, at-least-once pages writing to SQLite. Nothing may
be missing, no page may fail, the batch must complete. The workers' sticky timeout is 2 s (the
SDK's 10 s would stall this short batch for 10 s when the killed worker held its workflow)."""

from __future__ import annotations

from bench.chaos import ChaosConfig, run_chaos


async def test_chaos_worker_killed_and_batch_paused_mid_batch(temporal, tmp_path) -> None:
    cfg = ChaosConfig(
        pages=300,
        page_size=5,
        parallelism=8,
        workers=2,
        kill_every=2.0,
        max_kills=1,
        kill_at=0.25,
        sticky_timeout=2.0,
        page_timeout=3.0,
        server_restart_at=None,
        pause_at=0.6,
        pause_seconds=1.0,
        page_ms=100.0,
        poll_seconds=0.25,
        timeout=120.0,
        stall_timeout=60.0,
        workdir=str(tmp_path),
    )
    lines: list[str] = []
    report = await run_chaos(cfg, temporal, say=lines.append)
    summary = "\n".join(lines + report.lines())
    assert report.ok, summary
    assert report.worker_kills == 1 and report.pages_at_kills[0] < cfg.pages, summary
    assert report.pauses == 1 and report.completed_while_paused == 0, summary
    assert report.items_missing == 0 and report.items_distinct == cfg.pages * cfg.page_size
    assert report.pages_completed == cfg.pages and report.pages_failed == 0
    assert report.progress_items == cfg.pages * cfg.page_size, summary
    assert report.workflow_task_failures == 0, summary


async def test_handovers_every_100_pages_over_30_chains_lose_nothing(temporal, tmp_path) -> None:
    """No fault at all: one worker, 30 chains, a hand-over every 100 started pages, so every
    hand-over is decided in the workflow task that started the run's last pages. A version
    that cancelled not-yet-started attempts at a hand-over lost exactly those pages (their
    futures end cancelled before the command reaches the server, and were never put back in
    the ready queue): their chains stopped and the batch wedged with items missing."""
    cfg = ChaosConfig(
        pages=600,
        page_size=10,
        parallelism=30,
        workers=1,
        kill_every=0.0,
        server_restart_at=None,
        pause_at=None,
        pages_per_run=100,
        page_ms=50.0,
        poll_seconds=0.5,
        timeout=90.0,
        stall_timeout=15.0,
        workdir=str(tmp_path),
    )
    lines: list[str] = []
    report = await run_chaos(cfg, temporal, say=lines.append)
    summary = "\n".join(lines + report.lines())
    assert report.ok, summary
    assert report.runs >= 6 and report.items_missing == 0, summary
