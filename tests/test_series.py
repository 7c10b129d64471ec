"""Series on the real dev server: a schedule every 2 s over a SQLite table that grows.

Each run takes exactly the new rows; a run whose batch fails holds the mark and the next run
covers both windows; a slow run makes the next tick skip, and status shows it; pause stops new
runs and resume restarts them; a backfill runs its window and leaves the mark.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Replayer

from batch_orchestra import (
    BatchNotifierConfig,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchWindow,
    EmbeddedTemporal,
    InvalidBatchInputError,
    SeriesDescription,
    SeriesHandle,
    SeriesSpec,
    TimeWindow,
    UnknownSeriesError,
    Watermark,
)
from batch_orchestra._series import workflow as series_workflow
from batch_orchestra._series.messages import ClaimReply, SeriesRunInput, SeriesRunResult
from batch_orchestra._series.run import BatchSeriesRun
from batch_orchestra._series.workflow import BatchSeries
from batch_orchestra.testing import free_port
from tests import series_processors as sp
from tests.helpers import assert_eventually, run_histories
from tests.test_crash import _worker_process


def _spec(db: Path, **kwargs: Any) -> SeriesSpec:
    batch = BatchOrchestratorInput(
        page_processor=sp.SeriesItems,
        page_size=4,
        max_parallelism=2,
        args=json.dumps({"db": str(db)}),
        page_timeout=timedelta(seconds=30),
    )
    kwargs.setdefault("every", timedelta(seconds=2))
    kwargs.setdefault("window", Watermark(initial="0"))
    return SeriesSpec(batch=batch, **kwargs)


def _name() -> str:
    return f"series-{uuid.uuid4().hex[:10]}"


async def _mark_is(series: SeriesHandle, mark: str, timeout: float = 40) -> SeriesDescription:
    async def check() -> SeriesDescription:
        d = await series.describe()
        assert d.mark == mark, (d.mark, [(r.outcome, r.reason) for r in d.runs[:3]])
        return d

    return await assert_eventually(check, timeout=timeout, interval=0.2)


def _ids_by_batch(db: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for item, batch, _, _ in sp.done(db):
        found.setdefault(batch, []).append(item)
    return found


async def test_series_takes_new_rows_holds_failures_skips_pauses_and_backfills(
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The series' workflow hands over to a new run every two runs or so: the mark must survive.
    monkeypatch.setattr(series_workflow, "UPDATES_PER_RUN", 4)
    db = tmp_path / "items.db"
    sp.create_db(db)
    sp.insert(db, range(1, 11))
    name = _name()
    spec = _spec(db)
    spec.batch.notifier = BatchNotifierConfig(name="series_events")
    async with new_worker():
        series = await orchestra.create_series(spec, id=name, task_queue=task_queue)
        try:
            d = await _mark_is(series, "10")
            first = next(r for r in d.runs if r.outcome == "committed")
            assert first.window is not None and first.window.text() == "(0, 10]"
            assert sorted(_ids_by_batch(db)[first.batch_id or ""]) == list(range(1, 11))

            # New rows: the next run takes exactly them.
            sp.insert(db, range(11, 16))
            d = await _mark_is(series, "15")
            run = next(r for r in d.runs if r.outcome == "committed")
            assert run.window is not None and run.window.text() == "(10, 15]"
            assert sorted(_ids_by_batch(db)[run.batch_id or ""]) == list(range(11, 16))
            assert run.num_completed_items == 5

            # A failing page holds the mark; the next run covers both windows.
            sp.control(db, "fail", [17])
            sp.insert(db, range(16, 21))

            async def held() -> SeriesDescription:
                d = await series.describe()
                assert any(r.outcome == "held" for r in d.runs), [r.outcome for r in d.runs]
                return d

            d = await assert_eventually(held, timeout=40)
            assert d.mark == "15" and d.num_held >= 1
            bad = next(r for r in d.runs if r.outcome == "held")
            assert bad.num_failed_pages == 1 and "failed for good" in (bad.reason or "")
            sp.control(db, "fail")
            sp.insert(db, range(21, 23))
            d = await _mark_is(series, "22")
            run = next(r for r in d.runs if r.outcome == "committed")
            assert run.window is not None and run.window.text() == "(15, 22]"
            assert set(_ids_by_batch(db)[run.batch_id or ""]) == set(range(16, 23))

            # A slow run: the ticks while it runs are skipped, and status says so.
            sp.control(db, "block", True)
            sp.insert(db, [23])

            async def skipped() -> None:
                d = await series.describe()
                assert d.running and d.num_skipped >= 1, (d.num_skipped, d.runs[:2])

            await assert_eventually(skipped, timeout=40)
            sp.control(db, "block")
            await _mark_is(series, "23")

            async def skip_logged() -> None:  # the next run's claim logs the skipped ticks
                d = await series.describe()
                assert any(
                    r.kind == "skipped" and "still running" in (r.reason or "") for r in d.runs
                )

            await assert_eventually(skip_logged, timeout=20)

            async def told() -> None:  # the notifier heard of the held run and the skips
                events = [(e, reason or "") for e, reason, s in sp.SERIES_EVENTS if s == name]
                assert any(e == "series_held" and "failed for good" in r for e, r in events)
                assert any(e == "series_skipped" and "still running" in r for e, r in events)

            await assert_eventually(told, timeout=20)

            # Pause: no run starts; resume: the next run takes what arrived meanwhile.
            await series.pause("maintenance")
            d = await series.describe()
            assert d.paused and "maintenance" in (d.note or "")
            runs_before = d.num_runs
            sp.insert(db, [24, 25])
            await asyncio.sleep(4.5)  # two ticks' worth: a paused schedule starts none
            d = await series.describe()
            assert d.num_runs == runs_before and d.mark == "23"
            await series.resume()
            await _mark_is(series, "25")

            # A backfill runs its own window and leaves the mark.
            batch = await series.backfill("0", "8")
            result = await asyncio.wait_for(batch.result(), 60)
            assert result.num_completed_items == 8 and result.window is not None
            assert result.window.backfill and result.window.text() == "(0, 8]"
            assert sorted(_ids_by_batch(db)[batch.id]) == list(range(1, 9))

            async def backfill_done() -> None:
                d = await series.describe()
                assert any(r.kind == "backfill" and r.outcome == "done" for r in d.runs)
                assert d.mark == "25"

            await assert_eventually(backfill_done, timeout=30)

            # Every row was taken, the committed windows did not overlap, nothing was skipped.
            counts = Counter(item for item, *_ in sp.done(db))
            assert set(counts) == set(range(1, 26))
            d = await series.describe()
            committed = [r for r in d.runs if r.outcome == "committed"]
            assert [m.new for m in reversed(d.mark_changes)] == ["10", "15", "22", "23", "25"]
            assert all(c.by is None for c in d.mark_changes)
            assert len(committed) == 5

            # Its workflows replay (they run outside the sandbox): the book's runs, which
            # continued as new several times, and one run of each kind.
            books = await run_histories(orchestra.client, name)
            assert len(books) >= 3
            replayer = Replayer(workflows=[BatchSeries, BatchSeriesRun])
            for history in books:
                await replayer.replay_workflow(history)
            kinds = {r.outcome: r.run_id for r in d.runs if r.run_id}
            for outcome in ("committed", "held", "done"):
                history = await orchestra.client.get_workflow_handle(kinds[outcome]).fetch_history()
                await replayer.replay_workflow(history)
        finally:
            await series.delete()
    with pytest.raises(UnknownSeriesError):
        await series.describe()


async def test_bad_input_is_refused_before_anything_is_created(
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    tmp_path: Path,
    client: Any,
) -> None:
    db = tmp_path / "items.db"
    name = _name()

    async def refused(spec: SeriesSpec, match: str, **kwargs: Any) -> None:
        with pytest.raises(InvalidBatchInputError, match=match):
            await orchestra.create_series(
                spec, id=kwargs.pop("id", name), task_queue=task_queue, **kwargs
            )
        # Describing reads the schedule itself: it is gone at once. The list reads Temporal's
        # visibility store, which may still show a schedule deleted a moment ago.
        with pytest.raises(UnknownSeriesError):
            await orchestra.get_series(name).describe()

        async def unlisted() -> None:
            assert name not in await orchestra.list_series()

        await assert_eventually(unlisted, timeout=15)

    await refused(_spec(db, every=None, cron="every day at 3"), "Temporal refused the schedule")
    await refused(_spec(db, every=None, cron="0 3 * * *", time_zone="Mars/Base"), "Mars/Base")
    await refused(_spec(db, every=timedelta(milliseconds=500)), "at least 1 second")
    bad_batch = _spec(db)
    bad_batch.batch.page_size = 0
    await refused(bad_batch, "page_size")
    local = _spec(db)
    local.batch.page_processor = sp.NoWindowEnd
    await refused(local, "no window_end")
    await refused(_spec(db), "series name", id="no spaces")
    async with new_worker():
        # Known only to the worker: the worker refuses it, and what was created is removed.
        remote = _spec(db)
        remote.batch.page_processor = "NoWindowEndOnWorker"
        await refused(remote, "not created: no page processor named 'NoWindowEndOnWorker'")
        series = await orchestra.create_series(
            _spec(db, window=TimeWindow(), every=timedelta(hours=1)),
            id=name,
            task_queue=task_queue,
        )
        try:
            with pytest.raises(InvalidBatchInputError, match="exists already") as err:
                await orchestra.create_series(_spec(db), id=name, task_queue=task_queue)
            assert "\n" not in str(err.value)
        finally:
            await series.delete()


async def test_worker_killed_and_server_restarted_mid_run_reattaches_and_commits_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "items.db"
    sp.create_db(db)
    sp.insert(db, range(1, 41))
    sp.control(db, "block", 20)  # pages up to id 20 complete, the rest wait
    server = EmbeddedTemporal(port=free_port(), db_filename=tmp_path / "temporal.db", use_env=False)
    await server.start()
    name, queue = _name(), f"tq-{uuid.uuid4()}"
    try:
        client = server.client
        spec = _spec(db, every=timedelta(hours=1))
        spec.batch.heartbeat_timeout = timedelta(seconds=5)
        async with _worker_process(server.address, queue) as kill_worker:
            series = await BatchOrchestratorClient(client).create_series(
                spec, id=name, task_queue=queue
            )
            await series.trigger()

            async def half_done() -> str:
                d = await series.describe()
                assert d.running and d.running[0].batch_id, d.runs
                batch = BatchOrchestratorClient(client).get_handle(d.running[0].batch_id)
                try:
                    p = await batch.get_progress()
                except RPCError as err:  # not started yet
                    raise AssertionError(err) from None
                assert p.num_completed_pages == 5 and p.num_processing_pages > 0, p
                return d.running[0].batch_id

            batch_id = await assert_eventually(half_done, timeout=60)
            first_run = (await client.get_workflow_handle(batch_id).describe()).run_id
            kill_worker()
        server.kill()
        sp.control(db, "block")
        await server.start()
        client = await Client.connect(server.address)
        series = BatchOrchestratorClient(client).get_series(name)
        async with _worker_process(server.address, queue):
            d = await _mark_is(series, "40", timeout=90)
        desc = await client.get_workflow_handle(batch_id).describe()
        assert desc.raw_description.workflow_execution_info.first_run_id == first_run
        counts = Counter(item for item, *_ in sp.done(db))
        assert set(counts) == set(range(1, 41))
        assert all(counts[i] == 1 for i in range(1, 21)), "completed pages are not redone"
        assert [(m.old, m.new) for m in d.mark_changes] == [("0", "40")]
        committed = [r for r in d.runs if r.outcome == "committed"]
        assert len(committed) == 1 and committed[0].batch_id == batch_id
        ticks = [r.run_id for r in d.runs if r.kind == "scheduled"]
        history = await client.get_workflow_handle(ticks[0]).fetch_history()
        starts = [
            e
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
        assert len(starts) == 1
        await series.delete()
    finally:
        await server.stop()


async def test_a_run_does_not_wait_for_a_batch_that_serves_another_claim(
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    client: Client,
) -> None:
    """A run whose batch ID is taken by a batch of another claim (a series deleted and created
    again under the same name, say) fails visibly instead of taking that batch's outcome."""
    foreign = f"foreign-{uuid.uuid4().hex[:8]}"
    async with new_worker():
        other = await orchestra.start(
            BatchOrchestratorInput(
                page_processor="Scripted", page_size=10, max_parallelism=1, args="{}"
            ),
            id=foreign,
            task_queue=task_queue,
        )
        await other.result()
        window = BatchWindow(high="5", low="0", series="gone", run="gone/x", claim="other/1")
        claim = ClaimReply(
            run_id="gone/x",
            kind="backfill",
            low="0",
            high="5",
            batch_id=foreign,
            batch_input={"page_processor": "Scripted", "page_size": 1, "max_parallelism": 1},
            window=BatchWindow(**{**window.__dict__, "claim": "mine/1"}),
        )
        result = await client.execute_workflow(
            "BatchSeriesRun",
            SeriesRunInput(series=f"gone-{uuid.uuid4().hex[:6]}", claim=claim),
            id=f"run-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            result_type=SeriesRunResult,
        )
    assert result.outcome == "unknown"  # the series is gone; the run still ended cleanly
    assert "serves another claim" in (result.reason or "") and "foreign" in (result.reason or "")


