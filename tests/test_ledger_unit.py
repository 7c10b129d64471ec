"""Unit tests of the failure ledger's bookkeeping and of redrive through it (no Temporal)."""

from __future__ import annotations

from datetime import datetime, timezone

from batch_orchestra import ItemFailure
from batch_orchestra._engine.budgets import LEDGER_FLUSH_SECONDS, LEDGER_RECORD_BYTES
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    SchedulerState,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_from_state,
    scheduler_to_state,
)
from batch_orchestra._engine.failure_ledger import item_pages
from batch_orchestra._engine.ledger import (
    LedgerBook,
    LedgerFeed,
    LedgerFold,
    LedgerItem,
    LedgerPage,
    LedgerPosition,
    LedgerRecord,
)
from batch_orchestra._engine.progress import build_progress
from batch_orchestra._engine.scheduler import Outcome, PageState, Scheduler
from batch_orchestra._model import FailurePolicy
from batch_orchestra._model.codec import from_wire, to_wire
from tests.test_scheduler import settings


def _page(num: int, cursor: str = "", **kw: object) -> LedgerPage:
    return LedgerPage(
        page_num=num,
        cursor=cursor or f"c{num}",
        size=10,
        attempts=1,
        successor_enqueued=bool(kw.get("enq", False)),
        error_type="E",
        error_message="m",
        failed_at=1.0,
        chain=int(kw.get("chain", 0)),  # type: ignore[call-overload]
    )


def _counts_add_up(s: Scheduler, now: float = 9.0) -> None:
    p = build_progress(s, now)
    assert (
        p.num_completed_pages
        + p.num_processing_pages
        + p.num_pending_pages
        + p.num_stuck_pages
        + p.num_failed_pages
        + p.num_skipped_pages
        == p.num_discovered_pages
    ), p


def test_the_book_seals_records_by_bytes_and_numbers_them_across_runs() -> None:
    book = LedgerBook("exec")
    assert book.idle and book.due_at() is None
    book.add_page(_page(0), 5.0)
    assert book.due_at() == 5.0 + LEDGER_FLUSH_SECONDS and not book.idle
    for i in range(1, 40):
        book.add_page(_page(i, "x" * 16_000), 6.0)  # past LEDGER_RECORD_BYTES: sealed as it goes
    assert len(book.sealed) >= 2 and book.buffered
    book.add_item(LedgerItem(3, "k", "E", "m", 6.0), 6.0)
    assert [p.page_num for p in book.buffered_pages()] == list(range(40))
    assert [i.key for i in book.buffered_items()] == ["k"]
    marker = book.marker()
    assert marker.redrive and book.base == marker.seq and not book.buffered
    seqs = []
    while (record := book.take()) is not None:
        seqs.append(record.seq)
        assert sum(len(p.cursor) for p in record.pages) <= LEDGER_RECORD_BYTES
    assert seqs == list(range(len(seqs))) and book.written == book.seq == marker.seq + 1
    assert book.idle
    # the next run numbers on
    state = from_wire(type(book.state([])), to_wire(book.state([])))
    nxt = LedgerBook("exec", state)
    nxt.add_page(_page(99), 7.0)
    nxt.seal()
    assert nxt.sealed[0].seq == book.seq and nxt.base == marker.seq


def test_the_fold_keeps_the_latest_entry_and_a_marker_clears_the_pages_before_it() -> None:
    fold = LedgerFold()
    fold.apply(LedgerRecord("e", 0, [_page(1), _page(2)], [LedgerItem(1, "a", "E", "m", 1.0)]))
    fold.apply(LedgerRecord("e", 1, redrive=True))
    fold.apply(LedgerRecord("e", 2, [_page(2, "again")], [LedgerItem(1, "a", "E", "m2", 2.0)]))
    assert {n: p.cursor for n, p in fold.pages.items()} == {2: "again"}
    assert [(i.key, i.error_message) for i in fold.items.values()] == [("a", "m2")]
    bounded = LedgerFold(keep=2)
    bounded.apply(LedgerRecord("e", 0, [_page(i) for i in range(5)]))
    assert list(bounded.pages) == [3, 4]


def _failed(n: int) -> Scheduler:
    """``n`` pages enqueued by a root page 0; every one fails for good and is recorded (the
    batch keeps only previews of their long cursors)."""
    s = Scheduler(settings(), 1_000, 0.0)
    s.enqueue(None, [("root", 10)])
    s.take_runnable()
    s.enqueue(0, [(f"page-{i}-" + "c" * 300, 10) for i in range(n)])
    s.take_runnable()
    for num in range(1, n + 1):
        assert s.fail(num, "Fatal", "broken", non_retryable=True, now=1.0) is Outcome.FAILED
        s.keep_preview(s.failed[-1])
    return s


