"""The engine's log lines, through the workflow's logger (silent during a replay)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

__all__ = ["WorkflowLog"]


class WorkflowLog:
    """``Log`` for the engine: each line carries the batch's ID (and its page's number)."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id

    def _extra(self, page_num: int | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"batch_id": self.batch_id}
        if page_num is not None:
            extra["page_num"] = page_num
        return extra

    def info(self, msg: str, *args: Any, page_num: int | None = None) -> None:
        workflow.logger.info(msg, *args, extra=self._extra(page_num))

    def warning(self, msg: str, *args: Any, page_num: int | None = None) -> None:
        workflow.logger.warning(msg, *args, extra=self._extra(page_num))

    def error(self, msg: str, *args: Any, page_num: int | None = None) -> None:
        workflow.logger.error(msg, *args, extra=self._extra(page_num))
