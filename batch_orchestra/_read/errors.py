"""Error messages for people: grouped by their shape, and cut to one line.

A batch keeps each distinct (type, message) pair of its held pages once, but one outage often
produces the same message with a different URL, ID or number in each page's copy ("HTTP 500 for
https://api/x/17", "... /x/18"). ``group_errors`` masks those parts, so such messages count as one
error, shown with one real sample. Used by ``batch-orchestra status`` and the dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .._model import ErrorCount

__all__ = ["ErrorGroup", "group_errors", "normalize_message", "one_line"]

# Order matters: a URL or UUID is masked whole before its digits could be.
_MASKS = [
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)\]]+", re.IGNORECASE), "<url>"),
    (
        re.compile(
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
        ),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE), "<hex>"),
    # A long run of hex digits with at least one digit and one letter: a hash or an object ID.
    (
        re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.IGNORECASE),
        "<hex>",
    ),
    (re.compile(r"\d+(?:[.,:]\d+)*"), "<n>"),
]


def normalize_message(message: str) -> str:
    """The message with URLs, UUIDs, hex IDs and numbers masked, on one line."""
    text = " ".join(message.split())
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def one_line(text: str, limit: int | None = None) -> str:
    """The first line of ``text``, its whitespace collapsed, cut to ``limit`` characters."""
    lines = text.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    if len(lines) > 1:
        first += " …"
    if limit is not None and len(first) > limit:
        first = first[: max(0, limit - 1)] + "…"
    return first


@dataclass(frozen=True)
class ErrorGroup:
    """Errors of one type whose messages differ only in URLs, IDs and numbers."""

    error_type: str
    """The errors' type (exception class name, or "Timeout")."""
    sample: str
    """One real message of the group: that of the error held by the most pages."""
    pages: int
    """Pages whose last error is in the group."""
    variants: int
    """How many distinct messages the group joins."""


def group_errors(errors: Iterable[ErrorCount]) -> list[ErrorGroup]:
    """Distinct errors joined by type and normalised message, most pages first."""
    groups: dict[tuple[str, str], list[ErrorCount]] = {}
    for e in errors:
        groups.setdefault((e.error_type, normalize_message(e.error_message)), []).append(e)
    found = []
    for (error_type, _), members in groups.items():
        top = max(members, key=lambda e: e.pages)
        found.append(
            ErrorGroup(
                error_type=error_type,
                sample=top.error_message,
                pages=sum(e.pages for e in members),
                variants=len(members),
            )
        )
    return sorted(found, key=lambda g: -g.pages)