def test_redrive_from_the_ledger_queues_every_failed_page_and_counts_add_up() -> None:
    s = _failed(150)
    assert s.num_failed == 150 and len(s.failed) == 100
    assert all(p.recorded and p.cursor.endswith("…") for p in s.failed)
    _counts_add_up(s)
    assert s.redrive_failed(from_ledger=True) == []  # none queued now: all come from the ledger
    assert s.num_failed == 0 and s.feed_pending == 150 and s.num_redriven == 150
    assert not s.failed and not s.errors.counts()
    s.feeding = True
    assert not s.is_finished
    _counts_add_up(s)
    # read back, whole, with their numbers, chains and successor marks
    for num in range(1, 151):
        assert s.readd(PageState(num, f"page-{num - 1}-" + "c" * 300, 10, chain=0, attempts=1))
    assert s.feed_pending == 0 and len(s.ready) == 150
    _counts_add_up(s)
    runnable = {a.page_num: a for a in s.take_runnable()}
    assert set(runnable) == set(range(1, 151))
    assert runnable[1].attempt == 2 and runnable[1].cursor.startswith("page-0-")
    # a fresh retry budget: the retry policy (3 attempts) starts afresh
    assert s.fail(1, "ValueError", "x", non_retryable=False, now=2.0) is Outcome.RETRY


def test_without_the_ledger_redrive_reaches_the_pages_kept_whole() -> None:
    s = Scheduler(settings(), 10, 0.0)
    s.enqueue(None, [("a", 1), ("b", 1)])
    s.take_runnable()
    for n in (0, 1):
        s.fail(n, "Fatal", "x", non_retryable=True, now=1.0)
    assert s.redrive_failed() == [0, 1] and s.feed_pending == 0 and s.num_failed == 0


def test_the_ledger_state_and_previews_survive_continue_as_new() -> None:
    s = _failed(120)
    s.record_item_failures(
        3,
        [
            ItemFailure(
                key="k" * 900,
                page_num=1,
                error_type="E",
                error_message="m",
                failed_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
            )
        ],
    )
    s.redrive_failed(from_ledger=True)
    s.feeding = True
    feed = LedgerFeed(
        workflow_id="w",
        execution="e",
        own=True,
        to_record=7,
        position=LedgerPosition("run", 42, 3),
    )
    book = LedgerBook("e")
    book.marker()
    cont = BatchContinuation(
        settings=s.settings,
        scheduler=scheduler_to_state(s, 10.0),
        ledger=book.state([feed]),
        run_items=True,
    )
    back = continuation_from_wire(continuation_to_wire(cont))
    assert back.run_items and back.ledger is not None and back.ledger.feeds == [feed]
    assert back.ledger.seq == 1 and back.ledger.base == 0
    t = scheduler_from_state(settings(), FailurePolicy.disabled(), back.scheduler)
    assert t.feed_pending == 120 and t.num_failed == 0
    item = t.failed_items[-1]
    assert item.key_length == 900 and len(item.key) == 201 and item.key.endswith("…")
    # previews of recorded failed pages stay previews, with their length
    s2 = _failed(3)
    t2 = scheduler_from_state(
        settings(),
        FailurePolicy.disabled(),
        from_wire(SchedulerState, to_wire(scheduler_to_state(s2, 10.0))),
    )
    assert [(p.recorded, p.full_length) for p in t2.failed] == [(True, len("page-0-") + 300)] * 3
    assert build_progress(t2, 11.0).failed_pages[0].cursor_length == len("page-0-") + 300


def test_item_failures_of_an_older_continuation_still_read() -> None:
    s = Scheduler(settings(), 1, 0.0)
    state = to_wire(scheduler_to_state(s, 1.0))
    state["failed_items"] = [["key", 3, "E", "msg", 5.0]]  # the five-field form
    t = scheduler_from_state(settings(), FailurePolicy.disabled(), from_wire(SchedulerState, state))
    assert t.failed_items[0].key == "key" and t.failed_items[0].key_length == 3


def test_item_keys_become_pages_of_bounded_size() -> None:
    keys = [f"k{i}-" + "x" * 990 for i in range(100)] + ["k0-" + "x" * 990]  # one repeated
    cursors = item_pages(keys, page_size=50)
    assert all(len(c) <= 12_000 for c in cursors) and len(cursors) > 2
    assert sum(c.count('"k') for c in cursors) == 100  # each key once
