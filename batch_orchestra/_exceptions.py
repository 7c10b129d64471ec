"""The Batch Orchestra error tree.

::

    BatchOrchestraError
    ├── InvalidBatchInputError (also ValueError)   bad BatchOrchestratorInput, bad page
    │   ├── InvalidCursorError                      context.cursor(Model) cannot parse it
    │   └── InvalidArgsError                        context.args(Model) cannot parse them
    ├── ProcessorDefinitionError (also TypeError)  @page_processor misuse, bad retry settings
    ├── UnknownPageProcessorError (also LookupError)
    ├── UnknownBatchTrackerError (also LookupError)
    ├── UnknownBatchNotifierError (also LookupError)
    ├── UnknownSeriesError (also LookupError)      no series of that name
    └── ProcessorUsageError                         misuse inside run(): second enqueue, no args

Failures that cross Temporal (workflow or page failures) are ``ApplicationError``s whose
``type`` is one of the ``*_ERROR_TYPE`` constants below, so callers can match on them.
"""

from __future__ import annotations

__all__ = [
    "BatchOrchestraError",
    "InvalidArgsError",
    "InvalidBatchInputError",
    "InvalidCursorError",
    "ProcessorDefinitionError",
    "ProcessorUsageError",
    "UnknownBatchNotifierError",
    "UnknownBatchTrackerError",
    "UnknownHealthCheckError",
    "UnknownPageProcessorError",
    "UnknownSeriesError",
    "INVALID_ARGS_ERROR_TYPE",
    "INVALID_INPUT_ERROR_TYPE",
    "PROCESSOR_USAGE_ERROR_TYPE",
    "UNKNOWN_PROCESSOR_ERROR_TYPE",
    "UNKNOWN_TRACKER_ERROR_TYPE",
    "PROCESSOR_DEFINITION_ERROR_TYPE",
    "UNKNOWN_NOTIFIER_ERROR_TYPE",
    "UNKNOWN_HEALTH_CHECK_ERROR_TYPE",
    "WORKER_SHUTDOWN_ERROR_TYPE",
]

INVALID_INPUT_ERROR_TYPE = "BatchOrchestraInvalidInput"
"""``ApplicationError.type`` of a batch that failed because its input was invalid."""
INVALID_ARGS_ERROR_TYPE = "BatchOrchestraInvalidArgs"
"""``ApplicationError.type`` of a batch whose args do not fit its processor's ``args_type``."""
PROCESSOR_USAGE_ERROR_TYPE = "BatchOrchestraProcessorUsage"
"""``ApplicationError.type`` of a page that misused the context (never retried)."""
UNKNOWN_PROCESSOR_ERROR_TYPE = "BatchOrchestraUnknownPageProcessor"
"""``ApplicationError.type`` of a batch whose processor is not registered on the worker."""
UNKNOWN_TRACKER_ERROR_TYPE = "BatchOrchestraUnknownBatchTracker"
"""``ApplicationError.type`` of a batch whose tracker is not registered on the worker."""
UNKNOWN_NOTIFIER_ERROR_TYPE = "BatchOrchestraUnknownBatchNotifier"
"""``ApplicationError.type`` of a batch whose notifier is not registered on the worker."""
UNKNOWN_HEALTH_CHECK_ERROR_TYPE = "BatchOrchestraUnknownHealthCheck"
"""The batch's ``health_check`` is not registered on the worker (the batch fails to start)."""
WORKER_SHUTDOWN_ERROR_TYPE = "WorkerShutdown"
"""``ApplicationError.type`` of a page cut off by its worker's shutdown (retried; not counted by
the failure policy)."""
PROCESSOR_DEFINITION_ERROR_TYPE = "BatchOrchestraProcessorDefinition"
"""``ApplicationError.type`` of a batch whose processor has contradictory retry settings."""


class BatchOrchestraError(Exception):
    """Base class of every error raised by Batch Orchestra itself."""


class InvalidBatchInputError(BatchOrchestraError, ValueError):
    """A ``BatchOrchestratorInput`` field or a ``BatchPage`` holds a value that cannot work."""


class InvalidCursorError(InvalidBatchInputError):
    """A page's cursor does not parse into the model given to ``context.cursor(Model)``.

    Raised inside ``run()``, it fails the page without retries (a retry would read the same
    cursor), with this message in progress.
    """

    def __init__(self, message: str, *, model: object, text: str, page_num: int) -> None:
        super().__init__(message)
        self.model = model
        """The class the cursor was parsed into."""
        self.text = text
        """The cursor string that did not parse."""
        self.page_num = page_num
        """The page whose cursor it is."""


class InvalidArgsError(InvalidBatchInputError):
    """The batch's args do not parse into the model given to ``context.args(Model)``.

    Raised inside ``run()``, it fails the page without retries. Raised when a batch starts
    (``page_num`` None), for a processor that declares ``args_type``: the batch does not start
    (from the client) or fails at once (on the worker, ``INVALID_ARGS_ERROR_TYPE``).
    """

    def __init__(
        self, message: str, *, model: object, text: str, page_num: int | None = None
    ) -> None:
        super().__init__(message)
        self.model = model
        """The class the args were parsed into."""
        self.text = text
        """The args string that did not parse."""
        self.page_num = page_num
        """The page that read them (None: checked when the batch started)."""


class ProcessorDefinitionError(BatchOrchestraError, TypeError):
    """A page processor class is defined or decorated in a way that cannot work."""


class UnknownPageProcessorError(BatchOrchestraError, LookupError):
    """No page processor is registered under the requested name."""


class UnknownBatchTrackerError(BatchOrchestraError, LookupError):
    """No batch tracker is registered under the requested name."""


class UnknownBatchNotifierError(BatchOrchestraError, LookupError):
    """No batch notifier is registered under the requested name."""


class UnknownHealthCheckError(BatchOrchestraError, LookupError):
    """No health check is registered under the requested name."""


class UnknownSeriesError(BatchOrchestraError, LookupError):
    """No series of the requested name exists in the namespace."""


class ProcessorUsageError(BatchOrchestraError):
    """A page processor misused its context while running (a page error, never retried)."""
