"""The failure ledger: every failed page and item of a batch, kept in its history. Pure.

A batch's own state keeps only counts and a bounded preview of its most recent failures, so it
stays small whatever the cursors. Everything else about a failure goes into a *ledger record*:
the input of a no-op activity (``batch_orchestra.record_failures``), which Temporal keeps in the
run's history (the ``ActivityTaskScheduled`` event) for the namespace's retention period. The
batch's chain of runs is then the ledger: a reader walks it (``_ledger_reader.py``) and folds the
records in order.

* ``LedgerBook`` is the writing side, in the workflow: failures wait in a buffer until it is big
  enough, old enough, or the run hands over or finishes; then it is sealed into a record of at
  most ``LEDGER_RECORD_BYTES``. Records are numbered (``seq``) across the whole batch.
* A redrive of a running batch writes a *marker* record: the page entries of every record before
  it were queued again.
* ``LedgerFold`` is the reading side's arithmetic: the latest entry of a page wins, a marker
  clears the page entries before it, item failures are kept by (page, key).

docs/architecture.md ("The failure ledger") explains why this is safe and what happens after the
namespace's retention period.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .._model.failures import ItemFailure, PageFailure
from .budgets import LEDGER_FLUSH_SECONDS, LEDGER_RECORD_BYTES, text_size

__all__ = [
    "LedgerBook",
    "LedgerFeed",
    "LedgerFold",
    "LedgerItem",
    "LedgerPage",
    "LedgerPosition",
    "LedgerRecord",
    "LedgerState",
    "ReadLedgerInput",
    "ReadLedgerResult",
    "item_bytes",
    "page_bytes",
]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


_ENTRY_OVERHEAD = 160
"""Bytes of an entry's field names and numbers as JSON."""


@dataclass
class LedgerPage:
    """A page that failed for good, with everything needed to list it or run it again."""

    page_num: int
    cursor: str
    size: int
    attempts: int
    successor_enqueued: bool
    error_type: str
    error_message: str
    failed_at: float
    """When its last attempt failed (seconds since the epoch)."""
    chain: int = 0

    def as_failure(self) -> PageFailure:
        """The page as failure listings show it (whole cursor)."""
        return PageFailure(
            page_num=self.page_num,
            cursor_str=self.cursor,
            cursor_length=len(self.cursor),
            attempts=self.attempts,
            error_type=self.error_type,
            error_message=self.error_message,
            failed_at=_dt(self.failed_at),
            size=self.size,
            successor_enqueued=self.successor_enqueued,
        )


@dataclass
class LedgerItem:
    """An item a completed page recorded as failed, with its whole key."""

    page_num: int
    key: str
    error_type: str
    error_message: str
    failed_at: float

    def as_failure(self) -> ItemFailure:
        """The item as failure listings show it (whole key)."""
        return ItemFailure(
            key=self.key,
            page_num=self.page_num,
            error_type=self.error_type,
            error_message=self.error_message,
            failed_at=_dt(self.failed_at),
            key_length=len(self.key),
        )


@dataclass
class LedgerRecord:
    """One ledger record: the input of one ``record_failures`` activity."""

    execution: str
    """The batch execution (its first run ID) that wrote it."""
    seq: int
    """Its number in the batch's ledger (0, 1, 2, ... across runs)."""
    pages: list[LedgerPage] = field(default_factory=list)
    items: list[LedgerItem] = field(default_factory=list)
    redrive: bool = False
    """A marker: the page entries of every record before this one were queued again."""


@dataclass
class LedgerPosition:
    """Where a read of a ledger stopped: after event ``event_id`` of run ``run_id``."""

    run_id: str
    event_id: int
    run_index: int = 1
    """Which run of the batch that is (1 for the first), to count runs gone past retention."""


@dataclass
class ReadLedgerInput:
    """One read of a batch's ledger: at most ``max_bytes`` of page (or item) entries."""

    workflow_id: str
    execution: str
    items: bool = False
    """Item entries instead of page entries."""
    from_record: int = 0
    """Skip records before this one."""
    to_record: int | None = None
    """Stop at the first record at or after this one (None: at the end of the ledger)."""
    position: LedgerPosition | None = None
    """Go on from here (None: from the first run still kept)."""
    max_bytes: int = 512 * 1024


@dataclass
class ReadLedgerResult:
    """What one read found, and where the next goes on."""

    pages: list[LedgerPage] = field(default_factory=list)
    items: list[LedgerItem] = field(default_factory=list)
    position: LedgerPosition | None = None
    done: bool = False
    """The ledger has nothing more (within ``to_record``)."""
    unavailable_runs: int = 0
    """Runs skipped because their history is gone (past the namespace's retention period)."""


@dataclass(kw_only=True)
class LedgerFeed:
    """A ledger being read into this batch, a chunk at a time (a redrive's pages or items)."""

    workflow_id: str
    execution: str
    own: bool = False
    """The batch's own ledger (a redrive of a running batch): pages keep their numbers."""
    items: bool = False
    from_record: int = 0
    to_record: int | None = None
    position: LedgerPosition | None = None
    unavailable_runs: int = 0


