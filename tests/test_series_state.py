"""The series' book on its own: claims, commits and the mark (no Temporal)."""

from __future__ import annotations

from typing import Any

from batch_orchestra._series.state import (
    MAX_CLAIMS,
    MAX_RUN_LOG,
    SeriesBook,
    book_from_wire,
    book_to_wire,
)


def _claim(book: SeriesBook, run: str, high: str | None, version: int | None = None, **kw: Any):
    return book.claim(
        run_id=run,
        kind=kw.pop("kind", "scheduled"),
        nominal=kw.pop("nominal", 0.0),
        low=kw.pop("low", None),
        high=high,
        version=book.version if version is None else version,
        batch_id=f"b-{run}",
        now=kw.pop("now", 1.0),
    )


def _commit(book: SeriesBook, run: str, outcome: str = "completed", **kw: Any) -> str:
    return book.commit(
        run_id=run,
        outcome=outcome,
        reason=kw.get("reason"),
        pages=1,
        failed_pages=0,
        items=1,
        failed_items=0,
        now=2.0,
    )


def test_a_run_claims_once_and_commits_once() -> None:
    book = SeriesBook()
    book.mark = "0"
    first = _claim(book, "t1", "10").claim
    assert first is not None and (first.low, first.high) == ("0", "10")
    again = _claim(book, "t1", "99").claim  # a retried tick: the same claim, whatever it says
    assert again is first and book.next_claim == 2
    assert _commit(book, "t1") == "committed" and book.mark == "10"
    assert _commit(book, "t1") == "committed" and book.mark == "10"  # idempotent
    assert [(m.old, m.new) for m in book.marks] == [("0", "10")]


def test_a_claim_against_an_old_version_is_refused() -> None:
    book = SeriesBook()
    v = book.version
    book.set_mark("5", "ops", "skip ahead", 0.0)
    answer = _claim(book, "t1", "10", version=v)
    assert answer.claim is None and answer.stale
    assert _claim(book, "t1", "10").claim is not None


def test_failed_and_held_runs_leave_the_mark_and_the_next_run_covers_both() -> None:
    book = SeriesBook()
    book.mark = "0"
    _claim(book, "t1", "10")
    assert _commit(book, "t1", "held", reason="2 pages failed") == "held"
    assert book.mark == "0"
    merged = _claim(book, "t2", "20").claim
    assert merged is not None and (merged.low, merged.high) == ("0", "20")
    _commit(book, "t2", "failed")
    assert book.mark == "0" and book.counts["held"] == 2 and book.counts["failed"] == 1
    _claim(book, "t3", "25")
    assert _commit(book, "t3", "advanced") == "advanced" and book.mark == "25"
    assert [r.outcome for r in book.runs] == ["held", "failed", "advanced"]


def test_an_operator_mark_makes_the_open_claim_stale_and_never_moves_back_otherwise() -> None:
    book = SeriesBook()
    book.mark = "0"
    _claim(book, "t1", "10")
    book.set_mark("7", "alice@host", "rows 1-7 were loaded by hand", 3.0)
    assert _commit(book, "t1") == "stale" and book.mark == "7"
    assert book.marks[-1].by == "alice@host" and "by hand" in book.marks[-1].reason
    run = book.runs[-1]
    assert run.outcome == "stale" and "moved to '7'" in (run.reason or "")


def test_a_backfill_never_moves_the_mark() -> None:
    book = SeriesBook()
    book.mark = "50"
    claim = _claim(book, "bf", "30", kind="backfill", low="0", version=None).claim
    assert claim is not None and (claim.low, claim.high) == ("0", "30")
    assert _commit(book, "bf") == "done" and book.mark == "50"
    assert book.counts == {"backfills": 1, "done": 1}


def test_empty_windows_and_skipped_ticks_are_logged() -> None:
    book = SeriesBook()
    book.mark = "5"
    claim = _claim(book, "t1", None).claim
    assert claim is not None and claim.outcome == "empty" and claim.batch_id is None
    assert book.note_ticks(3, 0, 1.0) == 3
    assert book.note_ticks(3, 0, 2.0) == 0  # counted once
    assert book.note_ticks(4, 1, 3.0) == 1
    kinds = [(r.kind, r.outcome) for r in book.runs]
    assert kinds == [("scheduled", "empty"), ("skipped", "skipped"), ("skipped", "skipped")]
    assert book.counts["skipped"] == 4 and book.counts["missed"] == 1


def test_the_book_is_bounded_and_survives_the_wire() -> None:
    book = SeriesBook()
    book.mark = "0"
    for i in range(MAX_CLAIMS + 50):
        _claim(book, f"t{i}", str(i + 1))
        _commit(book, f"t{i}")
    assert len(book.claims) == MAX_CLAIMS and len(book.runs) == MAX_RUN_LOG
    assert book.mark == str(MAX_CLAIMS + 50)
    again = SeriesBook(book_from_wire(book_to_wire(book.state())))
    assert again.state() == book.state()
    # A forgotten claim's run that claims again starts from the mark: no gap, maybe redone.
    late = _claim(again, "t0", "999").claim
    assert late is not None and late.low == book.mark
