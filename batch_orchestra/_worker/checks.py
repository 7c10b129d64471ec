"""What a worker checks of a batch (or a series) before its first page: one place for both."""

from __future__ import annotations

from .._exceptions import (
    INVALID_ARGS_ERROR_TYPE,
    PROCESSOR_DEFINITION_ERROR_TYPE,
    InvalidArgsError,
    ProcessorDefinitionError,
)
from .._typed import check_args
from .._types import ProcessorSettings
from .catalog import WorkerCatalog
from .failures import look_up, raised_as
from .processor import PageProcessor, processor_settings

__all__ = ["check_args_and_hooks", "checked_processor"]


def checked_processor(
    catalog: WorkerCatalog, name: str
) -> tuple[type[PageProcessor], ProcessorSettings]:
    """The processor registered under ``name``, and its settings.

    Raises:
        ApplicationError: (non-retryable) the processor is unknown here, or its settings
            contradict each other.
    """
    cls = look_up(catalog.processors, name, retryable=False)
    with raised_as((ProcessorDefinitionError, PROCESSOR_DEFINITION_ERROR_TYPE)):
        settings = processor_settings(cls)
    return cls, settings


def check_args_and_hooks(
    catalog: WorkerCatalog,
    cls: type[PageProcessor],
    *,
    processor: str,
    args: str | None,
    tracker: str | None,
    notifier: str | None,
    health_check: str | None,
) -> None:
    """Check the args against the processor's ``args_type``, and that the hooks are known.

    Raises:
        ApplicationError: (non-retryable) the args do not fit, or a hook is unknown here.
    """
    args_type = getattr(cls, "args_type", None)
    if args_type is not None and args is not None:
        with raised_as((InvalidArgsError, INVALID_ARGS_ERROR_TYPE)):
            check_args(args_type, args, processor)
    if tracker is not None:
        look_up(catalog.trackers, tracker, retryable=False)
    if notifier is not None:
        look_up(catalog.notifiers, notifier, retryable=False)
    if health_check is not None:
        look_up(catalog.health_checks, health_check, retryable=False)
