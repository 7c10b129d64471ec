"""Checkpoints inside a page: a retried page does not repeat its work (retries: item_retries).

The worker side. A page's context keeps its latest checkpoint: how far ``context.items`` got
(position and last key), the items counted and the item failures recorded so far, and the
processor's own state (``context.checkpoint``). It travels with the attempt's outcome (an
application failure's details; on a timeout, the last heartbeat's details, as every checkpoint
is also heartbeated) to the workflow, which hands it to the page's next attempt
(``_engine/checkpoints.py``). That attempt resumes after it: ``context.items`` skips what was
done, ``context.resumed_from`` is the processor's state, and the carried count and failures are
counted once, when the page completes.

What it guarantees: at most the items since the last checkpoint that reached the server are
repeated (one item, after a failure; after a lost worker, those of its last heartbeat interval).
What it cannot: an item interrupted between its side effect and its checkpoint runs again, so
the side effect itself must still be idempotent (an idempotency key).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from .._engine.budgets import MAX_ITEM_KEY, clip, text_size
from .._engine.checkpoints import MAX_CHECKPOINT_BYTES
from .item_retries import attempt_item, check_item_policy

if TYPE_CHECKING:
    from .._model import ItemFailure

__all__ = [
    "CHECKPOINT_DETAILS_KEY",
    "MAX_CHECKPOINT_BYTES",
    "CheckpointMixin",
    "PageItems",
    "checkpoint_of_details",
    "with_checkpoint",
]

CHECKPOINT_DETAILS_KEY = "batch_orchestra.checkpoint"
"""An attempt's checkpoint in a failure's details or a heartbeat's: ``{KEY: json_text}``."""
_CARRIED_FAILURES_BYTES = 2 * 1024
"""Of it, the most that item failures carried to the next attempt may take (past it, counted)."""
_CARRIED_MESSAGE = 200

T = TypeVar("T")
_logger = logging.getLogger("batch_orchestra")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def checkpoint_of_details(details: Iterable[Any] | None) -> str | None:
    """The checkpoint among a failure's or a heartbeat's details, if one is there."""
    for d in details or ():
        if isinstance(d, dict) and isinstance(d.get(CHECKPOINT_DETAILS_KEY), str):
            text: str = d[CHECKPOINT_DETAILS_KEY]
            return text if text_size(text) <= MAX_CHECKPOINT_BYTES + 64 else None
    return None


def with_checkpoint(err: BaseException, checkpoint: str | None) -> BaseException:
    """``err`` as an ``ApplicationError`` that carries ``checkpoint`` in its details.

    Type, message, retryability and category stay as Temporal would report them for ``err``;
    a ``CancelledError`` (or anything not an ``Exception``) is returned as it is.
    """
    if checkpoint is None or not isinstance(err, Exception):
        return err
    carried = {CHECKPOINT_DETAILS_KEY: checkpoint}
    if isinstance(err, ApplicationError):
        wrapped = ApplicationError(
            err.message,
            *err.details,
            carried,
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
            category=err.category,
        )
        wrapped.__cause__ = err.__cause__
        return wrapped
    wrapped = ApplicationError(str(err), carried, type=type(err).__name__)
    wrapped.__cause__ = err
    return wrapped


