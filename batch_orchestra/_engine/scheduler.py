"""Pure bookkeeping of a batch's pages and parallelism. No Temporal imports.

The workflow is a thin shell around ``Scheduler``: it feeds it events (pages enqueued, attempts
finished, time passing, control operations) and starts the attempts it hands out. State is
bounded by max_parallelism + pending + stuck pages + fixed-size windows, never by the number of
pages processed; errors are kept once per distinct error; and a batch whose failing pages pile
up stops starting new pages before its state could outgrow what Temporal carries across
continue-as-new (``MAX_HELD_BYTES``).

``Scheduler`` is a facade over parts with one job each, which it composes: the page table and
chains (``pages.py``), new pages and the loop check (``intake.py``), the line of ready and running
pages (``queue.py``), attempts and their outcomes (``attempts.py``), retries and hand-over
deadlines (``retries.py``), the failed lists (``failures.py``), the failure policy's window
(``policy.py``), parallelism and pauses (``parallelism.py``), completions and rates
(``throughput.py``), discovery apart (``discovery.py``) and an operator's page actions
(``actions.py``). Its attributes of old (``pages``, ``running``, ``paused`` ...) are its parts'.
The no-progress rules (``NoProgressRules``, ``no_progress.py``) are a part too.
``scheduler_to_state`` and ``scheduler_from_state`` (``continuation.py``) carry it into the next
run, through each part's ``state`` and ``restore``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .._model import FailurePolicy, ItemFailure, ProcessorSettings
from .actions import PageActions
from .attempts import Attempt, Attempts
from .discovery import MAX_RUNNING_DISCOVERIES, Discovery, DiscoveryBook
from .errors_table import ErrorTable
from .failures import FailedPages, ItemFailures, keep_preview
from .forward import Forward
from .intake import EnqueueResult, Intake
from .no_progress import NoProgressRules, NoProgressWatch
from .pages import PageState, PageTable, RecentCursors
from .parallelism import Parallelism
from .policy import PolicyWindow
from .queue import RunQueue
from .retries import Outcome, Retries
from .throughput import Throughput

__all__ = ["Attempt", "EnqueueResult", "Outcome", "PageState", "Scheduler"]


class Scheduler:
    """Pending, running, waiting (retry backoff), stuck and failed pages of one batch."""

    # the page table, the line, retries
    pages = Forward[dict[int, PageState]]("table")
    chains = Forward[dict[int, int]]("table")
    held_bytes = Forward[int]("table")
    next_page_num = Forward[int]("intake")
    ready = Forward[deque[int]]("queue")
    running = Forward[set[int]]("queue")
    _fresh = Forward[int]("queue", "fresh")  # read by tests of the workflow's modules
    waiting = Forward[set[int]]("retries")
    handed_over = Forward[set[int]]("retries")
    watch = Forward[NoProgressWatch]("attempts")
    # failures, and the failure policy's window
    failed = Forward[deque[PageState]]("failures")
    num_failed = Forward[int]("failures")
    num_redriven = Forward[int]("failures")
    feed_pending = Forward[int]("failures")
    num_failed_items = Forward[int]("items")
    failed_items = Forward[deque[ItemFailure]]("items")
    recent_outcomes = Forward[deque[bool]]("outcomes")
    # parallelism and pauses
    max_parallelism = Forward[int]("parallelism")
    previous_parallelism = Forward[int]("parallelism")
    paused = Forward[bool]("parallelism")
    pause_reason = Forward["str | None"]("parallelism")
    paused_by_zero = Forward[bool]("parallelism")
    paused_seconds = Forward[float]("parallelism")
    paused_since = Forward["float | None"]("parallelism")
    start_time = Forward[float]("parallelism")
    flow_cap = Forward["int | None"]("parallelism")
    max_parallelism_achieved = Forward[int]("parallelism")
    effective_parallelism = Forward[int]("parallelism", "effective")
    # completions, discovery apart, page actions
    num_completed = Forward[int]("throughput")
    num_completed_items = Forward[int]("throughput")
    samples = Forward[deque[tuple[float, int, int]]]("throughput")
    discovering = Forward[dict[int, Discovery]]("book")
    discovery_ready = Forward[deque[int]]("book")
    discovery_running = Forward[set[int]]("book")
    discovery_waiting = Forward[set[int]]("book")
    num_skipped = Forward[int]("actions")

    def __init__(
        self,
        settings: ProcessorSettings,
        max_parallelism: int,
        start_time: float,
        policy: FailurePolicy | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or FailurePolicy.disabled()
        self.errors = ErrorTable()
        self.table = PageTable()
        self.recent = RecentCursors()
        self.queue = RunQueue()
        self.retries = Retries(settings, self.table)
        self.failures = FailedPages(self.errors)
        self.items = ItemFailures()
        self.outcomes = PolicyWindow(
            self.policy, self.table, self.retries, self.failures, self.items, self.errors
        )
        self.parallelism = Parallelism(max_parallelism, start_time)
        self.throughput = Throughput()
        self.book = DiscoveryBook(settings, self.table, self.errors)
        self.intake = Intake(self.table, self.recent, self.queue, self.book, self.failures)
        self.attempts = Attempts(
            self.table,
            self.queue,
            self.retries,
            self.failures,
            self.outcomes,
            self.throughput,
            self.parallelism,
            self.book,
            self.errors,
        )
        self.actions = PageActions(
            self.table, self.queue, self.retries, self.failures, self.book, self.errors
        )
        self.no_progress = NoProgressRules(self)
        self.num_runs = 1
        self.feeding = False  # pages are being read from a ledger: the batch is not done
        self.bytes_limited = False  # the last take stopped at its byte budget

    def check_stall(self, now: float) -> str | None:
        """A stall's text when one has just begun (``NoProgressRules.check_stall``)."""
        return self.no_progress.check_stall(now)

    def no_progress_text(self, now: float) -> str | None:
        """What ``progress.no_progress`` says now."""
        return self.no_progress.text(now)

    @property
    def exact(self) -> bool:
        """The fixes found by the property tests (tests/test_properties.py) are on.

        The workflow turns them off for a run begun before them (``workflow.patched``), so that
        its history replays as recorded.
        """
        return self.table.exact

    @exact.setter
    def exact(self, on: bool) -> None:
        self.table.exact = self.queue.exact = self.failures.exact = on

    # -- what the workflow sets --------------------------------------------------------------

    def set_flow_cap(self, cap: int | None) -> None:
        """Flow control's cap on parallelism now (None: none)."""
        self.parallelism.flow_cap = cap

    def set_feeding(self, on: bool) -> None:
        """Whether pages are being read from a failure ledger (the batch is not done)."""
        self.feeding = on

    def forget_running(self, page_num: int) -> None:
        """The run no longer waits for ``page_num``'s attempt (the batch is cancelled)."""
        self.queue.running.discard(page_num)

    def mark_successor_enqueued(self, page_num: int, value: bool = True) -> None:
        """Whether the held page ``page_num`` has enqueued its successors (read from a ledger)."""
        self.table.pages[page_num].successor_enqueued = value

    def hand_over(self, report_deadline: float | None, confirm_by: float | None = None) -> None:
        """Hand the running attempts over: they report to the next run by ``report_deadline``.

        One not handed over before must also say it started by ``confirm_by`` (if given).
        """
        if self.queue.running and report_deadline is None:
            raise RuntimeError(f"pages running at a hand-over need a deadline: {self.running}")
        self.retries.hand_over(self.queue.running, report_deadline, confirm_by)

    def clear_handover_deadlines(self) -> None:
        """The hand-over is put off: running attempts lose the deadlines ``hand_over`` set."""
        self.retries.clear_handover_deadlines(self.queue.running)

    def count_unread_as_failed(self) -> int:
        """Redriven pages the ledger could not give back count as failed again; how many."""
        return self.failures.count_unread_as_failed()

    # -- pages and attempts (``intake.py``, ``attempts.py``) ---------------------------------

    def enqueue(self, parent: int | None, pages: list[tuple[str, int]]) -> EnqueueResult:
        """Add pages discovered by ``parent`` (None for the first pages, one chain each)."""
        return self.intake.enqueue(parent, pages)

    @property
    def holding_new_pages(self) -> bool:
        """Whether new pages wait: pages fail and hold more than ``MAX_HELD_BYTES``."""
        return self.attempts.holding_new_pages

    @property
    def hold_reason(self) -> str | None:
        """Why fewer pages start than the cap allows, if they do."""
        return self.attempts.hold_reason

    def take_runnable(
        self,
        limit: int | None = None,
        max_bytes: int | None = None,
        per_attempt: int = 0,
        extra_bytes: Callable[[int], int] | None = None,
    ) -> list[Attempt]:
        """Attempts to start now: as many ready pages as the cap allows, within ``max_bytes``.

        Each attempt's input counts ``per_attempt`` plus its cursor plus ``extra_bytes(page_num)``
        (its checkpoint); at least one attempt starts.
        """
        out, self.bytes_limited = self.attempts.take(limit, max_bytes, per_attempt, extra_bytes)
        return out

    def is_current(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt of ``page_num`` (else its news is stale)."""
        return self.attempts.is_current(page_num, attempt)

    def complete(self, page_num: int, items: int, now: float) -> None:
        """An attempt at ``page_num`` succeeded."""
        self.attempts.complete(page_num, items, now)

    def record_item_failures(self, count: int, details: list[ItemFailure] | None) -> None:
        """A completed page recorded ``count`` failed items (``details``: the first of them)."""
        self.items.record(count, details)

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
        """An attempt failed; what becomes of the page (``worker_lost``: not counted by policy)."""
        return self.attempts.fail(
            page_num,
            error_type,
            message,
            non_retryable=non_retryable,
            did_not_run=did_not_run,
            worker_lost=worker_lost,
            now=now,
        )

    def not_started(self, page_num: int, attempt: int) -> bool:
        """No worker took the attempt in time: first in line again, uncounted; False if stale."""
        return self.attempts.not_started(page_num, attempt)

    def redrive_failed(self, *, from_ledger: bool = False) -> list[int]:
        """Queue failed pages again with fresh retry budgets; returns the page numbers queued now.

        Those kept whole are queued now; with ``from_ledger`` the others count as pending
        (``feed_pending``) until read back from the ledger (``readd``). Attempt numbers go on
        (earlier ones count as not run), and a successor mark is kept.
        """
        return self.attempts.redrive(from_ledger=from_ledger)

    def readd(self, page: PageState) -> bool:
        """A page redriven ``from_ledger``, read back whole; False if it is already held."""
        return self.attempts.readd(page)

    def keep_preview(self, page: PageState) -> None:
        """A failed page's entry is in the failure ledger: keep only a preview of its cursor."""
        keep_preview(page)

    def check_policy(self, now: float) -> str | None:
        """Pause the batch if the failure policy says so; returns the reason when it just did.

        A batch with nothing left to start now or later (no new page, nothing running that
        could discover one) is never paused: its stuck pages keep their extended retries;
        unless no page has completed since it started (or was resumed) and its attempts keep
        failing with the same error (``no_progress_attempts``): a mistake, not an outage.
        """
        if self.paused:
            return None
        reason = self.no_progress.pause_reason()
        if reason is None:
            if not (self.queue.fresh or self.running or self.discovering or self.feeding):
                return None
            reason = self.outcomes.reason()
            if reason is None:
                return None
        self.pause(reason, now)
        return self.pause_reason

    # -- time --------------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the earliest retry, hand-over deadline or discovery retry is due, if any."""
        due = self.retries.due_times()
        if self.book.discovery_waiting:
            due += self.book.due_times()
        return min(due) if due else None

    def confirm_started(self, page_num: int, attempt: int) -> bool:
        """A handed-over attempt says it had started: it must report by its deadline."""
        return self.attempts.confirm_started(page_num, attempt)

    @property
    def has_due(self) -> bool:
        """Whether anything will come due (cheap: checked on every workflow activation)."""
        return bool(self.waiting or self.handed_over or self.discovery_waiting)

    def release_due(self, now: float) -> int:
        """Retries due by ``now`` go first in line, overdue hand-overs fail; returns how many."""
        return self.attempts.release_due(now)

    def running_time(self, now: float) -> float:
        """Seconds the batch has spent unpaused since it started."""
        return self.parallelism.running_time(now)

    # -- control -----------------------------------------------------------------------------

    def pause(self, reason: str, now: float, *, by_zero: bool = False) -> bool:
        """Pause (running pages finish, none start); False if it already was."""
        return self.parallelism.pause(reason, now, by_zero=by_zero)

    def resume(self, now: float) -> bool:
        """Resume a paused batch at its cap (the policy judges afresh); False if not paused."""
        if not self.parallelism.resume(now):
            return False
        self.outcomes.reset()
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
        self.parallelism.change_cap(n)
        if self.paused and self.paused_by_zero:
            self.resume(now)
        return old

    @property
    def is_finished(self) -> bool:
        """No page is held, no successor is being found, no page is still to be read back."""
        return not self.pages and not self.discovering and not self.feeding

    # -- discovery apart and page actions (``discovery.py``, ``actions.py``) -----------------

    def want_discovery(self, page: PageState) -> bool:
        """Give ``page`` a discovery if its processor discovers apart and it needs one."""
        return self.book.want(page)

    def take_discoveries(
        self, limit: int = MAX_RUNNING_DISCOVERIES, max_bytes: int | None = None, per_item: int = 0
    ) -> list[Discovery]:
        """Discoveries to start now (none while paused), within ``max_bytes`` of inputs."""
        out, self.bytes_limited = self.book.take(limit, max_bytes, per_item, paused=self.paused)
        return out

    def is_current_discovery(self, page_num: int, attempt: int) -> bool:
        """Whether ``attempt`` is the running attempt at ``page_num``'s discovery."""
        return self.book.is_current(page_num, attempt)

    def discovered(self, page_num: int, pages: list[tuple[str, int]]) -> EnqueueResult:
        """``next_page`` answered for ``page_num``: its successors join the batch."""
        return self.intake.discovered(page_num, pages)

    def discovery_failed(self, page_num: int, error_type: str, message: str, now: float) -> float:
        """An attempt at ``page_num``'s discovery failed; seconds to its retry (-1.0: stale)."""
        return self.book.failed(page_num, error_type, message, now)

    def discovery_not_run(self, page_num: int) -> None:
        """A discovery's attempt ended without an answer that counts: it is ready again."""
        self.book.not_run(page_num)

    @property
    def failing_discoveries(self) -> list[Discovery]:
        """Discoveries that failed at least once and have not succeeded since."""
        return self.book.failing

    def page_status(self, page_num: int) -> str:
        """What ``page_num`` is now ("running", "pending", "retrying", "stuck", ...)."""
        return self.actions.page_status(page_num)

    def refuse_page_action(self, page_num: int, action: str) -> str | None:
        """Why ``action`` ("retry" or "skip") cannot be done to ``page_num`` now, or None."""
        return self.actions.refuse(page_num, action)

    def retry_now(self, page_num: int) -> str:
        """Start a pending, retrying or stuck page first; returns what it was."""
        return self.actions.retry_now(page_num)

    def skip(self, page_num: int) -> tuple[str, bool]:
        """Count a page as skipped and let it go; what it was, and whether its chain goes on."""
        return self.actions.skip(page_num)
