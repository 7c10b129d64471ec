"""The held pages of a hand-over as one compact table: delta-encoded columns, zlib, base64.

``SchedulerState.pages`` (``continuation.py``) is the text ``pack`` makes of the JSON
``{"pages": {column: [...]}, "ready": [...], "failed": {...}, "discovering": {...}}``: page
numbers, chains and times as deltas (times in ms since the batch started), cursors front-coded
(neighbouring pages' cursors share most of their text). Pure; the format is the wire format of
released versions, read back by their successors: it does not change.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from .discovery import Discovery
from .pages import PageState

__all__ = [
    "at_ms",
    "delta",
    "discoveries_of",
    "discovery_columns",
    "front_code",
    "front_decode",
    "ms_since",
    "pack",
    "page_columns",
    "pages_of",
    "undelta",
    "unpack_pages",
]


def ms_since(t: float | None, base: float) -> int | None:
    return None if t is None else round((t - base) * 1000)


def at_ms(ms: int | None, base: float) -> float | None:
    return None if ms is None else base + ms / 1000


def delta(xs: list[int | None]) -> list[int | None]:
    out: list[int | None] = []
    prev = 0
    for x in xs:
        if x is None:
            out.append(None)
        else:
            out.append(x - prev)
            prev = x
    return out


def undelta(ds: list[int | None]) -> list[int | None]:
    out: list[int | None] = []
    prev = 0
    for d in ds:
        if d is None:
            out.append(None)
        else:
            prev += d
            out.append(prev)
    return out


def front_code(cursors: list[str]) -> list[Any]:
    """Each cursor as [length shared with the previous one, the rest].

    Neighbouring pages' cursors (keys, offsets) share most of their text.
    """
    out: list[Any] = []
    prev = ""
    for c in cursors:
        n = 0
        limit = min(len(c), len(prev))
        while n < limit and c[n] == prev[n]:
            n += 1
        out.append(c[n:] if n == 0 else [n, c[n:]])
        prev = c
    return out


def front_decode(coded: list[Any]) -> list[str]:
    out: list[str] = []
    prev = ""
    for v in coded:
        c = v if isinstance(v, str) else prev[: v[0]] + v[1]
        out.append(c)
        prev = c
    return out


def page_columns(pages: list[PageState], base: float) -> dict[str, list[Any]]:
    """Pages as delta-encoded columns (times in ms since the batch started)."""
    return {
        "num": delta([p.page_num for p in pages]),
        "cursor": front_code([p.cursor for p in pages]),
        "size": [p.size for p in pages],
        "chain": delta([p.chain for p in pages]),
        "attempts": [p.attempts for p in pages],
        "unrun": [p.unrun for p in pages],
        "flags": [
            int(p.successor_enqueued) | int(p.stuck) << 1 | int(p.recorded) << 2 for p in pages
        ],
        "ready": delta([ms_since(p.ready_at, base) for p in pages]),
        "error": [p.error for p in pages],
        "failed": delta([ms_since(p.failed_at, base) for p in pages]),
        "deadline": [ms_since(p.report_deadline, base) for p in pages],
        "confirm": [ms_since(p.confirm_by, base) for p in pages],
        "clen": [p.cursor_length for p in pages],
    }


def pages_of(cols: dict[str, list[Any]], base: float) -> list[PageState]:
    if not cols:
        return []
    nums, cursors = undelta(cols["num"]), front_decode(cols["cursor"])
    chains, ready = undelta(cols["chain"]), undelta(cols["ready"])
    failed = undelta(cols["failed"])
    return [
        PageState(
            page_num=nums[i] or 0,
            cursor=cursors[i],
            size=cols["size"][i],
            chain=chains[i] or 0,
            attempts=cols["attempts"][i],
            unrun=cols["unrun"][i],
            successor_enqueued=bool(cols["flags"][i] & 1),
            stuck=bool(cols["flags"][i] & 2),
            ready_at=at_ms(ready[i], base),
            error=cols["error"][i],
            failed_at=at_ms(failed[i], base),
            report_deadline=at_ms(cols["deadline"][i], base),
            confirm_by=at_ms(cols["confirm"][i], base) if "confirm" in cols else None,
            recorded=bool(cols["flags"][i] & 4),
            cursor_length=cols["clen"][i] if "clen" in cols else -1,
        )
        for i in range(len(nums))
    ]


def discovery_columns(ds: list[Discovery], base: float) -> dict[str, list[Any]]:
    return {
        "num": delta([d.page_num for d in ds]),
        "cursor": front_code([d.cursor for d in ds]),
        "size": [d.size for d in ds],
        "chain": [d.chain for d in ds],
        "attempts": [d.attempts for d in ds],
        "failures": [d.failures for d in ds],
        "error": [d.error for d in ds],
        "ready": [ms_since(d.ready_at, base) for d in ds],
        "failed": [ms_since(d.failed_at, base) for d in ds],
    }


def discoveries_of(cols: dict[str, list[Any]], base: float) -> list[Discovery]:
    if not cols:
        return []
    nums, cursors = undelta(cols["num"]), front_decode(cols["cursor"])
    return [
        Discovery(
            page_num=nums[i] or 0,
            cursor=cursors[i],
            size=cols["size"][i],
            chain=cols["chain"][i],
            attempts=cols["attempts"][i],
            failures=cols["failures"][i],
            error=cols["error"][i],
            ready_at=at_ms(cols["ready"][i], base),
            failed_at=at_ms(cols["failed"][i], base),
        )
        for i in range(len(nums))
    ]


def pack(obj: Any) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def unpack_pages(text: str) -> Any:
    """The page table of a ``SchedulerState`` (for inspection and tests)."""
    return json.loads(zlib.decompress(base64.b64decode(text))) if text else {}
