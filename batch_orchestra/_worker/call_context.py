"""What every registered function (tracker, notifier, health check) gets: ``CallContext``."""

from __future__ import annotations

import logging

from .._exceptions import ProcessorUsageError
from .._model import BatchOrchestratorProgress

__all__ = ["CallContext"]


class CallContext:
    """What every registered function gets: the batch's progress and id, its args, a logger."""

    _CONFIG = "its config"
    """The config class whose ``args`` ``args_str`` returns (named in its error)."""

    def __init__(
        self,
        *,
        progress: BatchOrchestratorProgress,
        batch_id: str,
        args: str | None,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._progress, self._batch_id, self._args, self._logger = progress, batch_id, args, logger

    @property
    def progress(self) -> BatchOrchestratorProgress:
        """The batch's progress when the function was called."""
        return self._progress

    @property
    def batch_id(self) -> str:
        """The batch's ``batch_id`` ("" when none was given)."""
        return self._batch_id

    @property
    def args_str(self) -> str:
        """The ``args`` string of the function's config.

        Raises:
            ProcessorUsageError: the function was configured without args.
        """
        if self._args is None:
            raise ProcessorUsageError(
                f"context.args_str was read but {self._CONFIG}.args is None; "
                f"pass args=... in {self._CONFIG}"
            )
        return self._args

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``batch_id``."""
        return self._logger
