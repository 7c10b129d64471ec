"""Every payload the workflow builds stays within its budget at the public limits (pure).

The worst case the public API allows: cursors of 16 K characters (here of text that JSON escapes
to 12 bytes a character, the worst there is), args of 256 KB, hook args of 64 KB, error messages
and item keys far longer than kept, full lists, a result of 256 KB, page values of 16 KB.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from batch_orchestra import ItemFailure, PageFailure
from batch_orchestra._engine.budgets import (
    FAILURE_DETAILS_BYTES,
    HANDOVER_BYTES,
    HISTORY_BYTES,
    LEDGER_READ_BYTES,
    LEDGER_RECORD_BYTES,
    MAX_ARGS_BYTES,
    MAX_BATCH_ID_CHARS,
    MAX_CURSOR_BYTES,
    MAX_HOOK_ARGS_BYTES,
    MAX_ITEM_KEY,
    MAX_PAGE_VALUE_BYTES,
    MAX_RESULT_BYTES,
    NOTIFY_CHUNK_BYTES,
    PAYLOAD_LIMIT,
    PROGRESS_BYTES,
    REDUCE_INPUT_BYTES,
    START_BYTES_PER_TASK,
    clip,
    preview,
    text_size,
    wire_size,
)
from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_to_wire,
    scheduler_to_state,
)
from batch_orchestra._engine.flow import FlowControl, FlowState
from batch_orchestra._engine.history import History
from batch_orchestra._engine.ledger import (
    LedgerBook,
    LedgerItem,
    LedgerPage,
    LedgerPosition,
    LedgerRecord,
    ReadLedgerInput,
    ReadLedgerResult,
)
from batch_orchestra._engine.outbox import notice_chunk
from batch_orchestra._engine.progress import (
    _rough_size,
    build_progress,
    flow_progress,
    guard_progress,
)
from batch_orchestra._engine.scheduler import Outcome, Scheduler
from batch_orchestra._ledger_history import _fill
from batch_orchestra._model import BatchOrchestratorInput, input_to_wire
from batch_orchestra._model.messages import (
    DiscoverPageInput,
    FailureDetailsRequest,
    HealthCheckInput,
    NotifyInput,
    ProcessPageInput,
    ReduceInput,
    TrackerInput,
)
from batch_orchestra._worker.page import BatchPage
from batch_orchestra._workflow.details import failure_details
from tests.test_scheduler import settings

WORST = "\U0001f600"  # one character, 12 bytes as JSON (an escaped surrogate pair)
MB = 1024 * 1024
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def cursor(i: int) -> str:
    head = f"{i}:"
    return head + WORST * (MAX_CURSOR_BYTES - len(head))


def _error(i: int) -> str:
    return f"{i} " + WORST * 5_000


def _item(page: int, i: int) -> ItemFailure:
    key = (f"{page}-{i}-" + WORST * MAX_ITEM_KEY)[:MAX_ITEM_KEY]
    return ItemFailure(
        key=key,
        page_num=page,
        error_type="E" + WORST * 1_000,
        error_message=WORST * 5_000,
        failed_at=AT,
        key_length=len(key),
    )


def worst_scheduler(n: int = 100) -> Scheduler:
    """``n`` pages of each: failed for good (in the ledger), stuck, retrying, and failing
    discoveries, each with its own long error; ``n`` item failures with long keys."""
    s = Scheduler(settings(maximum_attempts=2, discovers_apart=True), 1_900, 0.0)
    s.enqueue(None, [(cursor(i), 10) for i in range(4 * n)])
    s.take_runnable()
    for i in range(4 * n):
        if i < n:
            out = s.fail(i, "Fatal" + WORST * 500, _error(i), non_retryable=True, now=1.0)
            assert out is Outcome.FAILED
            s.keep_preview(s.failed[-1])
        elif i < 3 * n:
            assert s.fail(i, "E" + WORST * 500, _error(i), non_retryable=False, now=1.0) in (
                Outcome.RETRY,
                Outcome.STUCK,
            )
        else:
            s.complete(i, 10, 1.0)
    # the second third again: exhausted, so stuck; the third stays retrying
    for i in range(2 * n, 3 * n):
        s.pages[i].ready_at = 2e9
    s.release_due(1e9)
    for a in s.take_runnable():
        s.fail(a.page_num, "E", _error(a.page_num), non_retryable=False, now=2.0)
    while len(s.failing_discoveries) < n:
        for d in s.take_discoveries():
            s.discovery_failed(d.page_num, "D" + WORST * 500, _error(d.page_num), 3.0)
    s.record_item_failures(10 * n, [_item(i % 50, i) for i in range(n)])
    return s


def longest_history() -> History:
    """A week-long batch's history (the most samples kept) with counts at their longest: a
    sample a minute for its last 2 days, every hour before (merged to an hour anyway)."""
    h, t, week = History(), 0.0, 7 * 86_400.0
    while t <= week:
        items = int(1e6 * t)
        h.record(
            1.8e9 + t, pages=items // 10, items=items, running=1_900, cap=10_000, effective=1_900
        )
        t += 60.0 if t >= week - 2 * 86_400.0 else 3_600.0
    return h


def worst_progress() -> Any:
    s = worst_scheduler()
    flow = FlowControl(FlowState())
    for i in range(40):
        flow.log_change(f"change {i} " + WORST * 5_000, "by " + WORST * 5_000, float(i))
    p = build_progress(s, 10.0, 1_000)
    flow_progress(p, flow, "throttled " + WORST * 5_000)
    p.pause_reason = s.pause_reason
    p.result = {"sample": "x" * (MAX_RESULT_BYTES - 20)}
    p.redrive_of = "w" * MAX_BATCH_ID_CHARS
    return s, p


def test_progress_at_the_limits_is_trimmed_to_its_budget_and_counts_stay_exact() -> None:
    s, p = worst_progress()
    assert p.failed_pages and p.stuck_pages and p.retrying_pages and p.failing_discoveries
    size = guard_progress(p)
    assert size == wire_size(p) <= PROGRESS_BYTES
    assert p.lists_trimmed and "counts are exact" in p.lists_trimmed
    assert p.num_failed_pages == 100 and p.num_failed_items == 1_000
    assert p.num_stuck_pages + p.num_retrying_pages == 200
    for f in p.failed_pages + p.stuck_pages:  # previews, with the whole length
        assert not f.cursor_is_whole and f.cursor_length == len(cursor(f.page_num))
        assert text_size(f.cursor_str) <= 2 * 200 + 20


def test_progress_without_a_result_fits_untrimmed_when_text_is_ascii() -> None:
    s = Scheduler(settings(maximum_attempts=1), 1_900, 0.0)
    s.enqueue(None, [(f"{i}:" + "c" * 16_000, 10) for i in range(200)])
    s.take_runnable()
    for i in range(200):
        s.fail(i, "Oops", "m" * 5_000, non_retryable=i < 100, now=1.0)
        if i < 100:
            s.keep_preview(s.failed[-1])
    p = build_progress(s, 2.0)
    assert guard_progress(p) <= PROGRESS_BYTES and p.lists_trimmed is None
    assert len(p.failed_pages) == len(p.stuck_pages) == 100


def test_the_cheap_bound_of_progress_is_an_upper_bound() -> None:
    s = worst_scheduler(20)
    p = build_progress(s, 5.0)
    assert 0 <= _rough_size(p) and wire_size(p) <= _rough_size(p)


def test_hook_inputs_around_the_worst_progress_stay_far_under_the_payload_limit() -> None:
    _, p = worst_progress()
    guard_progress(p)
    args, bid = "a" * MAX_HOOK_ARGS_BYTES, "b" * MAX_BATCH_ID_CHARS
    tracker = wire_size(TrackerInput("t" * 200, args, bid, p, True))
    health = wire_size(HealthCheckInput("h" * 200, args, bid, p))
    pages = deque(
        PageFailure(
            page_num=i,
            cursor_str=cursor(i),
            cursor_length=len(cursor(i)),
            attempts=3,
            error_type="E",
            error_message=clip(_error(i), 500),
            failed_at=AT,
        )
        for i in range(20)
    )
    chunk = notice_chunk(pages, len(pages))
    assert chunk and wire_size(chunk) <= NOTIFY_CHUNK_BYTES + wire_size(chunk[-1])
    assert all(f.cursor_is_whole for f in chunk)  # the notifier gets whole cursors
    notify_pages = wire_size(
        NotifyInput("n", args, bid, "w" * 1_000, "pages_failed", None, chunk, p)
    )
    items = deque(_item(1, i) for i in range(1_000))
    item_chunk = notice_chunk(items, 500)
    notify_items = wire_size(
        NotifyInput("n", args, bid, "w" * 1_000, "items_failed", None, [], p, item_chunk)
    )
    budget = PROGRESS_BYTES + MAX_HOOK_ARGS_BYTES + NOTIFY_CHUNK_BYTES + 300 * 1024
    for size in (tracker, health, notify_pages, notify_items):
        assert size <= budget < 0.75 * PAYLOAD_LIMIT, size


def test_reduce_input_holds_a_bounded_share_of_the_waiting_values() -> None:
    values = deque({"v": "x" * (MAX_PAGE_VALUE_BYTES - 20)} for _ in range(400))
    chunk = notice_chunk(values, len(values), REDUCE_INPUT_BYTES)
    result = {"r": "y" * (MAX_RESULT_BYTES - 20)}
    size = wire_size(ReduceInput("P" * 200, result, chunk, True))
    assert len(chunk) < 400 and size <= REDUCE_INPUT_BYTES + MAX_RESULT_BYTES + 2 * 16_384


def test_one_task_starts_at_most_its_byte_budget_of_attempts_and_discoveries() -> None:
    s = Scheduler(settings(discovers_apart=True), 1_900, 0.0)
    s.enqueue(None, [(cursor(i), 10) for i in range(600)])
    args = "a" * MAX_ARGS_BYTES
    per_attempt = 600 + len(args) + MAX_BATCH_ID_CHARS + 200
    attempts = s.take_runnable(500, START_BYTES_PER_TASK, per_attempt)
    inputs = [
        ProcessPageInput("P" * 200, BatchPage(a.cursor, a.size), a.page_num, 1, args, "b", False)
        for a in attempts
    ]
    sizes = [wire_size(i) for i in inputs]
    assert s.bytes_limited and 1 <= len(attempts) < 600
    assert sum(sizes) <= START_BYTES_PER_TASK + max(sizes) and max(sizes) < 0.5 * PAYLOAD_LIMIT
    found = s.take_discoveries(50, START_BYTES_PER_TASK, per_attempt)
    d_sizes = [
        wire_size(
            DiscoverPageInput("P" * 200, BatchPage(d.cursor, d.size), d.page_num, 1, args, "b")
        )
        for d in found
    ]
    assert found and sum(d_sizes) <= START_BYTES_PER_TASK + max(d_sizes)


def test_ledger_records_stay_within_their_budget() -> None:
    book = LedgerBook("exec")
    for i in range(60):
        book.add_page(
            LedgerPage(i, cursor(i), 10, 3, True, "E" * 200, clip(_error(i), 500), 1.0, i), 1.0
        )
    for i in range(2_000):
        it = _item(i, i)
        book.add_item(
            LedgerItem(i, it.key, it.error_type[:200], clip(it.error_message, 500), 1.0), 1.0
        )
    book.seal()
    records = list(book.sealed)
    assert len(records) > 10 and [r.seq for r in records] == list(range(len(records)))
    for r in records:
        size = wire_size(r)
        entries = len(r.pages) + len(r.items)
        assert size <= LEDGER_RECORD_BYTES or entries == 1, (size, entries)
        assert size <= 2 * LEDGER_RECORD_BYTES
    assert sum(len(r.pages) for r in records) == 60
    assert sum(len(r.items) for r in records) == 2_000


async def _records(records: list[LedgerRecord], start: int) -> Any:
    for k, r in enumerate(records[start:]):
        yield r, LedgerPosition("run", start + k + 1)


async def test_a_read_of_a_ledger_returns_whole_records_within_its_budget() -> None:
    book = LedgerBook("exec")
    for i in range(300):
        book.add_page(LedgerPage(i, cursor(i), 10, 1, False, "E", "m", 1.0), 1.0)
    book.seal()
    records = list(book.sealed)
    inp = ReadLedgerInput(workflow_id="w", execution="exec", max_bytes=LEDGER_READ_BYTES)
    pages: list[int] = []
    position: LedgerPosition | None = None
    reads = 0
    while True:
        out = ReadLedgerResult(position=position)
        done = await _fill(out, _records(records, position.event_id if position else 0), inp)
        reads += 1
        assert wire_size(out) <= LEDGER_READ_BYTES + LEDGER_RECORD_BYTES
        pages += [p.page_num for p in out.pages]
        position = out.position
        if done:
            break
    assert pages == list(range(300)) and reads > 10  # each once, in order, across reads


def test_the_failure_details_query_answers_a_bounded_page() -> None:
    s = worst_scheduler(30)

    engine = SimpleNamespace(
        started=True, sched=s, failures=SimpleNamespace(book=LedgerBook("exec"))
    )
    req = FailureDetailsRequest("stuck")
    answer = failure_details(engine, req)  # type: ignore[arg-type]
    assert answer.pages and answer.next_after is not None
    assert wire_size(answer) <= FAILURE_DETAILS_BYTES + max(wire_size(p) for p in answer.pages)
    assert all(p.cursor_is_whole for p in answer.pages)


def test_a_hand_over_of_the_bounded_state_fits_with_every_input_at_its_limit() -> None:
    """Everything but held pages at its limit still fits in a hand-over, so a put-off hand-over
    always happens once pages have run and released their cursors."""
    s = worst_scheduler()
    for n in list(s.pages):  # no held pages: only what is bounded whatever the batch does
        s.waiting.discard(n)
        s.table.release(s.pages[n])
    s.ready.clear()
    s.running.clear()
    s.discovering.clear()
    for i in range(64):
        s.recent.remember(WORST * 64 + str(i))
    flow = FlowControl(FlowState())
    for i in range(40):
        flow.log_change(f"change {i} " + WORST * 5_000, "by " + WORST * 5_000, float(i))
    inp = BatchOrchestratorInput(
        page_processor="P",
        page_size=10,
        max_parallelism=10,
        args="a" * MAX_ARGS_BYTES,
        batch_id="b" * MAX_BATCH_ID_CHARS,
    )
    raw = input_to_wire(inp)
    for hook in ("batch_tracker", "notifier", "health_check"):
        raw[hook] = {"name": "h", "args": "x" * MAX_HOOK_ARGS_BYTES}
    raw["continuation"] = continuation_to_wire(
        BatchContinuation(
            settings=s.settings,
            scheduler=scheduler_to_state(s, 10.0),
            flow=flow.state,
            result={"r": "y" * (MAX_RESULT_BYTES - 20)},
            unreduced=[{"v": "z" * (MAX_PAGE_VALUE_BYTES - 20)} for _ in range(8)],
            history=longest_history().state(),
        )
    )
    assert HISTORY_BYTES >= wire_size(raw["continuation"]["history"]) > 15_000
    size = wire_size(raw)
    sched = raw["continuation"]["scheduler"]
    parts = sorted(((wire_size(v), k) for k, v in sched.items()), reverse=True)[:4]
    assert size <= HANDOVER_BYTES, (size, parts, wire_size(raw["continuation"]["flow"]))
    print(f"\nbounded state at the limits: {size:,} B of {HANDOVER_BYTES:,}")


def test_clip_and_preview_bound_bytes_whatever_the_text() -> None:
    for text in ("a" * 10_000, WORST * 10_000, "\x01" * 10_000, '"' * 10_000, "é" * 10_000):
        assert text_size(clip(text, 500)) <= 1_002
        p = preview(text, 200)
        assert p.endswith("…") and text_size(p) <= 2 * 200 + 2 + 8
    assert preview("short", 200) == "short" and clip("short", 500) == "short"
    clipped = clip(WORST * 10, 50)  # whole characters, at most 102 bytes as JSON
    assert clipped.strip(WORST) == "" and 7 <= len(clipped) and text_size(clipped) <= 102
