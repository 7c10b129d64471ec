"""How the batch's hooks' calls went: tracker, notifier, health check and ``reduce``.

A hook that fails after its retries is recorded (``progress.hook_errors``, carried across
hand-overs) and logged; one that works again is logged once. The health check's verdicts go to
flow control; a fold that fails keeps its values waiting, and pauses the batch once too many wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hook_errors import MAX_HOOK_ERROR

if TYPE_CHECKING:
    from .run_state import RunState

__all__ = ["HookCalls"]


class HookCalls:
    """The hooks' failures so far, and what their outcomes do to the batch."""

    def __init__(self, engine: RunState) -> None:
        self._engine = engine

    def failed(
        self, kind: str, name: str, error: str, now: float, event: str | None = None
    ) -> None:
        """A call of a hook failed after its retries (``error``: "Type: message")."""
        record = self._engine.hook_errors.failed(kind, name, error, now, event)
        self._engine.log.warning(
            "batch %s %r failed%s (%d in a row): %s",
            kind.replace("_", " "),
            name,
            f" on {event!r}" if event else "",
            record.consecutive,
            error,
        )

    def ok(self, kind: str, now: float) -> None:
        if self._engine.hook_errors.succeeded(kind, now):
            self._engine.log.info("batch %s works again", kind.replace("_", " "))

    def _current(self) -> int:
        """The parallelism in force, which "slow down" halves."""
        sched = self._engine.sched
        return sched.effective_parallelism if not sched.paused else sched.max_parallelism

    def health_verdict(self, state: str, reason: str | None, now: float) -> None:
        """The health check answered."""
        e = self._engine
        line = e.flow.health_verdict(
            state, reason, current=self._current(), max_parallelism=e.sched.max_parallelism
        )
        self.ok("health_check", now)
        self._health_line(line, now)

    def health_failed(self, name: str, error: str, failures_before: int, now: float) -> None:
        """The health check's call failed."""
        e = self._engine
        self.failed("health_check", name, error, now)
        line = e.flow.health_failed(
            error,
            failures_before,
            current=self._current(),
            max_parallelism=e.sched.max_parallelism,
        )
        self._health_line(line, now)

    def _health_line(self, line: str | None, now: float) -> None:
        e = self._engine
        e.woken = True
        if line is not None:
            e.log.warning(line)
            e.flow.log_change(line, None, now)

    def fold_failed(self, values: int, detail: str, text: str, now: float) -> None:
        """A fold of ``values`` waiting values failed after its retries: they wait."""
        e = self._engine
        results, sched = e.results, e.sched
        results.error = detail[:MAX_HOOK_ERROR]
        self.failed("reduce", e.inp.processor_name(), text, now)
        e.log.error(
            "folding %d page values into the batch result failed: %s", values, results.error
        )
        if results.too_much_waiting and sched.pause(
            f"page values cannot be folded into the batch result ({results.error}); "
            "fix reduce, deploy the workers, then resume",
            now,
        ):
            e.paused_itself(sched.pause_reason, now, tell=False)
