"""The workflow side of checkpoints: the last checkpoint of each page waiting for its next attempt.

A failed attempt's checkpoint arrives with its outcome (``_checkpoint.py`` on the worker); the
book keeps it until the page's next attempt starts with it, and drops it when the page completes.
It is carried across hand-overs, bounded: one checkpoint is at most
``MAX_CHECKPOINT_BYTES``, and all of them at most ``MAX_HELD_CHECKPOINT_BYTES`` (past it the
oldest is dropped: that page repeats the items since its start, as without checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping

from .budgets import text_size

__all__ = [
    "CHECKPOINT_PATCH",
    "MAX_CHECKPOINT_BYTES",
    "MAX_HELD_CHECKPOINT_BYTES",
    "CheckpointBook",
]

CHECKPOINT_PATCH = "batch-orchestra-checkpoints"
"""Runs of this version hand a failed attempt's checkpoint to the page's next attempt."""
MAX_CHECKPOINT_BYTES = 4 * 1024
"""The most one checkpoint may hold as JSON (the processor's state included). Every attempt of
a retried page carries its page's checkpoint, and a hand-over carries those of held pages."""
MAX_HELD_CHECKPOINT_BYTES = 256 * 1024
"""The most bytes of checkpoints a batch holds (and a hand-over carries)."""


class CheckpointBook:
    """Checkpoints by page number, oldest first."""

    def __init__(
        self,
        carried: Mapping[str, str] | None,
        *,
        max_bytes: int,
        patched: Callable[[str], bool],
    ) -> None:
        self._max = max_bytes
        self._is_patched = patched
        self._by_page: dict[int, str] = {}
        self._bytes = 0
        self._patched: bool | None = None
        for num, text in (carried or {}).items():
            self._put(int(num), text)
        if carried:
            self._patched = True  # a run that carries checkpoints was begun with them

    @property
    def held_bytes(self) -> int:
        """About what the checkpoints add to a hand-over."""
        return self._bytes

    def get(self, page_num: int) -> str | None:
        """The checkpoint the page's next attempt starts from (None: from its first item)."""
        return self._by_page.get(page_num)

    def size_of(self, page_num: int) -> int:
        """What the page's checkpoint adds to its attempt's input (0 without one)."""
        text = self._by_page.get(page_num)
        return 0 if text is None else text_size(text) + 16

    def drop(self, page_num: int) -> None:
        """The page completed (or is no longer held): its checkpoint is spent."""
        text = self._by_page.pop(page_num, None)
        if text is not None:
            self._bytes -= len(text) + 16

    def keep(self, page_num: int, text: str | None) -> None:
        """Keep ``text`` as the page's checkpoint (None: keep what it had)."""
        if text is None or len(text) > self._max + 64:
            return
        if self._patched is None:
            self._patched = self._is_patched(CHECKPOINT_PATCH)
        if not self._patched:
            return
        self.drop(page_num)
        self._put(page_num, text)

    def _put(self, page_num: int, text: str) -> None:
        self._by_page[page_num] = text
        self._bytes += len(text) + 16
        while self._bytes > MAX_HELD_CHECKPOINT_BYTES and self._by_page:
            self.drop(next(iter(self._by_page)))

    def state(self, held: Container[int]) -> dict[str, str]:
        """The checkpoints of the pages still held, for the next run."""
        for num in [n for n in self._by_page if n not in held]:
            self.drop(num)
        return {str(n): t for n, t in self._by_page.items()}
