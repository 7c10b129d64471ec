"""The batch workflow's failure ledger: writing its records, reading a ledger back, redrive.

A mixin of ``BatchOrchestrator`` (``_workflow.py``), kept apart so that the workflow reads in one
sitting; it shares the workflow's state and runs in its event loop. The records and their
arithmetic are in ``_ledger.py`` (pure); the reading of histories in ``_ledger_reader.py`` (run by
the ``read_ledger`` activity: the workflow never reads its own history, so what it reads is
recorded as that activity's result and replays).

* A page that fails for good, and an item a page records as failed, go into the ledger book;
  its records are written by ``_ledger_loop`` (a no-op activity each, whose input Temporal keeps)
  and the batch keeps only a preview. The run is quiet (may hand over or finish) only once every
  record is written.
* ``redrive()`` on a running batch writes a marker record, counts every failed page as pending,
  and reads them back from its own ledger (``_feed_loop``), a chunk at a time, keeping their page
  numbers. A redrive batch (``redrive_source``) reads another batch's ledger the same way.
* The ``failure_details`` query gives whole cursors of what the batch holds in memory.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ._budgets import (
        FAILURE_DETAILS_BYTES,
        LEDGER_READ_BYTES,
        LEDGER_RECORDS_IN_FLIGHT,
        LEDGER_RECORDS_PER_TASK,
        MAX_ITEM_KEY,
        MAX_ITEM_MESSAGE,
        clip,
        wire_size,
    )
    from ._errors_table import MAX_ERROR_TYPE
    from ._ledger import (
        LedgerBook,
        LedgerFeed,
        LedgerItem,
        LedgerPage,
        LedgerRecord,
        ReadLedgerInput,
        ReadLedgerResult,
    )
    from ._messages import (
        FAILURE_DETAILS_QUERY,
        READ_LEDGER,
        RECORD_FAILURES,
        REDRIVE_UPDATE,
        FailureDetails,
        FailureDetailsRequest,
    )
    from ._progress import page_failure
    from ._scheduler import MAX_HELD_BYTES, PageState, Scheduler
    from ._types import BatchOrchestratorInput, BatchOrchestratorProgress, ItemFailure, PageFailure

if TYPE_CHECKING:
    from ._workflow import Lifecycle

__all__ = ["ITEM_PAGE_BYTES", "LEDGER_PATCH", "LedgerCalls", "item_pages"]

LEDGER_PATCH = "batch-orchestra-ledger-and-payload-budgets"
"""Runs begun before the failure ledger and the payload budgets existed replay without them."""
ITEM_PAGE_BYTES = 12_000
"""The most bytes of keys one page of a batch of item keys holds (a cursor holds 16 KB)."""
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)
READ_AGAIN_AFTER = timedelta(minutes=1)
"""After a read of a ledger failed (its retries spent), how long until the next try."""
_RECORD_RETRY = RetryPolicy(maximum_attempts=1)  # nothing to retry: the input is the record


def item_pages(keys: list[str], page_size: int) -> list[str]:
    """Cursors of pages of up to ``page_size`` keys and ``ITEM_PAGE_BYTES``: JSON lists of keys."""
    chunks: list[list[str]] = [[]]
    size = 2
    for key in dict.fromkeys(keys):  # each key once, in order
        cost = len(json.dumps(key)) + 1
        if len(chunks[-1]) >= page_size or (chunks[-1] and size + cost > ITEM_PAGE_BYTES):
            chunks.append([])
            size = 2
        chunks[-1].append(key)
        size += cost
    return [json.dumps(c) for c in chunks if c]


class LedgerCalls:
    """Ledger records, ledger reads and redrive, for one run of a batch."""

    _inp: BatchOrchestratorInput
    _state: Lifecycle
    _dirty: bool
    _sched: Scheduler | None
    _execution: str
    _ledger_on: bool
    _book: LedgerBook
    _feeds: list[LedgerFeed]
    _feed_reading: bool
    _records_in_flight: int
    _run_items: bool

    def _progress(self) -> BatchOrchestratorProgress:
        raise NotImplementedError

    def _extra(self, page_num: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _changed(self, change: str, by: str | None) -> None:
        raise NotImplementedError

    async def _control(self) -> Scheduler:
        raise NotImplementedError

    def _redrive_refusal(self) -> str | None:
        raise NotImplementedError

    # -- writing -----------------------------------------------------------------------------

    def _record_failed_page(self, sched: Scheduler, page: PageState, now: float) -> None:
        """A page failed for good: its entry goes into the ledger, and the batch keeps a preview."""
        if not self._ledger_on:
            return
        error_type, message = sched.errors.get(page.error)
        entry = LedgerPage(
            page_num=page.page_num,
            cursor=page.cursor,
            size=page.size,
            attempts=page.attempts,
            successor_enqueued=page.successor_enqueued,
            error_type=error_type,
            error_message=message,
            failed_at=page.failed_at or now,
            chain=page.chain,
        )
        self._book.add_page(entry, now)
        sched.keep_preview(page)

    def _record_failed_items(self, items: list[ItemFailure], now: float) -> None:
        if not self._ledger_on:
            return
        for item in items:
            self._book.add_item(
                LedgerItem(
                    page_num=item.page_num,
                    key=item.key,
                    error_type=item.error_type,
                    error_message=item.error_message,
                    failed_at=item.failed_at.timestamp(),
                ),
                now,
            )

    @staticmethod
    def _clean_items(items: list[ItemFailure] | None) -> list[ItemFailure]:
        """Item failures as reported, cut to the sizes the library keeps.

        A worker of another version, or another client, may send anything.
        """
        out = []
        for item in items or []:
            key = str(item.key)[:MAX_ITEM_KEY]
            out.append(
                ItemFailure(
                    key=key,
                    page_num=item.page_num,
                    error_type=clip(str(item.error_type), MAX_ERROR_TYPE),
                    error_message=clip(str(item.error_message), MAX_ITEM_MESSAGE),
                    failed_at=item.failed_at,
                    key_length=len(key),
                )
            )
        return out

    async def _ledger_loop(self) -> None:
        """Write the ledger's records: when the buffer is full, old enough, or the run is ending."""
        book = self._book
        while True:
            await workflow.wait_condition(lambda: not book.idle)
            due = book.due_at()
            if not book.sealed and due is not None and self._state.value == "running":
                delay = due - workflow.now().timestamp()
                if delay > 0:
                    try:
                        await workflow.wait_condition(
                            lambda: bool(book.sealed) or self._state.value != "running",
                            timeout=timedelta(seconds=delay),
                        )
                    except asyncio.TimeoutError:
                        pass
            book.seal()
            sent = 0
            while book.sealed:
                # Temporal's pending-activity limit, and the size of one task's completion.
                if self._records_in_flight >= LEDGER_RECORDS_IN_FLIGHT:
                    await workflow.wait_condition(
                        lambda: self._records_in_flight < LEDGER_RECORDS_IN_FLIGHT
                    )
                elif sent >= LEDGER_RECORDS_PER_TASK:
                    await workflow.sleep(timedelta(milliseconds=10))
                    sent = 0
                record = book.take()
                if record is not None:
                    self._write_record(record)
                    sent += 1
            self._dirty = True  # the run may be quiet now (a hand-over waits for this)

    def _write_record(self, record: LedgerRecord) -> None:
        """Schedule the no-op activity whose input is ``record``.

        The record is durable once the command is in history; the activity only needs to exist.
        A hand-over never waits for it (its result is ignored, and it may even time out).
        """
        what = (
            "redrive marker"
            if record.redrive
            else (f"{len(record.pages)} failed page(s), {len(record.items)} failed item(s)")
        )
        handle = workflow.start_activity(
            RECORD_FAILURES,
            record,
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RECORD_RETRY,
            activity_id=f"ledger-{record.seq}",
            summary=f"failure ledger record {record.seq}: {what}",
        )
        self._records_in_flight += 1

        def done(fut: asyncio.Future[Any]) -> None:
            self._records_in_flight -= 1
            if not fut.cancelled():
                fut.exception()  # a record that timed out is still in history: nothing to do

        handle.add_done_callback(done)

    # -- redrive -----------------------------------------------------------------------------

    @workflow.update(name=REDRIVE_UPDATE)
    async def redrive(self, by: str | None = None) -> BatchOrchestratorProgress:
        """Queue every failed page again with a fresh retry budget.

        Every one: those in the batch's memory now, the others as they are read back from its
        failure ledger (they count as pending meanwhile). ``num_failed_pages`` goes to 0. A paused
        batch stays paused (resume it to run them). Returns the progress.
        """
        sched = await self._control()
        refusal = self._redrive_refusal()
        if refusal is not None:  # it finished while the update waited for the scheduler
            raise ApplicationError(refusal, non_retryable=True)
        before = sched.num_failed
        pending = sched.feed_pending
        sched.redrive_failed(from_ledger=self._ledger_on)
        from_ledger = sched.feed_pending - pending
        if from_ledger:
            marker = self._book.marker()
            feed = self._feeds[-1] if self._feeds and self._feeds[-1].own else None
            if feed is not None:
                feed.to_record = marker.seq  # one read goes on past the earlier marker
            else:
                self._feeds.append(
                    LedgerFeed(
                        workflow_id=workflow.info().workflow_id,
                        execution=self._execution,
                        own=True,
                        from_record=0,
                        to_record=marker.seq,
                        position=self._book.base_position,
                    )
                )
            sched.feeding = True
        n = before - sched.num_failed
        if n:
            later = (
                f", {from_ledger} of them as they are read from its ledger" if from_ledger else ""
            )
            self._changed(f"redrive: {n} failed page(s) queued again{later}", by)
        return self._progress()

    @redrive.validator
    def _validate_redrive(self, by: str | None = None) -> None:
        refusal = self._redrive_refusal()
        if refusal is not None:
            raise ValueError(refusal)

    # -- reading a ledger into the batch -----------------------------------------------------

    def _start_feed(self) -> None:
        """A redrive batch (``redrive_source``): its pages come from another batch's ledger."""
        src = self._inp.redrive_source
        if src is None:
            return
        self._feeds.append(
            LedgerFeed(
                workflow_id=src.workflow_id,
                execution=src.first_run_id,
                items=src.items,
                from_record=src.from_record,
                to_record=src.to_record,
            )
        )
        self._run_items = self._run_items or src.items
        if self._sched is not None:
            self._sched.feeding = True

    def _feed_wanted(self) -> bool:
        """Whether to read the next chunk of a ledger now.

        When the batch holds few ready pages and few bytes, and (for its own ledger) the marker
        record it reads up to has been written.
        """
        sched = self._sched
        if not self._feeds or self._feed_reading or sched is None:
            return False
        if self._state.value != "running":
            return False
        feed = self._feeds[0]
        if feed.own and feed.to_record is not None and self._book.written <= feed.to_record:
            return False
        low_water = max(1, min(sched.effective_parallelism, 1_000))
        return len(sched.ready) <= low_water and (
            sched.held_bytes + LEDGER_READ_BYTES <= MAX_HELD_BYTES
        )

    async def _feed_loop(self) -> None:
        """Read the ledgers being fed into the batch, a chunk at a time."""
        while True:
            await workflow.wait_condition(self._feed_wanted)
            feed = self._feeds[0]
            self._feed_reading = True
            handle = workflow.start_activity(
                READ_LEDGER,
                ReadLedgerInput(
                    workflow_id=feed.workflow_id,
                    execution=feed.execution,
                    items=feed.items,
                    from_record=feed.from_record,
                    to_record=feed.to_record,
                    position=feed.position,
                    max_bytes=LEDGER_READ_BYTES,
                ),
                result_type=ReadLedgerResult,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=READ_RETRY,
                summary=f"read the failure ledger of {feed.workflow_id}",
            )
            # A hand-over does not wait for the read: its result is then dropped, and the next
            # run reads the same chunk again from the same position.
            handle.add_done_callback(functools.partial(self._on_read, feed))
            await workflow.wait_condition(lambda: not self._feed_reading)

    def _on_read(self, feed: LedgerFeed, fut: asyncio.Future[ReadLedgerResult]) -> None:
        self._feed_reading = False
        self._dirty = True
        if fut.cancelled() or self._state.value == "cancelled" or feed not in self._feeds:
            return
        err = fut.exception()
        if err is not None:
            cause = getattr(err, "cause", None) or err
            workflow.logger.error(
                "reading the failure ledger of %s failed: %s; trying again in %s",
                feed.workflow_id,
                cause,
                READ_AGAIN_AFTER,
                extra=self._extra(),
            )
            self._changed(
                f"reading the failure ledger of {feed.workflow_id} failed ({cause}); trying "
                "again in a minute",
                None,
            )
            self._feed_reading = True  # holds the loop until the pause is over

            async def later() -> None:
                await workflow.sleep(READ_AGAIN_AFTER)
                self._feed_reading = False

            asyncio.ensure_future(later())
            return
        self._apply_read(feed, fut.result())

    def _apply_read(self, feed: LedgerFeed, result: ReadLedgerResult) -> None:
        sched = self._sched
        assert sched is not None
        if feed.own:
            for e in result.pages:
                sched.readd(
                    PageState(
                        e.page_num,
                        e.cursor,
                        e.size,
                        chain=e.chain,
                        attempts=e.attempts,
                        successor_enqueued=e.successor_enqueued,
                    )
                )
        elif feed.items:
            cursors = item_pages([i.key for i in result.items], self._inp.page_size)
            for num in sched.enqueue(None, [(c, self._inp.page_size) for c in cursors]).added:
                sched.pages[num].successor_enqueued = True
        elif result.pages:
            added = sched.enqueue(
                None, [(e.cursor, e.size or self._inp.page_size) for e in result.pages]
            )
            marks = {e.cursor: e.successor_enqueued for e in result.pages}
            for num in added.added:
                sched.pages[num].successor_enqueued = marks.get(sched.pages[num].cursor, False)
        feed.position = result.position
        if result.unavailable_runs:
            feed.unavailable_runs += result.unavailable_runs
            self._changed(
                f"{result.unavailable_runs} run(s) of {feed.workflow_id} are gone (past the "
                "namespace's retention period): the failures they recorded cannot be read",
                None,
            )
        if result.done:
            self._feeds.remove(feed)
            sched.feeding = bool(self._feeds)
            if feed.own:
                self._book.base_position = result.position
                if not any(f.own for f in self._feeds) and sched.feed_pending:
                    lost, sched.feed_pending = sched.feed_pending, 0
                    sched.num_failed += lost
                    self._changed(
                        f"redrive: {lost} failed page(s) could not be read back from the "
                        "ledger (their runs are gone past the retention period); they stay "
                        "counted as failed",
                        None,
                    )

    # -- whole cursors of what the batch holds -------------------------------------------------

    @workflow.query(name=FAILURE_DETAILS_QUERY)
    def failure_details(self, req: FailureDetailsRequest) -> FailureDetails:
        """Whole cursors and keys of failing pages and items the batch holds in memory.

        "stuck", "retrying" and "discovering": the pages it holds (progress shows previews);
        "failed" and "items": those not yet written to the ledger. At most ``max_bytes`` (and
        ``FAILURE_DETAILS_BYTES``) per answer; ``next_after`` says where the next page starts.
        """
        sched = self._sched
        out = FailureDetails()
        if sched is None:
            return out
        budget = min(max(1_024, req.max_bytes), FAILURE_DETAILS_BYTES)
        wanted = set(req.page_nums) if req.page_nums is not None else None
        if req.kind == "items":
            out.items = [_item_of(i) for i in self._book.buffered_items()]
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
                    error_type, message = sched.errors.get(d.error)
                    candidates.append(_discovery_failure(d, error_type, message))
        elif req.kind == "failed":
            whole = [p for p in sched.failed if not p.recorded]
            pages = sorted(whole, key=lambda p: p.page_num)
            candidates = [page_failure(sched, p, whole=True) for p in _after(pages, req, wanted)]
            for e in sorted(self._book.buffered_pages(), key=lambda e: e.page_num):
                if e.page_num > req.after and (wanted is None or e.page_num in wanted):
                    candidates.append(_page_of(e))
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


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _page_of(e: LedgerPage) -> PageFailure:
    return PageFailure(
        page_num=e.page_num,
        cursor_str=e.cursor,
        cursor_length=len(e.cursor),
        attempts=e.attempts,
        error_type=e.error_type,
        error_message=e.error_message,
        failed_at=_dt(e.failed_at),
        size=e.size,
        successor_enqueued=e.successor_enqueued,
    )


def _item_of(e: LedgerItem) -> ItemFailure:
    return ItemFailure(
        key=e.key,
        page_num=e.page_num,
        error_type=e.error_type,
        error_message=e.error_message,
        failed_at=_dt(e.failed_at),
        key_length=len(e.key),
    )


def _discovery_failure(d: Any, error_type: str, message: str) -> PageFailure:
    return PageFailure(
        page_num=d.page_num,
        cursor_str=d.cursor,
        cursor_length=len(d.cursor),
        attempts=d.failures,
        error_type=error_type,
        error_message=message,
        failed_at=_dt(d.failed_at or 0.0),
        next_retry_at=_dt(d.ready_at) if d.ready_at else None,
    )
