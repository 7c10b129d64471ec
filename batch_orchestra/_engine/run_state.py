"""The state of one run of a batch that the engine's parts share.

``BatchEngine`` is a ``RunState`` with the rules that tie its parts together; each part
(``admission``, ``controls``, ``failures``, ``handover``, ``hook_calls``) is given the run state
(and the parts it works with) when the engine is built, and keeps its own state besides.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import InvalidBatchInputError
from .._model import BatchOrchestratorInput, ProcessorSettings, input_from_wire
from .._model.codec import WireError
from .checkpoints import MAX_CHECKPOINT_BYTES, CheckpointBook
from .continuation import BatchContinuation, continuation_from_wire
from .events import Log, Patched, Patches
from .flow import FlowControl
from .history import History
from .hook_errors import HookErrors
from .identity import Identity
from .items import ItemBook
from .lifecycle import Lifecycle
from .outbox import NotifierOutbox
from .results import ResultFold
from .scheduler import Scheduler

__all__ = ["RunState"]


class RunState:
    """What one run of a batch knows: its input, its lifecycle, its scheduler and the rest."""

    def __init__(self, raw: dict[str, Any], *, execution: str, log: Log, patched: Patched) -> None:
        self.log, self.patched = log, patched
        self.state = Lifecycle.STARTING
        self.woken = False
        """Something changed that may let pages start: the shell drives again."""
        self.identity = Identity(execution)
        self.input_error: str | None = None
        self.cont: BatchContinuation | None = None
        cont = raw.get("continuation") if isinstance(raw, dict) else None
        try:
            self.inp = input_from_wire(raw, strict=not cont)
            if cont:
                self.cont = continuation_from_wire(cont)
        except (InvalidBatchInputError, WireError) as err:
            self.input_error = str(err)
            self.inp = BatchOrchestratorInput(page_processor="?", page_size=1, max_parallelism=0)
        self.patches = Patches()
        self._sched: Scheduler | None = None
        self._flow: FlowControl | None = None
        self.settings: ProcessorSettings | None = None
        self.run_items = bool(self.inp.item_keys) or bool(self.cont and self.cont.run_items)
        self.history = History(self.cont.history if self.cont is not None else None)
        self.checkpoints = CheckpointBook(
            self.cont.checkpoints if self.cont else None,
            max_bytes=MAX_CHECKPOINT_BYTES,
            patched=patched,
        )
        self.outbox = NotifierOutbox(patched)
        self.results = ResultFold()
        self.hook_errors = HookErrors()
        self.tracker_busy = False
        self.tracker_next: float | None = None
        self.items: ItemBook | None = None
        """The open item workflows (a batch with ``max_open_items``)."""

    # -- building ------------------------------------------------------------------------------

    @property
    def sched(self) -> Scheduler:
        if self._sched is None:
            raise RuntimeError("the batch's scheduler is not built yet")
        return self._sched

    @property
    def started(self) -> bool:
        """The scheduler is built: pages' messages and operators' controls apply."""
        return self._sched is not None

    @property
    def flow(self) -> FlowControl:
        if self._flow is None:
            raise RuntimeError("the batch's flow control is not built yet")
        return self._flow

    def changed(self, change: str, by: str | None, now: float) -> None:
        """Log a change (an operator's control, a ledger read) with who asked; keep it."""
        self.flow.log_change(change, by, now)
        self.log.info("%s (asked by %s)", change, by or "unknown")

    def ours(self, execution: str, what: str, page_num: int) -> bool:
        """Whether a message comes from an attempt this batch execution started."""
        ours, tell = self.identity.judge(execution)
        if tell:
            self.log.warning(
                "ignored %s from page %d of another batch execution (%s) that used this "
                "workflow ID; its further messages are ignored without a log line",
                what,
                page_num,
                execution,
                page_num=page_num,
            )
        return ours

    def notice(self, event: str, reason: str | None) -> None:
        """Queue an event for the notifier, if the batch has one."""
        if self.inp.notifier is not None:
            self.outbox.event(event, reason)

    def paused_itself(
        self, reason: str | None, now: float, *, change: str | None = None, tell: bool = True
    ) -> None:
        """The batch paused itself: log it, keep ``change`` in progress, tell the notifier.

        A canary's pause is expected (a warning, and a change in progress); the failure policy's
        and a failing ``reduce``'s are errors. A ``reduce`` pause is not told (``tell``): runs
        recorded so replay so.
        """
        log = self.log.warning if change is not None else self.log.error
        log("batch paused itself: %s", reason)
        if change is not None:
            self.flow.log_change(change, None, now)
        if tell:
            self.notice("paused", reason)
