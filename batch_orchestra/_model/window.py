"""The slice of the data one run of a series covers (``BatchWindow``), and its checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .checks import fail

__all__ = [
    "MAX_MARK_CHARS",
    "WINDOW_KINDS",
    "BatchWindow",
    "check_window",
]


MAX_MARK_CHARS = 200
"""The most characters a window bound (a high-water mark) may hold: it names the batches of a
series (their workflow IDs) and travels in every page attempt."""

WINDOW_KINDS = ("watermark", "time")


@dataclass(kw_only=True)
class BatchWindow:
    """The slice of the data one run of a series covers; a processor reads it as ``context.window``.

    A **watermark** window is ``(low, high]``: the rows whose key (or watermark column) is after
    the last committed high-water mark ``low`` and at most ``high``, the end fixed when the run
    started. A **time** window is ``[low, high)``, both ISO 8601 instants in UTC
    (``datetime.fromisoformat`` reads them; ``start`` and ``end`` do it for you).
    """

    kind: str = "watermark"
    """"watermark" (``(low, high]``) or "time" (``[low, high)``)."""
    low: str | None = None
    """Where the window starts: for a watermark the last committed mark, exclusive (None: from
    the very beginning); for a time window its first instant, inclusive."""
    high: str
    """Where it ends: for a watermark inclusive, for a time window exclusive."""
    series: str = ""
    """The series whose run started the batch ("" outside a series)."""
    run: str = ""
    """The workflow ID of that run (a scheduled tick or a backfill)."""
    backfill: bool = False
    """The batch is a backfill: it never moves the series' mark."""
    claim: str = ""
    """Which claim of which series execution the batch serves (``<first run ID>/<n>``): a run
    that finds its batch's ID taken checks it before waiting for that batch."""

    def is_empty(self) -> bool:
        """Whether nothing can be in the window (a watermark that did not move, or no time)."""
        if self.kind == "time":
            return self.low is not None and _instant(self.high) <= _instant(self.low)
        return self.high == self.low

    @property
    def start(self) -> datetime | None:
        """A time window's first instant (None for a watermark window)."""
        return _instant(self.low) if self.kind == "time" and self.low is not None else None

    @property
    def end(self) -> datetime | None:
        """A time window's end, exclusive (None for a watermark window)."""
        return _instant(self.high) if self.kind == "time" else None

    def text(self) -> str:
        """The window as people write it: ``(100, 250]`` or ``[03:00, 04:00)`` in full ISO."""
        if self.kind == "time":
            return f"[{self.low}, {self.high})"
        return f"({'start' if self.low is None else self.low}, {self.high}]"


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def check_window(w: Any, what: str = "window") -> None:
    """Raise ``InvalidBatchInputError`` unless ``w`` is None or a ``BatchWindow`` that can work."""
    if w is None:
        return
    if not isinstance(w, BatchWindow):
        raise fail(f"{what} must be a BatchWindow or None, got {w!r:.200}")
    if w.kind not in WINDOW_KINDS:
        raise fail(f"{what}.kind must be one of {', '.join(WINDOW_KINDS)}, got {w.kind!r}")
    for name in ("low", "high"):
        v = getattr(w, name)
        if v is None and name == "low":
            continue
        if not isinstance(v, str):
            raise fail(f"{what}.{name} must be a str, got {v!r:.200}")
        if len(v) > MAX_MARK_CHARS:
            raise fail(
                f"{what}.{name} is {len(v):,} characters ({v[:40]!r}...); a window bound may "
                f"hold at most {MAX_MARK_CHARS}: keep a key or a time in it"
            )
        if w.kind == "time":
            try:
                _instant(v)
            except ValueError:
                raise fail(
                    f"{what}.{name} {v!r} is not an ISO 8601 time; a time window's bounds look "
                    "like 2026-05-01T03:00:00+00:00"
                ) from None
    for name in ("series", "run", "claim"):
        if not isinstance(getattr(w, name), str):
            raise fail(f"{what}.{name} must be a str, got {getattr(w, name)!r:.200}")
