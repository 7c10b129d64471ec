"""Per-item retries of ``context.process_items``: each item its own attempts and backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from .._exceptions import ProcessorUsageError

__all__ = ["attempt_item", "check_item_policy"]

T = TypeVar("T")


def check_item_policy(retry: RetryPolicy | None) -> RetryPolicy:
    """The policy of ``process_items(retry=...)``, checked (None: one attempt per item)."""
    if retry is None:
        return RetryPolicy(maximum_attempts=1)
    if not isinstance(retry, RetryPolicy):
        raise ProcessorUsageError(
            f"retry must be a temporalio.common.RetryPolicy, got {type(retry).__name__}"
        )
    if retry.maximum_attempts < 1:
        raise ValueError(
            f"retry.maximum_attempts must be >= 1 for items (an item's retries must end), got "
            f"{retry.maximum_attempts}"
        )
    if retry.initial_interval.total_seconds() <= 0:
        raise ValueError(f"retry.initial_interval must be positive, got {retry.initial_interval}")
    return retry


def _non_retryable(err: Exception, policy: RetryPolicy) -> bool:
    if isinstance(err, ApplicationError) and err.non_retryable:
        return True
    names = set(policy.non_retryable_error_types or ())
    if not names:
        return False
    if isinstance(err, ApplicationError) and err.type in names:
        return True
    return any(cls.__name__ in names for cls in type(err).__mro__)


def _delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th failure of an item."""
    first = policy.initial_interval.total_seconds()
    cap = (
        policy.maximum_interval.total_seconds()
        if policy.maximum_interval is not None
        else 100 * first
    )
    return float(min(cap, first * policy.backoff_coefficient ** (attempt - 1)))


async def attempt_item(
    fn: Callable[[T], Awaitable[object]], item: T, policy: RetryPolicy
) -> Exception | None:
    """Run one item through its attempts; the last error if it never succeeded."""
    attempt = 0
    while True:
        attempt += 1
        try:
            await fn(item)
            return None
        except Exception as err:
            if attempt >= policy.maximum_attempts or _non_retryable(err, policy):
                return err
            await asyncio.sleep(_delay(policy, attempt))
