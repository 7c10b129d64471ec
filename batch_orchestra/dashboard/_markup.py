"""The small pieces every dashboard page is made of: escaping, IDs that wrap, times, links."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

__all__ = ["UNKNOWN", "batch_path", "clock", "esc", "esc_id", "utc_time"]

UNKNOWN = "unknown"
"""What a value no worker told us shows as (never 0)."""
_SEPARATORS = re.compile(r"([-_/.:@])")


def esc(value: object) -> str:
    """HTML-escape any value for text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def esc_id(value: object) -> str:
    """An ID escaped for text, with a line break allowed after each separator (``- _ / . :``).

    ``<wbr>`` adds no text, so the ID reads, copies and searches as itself; a narrow screen
    breaks ``nightly-backfill/eu-west-1`` at a dash or slash rather than mid-word.
    """
    parts = _SEPARATORS.split("" if value is None else str(value))
    return "".join(esc(p) + ("<wbr>" if i % 2 else "") for i, p in enumerate(parts))


def batch_path(base: str, batch_id: str) -> str:
    """The path of a batch's page (the ID percent-encoded, slashes included)."""
    return f"{base}/batches/{quote(batch_id, safe='')}"


def utc_time(value: datetime | None) -> str:
    """``2026-12-01 20:55:07 UTC``, or "-"."""
    if value is None:
        return "-"
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def clock(value: datetime) -> str:
    """``20:55:07 UTC`` today, the full date and time otherwise."""
    utc = value.astimezone(timezone.utc)
    if utc.date() == datetime.now(timezone.utc).date():
        return f"{utc:%H:%M:%S} UTC"
    return utc_time(value)