class PageItems(Generic[T]):
    """A page's items, checkpointed after each (``context.items``); ``for`` or ``async for``.

    Taking the next item checkpoints the one before it (it completed); the item the loop was
    on when it raised is not checkpointed, so the next attempt starts with it.
    """

    def __init__(
        self, context: CheckpointMixin, items: Iterable[T], key: Callable[[T], object] | None
    ) -> None:
        self._context = context
        self._items = list(items)
        self._key = key
        self._next = context._resume_index(self._items, key)
        self._pending: int | None = None
        self._pending_failed = False

    @property
    def skipped(self) -> int:
        """How many items an earlier attempt had done (this attempt skips them)."""
        return self._context._skipped

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        self._finish_pending()
        if self._next >= len(self._items):
            raise StopIteration
        self._pending = self._next
        self._next += 1
        return self._items[self._pending]

    def __aiter__(self) -> PageItems[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return next(self)
        except StopIteration:
            raise StopAsyncIteration from None

    def key_of(self, item: T, index: int) -> str:
        """The item's key: ``key(item)``, else its position in the page."""
        return clip(str(self._key(item) if self._key is not None else index), MAX_ITEM_KEY)

    def _finish_pending(self) -> None:
        if self._pending is None:
            return
        index, self._pending = self._pending, None
        failed, self._pending_failed = self._pending_failed, False
        key = self.key_of(self._items[index], index) if self._key is not None else None
        self._context._item_done(index + 1, key, counted=not failed)


class CheckpointMixin:
    """``context.items``, ``context.process_items``, ``context.checkpoint`` and ``resumed_from``."""

    if TYPE_CHECKING:
        _items: int
        _failures: list[ItemFailure]
        _num_failures: int
        _failures_bytes: int
        _failures_lock: threading.Lock
        _loop_thread: int
        _page_num: int

        def record_failure(self, item_key: object, error: BaseException | str) -> None: ...

    def _init_checkpoint(self, checkpoint: str | None) -> None:
        """Read the checkpoint an earlier attempt left (None: none; start at the first item)."""
        self._cp_position = 0
        self._cp_key: str | None = None
        self._cp_state: Any = None
        self._cp_has_state = False
        self._cp_text: str | None = None
        self._cp_iterating = False
        self._skipped = 0
        self._resumed: dict[str, Any] | None = None
        if checkpoint is None:
            return
        try:
            cp = json.loads(checkpoint)
        except ValueError:
            cp = None
        if not isinstance(cp, dict):
            _logger.warning("page %d: ignored an unreadable checkpoint", self._page_num)
            return
        try:
            position, items = int(cp.get("p", 0)), int(cp.get("i", 0))
            key = cp.get("k")
            self._restore_failures(cp)
        except (TypeError, ValueError) as err:  # not one of ours: start over rather than fail
            _logger.warning("page %d: ignored an unreadable checkpoint (%s)", self._page_num, err)
            return
        self._resumed, self._cp_text = cp, checkpoint
        self._cp_position, self._cp_key = position, key if isinstance(key, str) else None
        if "s" in cp:
            self._cp_state, self._cp_has_state = cp["s"], True
        self._items += items

    def _restore_failures(self, cp: dict[str, Any]) -> None:
        from .._model import ItemFailure

        restored = [
            ItemFailure(
                key=str(key),
                page_num=self._page_num,
                error_type=str(kind),
                error_message=str(message),
                failed_at=datetime.fromisoformat(at),
                key_length=len(str(key)),
            )
            for key, kind, message, at in cp.get("fd", [])
        ]
        count = int(cp.get("f", 0))
        with self._failures_lock:
            for f in restored:
                self._failures.append(f)
                self._failures_bytes += (
                    text_size(f.key) + text_size(f.error_type) + text_size(f.error_message) + 120
                )
            self._num_failures += max(count, len(restored))

    @property
    def resumed_from(self) -> Any:
        """The state the page's last ``context.checkpoint(state)`` saved in an earlier attempt.

        None on a first attempt, and when no earlier attempt checkpointed a state.
        """
        return self._cp_state if self._resumed is not None else None

    @property
    def is_resumed(self) -> bool:
        """Whether an earlier attempt of this page left a checkpoint this attempt resumes from."""
        return self._resumed is not None

    def items(
        self, items: Iterable[T], *, key: Callable[[T], object] | None = None
    ) -> PageItems[T]:
        """The page's items, checkpointed after each, skipping those an earlier attempt did.

        ``async for row in context.items(rows, key=lambda r: r["id"]):`` (or a plain ``for``).
        Each item is counted once as it completes, across attempts: the page's item count is
        what went through here (a count ``run`` returns is not added). With ``key``, a resumed
        attempt starts after the item whose key was checkpointed last (if the page's items
        changed in between; else after as many items as were done). One call per page.

        Raises:
            ProcessorUsageError: called a second time in the same attempt.
        """
        from .._exceptions import ProcessorUsageError

        if self._cp_iterating:
            raise ProcessorUsageError(
                f"page {self._page_num} called context.items a second time; checkpoints count "
                "the page's items in one pass (put them in one list)"
            )
        self._cp_iterating = True
        return PageItems(self, items, key)

    async def process_items(
        self,
        items: Iterable[T],
        fn: Callable[[T], Awaitable[object]],
        *,
        key: Callable[[T], object] | None = None,
        retry: RetryPolicy | None = None,
    ) -> int:
        """Run ``await fn(item)`` for each item, each retried on its own, checkpointed after each.

        An item whose attempts run out (or that raises a non-retryable error: a type named in
        ``retry.non_retryable_error_types``, or an ``ApplicationError(non_retryable=True)``) is
        recorded as failed (``record_failure``, keyed by ``key(item)`` or its position) and the
        page goes on: the page succeeds, and the batch's failure policy (``max_failed_items``)
        judges. Items resume after an earlier attempt's checkpoint as with ``items``.

        Args:
            items: the page's items.
            fn: an async function processing one item.
            key: the item's key (for checkpoints and failure records).
            retry: each item's attempts and backoff (default: one attempt). Its
                ``maximum_attempts`` must be at least 1 (an item's retries must end).

        Returns:
            How many items succeeded in this attempt.

        Raises:
            ValueError: ``retry.maximum_attempts`` is below 1, or an interval is not positive.
        """
        policy = check_item_policy(retry)
        succeeded = 0
        page_items = self.items(items, key=key)
        for item in page_items:
            index = page_items._next - 1
            err = await attempt_item(fn, item, policy)
            if err is None:
                succeeded += 1
                continue
            page_items._pending_failed = True
            self.record_failure(page_items.key_of(item, index), err)
        return succeeded

    def checkpoint(self, state: Any = None) -> None:
        """Save how far the page got: a later attempt of this page reads ``state`` back.

        ``context.resumed_from`` is ``state`` in that attempt. Take one after each unit of
        work whose side effect must not be repeated (``context.items`` takes one per item by
        itself). The items counted and the failures recorded so far are saved with it, so they
        count once. ``state`` must be JSON-friendly and small (the checkpoint at most 4 KB).

        Raises:
            ProcessorUsageError: ``state`` is not JSON-friendly or too big.
        """
        from .._exceptions import ProcessorUsageError

        try:
            _dumps(state)
        except (TypeError, ValueError) as err:
            raise ProcessorUsageError(
                f"page {self._page_num}: context.checkpoint(state) takes a JSON-friendly state "
                f"(dicts, lists, str, numbers), got {type(state).__name__}: {err}"
            ) from None
        self._cp_state, self._cp_has_state = state, True
        self._write_checkpoint()

    def _resume_index(self, items: list[Any], key: Callable[[Any], object] | None) -> int:
        """Where ``items`` resume: after the last checkpointed key, else at the position."""
        if self._resumed is None:
            return 0
        start = min(max(0, self._cp_position), len(items))
        if key is not None and self._cp_key is not None:
            for i, item in enumerate(items):
                if clip(str(key(item)), MAX_ITEM_KEY) == self._cp_key:
                    start = i + 1
                    break
        self._skipped = start
        return start

    def _item_done(self, position: int, key: str | None, *, counted: bool) -> None:
        if counted:
            self._items += 1
        self._cp_position, self._cp_key = position, key
        self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        from .._exceptions import ProcessorUsageError

        cp: dict[str, Any] = {"p": self._cp_position, "i": self._items}
        if self._cp_key is not None:
            cp["k"] = self._cp_key
        if self._cp_has_state:
            cp["s"] = self._cp_state
        with self._failures_lock:
            if self._num_failures:
                cp["f"] = self._num_failures
                cp["fd"] = _carried(self._failures)
        text = _dumps(cp)
        if text_size(text) > MAX_CHECKPOINT_BYTES:
            raise ProcessorUsageError(
                f"page {self._page_num}'s checkpoint is {text_size(text):,} bytes as JSON; at "
                f"most {MAX_CHECKPOINT_BYTES:,}: checkpoint a position or a key, not the data"
            )
        self._cp_text = text
        if threading.get_ident() == self._loop_thread:
            _heartbeat(text)  # sent with the next heartbeat (the SDK throttles them)

    def _checkpoint_details(self) -> list[Any]:
        """The heartbeat's details: the latest checkpoint (empty before the first)."""
        return [] if self._cp_text is None else [{CHECKPOINT_DETAILS_KEY: self._cp_text}]

    @property
    def _checkpoint_text(self) -> str | None:
        return self._cp_text


def _carried(failures: list[ItemFailure]) -> list[list[str]]:
    """The failures recorded so far, as many as fit the checkpoint's share (the rest counted)."""
    out: list[list[str]] = []
    used = 0
    for f in failures:
        row = [f.key, f.error_type, f.error_message[:_CARRIED_MESSAGE], f.failed_at.isoformat()]
        size = sum(text_size(x) for x in row) + 8
        if used + size > _CARRIED_FAILURES_BYTES:
            break
        used += size
        out.append(row)
    return out


def _heartbeat(text: str) -> None:
    try:
        activity.heartbeat({CHECKPOINT_DETAILS_KEY: text})
    except RuntimeError:  # not in an activity (a processor run by hand in a unit test)
        pass
