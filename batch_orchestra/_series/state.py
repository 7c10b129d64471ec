"""A series' book: its committed high-water mark, the windows runs have claimed, the run log.

Plain Python with no Temporal imports: the ``BatchSeries`` workflow holds one ``SeriesBook``
and is its only writer; every rule about the mark lives here and is unit-tested on its own
(tests/test_series_state.py). Times are Unix timestamps (the workflow's clock).

The rules (DESIGN.md, "Recurring work advances exactly once"):

* A run **claims** its window once: a second claim by the same run (a retried or duplicated
  tick) gets the first claim back, whatever the mark is by then.
* A claim is taken against a **version** of the mark; if the mark moved since the run read it,
  the claim is refused and the run reads the mark again.
* A claim **commits** at most once, and moves the mark only if its low is still the mark (an
  operator's ``set_watermark`` in between makes it stale). The mark never moves otherwise,
  except by ``set_mark``, which logs who and why.
* A backfill claims a window of its own and never moves the mark.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from .._model.codec import from_wire, to_wire

__all__ = [
    "MAX_CLAIMS",
    "MAX_MARK_LOG",
    "MAX_RUN_LOG",
    "BookState",
    "ClaimRecord",
    "MarkRecord",
    "RunRecord",
    "SeriesBook",
]

MAX_RUN_LOG = 50
"""Runs kept in the log (newest)."""
MAX_MARK_LOG = 20
"""Moves of the mark kept in the log (newest)."""
MAX_CLAIMS = 200
"""Claims remembered by run ID (open and recently resolved). A run whose claim was forgotten
and that claims again gets a new claim from the mark: it may redo work, never skip any."""
MAX_REASON = 500
"""Characters of a reason (an operator's or an error's) kept."""

HOLDING = ("held", "failed", "stale")
"""Outcomes that leave the mark where it was."""


@dataclass(kw_only=True)
class ClaimRecord:
    """A window a run has claimed."""

    n: int
    run_id: str
    kind: str
    """"scheduled" or "backfill"."""
    nominal: float | None
    low: str | None
    high: str | None
    """None: nothing new (an empty window)."""
    batch_id: str | None
    outcome: str | None = None
    """None while open; the final outcome once committed."""


@dataclass(kw_only=True)
class RunRecord:
    """One line of the run log."""

    run_id: str
    kind: str
    outcome: str
    nominal: float | None = None
    low: str | None = None
    high: str | None = None
    batch_id: str | None = None
    reason: str | None = None
    pages: int = 0
    failed_pages: int = 0
    items: int = 0
    failed_items: int = 0
    started: float = 0.0
    ended: float | None = None


@dataclass(kw_only=True)
class MarkRecord:
    """One move of the mark."""

    at: float
    old: str | None
    new: str | None
    by: str | None
    reason: str


@dataclass(kw_only=True)
class BookState:
    """What the book carries across continue-as-new (bounded: logs and claims are capped)."""

    mark: str | None = None
    version: int = 0
    mark_at: float | None = None
    next_claim: int = 1
    claims: list[ClaimRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    marks: list[MarkRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seen_skipped: int = 0
    seen_missed: int = 0


@dataclass(kw_only=True)
class ClaimAnswer:
    """What a claim request gets: the claim, or why there is none yet."""

    claim: ClaimRecord | None
    stale: bool = False
    """The mark moved since the run read it: read it again and claim anew."""
    skipped: int = 0
    """Ticks Temporal skipped (overlap) since the previous claim, for the notifier."""


class SeriesBook:
    """The mark, the claims and the logs of one series; every change goes through a method."""

    def __init__(self, state: BookState | None = None) -> None:
        s = state or BookState()
        self.mark, self.version, self.mark_at = s.mark, s.version, s.mark_at
        self.next_claim = s.next_claim
        self.claims: OrderedDict[str, ClaimRecord] = OrderedDict((c.run_id, c) for c in s.claims)
        self.runs: deque[RunRecord] = deque(s.runs, maxlen=MAX_RUN_LOG)
        self.marks: deque[MarkRecord] = deque(s.marks, maxlen=MAX_MARK_LOG)
        self.counts: dict[str, int] = dict(s.counts)
        self.seen_skipped, self.seen_missed = s.seen_skipped, s.seen_missed

    def state(self) -> BookState:
        """The book as a value to carry across continue-as-new."""
        return BookState(
            mark=self.mark,
            version=self.version,
            mark_at=self.mark_at,
            next_claim=self.next_claim,
            claims=list(self.claims.values()),
            runs=list(self.runs),
            marks=list(self.marks),
            counts=dict(self.counts),
            seen_skipped=self.seen_skipped,
            seen_missed=self.seen_missed,
        )

    def existing(self, run_id: str) -> ClaimRecord | None:
        """The claim ``run_id`` already holds, if it is remembered."""
        return self.claims.get(run_id)

    def note_ticks(self, skipped_total: int, missed_total: int, now: float) -> int:
        """Take the schedule's skip counters; log the ticks skipped since the last look.

        Returns how many ticks were newly skipped because the previous run still ran.
        """
        skipped = max(0, skipped_total - self.seen_skipped)
        missed = max(0, missed_total - self.seen_missed)
        self.seen_skipped = max(self.seen_skipped, skipped_total)
        self.seen_missed = max(self.seen_missed, missed_total)
        if skipped or missed:
            parts = []
            if skipped:
                parts.append(f"{skipped} tick(s) skipped: the previous run was still running")
            if missed:
                parts.append(f"{missed} tick(s) missed past the catch-up window")
            self._count("skipped", skipped)
            self._count("missed", missed)
            self.runs.append(
                RunRecord(
                    run_id="",
                    kind="skipped",
                    outcome="skipped",
                    reason="; ".join(parts),
                    started=now,
                    ended=now,
                )
            )
        return skipped

    def claim(
        self,
        *,
        run_id: str,
        kind: str,
        nominal: float | None,
        low: str | None,
        high: str | None,
        version: int | None,
        batch_id: str | None,
        now: float,
    ) -> ClaimAnswer:
        """Claim the window ``(low, high]`` for ``run_id`` (``high`` None: nothing new).

        ``version`` is the mark's version the run read ``low`` at (None: take the current mark
        as low, for windows whose end does not depend on it). An existing claim of the run is
        returned as it is.
        """
        found = self.claims.get(run_id)
        if found is not None:
            self.claims.move_to_end(run_id)
            return ClaimAnswer(claim=found)
        if kind == "scheduled":
            if version is not None and version != self.version:
                return ClaimAnswer(claim=None, stale=True)
            low = self.mark
        rec = ClaimRecord(
            n=self.next_claim,
            run_id=run_id,
            kind=kind,
            nominal=nominal,
            low=low,
            high=high,
            batch_id=batch_id if high is not None else None,
        )
        self.next_claim += 1
        self._remember(rec)
        self._count("backfills" if kind == "backfill" else "runs")
        empty = high is None
        if empty:
            rec.outcome = "empty"
            self._count("empty")
        self.runs.append(
            RunRecord(
                run_id=run_id,
                kind=kind,
                outcome="empty" if empty else "running",
                nominal=nominal,
                low=low,
                high=high,
                batch_id=rec.batch_id,
                started=now,
                ended=now if empty else None,
            )
        )
        return ClaimAnswer(claim=rec)

    def commit(
        self,
        *,
        run_id: str,
        outcome: str,
        reason: str | None,
        pages: int,
        failed_pages: int,
        items: int,
        failed_items: int,
        now: float,
        moves_mark: bool = True,
    ) -> str:
        """Record how a claimed run's batch ended; move the mark if it may. Returns the outcome.

        ``outcome`` is the run's verdict: "completed", "advanced" (completed with failed pages,
        moving on), "held" or "failed". The answer is what was recorded: "committed",
        "advanced", "held", "failed", "stale" (the mark was moved meanwhile), "done" (a
        backfill), or "unknown" (no such claim is remembered). A second commit of the same
        claim changes nothing and returns the first answer. ``moves_mark`` False: a series
        without a window (it records only).
        """
        rec = self.claims.get(run_id)
        if rec is None:
            return "unknown"
        if rec.outcome is not None:
            return rec.outcome
        if rec.kind == "backfill":
            final = "done" if outcome in ("completed", "advanced") else outcome
        elif outcome in ("completed", "advanced"):
            if not moves_mark:
                final = "committed" if outcome == "completed" else "advanced"
            elif rec.low == self.mark:
                final = "committed" if outcome == "completed" else "advanced"
                self._move(rec.high, None, f"run {run_id} committed {_window(rec)}", now)
            else:
                final = "stale"
                reason = (
                    f"the mark was moved to {self.mark!r} while the run covered "
                    f"{_window(rec)}; the next run starts from the new mark"
                )
        else:
            final = outcome
        rec.outcome = final
        self._count("committed", final in ("committed", "advanced"))
        self._count("held", final in ("held", "failed"))
        if final in ("advanced", "failed", "stale", "done"):
            self._count(final)
        for run in reversed(self.runs):
            if run.run_id == run_id and run.outcome == "running":
                run.outcome, run.reason = final, _cut(reason)
                run.pages, run.failed_pages = pages, failed_pages
                run.items, run.failed_items = items, failed_items
                run.ended = now
                break
        return final

    def set_mark(self, value: str | None, by: str | None, reason: str, now: float) -> None:
        """An operator sets the mark (forward or back): logged with who and why.

        Open claims taken from the old mark no longer commit (they are stale).
        """
        self._move(value, (by or "unknown")[:MAX_REASON], reason, now)

    def _move(self, value: str | None, by: str | None, reason: str, now: float) -> None:
        self.marks.append(
            MarkRecord(at=now, old=self.mark, new=value, by=by, reason=_cut(reason) or "")
        )
        self.mark, self.mark_at = value, now
        self.version += 1

    def _remember(self, rec: ClaimRecord) -> None:
        self.claims[rec.run_id] = rec
        while len(self.claims) > MAX_CLAIMS:
            # Forget resolved claims first; an open one only when there are that many open.
            oldest = next((k for k, c in self.claims.items() if c.outcome is not None), None)
            self.claims.pop(oldest if oldest is not None else next(iter(self.claims)))

    def _count(self, key: str, n: int | bool = 1) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + int(n)


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:MAX_REASON]


def _window(rec: ClaimRecord) -> str:
    return f"({'start' if rec.low is None else rec.low}, {rec.high}]"


def book_to_wire(state: BookState) -> dict[str, Any]:
    """The book's state as a JSON-friendly dict."""
    wire: dict[str, Any] = to_wire(state)
    return wire


def book_from_wire(raw: Any) -> BookState:
    """The inverse of ``book_to_wire``."""
    return from_wire(BookState, raw, "", "series book")
