"""Pure bookkeeping of a batch's pages and parallelism. No Temporal imports.

The workflow is a thin shell around ``Scheduler``: it feeds it events (pages enqueued, attempts
finished, time passing, control operations) and starts the attempts it hands out. State is
bounded by max_parallelism + pending + stuck pages + fixed-size windows, never by the number of
pages processed; errors are kept once per distinct error; and a batch whose failing pages pile
up stops starting new pages before its state could outgrow what Temporal carries across
continue-as-new (``MAX_HELD_BYTES``). ``to_state``/``from_state`` carry it into the next run.
"""

from __future__ import annotations

import enum
import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .._errors_table import MAX_ERROR_TYPE, ErrorTable
from .._no_progress import NoProgressRules, NoProgressWatch
from .._types import (
    FailurePolicy,
    ItemFailure,
    ProcessorSettings,
)
from .budgets import (
    CURSOR_PREVIEW_CHARS,
    KEY_PREVIEW_CHARS,
    MAX_ITEM_MESSAGE,
    clip,
    preview,
    text_size,
)
from .discovery import DiscoveryBook

__all__ = ["Attempt", "EnqueueResult", "Outcome", "PageState", "Scheduler"]

RECENT_CURSOR_WINDOW = 64
"""How many recently enqueued cursors are remembered (besides those of every unfinished page)
to catch a processor that loops."""
FAILURE_LIST_LIMIT = 100
"""How many failed, stuck and retrying pages progress shows in detail; counts stay exact (every
failed page is in the batch's failure ledger, ``_ledger.py``)."""
ITEM_FAILURE_LIST_LIMIT = 100
"""How many recorded item failures progress shows in detail; the count stays exact."""
RATE_WINDOW_SECONDS = 60.0
"""Rates in progress are measured over about this much running (not paused) time."""
MAX_RUNNING_PAGES = 1_900
"""The most attempts that run at once, whatever ``max_parallelism`` says: Temporal fails every
workflow task of a run with more than 2,000 pending activities (its default limit), and the
batch keeps a few for its tracker and notifier."""
MAX_HELD_BYTES = 1_000_000
"""Budget for the unfinished pages a batch holds (cursor bytes plus a fixed overhead each):
while pages are failing and the held pages pass it, no new page starts (retries go on), so the
state carried across continue-as-new stays far below Temporal's 2 MB payload limit."""
PAGE_OVERHEAD_BYTES = 48
"""The estimated cost of one held page besides its cursor."""
FAILED_LIST_BYTES = 256 * 1024
"""The most bytes of cursors (as JSON) the listed failed pages hold: a page not yet in a failure
ledger keeps its whole cursor, and a hand-over carries the list."""


class Outcome(enum.Enum):
    """What becomes of a page after a failed attempt."""

    RETRY = "retry"
    """It waits for its next initial retry."""
    STUCK = "stuck"
    """Its initial retries are exhausted: it waits for its next extended retry."""
    FAILED = "failed"
    """It will not be retried again."""
    NOT_RUN = "not_run"
    """The attempt did no work (no worker knew the processor): retried, attempt not counted."""
    STALE = "stale"
    """The report was about an attempt that is not the page's running one: ignored."""


@dataclass
class PageState:
    """One page the batch has discovered and not yet finished."""

    page_num: int
    cursor: str
    size: int
    chain: int = 0
    attempts: int = 0
    unrun: int = 0  # attempts that did no work (not counted against the retry policy)
    successor_enqueued: bool = False
    stuck: bool = False
    ready_at: float | None = None
    error: int = -1  # index into the batch's ErrorTable
    failed_at: float | None = None
    report_deadline: float | None = None  # running at a hand-over: must report by then
    confirm_by: float | None = None  # handed over: must say it started by then, or never did
    # A failed page whose entry is in the failure ledger keeps only a preview of its cursor.
    recorded: bool = False
    cursor_length: int = -1  # the whole cursor's length when ``cursor`` is a preview

    @property
    def held_bytes(self) -> int:
        """This page's share of the held-state budget, by its cursor's length.

        What a run begun before ``Scheduler.exact`` counts (which counts the cursor as JSON).
        """
        return len(self.cursor) + PAGE_OVERHEAD_BYTES

    @property
    def full_length(self) -> int:
        """The length of the page's whole cursor."""
        return self.cursor_length if self.cursor_length >= 0 else len(self.cursor)


