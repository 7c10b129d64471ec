"""Flow control of a batch: ramp-up, rate limits, health throttling, adaptive parallelism, canary.

Pure and deterministic (time comes in as workflow time); no Temporal imports.

The workflow asks ``FlowControl`` two things before it starts attempts: the cap flow control
puts on parallelism now (``cap``), and how many attempts the rate limits allow now
(``allowance``). It tells it what happened (attempts started, pages finished, the health check's
verdicts, pause and resume), and asks when to look again (``wake_at``) when flow control, not a
lack of pages, is what holds pages back. ``FlowState`` carries it across continue-as-new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .budgets import clip, text_size

__all__ = ["FlowControl", "FlowState", "rates_text"]

MIN_TICK_SECONDS = 0.25
"""The shortest wait before flow control looks again (starts come in groups above 4/s)."""
BURST_SECONDS = 1.0
"""A rate-limit bucket holds at most this many seconds of tokens (at least one page's worth)."""
ADAPTIVE_DECREASE = 0.75
"""Adaptive parallelism is multiplied by this on a failure, a timeout or a slow page."""
LATENCY_FACTOR = 1.5
"""Without a ``target_page_latency``: the target is this times the fastest latency seen (1.5
settled at a simulated downstream's capacity; 2.0 settled a quarter above it, at 0.90 of the
best fixed parallelism's throughput, in ``make bench-flow``)."""
BASE_LATENCY_DRIFT = 1e-4
"""The fastest latency seen is forgotten slowly (1% per 100 pages), so that a downstream that
became slower for good raises the target instead of pinning parallelism at 1."""
HEALTH_BACKOFF = 0.5
""""slow down" multiplies the parallelism by this."""
HEALTH_RECOVERY_STEP = 0.1
"""Each healthy verdict after "slow down" or "stop" adds this fraction of ``max_parallelism``."""
CHANGE_LOG_LIMIT = 20
"""How many recent control changes progress lists."""
MAX_NOTE_CHARS = 500
"""The most characters of an operator's or a health check's text (a reason, an identity) the
batch keeps: it travels across continue-as-new."""


@dataclass(kw_only=True)
class FlowState:
    """Flow control at a hand-over (and its runtime settings: rate limits set by operators)."""

    max_pages_per_second: float | None = None
    max_items_per_second: float | None = None
    page_tokens: float = 1.0
    item_tokens: float | None = None
    tokens_at: float | None = None
    ramp_from: float | None = None
    adaptive_cap: float | None = None
    slow_start: bool = True
    base_latency: float | None = None
    decreased_at: float = 0.0
    health: str | None = None
    health_reason: str | None = None
    health_cap: float | None = None
    health_failures: int = 0
    canary_done: bool = False
    changes: list[list[str | float | None]] = field(default_factory=list)
    """[time, change, by] of the most recent control changes."""


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%H:%M:%S")


class FlowControl:
    """The flow-control state of one batch and its decisions."""

    def __init__(
        self,
        state: FlowState,
        *,
        ramp_up: float | None = None,
        adaptive: bool = False,
        target_latency: float | None = None,
        canary_pages: int | None = None,
    ) -> None:
        self.state = state
        self.ramp_up = ramp_up
        self.adaptive = adaptive
        self.target_latency = target_latency
        self.canary_pages = canary_pages
        self.exact = True
        """A ramp-up survives a moment at parallelism 1 (off for runs begun before it)."""
        self._started: dict[int, float] = {}  # running attempts' start times (this run only)
        if adaptive and state.adaptive_cap is None:
            state.adaptive_cap = 1.0

    # -- caps --------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """The batch starts (or resumes): the ramp-up begins again."""
        if self.ramp_up is not None:
            self.state.ramp_from = now

    def _ramp_cap(self, max_parallelism: int, now: float) -> int | None:
        s, ramp = self.state, self.ramp_up
        if ramp is None or s.ramp_from is None:
            return None
        elapsed = now - s.ramp_from
        if elapsed >= ramp or (max_parallelism <= 1 and not self.exact):
            s.ramp_from = None
            return None
        if max_parallelism <= 1:
            return None  # nothing to ramp now; it goes on if the cap is raised again
        return max(1, math.floor(1 + (max_parallelism - 1) * elapsed / ramp))

    def cap(self, max_parallelism: int, now: float) -> tuple[int | None, str | None]:
        """The cap flow control puts on parallelism now (None: none) and why."""
        s = self.state
        caps: list[tuple[int, str]] = []
        ramp = self._ramp_cap(max_parallelism, now)
        if ramp is not None and self.ramp_up is not None and s.ramp_from is not None:
            until = s.ramp_from + self.ramp_up
            caps.append((ramp, f"ramping up: {ramp} of {max_parallelism} until {_clock(until)}"))
        if s.health_cap is not None:
            h = math.floor(s.health_cap)
            if s.health in ("stop", "failing") and h == 0:
                what = "health check failing" if s.health == "failing" else "health check: stop"
                caps.append((0, f"{what}: {s.health_reason or 'no reason given'}"))
            else:
                caps.append(
                    (
                        max(1, h),
                        (
                            f"health check: {s.health or 'recovering'}"
                            + (
                                f": {s.health_reason}"
                                if s.health != "healthy" and s.health_reason
                                else "; recovering step by step"
                            )
                        ),
                    )
                )
        if self.adaptive and s.adaptive_cap is not None:
            a = max(1, math.floor(s.adaptive_cap))
            target = self.target()
            caps.append(
                (
                    a,
                    f"adaptive: {a}"
                    + (f" (target page latency {target:.3g} s)" if target is not None else ""),
                )
            )
        if not caps:
            return None, None
        n, why = min(caps, key=lambda c: c[0])
        if n >= max_parallelism:
            return None, None
        return n, why

    def ramp_until(self) -> float | None:
        """When the ramp-up in progress ends, if one is."""
        s = self.state
        if self.ramp_up is None or s.ramp_from is None:
            return None
        return s.ramp_from + self.ramp_up

    def adaptive_parallelism(self) -> int | None:
        """The parallelism adaptive mode has found so far (None when off)."""
        cap = self.state.adaptive_cap
        return max(1, math.floor(cap)) if self.adaptive and cap is not None else None

    # -- rate limits -------------------------------------------------------------------------

    @property
    def rate_limited(self) -> bool:
        """Whether a rate limit is set."""
        s = self.state
        return s.max_pages_per_second is not None or s.max_items_per_second is not None

    def _refill(self, now: float, items_per_page: float) -> None:
        s = self.state
        if s.tokens_at is None:
            s.tokens_at = now
        elapsed = max(0.0, now - s.tokens_at)
        s.tokens_at = now
        if s.max_pages_per_second is not None:
            burst = max(1.0, s.max_pages_per_second * BURST_SECONDS)
            s.page_tokens = min(burst, s.page_tokens + s.max_pages_per_second * elapsed)
        if s.max_items_per_second is not None:
            burst = max(items_per_page, s.max_items_per_second * BURST_SECONDS)
            if s.item_tokens is None:
                s.item_tokens = items_per_page  # room for the first page
            s.item_tokens = min(burst, s.item_tokens + s.max_items_per_second * elapsed)

    def allowance(self, now: float, items_per_page: float) -> int | None:
        """How many attempts the rate limits let start now (None: no limit)."""
        if not self.rate_limited:
            return None
        self._refill(now, items_per_page)
        s = self.state
        n: int | None = None
        if s.max_pages_per_second is not None:
            n = math.floor(s.page_tokens + 1e-9)
        if s.max_items_per_second is not None and s.item_tokens is not None:
            by_items = math.floor(s.item_tokens / max(items_per_page, 1e-9) + 1e-9)
            n = by_items if n is None else min(n, by_items)
        return max(0, n or 0)

    def started(self, page_nums: list[int], now: float, items_per_page: float) -> None:
        """Attempts at ``page_nums`` started now: spend their tokens, time their latency."""
        s = self.state
        if s.max_pages_per_second is not None:
            s.page_tokens -= len(page_nums)
        if s.max_items_per_second is not None and s.item_tokens is not None:
            s.item_tokens -= len(page_nums) * items_per_page
        if self.adaptive:
            for n in page_nums:
                self._started[n] = now

    def wake_at(
        self, now: float, items_per_page: float, *, by_rate: bool, by_cap: bool
    ) -> float | None:
        """When flow control may let more start, if it is what holds pages back now."""
        s, due = self.state, []
        if by_rate:
            if s.max_pages_per_second is not None and s.page_tokens < 1.0:
                due.append(now + (1.0 - s.page_tokens) / s.max_pages_per_second)
            if (
                s.max_items_per_second is not None
                and s.item_tokens is not None
                and (s.item_tokens < items_per_page)
            ):
                due.append(now + (items_per_page - s.item_tokens) / s.max_items_per_second)
        if by_cap and self.ramp_up is not None and s.ramp_from is not None:
            due.append(now + self.ramp_up / 100)  # the cap grows in small steps
        if not due:
            return None
        return max(now + MIN_TICK_SECONDS, min(due))

    def set_rates(self, pages: float | None, items: float | None, now: float) -> None:
        """New rate limits (None lifts one), in force from now."""
        s = self.state
        s.max_pages_per_second, s.max_items_per_second = pages, items
        s.page_tokens = min(s.page_tokens, max(1.0, (pages or 0.0) * BURST_SECONDS))
        s.tokens_at = now

    # -- outcomes (adaptive parallelism, canary) -----------------------------------------------

    def target(self) -> float | None:
        """The page latency adaptive mode keeps under (None until one is known)."""
        if self.target_latency is not None:
            return self.target_latency
        base = self.state.base_latency
        return None if base is None else base * LATENCY_FACTOR

    def finished(
        self,
        page_num: int,
        now: float,
        *,
        ok: bool,
        in_use: int,
        max_parallelism: int,
        congestion: bool = True,
        latency: float | None = None,
    ) -> None:
        """An attempt at ``page_num`` ended (``ok``: it succeeded).

        ``in_use``: attempts that were running with it; ``congestion``: whether a failure says the
        downstream struggles (a lost worker does not); ``latency``: how long the processor ran, as
        its worker measured it (else the time from start to outcome as the batch saw it).
        """
        started = self._started.pop(page_num, None)
        s = self.state
        if not self.adaptive or s.adaptive_cap is None:
            return
        if latency is None and started is not None:
            latency = now - started
        if ok and latency is not None:
            s.base_latency = (
                latency
                if s.base_latency is None
                else min(s.base_latency * (1 + BASE_LATENCY_DRIFT), latency)
            )
        target = self.target()
        slow = ok and latency is not None and target is not None and latency > target
        if (not ok and congestion) or slow:
            # once per round: a page started before the last cut says nothing new
            if started is None or started >= s.decreased_at:
                s.adaptive_cap = max(1.0, s.adaptive_cap * ADAPTIVE_DECREASE)
                s.slow_start = False
                s.decreased_at = now
            return
        if not ok or in_use < math.floor(s.adaptive_cap):
            return  # the cap was not the limit: growing it would say nothing
        grow = 1.0 if s.slow_start else 1.0 / s.adaptive_cap
        s.adaptive_cap = min(float(max(1, max_parallelism)), s.adaptive_cap + grow)

    def forget(self, page_num: int) -> None:
        """An attempt ended without saying anything about the downstream."""
        self._started.pop(page_num, None)

    def canary_due(self, num_completed: int) -> bool:
        """Whether the canary pause is due now (True once)."""
        s = self.state
        if self.canary_pages is None or s.canary_done or num_completed < self.canary_pages:
            return False
        s.canary_done = True
        return True

    # -- health ------------------------------------------------------------------------------

    def health_verdict(
        self, verdict: str, reason: str | None, *, current: int, max_parallelism: int
    ) -> str | None:
        """The health check said ``verdict``; returns a line to log when the state changed.

        ``verdict``: "healthy", "slow_down" or "stop" ("failing": the check itself failed too
        often). ``current``: the parallelism in force.
        """
        s = self.state
        before = (s.health, math.floor(s.health_cap) if s.health_cap is not None else None)
        reason = _bounded(reason)
        s.health, s.health_reason = verdict, reason
        step = max(1.0, max_parallelism * HEALTH_RECOVERY_STEP)
        if verdict == "healthy":
            s.health_failures = 0
            if s.health_cap is not None:
                s.health_cap = s.health_cap + step if s.health_cap >= 1 else step
                if s.health_cap >= max_parallelism:
                    s.health_cap = None
        elif verdict == "slow_down":
            base = current if s.health_cap is None else min(current, s.health_cap)
            s.health_cap = max(1.0, math.floor(base * HEALTH_BACKOFF))
        else:  # stop, failing
            s.health_cap = 0.0
        after = (s.health, math.floor(s.health_cap) if s.health_cap is not None else None)
        if after == before:
            return None
        cap = "no cap" if s.health_cap is None else f"cap {math.floor(s.health_cap)}"
        return f"health check: {verdict}" + (f" ({reason})" if reason else "") + f"; {cap}"

    def health_failed(
        self,
        error: str,
        failures_before_unhealthy: int,
        *,
        current: int,
        max_parallelism: int,
    ) -> str | None:
        """A call of the health check failed; past the threshold it counts as unhealthy."""
        s = self.state
        s.health_failures += 1
        if s.health_failures < failures_before_unhealthy:
            return None
        return self.health_verdict(
            "failing",
            f"{s.health_failures} calls in a row failed; last: {error}",
            current=current,
            max_parallelism=max_parallelism,
        )

    # -- the change log ----------------------------------------------------------------------

    def log_change(self, change: str, by: str | None, now: float) -> None:
        """Remember a control change (the most recent ``CHANGE_LOG_LIMIT``, text bounded)."""
        self.state.changes.append([now, _bounded(change), _bounded(by)])
        del self.state.changes[:-CHANGE_LOG_LIMIT]


def _bounded(text: str | None) -> str | None:
    """``text`` cut to ``MAX_NOTE_CHARS``.

    And to twice as many bytes as JSON: fewer characters of text that JSON escapes.
    """
    if text is None or (len(text) <= MAX_NOTE_CHARS and text_size(text) <= 2 * MAX_NOTE_CHARS):
        return text
    return clip(text, MAX_NOTE_CHARS - 3, 2 * MAX_NOTE_CHARS - 8) + "..."


def rates_text(pages: float | None, items: float | None) -> str:
    """Rate limits as people read them: "10 pages/s, 5,000 items/s", or "none"."""
    parts = [
        f"{v:,g} {unit}/s" for v, unit in ((pages, "pages"), (items, "items")) if v is not None
    ]
    return ", ".join(parts) or "none"
