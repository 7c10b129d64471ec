"""What a worker checks of a batch (or a series) before its first page: one place for both."""

from __future__ import annotations

from typing import Protocol

from .._exceptions import (
    INVALID_ARGS_ERROR_TYPE,
    PROCESSOR_DEFINITION_ERROR_TYPE,
    InvalidArgsError,
    ProcessorDefinitionError,
)
from .._model import ProcessorSettings
from .._model.typed import check_args
from .catalog import WorkerCatalog
from .failures import look_up, raised_as
from .processor import PageProcessor, processor_settings

__all__ = ["BatchParts", "check_args_and_hooks", "checked_processor"]


class BatchParts(Protocol):
    """What a batch (or a series) names that a worker must know: the input of its check."""

    @property
    def processor(self) -> str: ...
    @property
    def args(self) -> str | None: ...
    @property
    def tracker(self) -> str | None: ...
    @property
    def notifier(self) -> str | None: ...
    @property
    def health_check(self) -> str | None: ...


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
    catalog: WorkerCatalog, cls: type[PageProcessor], parts: BatchParts
) -> None:
    """Check the args against the processor's ``args_type``, and that the hooks are known.

    Raises:
        ApplicationError: (non-retryable) the args do not fit, or a hook is unknown here.
    """
    args_type = getattr(cls, "args_type", None)
    if args_type is not None and parts.args is not None:
        with raised_as((InvalidArgsError, INVALID_ARGS_ERROR_TYPE)):
            check_args(args_type, parts.args, parts.processor)
    if parts.tracker is not None:
        look_up(catalog.trackers, parts.tracker, retryable=False)
    if parts.notifier is not None:
        look_up(catalog.notifiers, parts.notifier, retryable=False)
    if parts.health_check is not None:
        look_up(catalog.health_checks, parts.health_check, retryable=False)