@dataclass
class Attempt:
    """An attempt at a page that the workflow should start now."""

    page_num: int
    cursor: str
    size: int
    attempt: int
    successor_enqueued: bool


@dataclass
class EnqueueResult:
    """What became of an enqueue: the page numbers added and the cursors ignored (and why)."""

    added: list[int] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


def _recent_key(cursor: str) -> str:
    """How the recent-cursor window keeps a cursor: itself if short, else a digest.

    The window travels across continue-as-new, and 64 cursors of 16 KB would be a megabyte.
    """
    if len(cursor) <= 64:
        return cursor
    return "#" + hashlib.blake2b(cursor.encode(), digest_size=12).hexdigest()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class Scheduler(DiscoveryBook, NoProgressRules):
    """Pending, running, waiting (retry backoff), stuck and failed pages of one batch."""

    def __init__(
        self,
        settings: ProcessorSettings,
        max_parallelism: int,
        start_time: float,
        policy: FailurePolicy | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or FailurePolicy.disabled()
        self.max_parallelism = max_parallelism
        self.previous_parallelism = max_parallelism
        self.paused = max_parallelism == 0
        self.pause_reason: str | None = "started with max_parallelism=0" if self.paused else None
        self.paused_by_zero = self.paused  # a pause that a non-zero parallelism lifts
        self.start_time = start_time
        self.paused_seconds = 0.0
        self.paused_since: float | None = start_time if self.paused else None
        self.next_page_num = 0
        self.num_completed = 0
        self.num_completed_items = 0
        self.num_failed = 0
        self.num_failed_items = 0
        self.failed_items: deque[ItemFailure] = deque(maxlen=ITEM_FAILURE_LIST_LIMIT)
        self.num_redriven = 0
        self.feed_pending = 0  # failed pages queued again, still to be read from the ledger
        self.feeding = False  # pages are being read from a ledger: the batch is not done
        self.bytes_limited = False  # the last take stopped at its byte budget
        self.max_parallelism_achieved = 0
        self.num_runs = 1
        self.pages: dict[int, PageState] = {}
        self.ready: deque[int] = deque()
        self.running: set[int] = set()
        self.waiting: set[int] = set()
        self.handed_over: set[int] = set()
        self.flow_cap: int | None = None  # flow control's cap now (set by the workflow)
        self.errors = ErrorTable()
        self.failed: deque[PageState] = deque()
        self.held_bytes = 0
        self.chains: dict[int, int] = {}  # chain -> unfinished pages
        self.recent_outcomes: deque[bool] = deque()  # True: a failed attempt
        self.watch = NoProgressWatch()  # identical failures in a row, stalls
        self._recent_failures = 0
        self._fresh = 0  # ready pages never attempted
        self._recent: deque[str] = deque()
        self._recent_count: dict[str, int] = {}
        # cursor -> how many unfinished pages have it (a redriven page may share its cursor with
        # a page enqueued after it failed)
        self._live_cursors: dict[str, int] = {}
        # (running time, completed pages, completed items), at most one a second
        self.samples: deque[tuple[float, int, int]] = deque([(0.0, 0, 0)])
        self.exact = True
        """The fixes found by the property tests (tests/test_properties.py) are on; the workflow
        turns them off for a run begun before them (``workflow.patched``), so that its
        history replays as recorded."""
        self._init_discovery()

    # -- discovery ---------------------------------------------------------------------------

    def enqueue(self, parent: int | None, pages: list[tuple[str, int]]) -> EnqueueResult:
        """Add pages discovered by ``parent`` (None for the first pages, one chain each).

        A parent that already enqueued its successors, or that is no longer in flight, is a
        re-delivery: its pages are ignored. A cursor equal to an unfinished page's or to one of
        the last RECENT_CURSOR_WINDOW enqueued is ignored (a looping processor); the check is
        exact, so it never drops a new cursor.
        """
        result = EnqueueResult()
        parent_cursor, chain = None, None
        if parent is not None:
            state = self.pages.get(parent)
            if state is None or state.successor_enqueued:
                result.ignored = [(c, "its page already enqueued its successors") for c, _ in pages]
                return result
            if parent in self.discovering:
                why = "its page's successors are found by next_page"
                result.ignored = [(c, why) for c, _ in pages]
                return result
            state.successor_enqueued = True
            parent_cursor, chain = state.cursor, state.chain
        self._add_pages(pages, parent_cursor, chain, result)
        return result

    def _add_pages(
        self,
        pages: list[tuple[str, int]],
        parent_cursor: str | None,
        chain: int | None,
        result: EnqueueResult,
    ) -> None:
        for cursor, size in pages:
            if (
                cursor == parent_cursor
                or _recent_key(cursor) in self._recent_count
                or (cursor in self._live_cursors)
            ):
                result.ignored.append((cursor, "it equals a cursor enqueued recently"))
                continue
            num = self.next_page_num
            self.next_page_num += 1
            page = PageState(num, cursor, size, chain=num if chain is None else chain)
            self._hold(page)
            self.ready.append(num)
            self._fresh += 1
            self._remember(cursor)
            result.added.append(num)

    def _hold(self, page: PageState) -> None:
        self.pages[page.page_num] = page
        self._live_cursors[page.cursor] = self._live_cursors.get(page.cursor, 0) + 1
        self.held_bytes += self._cost(page)
        self.chains[page.chain] = self.chains.get(page.chain, 0) + 1

    def _release(self, page: PageState) -> None:
        del self.pages[page.page_num]
        live = self._live_cursors.get(page.cursor, 1) - 1
        if live > 0 and self.exact:
            self._live_cursors[page.cursor] = live
        else:
            self._live_cursors.pop(page.cursor, None)
        self.held_bytes -= self._cost(page)
        left = self.chains.get(page.chain, 1) - 1
        if left > 0:
            self.chains[page.chain] = left
        else:
            self.chains.pop(page.chain, None)

    def _cost(self, page: PageState) -> int:
        """A held page's share of ``held_bytes``.

        Its cursor as JSON (escapes included) and an overhead; its length in a run begun before
        ``exact``.
        """
        if self.exact:
            return text_size(page.cursor) + PAGE_OVERHEAD_BYTES
        return page.held_bytes

    def _remember(self, cursor: str) -> None:
        cursor = _recent_key(cursor)
        self._recent.append(cursor)
        self._recent_count[cursor] = self._recent_count.get(cursor, 0) + 1
        if len(self._recent) > RECENT_CURSOR_WINDOW:
            old = self._recent.popleft()
            left = self._recent_count[old] - 1
            if left:
                self._recent_count[old] = left
            else:
                del self._recent_count[old]

    # -- starting attempts -------------------------------------------------------------------

    @property
    def effective_parallelism(self) -> int:
        """How many attempts may run now."""
        if self.paused:
            return 0
        n = min(self.max_parallelism, MAX_RUNNING_PAGES)
        return n if self.flow_cap is None else min(n, self.flow_cap)

    @property
    def holding_new_pages(self) -> bool:
        """Whether new (never attempted) pages are held back.

        They are when pages are failing and the held pages have reached ``MAX_HELD_BYTES``.
        """
        return self.held_bytes > MAX_HELD_BYTES and bool(self.waiting)

    @property
    def hold_reason(self) -> str | None:
        """Why fewer pages start than the cap allows, if they do."""
        if self.paused:
            return None
        if self.holding_new_pages:
            return (
                f"{len(self.pages):,} unfinished pages ({self.held_bytes // 1024:,} KB) are as "
                "many as the batch keeps while pages fail: new pages wait until retrying and "
                "stuck pages finish (fix the cause, or skip them)"
            )
        if self.max_parallelism > MAX_RUNNING_PAGES:
            return (
                f"max_parallelism {self.max_parallelism:,} is above the {MAX_RUNNING_PAGES:,} "
                "attempts a batch runs at once (Temporal's pending-activity limit)"
            )
        return None

    def take_runnable(
        self,
        limit: int | None = None,
        max_bytes: int | None = None,
        per_attempt: int = 0,
        extra_bytes: Callable[[int], int] | None = None,
    ) -> list[Attempt]:
        """Attempts to start now: as many ready pages as the parallelism cap allows.

        ``max_bytes``: at most about this many bytes of attempt inputs, each ``per_attempt`` plus
        its cursor plus ``extra_bytes(page_num)`` (its checkpoint; at least one attempt).
        """
        free = self.effective_parallelism - len(self.running)
        if limit is not None:
            free = min(free, limit)
        out: list[Attempt] = []
        skipped: list[int] = []
        holding = self.holding_new_pages
        spent = 0
        self.bytes_limited = False
        while free > 0 and self.ready:
            num = self.ready.popleft()
            state = self.pages[num]
            fresh = state.attempts == state.unrun  # never ran: a new page
            if fresh and holding:
                skipped.append(num)
                continue
            if max_bytes is not None:
                spent += per_attempt + text_size(state.cursor)
                if extra_bytes is not None:
                    spent += extra_bytes(num)
                if spent > max_bytes and out:
                    self.ready.appendleft(num)
                    self.bytes_limited = True
                    break
            if fresh:
                self._fresh -= 1
            state.attempts += 1
            self.running.add(num)
            self.want_discovery(state)
            out.append(
                Attempt(num, state.cursor, state.size, state.attempts, state.successor_enqueued)
            )
            free -= 1
        self.ready.extendleft(reversed(skipped))
        if len(self.running) > self.max_parallelism_achieved:
            self.max_parallelism_achieved = len(self.running)
        return out

    def is_current(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt of ``page_num``.

        Else its outcome is stale: already reported the other way, or superseded by a retry.
        """
        state = self.pages.get(page_num)
        return page_num in self.running and state is not None and state.attempts == attempt

    # -- outcomes ----------------------------------------------------------------------------

    def complete(self, page_num: int, items: int, now: float) -> None:
        """An attempt at ``page_num`` succeeded."""
        self.running.discard(page_num)
        self.handed_over.discard(page_num)
        state = self.pages.get(page_num)
        if state is None:
            return
        self.errors.release(state.error)
        self._release(state)
        self.num_completed += 1
        self.num_completed_items += max(0, items)
        self._record_outcome(False)
        self.watch.completed()
        clock = self.running_time(now)
        if clock - self.samples[-1][0] >= 1.0:
            self.samples.append((clock, self.num_completed, self.num_completed_items))
            while clock - self.samples[0][0] > RATE_WINDOW_SECONDS:
                self.samples.popleft()

    def record_item_failures(self, count: int, details: list[ItemFailure] | None) -> None:
        """A completed page recorded ``count`` failed items (``details``: the first of them).

        The most recent are kept for progress, with a preview of long keys.
        """
        self.num_failed_items += max(0, count)
        for item in (details or [])[-ITEM_FAILURE_LIST_LIMIT:]:
            self.failed_items.append(
                ItemFailure(
                    key=preview(item.key, KEY_PREVIEW_CHARS),
                    page_num=item.page_num,
                    error_type=clip(item.error_type, MAX_ERROR_TYPE),
                    error_message=clip(item.error_message, MAX_ITEM_MESSAGE),
                    failed_at=item.failed_at,
                    key_length=len(item.key),
                )
            )

    def redrive_failed(self, *, from_ledger: bool = False) -> list[int]:
        """Queue failed pages again with fresh retry budgets; returns the page numbers queued now.

        Those kept whole in memory (not recorded in a failure ledger) are queued now. With
        ``from_ledger``, every other failed page is queued too: it counts as pending
        (``feed_pending``) until the workflow reads it back from the ledger (``readd``).
        Without, only the pages in memory (the most recent ``FAILURE_LIST_LIMIT``) are reached.
        Attempt numbers go on (earlier attempts count as not run, so the retry policy starts
        afresh), and a page that had enqueued its successor keeps that mark, so it does not
        enqueue it again.
        """
        redriven: list[int] = []
        while self.failed:
            page = self.failed.popleft()
            self.errors.release(page.error)
            if page.recorded:
                continue  # it comes back from the ledger, whole
            self._requeue(page)
            redriven.append(page.page_num)
        total = self.num_failed if from_ledger else len(redriven)
        self.num_failed -= total
        self.feed_pending += total - len(redriven)
        self.num_redriven += total
        return redriven

    def _requeue(self, page: PageState) -> None:
        page.error, page.failed_at, page.ready_at, page.stuck = -1, None, None, False
        page.unrun = page.attempts  # a fresh retry budget
        page.report_deadline = page.confirm_by = None
        page.recorded, page.cursor_length = False, -1
        self._hold(page)
        self.ready.append(page.page_num)
        self._fresh += 1

    def readd(self, page: PageState) -> bool:
        """A failed page queued again by ``redrive_failed(from_ledger=True)``, read back whole.

        It keeps its page number, chain and successor mark; False if it is already held.
        """
        if self.feed_pending > 0:
            self.feed_pending -= 1
        if page.page_num in self.pages:
            return False
        self._requeue(page)
        return True

    def keep_preview(self, page: PageState) -> None:
        """A failed page's entry is in the failure ledger: keep only a preview of its cursor."""
        page.cursor_length = len(page.cursor)
        page.cursor = preview(page.cursor, CURSOR_PREVIEW_CHARS)
        page.recorded = True

    def fail(
        self,
        page_num: int,
        error_type: str,
        message: str,
        *,
        non_retryable: bool,
        did_not_run: bool = False,
        worker_lost: bool = False,
        now: float,
    ) -> Outcome:
        """An attempt at ``page_num`` failed; what becomes of the page.

        ``worker_lost``: its worker died or shut down, which the failure policy does not count.
        """
        self.running.discard(page_num)
        self.handed_over.discard(page_num)
        state = self.pages.get(page_num)
        if state is None:
            return Outcome.STALE
        s = self.settings
        state.report_deadline = None
        self.errors.release(state.error)
        state.error = self.errors.acquire(error_type, message)
        state.failed_at = now
        if did_not_run:
            state.unrun += 1
            state.ready_at = now + min(s.maximum_interval_seconds, 10.0 * min(state.unrun, 6))
            self.waiting.add(page_num)
            return Outcome.NOT_RUN
        if not worker_lost:
            self._record_outcome(True)
            self.watch.failed(error_type, message)
        counted = state.attempts - state.unrun
        permanent = non_retryable or s.at_most_once or error_type in s.non_retryable_error_types
        exhausted = state.stuck or (0 < s.maximum_attempts <= counted)
        if permanent or (exhausted and not s.use_extended_retries):
            self._release(state)
            self.num_failed += 1
            state.stuck = False
            self.failed.append(state)
            while len(self.failed) > FAILURE_LIST_LIMIT or (
                self.exact and len(self.failed) > 1 and self._failed_bytes() > FAILED_LIST_BYTES
            ):
                self.errors.release(self.failed.popleft().error)
            return Outcome.FAILED
        self.waiting.add(page_num)
        if exhausted:
            state.stuck = True
            state.ready_at = now + s.extended_retry_interval_seconds
            return Outcome.STUCK
        state.ready_at = now + s.retry_delay(counted)
        return Outcome.RETRY

    def _failed_bytes(self) -> int:
        return sum(text_size(p.cursor) for p in self.failed)

    def not_started(self, page_num: int, attempt: int) -> bool:
        """No worker took the attempt in time (schedule-to-start); False if stale.

        It did no work, so the page is first in line again and the attempt does not count.
        """
        if not self.is_current(page_num, attempt):
            return False
        self._take_back(self.pages[page_num])
        return True

    def _take_back(self, page: PageState) -> None:
        """An attempt that never started: the page is ready again, first in line, uncounted."""
        self.running.discard(page.page_num)
        self.handed_over.discard(page.page_num)
        page.unrun += 1
        page.confirm_by = page.report_deadline = None
        self.ready.appendleft(page.page_num)
        if page.attempts == page.unrun:
            self._fresh += 1

    def _record_outcome(self, failed: bool) -> None:
        self.recent_outcomes.append(failed)
        self._recent_failures += failed
        while len(self.recent_outcomes) > self.policy.window:
            self._recent_failures -= self.recent_outcomes.popleft()

    def check_policy(self, now: float) -> str | None:
        """Pause the batch if the failure policy says so; returns the reason when it just did.

        A batch with nothing left to start now or later (no new page, nothing running that
        could discover one) is never paused: its stuck pages keep their extended retries;
        unless no page has completed since it started (or was resumed) and its attempts keep
        failing with the same error (``no_progress_attempts``): a mistake, not an outage.
        """
        if self.paused:
            return None
        no_progress = self.no_progress_pause_reason()
        if no_progress is not None:
            self.pause(no_progress, now)
            return self.pause_reason
        if self._fresh == 0 and not self.running and not self.discovering and not self.feeding:
            return None
        p = self.policy
        n = len(self.recent_outcomes)
        reason = None
        if (
            p.max_failure_rate is not None
            and n >= p.min_attempts
            and (self._recent_failures > p.max_failure_rate * n)
        ):
            reason = (
                f"{self._recent_failures} of the last {n} page attempts failed (more than "
                f"{p.max_failure_rate:.0%}, the failure policy's max_failure_rate)"
            )
        # counted only when the policy has a count: failures are on the workflow's hot path
        stuck = 0
        if reason is None and p.max_failed_pages is not None:
            stuck = sum(1 for n_ in self.waiting if self.pages[n_].stuck)
        if (
            reason is None
            and p.max_failed_pages is not None
            and (self.num_failed + stuck > p.max_failed_pages)
        ):
            reason = (
                f"{self.num_failed} failed and {stuck} stuck pages (more than "
                f"{p.max_failed_pages}, the failure policy's max_failed_pages)"
            )
        if (
            reason is None
            and p.max_failed_items is not None
            and (self.num_failed_items > p.max_failed_items)
        ):
            reason = (
                f"{self.num_failed_items} items recorded as failed (more than "
                f"{p.max_failed_items}, the failure policy's max_failed_items)"
            )
            latest = self.failed_items[-1] if self.failed_items else None
            if latest is not None:
                reason += f"; latest: {latest.error_type}: {latest.error_message[:200]}"
            self.pause(reason, now)
            return self.pause_reason
        if reason is None:
            return None
        error = self._latest_error()
        if error:
            reason += f"; latest error: {error}"
        self.pause(reason, now)
        return self.pause_reason

    def _latest_error(self) -> str:
        latest = max(
            (self.pages[n] for n in self.waiting), key=lambda p: p.failed_at or 0.0, default=None
        )
        if latest is None and self.failed:
            latest = self.failed[-1]
        if latest is None:
            return ""
        error_type, message = self.errors.get(latest.error)
        return f"{error_type}: {message[:200]}"

    # -- time --------------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the earliest waiting retry or hand-over deadline is due, if any.

        A hand-over deadline is that of a page handed over while running.
        """
        due = [self.pages[n].ready_at or 0.0 for n in self.waiting]
        for n in self.handed_over:
            p = self.pages[n]
            due += [d for d in (p.report_deadline, p.confirm_by) if d]
        if self.discovery_waiting:
            due += self._discovery_due()
        return min(due) if due else None

    def confirm_started(self, page_num: int, attempt: int) -> bool:
        """An attempt handed over at a hand-over says it had started.

        It heartbeated into the closed run: it is running, and must report by its deadline.
        """
        if not self.is_current(page_num, attempt):
            return False
        self.pages[page_num].confirm_by = None
        return True

    @property
    def has_due(self) -> bool:
        """Whether anything will come due (cheap: checked on every workflow activation)."""
        return bool(self.waiting or self.handed_over or self.discovery_waiting)

    def release_due(self, now: float) -> int:
        """Release what is due by ``now``; returns how many pages.

        Every retry due by ``now`` becomes ready to run (ahead of new pages), and the attempts
        handed over while running that never reported fail.
        """
        # A handed-over attempt that never said it started by then never did: Temporal drops
        # the activity tasks of a closed run that no worker had taken. It runs again, uncounted.
        unstarted = [
            n
            for n in self.handed_over
            if self.pages[n].confirm_by is not None and (self.pages[n].confirm_by or 0.0) <= now
        ]
        for n in unstarted:
            self._take_back(self.pages[n])
        overdue = [n for n in self.handed_over if (self.pages[n].report_deadline or 0.0) <= now]
        for n in overdue:
            self.fail(
                n,
                "Timeout",
                "the attempt was running or waiting for a worker at a "
                "hand-over and never reported its outcome: its worker may have died, or no "
                "worker slot took it before its run closed (parallelism above the workers' "
                "activity slots); it may not have run",
                non_retryable=False,
                now=now,
            )
        due = sorted(
            (self.pages[n] for n in self.waiting if (self.pages[n].ready_at or 0.0) <= now),
            key=lambda p: (p.ready_at, p.page_num),
            reverse=True,
        )
        for p in due:
            p.ready_at = None
            self.waiting.discard(p.page_num)
            self.ready.appendleft(p.page_num)
            if self.exact and p.attempts == p.unrun:
                self._fresh += 1  # its attempts did no work: a new page again
        discoveries = self._release_due_discoveries(now) if self.discovery_waiting else 0
        return len(due) + len(overdue) + len(unstarted) + discoveries

    def running_time(self, now: float) -> float:
        """Seconds the batch has spent unpaused since it started."""
        paused = self.paused_seconds
        if self.paused_since is not None:
            paused += max(0.0, now - self.paused_since)
        return max(0.0, now - self.start_time - paused)

    # -- control -----------------------------------------------------------------------------

    def pause(self, reason: str, now: float, *, by_zero: bool = False) -> bool:
        """Pause (running pages finish, none start); False if it already was."""
        if self.paused:
            return False
        self.paused, self.pause_reason, self.paused_since = True, reason, now
        self.paused_by_zero = by_zero
        return True

    def resume(self, now: float) -> bool:
        """Resume a paused batch at its cap; False if it was not paused.

        The failure policy judges afresh from here.
        """
        if not self.paused:
            return False
        if self.paused_since is not None:
            self.paused_seconds += max(0.0, now - self.paused_since)
        self.paused, self.pause_reason, self.paused_since = False, None, None
        self.paused_by_zero = False
        self.recent_outcomes.clear()
        self._recent_failures = 0
        self.watch.resumed_now()
        return True

    def set_parallelism(self, n: int, now: float) -> int:
        """Set the cap, remembering the old one; 0 pauses (keeping the cap to resume to).

        A batch paused by ``pause()`` or the failure policy stays paused (the new cap is what
        ``resume`` returns to); a pause made by parallelism 0 is lifted. Returns the old cap.
        """
        old = self.max_parallelism
        if n == 0:
            self.pause("max_parallelism set to 0", now, by_zero=True)
            return old
        if n != old:
            self.previous_parallelism = old
            self.max_parallelism = n
        if self.paused and self.paused_by_zero:
            self.resume(now)
        return old

    @property
    def is_finished(self) -> bool:
        """Nothing is left to do.

        No page is pending, waiting, running or stuck, no successor is being found, and no page
        is still to be read from a failure ledger.
        """
        return not self.pages and not self.discovering and not self.feeding
