"""The open item workflows of a batch (``ItemBook``), alone: orders of arrival, bounds, the
hand-over and its worst case."""

from __future__ import annotations

import json
import random
import string

from batch_orchestra._engine.budgets import HANDOVER_BYTES
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_to_state,
)
from batch_orchestra._engine.items import (
    ITEM_CHECK_BATCH,
    MAX_EARLY,
    MAX_ITEM_WORKFLOW_KEY,
    MAX_OPEN_ITEMS,
    ItemBook,
    ItemClose,
)
from batch_orchestra._engine.scheduler import Scheduler
from tests.test_scheduler import settings


def test_a_close_before_its_page_reports_waits_and_counts_once() -> None:
    book = ItemBook(10)
    assert not book.close(ItemClose("a", ok=True))  # the page has not reported it yet
    assert not book.close(ItemClose("a", ok=True))  # a repeat
    applied = book.opened(3, ["a", "b"], now=5.0)
    assert [c.key for c in applied] == ["a"] and applied[0].page_num == 3
    assert book.started == 2 and book.completed == 1 and list(book.open) == ["b"]
    assert book.close(ItemClose("b", ok=False, error_type="Declined"))
    assert (book.completed, book.failed, len(book.open), len(book.early)) == (1, 1, 0, 0)
    book.opened(4, ["a", "b"], now=6.0)  # a redelivered report opens nothing again
    assert (book.started, len(book.open)) == (2, 0)


def test_room_counts_open_items_and_what_running_pages_reserve() -> None:
    book = ItemBook(50)
    book.opened(1, [f"k{i}" for i in range(30)], now=0.0)
    assert book.room(reserved=10) == 10
    assert book.room(reserved=40) == 0


def test_early_closes_are_bounded_and_their_messages_short() -> None:
    book = ItemBook(10)
    for i in range(MAX_EARLY + 50):
        book.close(ItemClose(f"e{i}", ok=False, error_message="x" * 5000))
    assert len(book.early) == MAX_EARLY and "e0" not in book.early
    assert max(len(c.error_message) for c in book.early.values()) <= 200


def test_checks_take_the_longest_unchecked_first_and_rotate() -> None:
    book = ItemBook(2000)
    book.opened(1, [f"k{i}" for i in range(250)], now=0.0)
    # Just opened (under two intervals): their own message usually comes first.
    assert book.to_check(now=29.0, interval=15.0) == []
    first = book.to_check(now=30.0, interval=15.0)
    second = book.to_check(now=30.0, interval=15.0)
    third = book.to_check(now=30.0, interval=15.0)
    assert len(first) == len(second) == ITEM_CHECK_BATCH and len(third) == 50
    assert set(first) | set(second) | set(third) == set(book.open)
    assert book.to_check(now=45.0, interval=15.0) == []  # all checked under two intervals ago
    assert len(book.to_check(now=60.0, interval=15.0)) == ITEM_CHECK_BATCH


def test_the_worst_case_hand_over_fits_its_budget() -> None:
    # 10,000 open items with keys of the longest allowed, incompressible, and the most early
    # closes with the longest kept messages.
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    book = ItemBook(MAX_OPEN_ITEMS)
    keys = ["".join(rng.choices(alphabet, k=MAX_ITEM_WORKFLOW_KEY)) for _ in range(MAX_OPEN_ITEMS)]
    book.opened(123_456, keys, now=1_700_000_000.0)
    for i in range(MAX_EARLY):
        message = "".join(rng.choices(alphabet, k=500))
        book.close(
            ItemClose(
                f"early-{i:04d}-" + "z" * 50,
                ok=False,
                error_type="E" * 40,
                error_message=message,
                at=1_700_000_000.5,
            )
        )
    sched = Scheduler(settings(), 10, 1_000.0)
    cont = BatchContinuation(
        settings=settings(), scheduler=scheduler_to_state(sched, None), items=book.state()
    )
    wire = continuation_to_wire(cont)
    size = len(json.dumps(wire, separators=(",", ":")))
    # 0.88 MB measured: under the hand-over's 1.5 MB with room for the input and the pages; a
    # hand-over that still would not fit is put off while no new item starts (admission).
    assert size < 1_000_000 < HANDOVER_BYTES, size
    assert book.held_bytes >= size * 0.8  # the estimate the hand-over plans with is not low
    back = ItemBook.restore(MAX_OPEN_ITEMS, continuation_from_wire(wire).items)
    assert list(back.open) == keys and len(back.early) == MAX_EARLY
    assert back.started == MAX_OPEN_ITEMS and back.open[keys[0]].page_num == 123_456


def test_a_batch_without_items_hands_over_the_same_bytes() -> None:
    sched = Scheduler(settings(), 10, 1_000.0)
    cont = BatchContinuation(settings=settings(), scheduler=scheduler_to_state(sched, None))
    assert "items" not in continuation_to_wire(cont)


def test_the_worst_close_signal_fits_a_signals_budget() -> None:
    """The most closes one ``ItemsClosed`` signal carries, each with the longest key, error type
    and message, of characters JSON escapes the most: under Temporal's 2 MB."""
    from temporalio.converter import DataConverter

    from batch_orchestra._model.messages import (
        MAX_CLOSES_PER_SIGNAL,
        MAX_ERROR_TYPE,
        ItemClosed,
        ItemsClosed,
    )

    wide = "\U0001f4a5"  # outside the BMP: "\\ud83d\\udca5", 12 bytes, in JSON
    closed = [
        ItemClosed(
            execution="",
            key=wide * MAX_ITEM_WORKFLOW_KEY,
            ok=False,
            error_type=wide * MAX_ERROR_TYPE,
            error_message=wide * 500,
        )
        for _ in range(MAX_CLOSES_PER_SIGNAL)
    ]
    msg = ItemsClosed(execution="0" * 36, closed=closed)
    (payload,) = DataConverter.default.payload_converter.to_payloads([msg])
    assert payload.ByteSize() < 1024 * 1024, payload.ByteSize()  # half the 2 MB: converters vary


def test_a_followed_items_error_type_is_cut_to_its_budget() -> None:
    from temporalio.exceptions import ApplicationError

    from batch_orchestra._model.messages import MAX_ERROR_TYPE
    from batch_orchestra._worker.item_follower import _failure

    kind, message = _failure(ApplicationError("declined", type="T" * 100_000))
    assert kind == "T" * MAX_ERROR_TYPE and message.endswith("declined")
