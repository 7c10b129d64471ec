"""What steers orchestration about a processor, as a worker reads it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ProcessorSettings",
]


@dataclass(kw_only=True)
class ProcessorSettings:
    """What steers orchestration about a processor, read once by a worker and kept in history."""

    name: str
    at_most_once: bool
    maximum_attempts: int
    initial_interval_seconds: float
    backoff_coefficient: float
    maximum_interval_seconds: float
    non_retryable_error_types: list[str]
    use_extended_retries: bool
    extended_retry_interval_seconds: float
    has_reduce: bool = False
    """The processor folds its pages' values into a batch result (it defines ``reduce``)."""
    discovers_apart: bool = False
    """The processor has a ``next_page`` method: the batch finds each page's successors in a
    step of their own, retried on its own, alongside the page's processing (False in histories
    recorded before it existed)."""

    def retry_delay(self, failed_attempts: int) -> float:
        """Seconds to wait before the next initial retry after ``failed_attempts`` failures.

        Never overflows: the exponent stops growing once the delay reaches its maximum.
        """
        cap = self.maximum_interval_seconds
        try:
            delay = self.initial_interval_seconds * self.backoff_coefficient ** min(
                max(0, failed_attempts - 1), 1024
            )
        except OverflowError:
            delay = cap
        return float(min(delay, cap))
