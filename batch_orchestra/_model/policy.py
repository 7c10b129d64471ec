"""When a batch pauses itself because too much is failing."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FailurePolicy",
]


@dataclass(kw_only=True)
class FailurePolicy:
    """When a batch pauses itself because too much is failing (to protect the downstream).

    Past a threshold the batch **pauses**: running pages finish, no page starts, progress says
    why (``pause_reason``) and the notifier, if any, is called. Fix the cause, then ``resume()``.
    A batch with nothing left to start never pauses (its stuck pages keep their extended
    retries), except for lack of progress (``no_progress_attempts``).
    """

    max_failure_rate: float | None = 0.5
    """Pause when more than this fraction of the last ``window`` page attempts failed (judged
    only once ``min_attempts`` attempts were made in the window); None: no rate threshold."""
    window: int = 100
    """How many recent attempts the rate is judged over."""
    min_attempts: int = 20
    """The rate is not judged over fewer attempts than this (so a small batch with one bad page
    finishes as usual, with that page counted as failed or stuck)."""
    max_failed_pages: int | None = None
    """Pause when more than this many pages are failed or stuck at once; None: no count."""
    max_failed_items: int | None = None
    """Pause when more than this many items were recorded as failed
    (``context.record_failure``) in the whole batch; None: no count."""
    no_progress_attempts: int | None = 5
    """Pause when no page has completed since the batch started (or was last resumed) and
    this many page attempts in a row failed with the same error (type and message): a wrong
    argument or a bug, which retrying will not fix. With the default retry policy (1 s
    doubling) a single failing page pauses the batch about 15 s after its first failure, within
    its initial retries. Attempts lost with their worker do not count. None: never (the page
    then retries and becomes stuck as usual; progress still shows ``no_progress``)."""

    @classmethod
    def disabled(cls) -> FailurePolicy:
        """A policy that never pauses the batch."""
        return cls(max_failure_rate=None, max_failed_pages=None, no_progress_attempts=None)
