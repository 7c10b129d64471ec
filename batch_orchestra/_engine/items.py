"""Item workflows: the open set of a batch whose pages start a workflow per item. Pure.

A page of such a batch starts its items' workflows (``context.start_items``) and reports their
keys in its result; each item workflow tells the batch when it closes (``ItemClosed``), and
``ItemBook`` keeps the open ones. The cap, ``max_open_items``, is kept by admission: a page
reserves room for as many items as its size while it runs, so open items plus the running pages'
sizes never pass the cap (``room``).

Two orders of arrival are expected and neither loses an item nor counts one twice:

* **A close before its page's result.** An item can finish, and its message arrive, before the
  page that started it has reported: the close waits in ``early`` and is applied when the page
  reports the key (or a retry of the page reports it again). ``early`` is bounded
  (``MAX_EARLY``): past it the oldest is dropped, and its item, once its page reports it, is
  found closed by a check and counted then.
* **A key reported twice.** A retried page starts the same keys again; the item's workflow ID
  makes that start attach to the first one, and a key already open (or already closed in this
  batch) is not opened again.

An item that closes without telling (terminated by an operator, timed out, a workflow that does
not use ``reports_to_batch``) is found by the batch's check (``to_check``): every
``item_check_interval`` (15 s by default) the items unchecked longest are described,
``ITEM_CHECK_BATCH`` at a time, and those found closed are counted by their status.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .budgets import MAX_ITEM_WORKFLOW_KEY, MAX_OPEN_ITEMS
from .columns import pack, unpack_pages

__all__ = [
    "ITEM_CHECK_AGES",
    "ITEM_CHECK_BATCH",
    "MAX_ITEM_WORKFLOW_KEY",
    "MAX_OPEN_ITEMS",
    "ItemBook",
    "ItemClose",
    "ItemsState",
    "closed_error_type",
]

ITEM_CHECK_AGES = 2
"""An item is checked only once it has been open (or unchecked) this many check intervals: an
item that tells the batch itself is usually closed by then, and is never described."""
ITEM_CHECK_BATCH = 100
"""The most items one check describes (a describe is a request to the server: a check stays a
small share of the load the items make)."""
MAX_EARLY = 1_000
"""The most closes kept waiting for their page's report (past it the oldest is dropped: its
item is found closed by a check once its page reports it, so it is still counted)."""
EARLY_MESSAGE = 200
"""Characters of an early close's error message kept (the check finds the rest)."""
_CLOSED_MEMORY = 2
"""Keys closed in this run are remembered up to this many times the cap (to ignore repeats);
not carried across a hand-over."""


def closed_error_type(status: str) -> str:
    """The error type of an item workflow that closed as ``status`` without completing.

    ``status`` is a Temporal status name: ``TIMED_OUT`` gives ``ItemWorkflowTimedOut``.
    """
    return "ItemWorkflow" + status.title().replace("_", "")


@dataclass
class ItemClose:
    """An item workflow closed: how (from its own message, or found by a check)."""

    key: str
    ok: bool
    error_type: str | None = None
    error_message: str = ""
    at: float = 0.0
    page_num: int = 0


@dataclass(kw_only=True)
class ItemsState:
    """An ``ItemBook`` at a hand-over."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    table: str = ""
    """zlib + base64 of ``{"open": [[key, page_num, checked_at], ...], "early": [[key, ok,
    error_type, message, at], ...]}`` (``checked_at`` in whole seconds)."""


@dataclass
class _Open:
    page_num: int
    checked_at: float


@dataclass
class ItemBook:
    """The open item workflows of a batch, and how many started, completed and failed."""

    max_open: int
    open: OrderedDict[str, _Open] = field(default_factory=OrderedDict)
    """Open keys, the least recently checked first."""
    early: OrderedDict[str, ItemClose] = field(default_factory=OrderedDict)
    closed: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Keys closed lately (a repeated report or close of one changes nothing)."""
    started: int = 0
    completed: int = 0
    failed: int = 0

    # -- the cap -------------------------------------------------------------------------------

    def room(self, reserved: int) -> int:
        """How many more items may be reserved, ``reserved`` being the running pages' sizes."""
        return max(0, self.max_open - len(self.open) - reserved)

    # -- events --------------------------------------------------------------------------------

    def opened(self, page_num: int, keys: list[str], now: float) -> list[ItemClose]:
        """A page reports the keys it started; returns the closes that were waiting for them."""
        applied: list[ItemClose] = []
        for key in keys:
            if key in self.open or key in self.closed:
                continue  # a retried page, or a redelivered result
            self.started += 1
            waiting = self.early.pop(key, None)
            if waiting is not None:
                waiting.page_num = page_num
                self._count(waiting)
                applied.append(waiting)
                continue
            self.open[key] = _Open(page_num, now)
        return applied

    def close(self, c: ItemClose) -> bool:
        """An item closed; True if that counts now (it was open).

        A close of a key not yet reported waits for its page; a repeat changes nothing.
        """
        entry = self.open.pop(c.key, None)
        if entry is not None:
            c.page_num = entry.page_num
            self._count(c)
            return True
        if c.key not in self.closed and c.key not in self.early:
            c.error_message = c.error_message[:EARLY_MESSAGE]
            self.early[c.key] = c
            while len(self.early) > MAX_EARLY:
                self.early.popitem(last=False)
        return False

    def _count(self, c: ItemClose) -> None:
        if c.ok:
            self.completed += 1
        else:
            self.failed += 1
        self.closed[c.key] = None
        while len(self.closed) > _CLOSED_MEMORY * self.max_open:
            self.closed.popitem(last=False)

    # -- checks --------------------------------------------------------------------------------

    def to_check(self, now: float, interval: float) -> list[str]:
        """The keys the next check describes, the least recently checked first.

        Open and unchecked for ``ITEM_CHECK_AGES`` intervals; at most ``ITEM_CHECK_BATCH``.
        """
        keys: list[str] = []
        for key, entry in self.open.items():
            if len(keys) >= ITEM_CHECK_BATCH or now - entry.checked_at < ITEM_CHECK_AGES * interval:
                break  # least recently checked first: the rest are newer
            keys.append(key)
        for key in keys:
            self.open[key].checked_at = now
            self.open.move_to_end(key)
        return keys

    # -- hand-over -----------------------------------------------------------------------------

    @property
    def held_bytes(self) -> int:
        """About what the open and early items add to a hand-over (before compression)."""
        return sum(len(k) + 24 for k in self.open) + sum(
            len(c.key) + len(c.error_message) + 48 for c in self.early.values()
        )

    def state(self) -> ItemsState:
        table: dict[str, Any] = {
            "open": [[k, e.page_num, int(e.checked_at)] for k, e in self.open.items()],
            "early": [
                [c.key, c.ok, c.error_type, c.error_message, c.at] for c in self.early.values()
            ],
        }
        return ItemsState(
            started=self.started, completed=self.completed, failed=self.failed, table=pack(table)
        )

    @classmethod
    def restore(cls, max_open: int, st: ItemsState | None) -> ItemBook:
        book = cls(max_open)
        if st is None:
            return book
        book.started, book.completed, book.failed = st.started, st.completed, st.failed
        table = unpack_pages(st.table)
        for key, page_num, checked_at in table.get("open", []):
            book.open[key] = _Open(page_num, float(checked_at))
        for key, ok, error_type, message, at in table.get("early", []):
            book.early[key] = ItemClose(key, ok, error_type, message, at)
        return book
