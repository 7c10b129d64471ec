"""The batch's calls out that fail: tracker, notifier, health check and reduce. Pure.

The workflow records each call's outcome here (a call is one activity, with its retries) and
progress shows ``hook_errors``: one entry per hook, bounded text, carried across continue-as-new
(``BatchContinuation.hook_errors``). An entry stays once its hook recovers, marked so, because
a notifier event that was not delivered is not delivered later either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .._model import HookError

__all__ = ["HOOK_KINDS", "MAX_HOOK_ERROR", "HookErrors", "HookRecord"]

HOOK_KINDS = ("tracker", "notifier", "health_check", "reduce")
"""The kinds of hook a batch calls (one of each at most)."""
MAX_HOOK_ERROR = 500
"""Characters of a hook's last error kept."""


@dataclass(kw_only=True)
class HookRecord:
    """One hook's failures, as the hand-over carries them (times as epoch seconds)."""

    kind: str
    name: str
    consecutive: int = 0
    total: int = 0
    error: str = ""
    failed_at: float = 0.0
    event: str | None = None
    recovered_at: float | None = None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class HookErrors:
    """The failing hooks of one batch, by kind."""

    def __init__(self, records: list[HookRecord] | None = None) -> None:
        self._by_kind: dict[str, HookRecord] = {}
        for r in records or []:
            if r.kind in HOOK_KINDS:
                self._by_kind[r.kind] = r

    def failed(
        self, kind: str, name: str, error: str, now: float, event: str | None = None
    ) -> HookRecord:
        """A call of the ``kind`` hook ``name`` failed (after its retries) with ``error``."""
        r = self._by_kind.get(kind)
        if r is None:
            r = self._by_kind[kind] = HookRecord(kind=kind, name=name)
        r.name = name[:MAX_HOOK_ERROR]
        r.consecutive += 1
        r.total += 1
        r.error = error[:MAX_HOOK_ERROR]
        r.failed_at = now
        r.event = None if event is None else event[:100]
        r.recovered_at = None
        return r

    def succeeded(self, kind: str, now: float) -> bool:
        """A call of the ``kind`` hook succeeded; True if it had been failing."""
        r = self._by_kind.get(kind)
        if r is None or r.consecutive == 0:
            return False
        r.consecutive, r.recovered_at = 0, now
        return True

    def records(self) -> list[HookRecord]:
        """What to carry across continue-as-new."""
        return [self._by_kind[k] for k in HOOK_KINDS if k in self._by_kind]

    def progress(self) -> list[HookError]:
        """The entries as progress shows them."""
        return [
            HookError(
                kind=r.kind,
                name=r.name,
                consecutive_failures=r.consecutive,
                total_failures=r.total,
                last_error=r.error,
                last_failed_at=_dt(r.failed_at),
                event=r.event,
                recovered_at=None if r.recovered_at is None else _dt(r.recovered_at),
            )
            for r in self.records()
        ]
