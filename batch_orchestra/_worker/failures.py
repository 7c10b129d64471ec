"""How the activities fail: one way to look a named thing up, one way to wrap an error.

What these raise reaches the workflow (and its recorded histories) as it is: the
``ApplicationError``'s type, message and retryability must not change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

from temporalio.exceptions import ApplicationError

from .registry import Registry

__all__ = ["BATCH_CLOSED_ERROR_TYPE", "application_error", "look_up", "raised_as"]

T = TypeVar("T")

BATCH_CLOSED_ERROR_TYPE = "BatchClosed"
"""The error type of an attempt stopped because its batch was cancelled or has ended."""


def application_error(
    err: BaseException | str, error_type: str, *, retryable: bool = False
) -> ApplicationError:
    """``err`` (an exception or a message) as an ``ApplicationError`` of ``error_type``."""
    return ApplicationError(str(err), type=error_type, non_retryable=not retryable)


def look_up(registry: Registry[T], name: str, *, retryable: bool) -> T:
    """The item registered under ``name``, or the registry's unknown-name ``ApplicationError``.

    Args:
        registry: where to look.
        name: the name the batch gave.
        retryable: whether the failure is retried: True where another worker, or the next
            deploy, may know the name (a rolling deploy); False where a batch is being
            checked before it starts.
    """
    try:
        return registry.get(name)
    except registry.missing as err:
        raise application_error(err, registry.error_type, retryable=retryable) from None


@contextlib.contextmanager
def raised_as(*errors: tuple[type[Exception], str], keep_cause: bool = False) -> Iterator[None]:
    """Raise the listed errors as non-retryable ``ApplicationError``s of their types.

    Args:
        errors: ``(exception class, error type)`` pairs; the first that matches is used.
        keep_cause: keep the original error as the ``ApplicationError``'s cause (which then
            travels with the failure).
    """
    try:
        yield
    except tuple(cls for cls, _ in errors) as err:
        error_type = next(kind for cls, kind in errors if isinstance(err, cls))
        raise application_error(err, error_type) from (err if keep_cause else None)