@dataclass(kw_only=True)
class LedgerState:
    """The ledger's part of the state a run hands to the next."""

    seq: int = 0
    """The next record's number."""
    base: int = 0
    """The latest redrive marker's number (0: none)."""
    base_position: LedgerPosition | None = None
    """Where the read of that redrive ended: a later redrive's read starts there."""
    feeds: list[LedgerFeed] = field(default_factory=list)
    """Ledgers being read into the batch, in order."""


def page_bytes(entry: LedgerPage) -> int:
    """About how many bytes a page entry takes in a record (an upper bound)."""
    return (
        text_size(entry.cursor)
        + text_size(entry.error_type)
        + text_size(entry.error_message)
        + _ENTRY_OVERHEAD
    )


def item_bytes(entry: LedgerItem) -> int:
    """About how many bytes an item entry takes in a record (an upper bound)."""
    return (
        text_size(entry.key)
        + text_size(entry.error_type)
        + text_size(entry.error_message)
        + _ENTRY_OVERHEAD
    )


class LedgerBook:
    """The writing side: buffered failures, sealed into numbered records."""

    def __init__(self, execution: str, state: LedgerState | None = None) -> None:
        state = state or LedgerState()
        self.execution = execution
        self.seq = state.seq
        self.base = state.base
        self.base_position = state.base_position
        self._pages: list[LedgerPage] = []
        self._items: list[LedgerItem] = []
        self._bytes = 0
        self.first_at: float | None = None
        self.sealed: deque[LedgerRecord] = deque()
        """Records ready to be written, oldest first."""
        self.written = state.seq
        """Records whose command has been issued (their numbers are below this)."""

    @property
    def buffered(self) -> bool:
        """Whether failures wait in the buffer."""
        return bool(self._pages or self._items)

    @property
    def idle(self) -> bool:
        """Nothing waits to be written (a run may hand over or finish)."""
        return not self.buffered and not self.sealed

    def add_page(self, entry: LedgerPage, now: float) -> None:
        """Buffer a failed page."""
        self._add(page_bytes(entry), now)
        self._pages.append(entry)

    def add_item(self, entry: LedgerItem, now: float) -> None:
        """Buffer a failed item."""
        self._add(item_bytes(entry), now)
        self._items.append(entry)

    def _add(self, size: int, now: float) -> None:
        if self.buffered and self._bytes + size > LEDGER_RECORD_BYTES:
            self.seal()
        if not self.buffered:
            self.first_at = now
        self._bytes += size

    def due_at(self) -> float | None:
        """When the buffer must be sealed (None: it is empty)."""
        return None if self.first_at is None else self.first_at + LEDGER_FLUSH_SECONDS

    def seal(self) -> None:
        """Turn the buffer into a record (if it holds anything)."""
        if not self.buffered:
            return
        self.sealed.append(LedgerRecord(self.execution, self.seq, self._pages, self._items))
        self.seq += 1
        self._pages, self._items, self._bytes, self.first_at = [], [], 0, None

    def marker(self) -> LedgerRecord:
        """Seal the buffer, then a redrive marker; the marker becomes the ledger's base."""
        self.seal()
        record = LedgerRecord(self.execution, self.seq, redrive=True)
        self.sealed.append(record)
        self.base = self.seq
        self.seq += 1
        return record

    def take(self) -> LedgerRecord | None:
        """The next sealed record to write, if any."""
        if not self.sealed:
            return None
        record = self.sealed.popleft()
        self.written = record.seq + 1
        return record

    def buffered_pages(self) -> list[LedgerPage]:
        """Failed pages not written yet, oldest first (buffered and sealed)."""
        out = [p for r in self.sealed for p in r.pages]
        return out + self._pages

    def buffered_items(self) -> list[LedgerItem]:
        """Failed items not written yet, oldest first."""
        out = [i for r in self.sealed for i in r.items]
        return out + self._items

    def state(self, feeds: list[LedgerFeed]) -> LedgerState:
        """What the next run needs (call when idle: nothing buffered)."""
        return LedgerState(
            seq=self.seq, base=self.base, base_position=self.base_position, feeds=list(feeds)
        )


class LedgerFold:
    """Records folded in order: what a ledger says failed (the latest of each, ``keep`` at most).

    The latest entry of a page wins; a redrive marker clears the page entries before it; item
    failures are kept by (page, key). ``keep``: only the most recent that many of each (None:
    all).
    """

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep
        self.pages: OrderedDict[int, LedgerPage] = OrderedDict()
        self.items: OrderedDict[tuple[int, str], LedgerItem] = OrderedDict()
        self.records = 0
        self.last_seq = -1

    def apply(self, record: LedgerRecord) -> None:
        """Fold one more record (records arrive in ``seq`` order)."""
        self.records += 1
        self.last_seq = max(self.last_seq, record.seq)
        if record.redrive:
            self.pages.clear()
        for page in record.pages:
            self.pages.pop(page.page_num, None)
            self.pages[page.page_num] = page
            if self.keep is not None and len(self.pages) > self.keep:
                self.pages.popitem(last=False)
        for item in record.items:
            key = (item.page_num, item.key)
            self.items.pop(key, None)
            self.items[key] = item
            if self.keep is not None and len(self.items) > self.keep:
                self.items.popitem(last=False)