async def test_time_windows_follow_each_other_and_an_empty_window_runs_nothing(
    orchestra: BatchOrchestratorClient,
    new_worker: Callable[..., Any],
    task_queue: str,
    tmp_path: Path,
) -> None:
    db = tmp_path / "items.db"
    sp.create_db(db)
    spec = _spec(db, every=timedelta(hours=1), window=TimeWindow(lag=timedelta(seconds=30)))
    spec.batch.page_processor = "RecordsTimeWindow"
    name = _name()
    async with new_worker():
        series = await orchestra.create_series(spec, id=name, task_queue=task_queue)
        try:
            created = (await series.describe()).mark
            for _ in range(4):  # a run in the second the series was created covers no time
                runs = (await series.describe()).num_runs
                await series.trigger()

                async def ran(before: int = runs) -> SeriesDescription:
                    d = await series.describe()
                    assert d.num_runs > before and not d.running, d.runs
                    return d

                d = await assert_eventually(ran, timeout=30)
                if d.num_committed == 2:
                    break
            assert d.num_committed == 2
            second, first = (r.window for r in d.runs if r.outcome == "committed")
            assert first is not None and second is not None
            assert first.low == created and second.low == first.high and second.high == d.mark
            assert first.end is not None and second.end is not None and second.end > first.end
            seen = sorted((low, high) for _, _, low, high in sp.done(db))
            assert seen == [(first.low, first.high), (second.low, second.high)]

            # A batch started over an empty window ends at once, with 0 pages.
            empty = await orchestra.start(
                BatchOrchestratorInput(
                    page_processor="RecordsTimeWindow",
                    page_size=1,
                    max_parallelism=1,
                    args="{}",
                    window=BatchWindow(kind="time", low=first.high, high=first.high),
                ),
                id=f"{name}-empty",
                task_queue=task_queue,
            )
            result = await empty.result()
            assert result.is_finished and result.num_completed_pages == 0
            assert result.window is not None and result.window.is_empty()
        finally:
            await series.delete()
