"""Which batch execution a page's message comes from.

A workflow ID can be reused: a new batch under the ID of one that ended. Every page message
carries the execution (the first run ID of the batch's run chain) whose attempt sent it; a run
ignores those of other executions, logging the first of each.
"""

from __future__ import annotations

__all__ = ["FOREIGN_EXECUTIONS_LOGGED", "Identity"]

FOREIGN_EXECUTIONS_LOGGED = 32
"""A run logs the first ignored message of each other execution; it remembers this many (past
it, the oldest is forgotten and would be logged again)."""


class Identity:
    """This batch execution, and the other executions whose messages were ignored."""

    def __init__(self, execution: str) -> None:
        self.execution = execution
        self._foreign: dict[str, None] = {}

    def judge(self, execution: str) -> tuple[bool, bool]:
        """(whether a message from ``execution`` is ours, whether its refusal is to be logged)."""
        if not execution or execution == self.execution:
            return True, False
        if execution in self._foreign:  # one line per execution, not one per message
            return False, False
        if len(self._foreign) >= FOREIGN_EXECUTIONS_LOGGED:
            del self._foreign[next(iter(self._foreign))]
        self._foreign[execution] = None
        return False, True
