"""Property tests of the pure core: the scheduler (with discovery apart), flow control and the
hand-over codec, driven by Hypothesis through random sequences of what the workflow does.

The state machine calls the scheduler the way ``_workflow.py`` does: attempts start through
``take_runnable`` under flow control's cap and allowance; a running page enqueues successors
(or its discovery apart finds them); an attempt completes, fails, is lost with its worker, did
no work, or was never started; time passes and retries come due; operators pause, resume, change
parallelism and rates, retry, skip and redrive; and at any point the run hands over: its state
is encoded as the continue-as-new input, sent through JSON, and decoded into a fresh scheduler
that carries on. After every step the invariants are checked.

``make test`` runs a short, derandomized profile (a few seconds); ``make properties`` runs the
long one (``HYPOTHESIS_PROFILE=long``). The bugs these tests found keep an explicit regression
test each at the end of this file.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from batch_orchestra._engine import failures, pages
from batch_orchestra._engine.budgets import (
    MAX_CURSOR_BYTES,
    START_BYTES_PER_TASK,
    text_size,
    wire_size,
)
from batch_orchestra._engine.continuation import (
    SchedulerState,
    scheduler_from_state,
    scheduler_to_state,
)
from batch_orchestra._engine.flow import FlowControl, FlowState
from batch_orchestra._engine.progress import build_progress
from batch_orchestra._engine.scheduler import Outcome, PageState, Scheduler
from batch_orchestra._model import FailurePolicy, ProcessorSettings
from batch_orchestra._model.codec import from_wire, to_wire
from tests.test_scheduler import settings as processor_settings

settings.register_profile(
    "ci",
    max_examples=25,
    stateful_step_count=35,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "2000")),
    stateful_step_count=80,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

# Characters that JSON escapes (quotes, backslashes, control characters, non-ASCII, an astral
# character that takes 12 bytes) beside plain ones: cursors collide often (the loop checks and
# the live-cursor bookkeeping), and a few are as long as a cursor may be.
_CHARS = 'ab"\\\x00\n\x1féé\U0001f600'
_SHORT = st.text(alphabet=_CHARS, min_size=0, max_size=3)
_BIG = st.builds(
    lambda head, ch, n: (head + ch * n)[:MAX_CURSOR_BYTES],
    _SHORT,
    st.sampled_from(["x", '"', "\\", "\x01", "é", "\U0001f600"]),
    st.integers(1_000, MAX_CURSOR_BYTES),
)
# text that neither compression nor a short JSON form makes small: the hand-over's worst case
_NOISE = st.builds(
    lambda seed, n: "".join(random.Random(seed).choices(_WIDE, k=n)),
    st.integers(0, 2**32),
    st.integers(1_000, MAX_CURSOR_BYTES),
)
_WIDE = [chr(c) for c in range(0x100, 0xD000, 7)] + ['"', "\\", "\x00", "\U0001f600"]
CURSORS = st.one_of(_SHORT, _SHORT, _SHORT, _SHORT, _SHORT, _SHORT, _BIG, _NOISE)
ERRORS = st.sampled_from([("E", "m"), ("E", "other"), ("Fatal", "listed"), ("Timeout", "t")])

BOUNDED_STATE_BYTES = 96 * 1024
"""What a hand-over of the scheduler carries besides its held pages and their discoveries
(counters, the recent-cursor window, errors, the listed failed pages): the workflow's
``HANDOVER_STATE_BYTES``."""


def _settings(**kw: Any) -> ProcessorSettings:
    return processor_settings(**kw)


def handover(s: Scheduler, deadline: float | None, confirm_by: float | None = None) -> Scheduler:
    """``s`` carried into the next run, through JSON as Temporal sends it."""
    wire = json.loads(json.dumps(to_wire(scheduler_to_state(s, deadline, confirm_by))))
    return scheduler_from_state(s.settings, s.policy, from_wire(SchedulerState, wire))


def observed(s: Scheduler, now: float) -> dict[str, Any]:
    """Everything the public methods and progress show of a scheduler (but its run number)."""
    p = to_wire(build_progress(s, now))
    p.pop("num_runs")
    return {
        "progress": p,
        "pages": {
            n: (p_.cursor, p_.size, p_.chain, p_.attempts, p_.unrun, p_.successor_enqueued)
            for n, p_ in s.pages.items()
        },
        "status": {n: s.page_status(n) for n in s.pages},
        "ready": list(s.ready),
        "running": sorted(s.running),
        "next_due": s.next_due(),
        "discovering": sorted(s.discovering),
        "effective": s.effective_parallelism,
        "finished": s.is_finished,
    }


class SchedulerMachine(RuleBasedStateMachine):
    """One batch as the workflow drives it, across hand-overs."""

    attempts = Bundle("attempts")

    def __init__(self) -> None:
        super().__init__()
        self.window = pages.RECENT_CURSOR_WINDOW
        pages.RECENT_CURSOR_WINDOW = 4  # cursors come back soon: the window matters

    def teardown(self) -> None:
        pages.RECENT_CURSOR_WINDOW = self.window

    @initialize(
        first=st.lists(CURSORS, min_size=1, max_size=6),
        parallelism=st.integers(0, 4),
        apart=st.booleans(),
        at_most_once=st.booleans(),
        extended=st.booleans(),
        ledger=st.booleans(),
        ramp=st.sampled_from([None, 100.0]),
        rate=st.sampled_from([None, 0.5, 2.0]),
    )
    def start(
        self,
        first: list[str],
        parallelism: int,
        apart: bool,
        at_most_once: bool,
        extended: bool,
        ledger: bool,
        ramp: float | None,
        rate: float | None,
    ) -> None:
        self.now = 1_000.0
        kw: dict[str, Any] = dict(discovers_apart=apart, use_extended_retries=extended)
        if at_most_once:
            kw.update(at_most_once=True, maximum_attempts=1, use_extended_retries=False)
        self.s = Scheduler(_settings(**kw), parallelism, self.now, FailurePolicy())
        self.ramp = ramp
        self.flow = FlowControl(FlowState(max_pages_per_second=rate), ramp_up=ramp)
        self.ledger = ledger
        self.ledger_pages: dict[int, PageState] = {}  # what a failure ledger holds
        self.failed: set[int] = set()  # pages failed for good (model)
        self.completed: set[int] = set()
        self.skipped: set[int] = set()
        self.feed: list[int] = []  # failed pages to read back from the ledger
        self.handovers = 0
        self.had_successors: set[int] = set()  # pages whose successors joined the batch
        self.ledger_gap: set[int] = set()  # read back from a ledger with a stale successor mark
        added = self.s.enqueue(None, [(c, 5) for c in first]).added
        assert len(added) == len(set(first)) or len(added) <= len(first)
        self.ramp_since: float | None = None  # when the ramp-up began (model)
        if not self.s.paused:
            self._flow_start()

    # -- helpers ---------------------------------------------------------------------------

    def _finished(self, page_num: int) -> None:
        assert page_num not in self.s.pages

    def _flow_start(self) -> None:
        self.flow.start(self.now)
        self.ramp_since = self.now

    def _successors_of(self, num: int) -> None:
        if num in self.ledger_gap:
            self.ledger_gap.discard(num)
        else:
            assert num not in self.had_successors, f"page {num}'s successors joined twice"
        self.had_successors.add(num)

    def _current(self, key: tuple[int, int]) -> bool:
        return self.s.is_current(*key)

    # -- starting --------------------------------------------------------------------------

    @rule(target=attempts)
    def start_attempts(self) -> Any:
        s, flow, now = self.s, self.flow, self.now
        s.flow_cap, _ = flow.cap(s.max_parallelism, now)
        allowance = flow.allowance(now, 5.0)
        limit = 50 if allowance is None else min(50, allowance)
        before = set(s.running)
        got = s.take_runnable(limit, START_BYTES_PER_TASK, 600)
        flow.started([a.page_num for a in got], now, 5.0)
        if got:
            assert len(s.running) <= s.effective_parallelism, "running past the cap"
            assert sum(600 + text_size(a.cursor) for a in got[:-1]) <= START_BYTES_PER_TASK
        for a in got:
            assert a.page_num not in before and a.page_num in s.running
            assert s.pages[a.page_num].attempts == a.attempt
        if self.ramp is not None and self.ramp_since is not None and got:
            elapsed = now - self.ramp_since
            if elapsed < self.ramp:  # a new start stays under the ramp's cap
                bound = max(1, int(1 + (s.max_parallelism - 1) * elapsed / self.ramp))
                assert len(s.running) <= max(bound, len(before)), "the ramp-up was lost"
        return multiple_keys(got)

    # -- outcomes --------------------------------------------------------------------------

    @rule(att=attempts, succ=st.lists(CURSORS, max_size=3))
    def enqueue_successors(self, att: tuple[int, int], succ: list[str]) -> None:
        s = self.s
        num = att[0]
        page = s.pages.get(num)
        # A late enqueue of an earlier attempt (the page waits for its retry) is taken too.
        taken = page is not None and not page.successor_enqueued and num not in s.discovering
        res = s.enqueue(num, [(c, 5) for c in succ])
        if not taken:
            assert not res.added, "an enqueue from a page not in flight was taken"
        else:
            self._successors_of(num)
        for n in res.added:
            assert s.pages[n].chain == page.chain  # type: ignore[union-attr]

    @rule(att=attempts, items=st.integers(0, 5), succ=st.lists(CURSORS, max_size=2))
    def complete(self, att: tuple[int, int], items: int, succ: list[str]) -> None:
        s = self.s
        if not self._current(att):
            return  # the workflow drops a stale outcome
        num = att[0]
        if succ:  # successors carried in the outcome go first (_complete_page)
            page = s.pages[num]
            if not page.successor_enqueued and num not in s.discovering:
                self._successors_of(num)
            s.enqueue(num, [(c, 5) for c in succ])
        self.flow.finished(num, self.now, ok=True, in_use=len(s.running), max_parallelism=4)
        s.complete(num, items, self.now)
        self.completed.add(num)
        self._finished(num)

    @rule(
        att=attempts,
        error=ERRORS,
        non_retryable=st.booleans(),
        kind=st.sampled_from(["plain", "plain", "lost", "unrun"]),
    )
    def fail(self, att: tuple[int, int], error: tuple[str, str], non_retryable: bool, kind: str):
        s = self.s
        if not self._current(att):
            return
        num = att[0]
        self.flow.finished(num, self.now, ok=False, in_use=len(s.running), max_parallelism=4)
        out = s.fail(
            num,
            error[0],
            error[1],
            non_retryable=non_retryable,
            did_not_run=kind == "unrun",
            worker_lost=kind == "lost",
            now=self.now,
        )
        assert out is not Outcome.STALE
        if out is Outcome.FAILED:
            self._finished(num)
            assert s.failed[-1].page_num == num
            self._failed_for_good(num)
        else:
            assert num in s.waiting
        s.check_policy(self.now)
        s.check_stall(self.now)

    def _failed_for_good(self, num: int) -> None:
        s = self.s
        self.failed.add(num)
        page = next(p for p in s.failed if p.page_num == num)
        if self.ledger:  # _record_failed_page: the ledger has it whole, the batch a preview
            self.ledger_pages[num] = PageState(
                num,
                page.cursor,
                page.size,
                chain=page.chain,
                attempts=page.attempts,
                successor_enqueued=page.successor_enqueued,
            )
            s.keep_preview(page)

    @rule(att=attempts)
    def not_started(self, att: tuple[int, int]) -> None:
        s = self.s
        was = self._current(att)
        assert s.not_started(*att) == was
        if was:
            self.flow.forget(att[0])
            assert s.page_status(att[0]) == "pending"

    @rule(att=attempts)
    def confirm_started(self, att: tuple[int, int]) -> None:
        self.s.confirm_started(*att)

    # -- discovery apart -------------------------------------------------------------------

    @precondition(lambda self: bool(self.s.discovery_ready))
    @rule()
    def start_discoveries(self) -> None:
        for d in self.s.take_discoveries(50, START_BYTES_PER_TASK, 600):
            assert self.s.is_current_discovery(d.page_num, d.attempts)

    @precondition(lambda self: bool(self.s.discovery_running))
    @rule(
        data=st.data(),
        succ=st.lists(CURSORS, max_size=3),
        how=st.sampled_from(["found", "found", "failed", "cancelled"]),
    )
    def discovery_outcome(self, data: st.DataObject, succ: list[str], how: str) -> None:
        s = self.s
        num = data.draw(st.sampled_from(sorted(s.discovery_running)))
        if how == "found":
            chain = s.discovering[num].chain
            self._successors_of(num)
            res = s.discovered(num, [(c, 5) for c in succ])
            for n in res.added:
                assert s.pages[n].chain == chain
        elif how == "failed":
            assert s.discovery_failed(num, "D", "down", self.now) > 0
        else:
            s.discovery_not_run(num)

    # -- time ------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 30.0, 100.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        running, held = set(self.s.running), set(self.s.pages)
        self.s.release_due(self.now)
        for num in sorted(held - set(self.s.pages)):  # handed over, never reported: failed
            assert any(p.page_num == num for p in self.s.failed)
            self._failed_for_good(num)
        due = self.s.next_due()
        assert due is None or due > self.now, "something due was not released"
        assert self.s.running <= running

    # -- control ---------------------------------------------------------------------------

    @rule()
    def pause(self) -> None:
        self.s.pause("paused by an operator", self.now)

    @rule()
    def resume(self) -> None:
        s = self.s
        if s.paused and s.max_parallelism == 0:
            return  # the workflow's validator refuses it
        if s.resume(self.now):
            self._flow_start()

    @rule(n=st.integers(0, 6))
    def set_parallelism(self, n: int) -> None:
        s = self.s
        was = s.paused
        old = s.set_parallelism(n, self.now)
        if was and not s.paused:
            self._flow_start()
        assert s.max_parallelism == (old if n == 0 else n)
        assert s.paused or n != 0

    @rule(rate=st.sampled_from([None, 0.2, 1.0, 3.0]))
    def set_rate(self, rate: float | None) -> None:
        self.flow.set_rates(rate, None, self.now)

    @rule(data=st.data(), action=st.sampled_from(["retry", "skip"]))
    def page_action(self, data: st.DataObject, action: str) -> None:
        s = self.s
        nums = sorted(s.pages)
        if not nums:
            return
        num = data.draw(st.sampled_from(nums))
        if s.refuse_page_action(num, action) is not None:
            assert num in s.running
            return
        if action == "retry":
            s.retry_now(num)
            assert s.ready[0] == num
        else:
            s.skip(num)
            self.skipped.add(num)
            self._finished(num)

    @rule()
    def redrive(self) -> None:
        s = self.s
        before = s.num_failed
        requeued = s.redrive_failed(from_ledger=self.ledger)
        for n in requeued:
            self.failed.discard(n)
        assert before - s.num_failed == len(requeued) + (s.feed_pending - len(self.feed))
        if self.ledger:
            self.feed = sorted(self.failed)  # read back from the ledger, a chunk at a time
            s.set_feeding(bool(self.feed))
            if not self.feed:
                s.count_unread_as_failed()
        assert s.feed_pending == len(self.feed)

    @precondition(lambda self: bool(self.feed))
    @rule(n=st.integers(1, 3))
    def read_ledger(self, n: int) -> None:
        s = self.s
        chunk, self.feed = self.feed[:n], self.feed[n:]
        for num in chunk:
            e = self.ledger_pages[num]
            page = PageState(
                e.page_num,
                e.cursor,
                e.size,
                chain=e.chain,
                attempts=e.attempts,
                successor_enqueued=e.successor_enqueued,
            )
            if num in self.had_successors and not e.successor_enqueued:
                # Its ledger entry was written before its discovery answered (left as it is).
                self.ledger_gap.add(num)
            assert s.readd(page)
            self.failed.discard(num)
        if not self.feed:
            s.set_feeding(False)

    # -- hand-over -------------------------------------------------------------------------

    @rule(confirm=st.booleans())
    def hand_over(self, confirm: bool) -> None:
        s, now = self.s, self.now
        deadline = now + 120.0
        confirm_by = now + 15.0 if confirm and not s.settings.at_most_once else None
        state = scheduler_to_state(s, deadline, confirm_by)
        size = wire_size(to_wire(state))
        # The page table holds the held pages (as the workflow's hand-over estimate counts
        # them: each cursor as JSON), the discoveries and the listed failed pages; compressed
        # and in base64 it is at most 4/3 of that. The rest is bounded whatever the batch does.
        table = len(state.pages)
        counted = s.held_bytes + sum(
            text_size(p.cursor) + 48 for p in [*s.discovering.values(), *s.failed]
        )
        assert table <= counted * 4 // 3 + 1024, (table, counted)
        assert size - table <= BOUNDED_STATE_BYTES, size - table
        before = observed(s, now)
        t = handover(s, deadline, confirm_by)
        assert t.num_runs == s.num_runs + 1
        t.set_feeding(s.feeding)  # the workflow sets these from its own state in every run
        t.set_flow_cap(s.flow_cap)
        after = observed(t, now)
        # A discovery running at a hand-over is found again in the next run (it only reads).
        before["progress"].pop("num_discovering_pages", None)
        after["progress"].pop("num_discovering_pages", None)
        if s.running:  # handed over: each must report (or say it started) by its deadline
            due = after.pop("next_due")
            before.pop("next_due")
            assert due is not None and due <= deadline
        assert after == before
        # The flow state goes through JSON too.
        flow = from_wire(FlowState, json.loads(json.dumps(to_wire(self.flow.state))))
        assert to_wire(flow) == to_wire(self.flow.state)
        self.flow = FlowControl(flow, ramp_up=self.ramp)
        self.s = t
        self.handovers += 1

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def counts_add_up(self) -> None:
        s = self.s
        p = build_progress(s, self.now)
        total = (
            p.num_completed_pages
            + p.num_processing_pages
            + p.num_pending_pages
            + p.num_stuck_pages
            + p.num_failed_pages
            + p.num_skipped_pages
        )
        assert total == p.num_discovered_pages, p
        assert p.num_completed_pages == len(self.completed)
        assert p.num_skipped_pages == len(self.skipped)
        assert s.num_failed + s.feed_pending == len(self.failed)

    @invariant()
    def every_page_is_somewhere_once(self) -> None:
        s = self.s
        known = set(range(s.next_page_num))
        held = set(s.pages)
        # no page leaves but by completing, failing or being skipped
        assert held | self.completed | self.failed | self.skipped == known
        assert not (held & self.completed or held & self.failed or held & self.skipped)
        assert not (self.completed & self.failed or self.completed & self.skipped)
        ready = list(s.ready)
        assert len(ready) == len(set(ready))
        places = [set(ready), s.running, s.waiting]
        assert sum(len(x) for x in places) == len(held)
        assert set().union(*places) == held
        assert s.handed_over <= s.running

    @invariant()
    def successors_are_found_once(self) -> None:
        for num in self.s.discovering:
            assert num not in self.had_successors or num in self.ledger_gap, (
                f"page {num}'s successors are being found again"
            )

    @invariant()
    def bookkeeping_matches_the_pages(self) -> None:
        s = self.s
        assert s.held_bytes == sum(s.table.cost(p) for p in s.pages.values())
        fresh = sum(1 for n in s.ready if s.pages[n].attempts == s.pages[n].unrun)
        assert s.queue.fresh == fresh, "pages never run, counted wrong"
        chains = Counter(p.chain for p in s.pages.values())
        chains.update(d.chain for d in s.discovering.values())
        assert dict(chains) == s.chains
        live = Counter(p.cursor for p in s.pages.values())
        assert live == _live(s), "live cursors counted wrong"
        failed = sum(text_size(p.cursor) for p in s.failed)
        assert failed <= failures.FAILED_LIST_BYTES or len(s.failed) == 1
        assert s.discovery_running <= set(s.discovering)
        assert s.discovery_waiting <= set(s.discovering)
        assert set(s.discovery_ready) <= set(s.discovering)


def _live(s: Scheduler) -> Counter[str]:
    """Each cursor the loop check sees as live, and how many held pages have it."""
    return Counter(s.table.live_cursors())


def multiple_keys(got: list[Any]) -> Any:
    from hypothesis.stateful import multiple

    return multiple(*[(a.page_num, a.attempt) for a in got])


SchedulerMachine.TestCase.settings = settings.get_profile(PROFILE)
TestSchedulerMachine = SchedulerMachine.TestCase


# -- regression examples (each found by the machine above) -------------------------------------


def test_a_page_that_did_no_work_counts_as_new_when_its_retry_comes_due() -> None:
    """An attempt that no worker knew the processor for did no work: once its retry is due
    (or an operator retries it now) the page is a new page again, as the failure policy's
    "anything left to start" test counts them."""
    for retry_now in (False, True):
        s = Scheduler(_settings(), 1, 0.0, FailurePolicy())
        s.enqueue(None, [("a", 1)])
        [att] = s.take_runnable()
        out = s.fail(
            att.page_num, "Unknown", "no worker", non_retryable=False, did_not_run=True, now=1.0
        )
        assert out is Outcome.NOT_RUN
        if retry_now:
            s.retry_now(att.page_num)
        else:
            s.release_due(100.0)
        assert s.queue.fresh == 1
        assert handover(s, None).queue.fresh == 1  # as the next run counts it
        [again] = s.take_runnable()
        assert again.attempt == 2 and s.queue.fresh == 0


def test_a_redriven_page_shares_its_cursor_with_a_later_page() -> None:
    """A page failed for good; a page with the same cursor came later (out of the recent
    window); a redrive brings the first back. When one of the two completes, the other's cursor
    is still live: a looping processor that enqueues it again is still caught."""
    s = Scheduler(_settings(), 5, 0.0)
    s.enqueue(None, [("a", 1)])
    s.take_runnable()
    assert s.fail(0, "Fatal", "x", non_retryable=True, now=1.0) is Outcome.FAILED
    s.enqueue(None, [(f"filler{i}", 1) for i in range(pages.RECENT_CURSOR_WINDOW)])
    [later] = s.enqueue(None, [("a", 1)]).added
    assert s.redrive_failed() == [0]
    s.enqueue(None, [(f"more{i}", 1) for i in range(pages.RECENT_CURSOR_WINDOW)])
    s.set_parallelism(1_000, 1.0)
    for att in s.take_runnable():
        if att.page_num == later:
            s.complete(later, 1, 2.0)
    assert 0 in s.pages and s.pages[0].cursor == "a"
    assert not s.enqueue(None, [("a", 1)]).added, "a live page's cursor was taken again"


def test_successors_found_apart_after_the_page_failed_are_not_found_again_on_redrive() -> None:
    """An at-most-once page fails for good while its discovery (next_page) still runs; the
    discovery then answers. A redrive of the page must not find its successors again."""
    s = Scheduler(
        _settings(
            discovers_apart=True, at_most_once=True, maximum_attempts=1, use_extended_retries=False
        ),
        5,
        0.0,
    )
    s.enqueue(None, [("a", 1)])
    [att] = s.take_runnable()
    [d] = s.take_discoveries()
    assert s.fail(att.page_num, "E", "x", non_retryable=False, now=1.0) is Outcome.FAILED
    assert s.discovered(d.page_num, [("b", 1)]).added == [1]
    assert s.failed[-1].successor_enqueued
    assert s.redrive_failed() == [0]
    assert [a.page_num for a in s.take_runnable()] == [1, 0]
    assert [d.page_num for d in s.take_discoveries()] == [1], "page 0's were found again"


def test_a_ramp_up_survives_a_moment_at_parallelism_one() -> None:
    """An operator sets parallelism 1 during a ramp-up, then back to 10: the ramp goes on
    (it did not: the cap jumped to 10 at once)."""
    flow = FlowControl(FlowState(), ramp_up=100.0)
    flow.start(0.0)
    assert flow.cap(10, 10.0)[0] == 1
    assert flow.cap(1, 20.0)[0] is None
    assert flow.cap(10, 30.0)[0] == 3, "the ramp-up was lost"
    assert flow.cap(10, 100.0)[0] is None


def _noise(seed: int) -> str:
    return "".join(random.Random(seed).choices(_WIDE, k=MAX_CURSOR_BYTES))


def test_the_handover_estimate_counts_cursors_as_json() -> None:
    """Cursors of text JSON escapes (here random, so compression does not hide it) take far more
    of a hand-over than their length: the estimate the workflow decides by counts them as JSON."""
    s = Scheduler(_settings(), 10, 0.0)
    s.enqueue(None, [(_noise(i), 1) for i in range(8)])
    for att in s.take_runnable():
        s.fail(att.page_num, "E", "m", non_retryable=False, now=1.0)
    size = wire_size(to_wire(scheduler_to_state(s, None)))
    assert size <= s.held_bytes * 4 // 3 + BOUNDED_STATE_BYTES, (size, s.held_bytes)


def test_the_listed_failed_pages_stay_bounded_in_bytes() -> None:
    """Failed pages not in a failure ledger keep their whole cursors: 100 of 16 K characters
    that JSON escapes would make a hand-over of megabytes."""
    s = Scheduler(_settings(), 200, 0.0)
    s.enqueue(None, [(f"{i}:" + _noise(i)[:-10], 1) for i in range(150)])
    for att in s.take_runnable():
        s.fail(att.page_num, "Fatal", "m", non_retryable=True, now=1.0)
    assert s.num_failed == 150 and s.failed
    assert sum(text_size(p.cursor) for p in s.failed) <= failures.FAILED_LIST_BYTES
    size = wire_size(to_wire(scheduler_to_state(s, None)))
    assert size <= failures.FAILED_LIST_BYTES * 4 // 3 + BOUNDED_STATE_BYTES, size
