"""Every size limit of the library in one place. Pure (no Temporal imports).

What the public API allows, and what each payload the workflow produces may hold.

Temporal refuses a payload over 2 MB (``limit.blobSize.error``): a workflow task that tries to
send one fails, and is retried with the same result, forever (TMPRL1103). So every payload the
workflow builds has a budget well under it, checked where it is built, and the public limits are
what make each budget reachable: a cursor of 16 KB, args of 256 KB, and so on. Sizes are counted
as Temporal's JSON converter writes them (``ensure_ascii``: a non-ASCII character takes up to 12
bytes), which is what ``wire_size`` measures. The margin between a budget and the 2 MB limit
leaves room for a payload codec (encryption adds a few bytes per payload) and for headers.

``docs/architecture.md`` ("Payload budgets") has the table; ``tests/test_budgets.py`` builds every
payload at the public limits and checks it against its budget.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = [
    "CURSOR_PREVIEW_CHARS",
    "FAILURE_DETAILS_BYTES",
    "HANDOVER_BYTES",
    "HISTORY_BYTES",
    "HISTORY_PROGRESS_BYTES",
    "KEY_PREVIEW_CHARS",
    "LEDGER_FLUSH_SECONDS",
    "LEDGER_READ_BYTES",
    "LEDGER_RECORD_BYTES",
    "LEDGER_RECORDS_IN_FLIGHT",
    "LEDGER_RECORDS_PER_TASK",
    "MAX_ARGS_BYTES",
    "MAX_BATCH_ID_CHARS",
    "MAX_CURSOR_BYTES",
    "MAX_ENQUEUE_BYTES",
    "MAX_HOOK_ARGS_BYTES",
    "MAX_ITEM_DETAILS_BYTES",
    "MAX_ITEM_KEY",
    "MAX_ITEM_KEYS_BYTES",
    "MAX_ITEM_MESSAGE",
    "MAX_PAGE_VALUE_BYTES",
    "MAX_RESULT_BYTES",
    "NOTIFY_CHUNK_BYTES",
    "NOTIFY_OUTBOX_BYTES",
    "PAYLOAD_LIMIT",
    "PROGRESS_BYTES",
    "REDUCE_INPUT_BYTES",
    "START_BYTES_PER_TASK",
    "clip",
    "enqueue_size",
    "preview",
    "text_size",
    "wire_size",
]

PAYLOAD_LIMIT = 2 * 1024 * 1024
"""Temporal's default limit on one payload (an input, a result, a query answer)."""

# -- what the public API allows ----------------------------------------------------------------

MAX_ARGS_BYTES = 256 * 1024
"""The most ``args`` may hold: every page attempt carries a copy in its input."""
MAX_HOOK_ARGS_BYTES = 64 * 1024
"""The most the ``args`` of a tracker, notifier or health check may hold: every call of it
carries a copy beside the batch's progress, and every hand-over carries the batch's input."""
MAX_CURSOR_BYTES = 16 * 1024
"""The most one cursor may hold (characters): the batch keeps cursors of its unfinished pages in
its state, and every attempt carries its page's."""
MAX_ENQUEUE_BYTES = 1_000_000
"""The most bytes one page's enqueue (its successors' cursors, as sent) may hold; an update that
carries several pages' enqueues holds at most this much too (Temporal refuses a payload over 2
MB, and a page's result may carry its successors beside its item failures)."""
MAX_BATCH_ID_CHARS = 1_000
"""The most characters ``batch_id`` may hold: every attempt and call carries it."""
MAX_PAGE_VALUE_BYTES = 16 * 1024
"""The most a page's value (for ``reduce``) may hold, as JSON."""
MAX_RESULT_BYTES = 256 * 1024
"""The most a batch result (``reduce``'s accumulator) may hold, as JSON: progress carries it."""
MAX_ITEM_KEYS_BYTES = 256 * 1024
"""The most ``item_keys`` may hold in all (the batch's input carries them)."""
MAX_ITEM_KEY = 1_000
"""Characters of a failed item's key kept (``record_failure``): a key this long can still be
run again by ``redrive_items``, which takes keys of at most 1,000 characters."""
MAX_ITEM_MESSAGE = 500
"""Characters of an item failure's message kept."""
MAX_ITEM_DETAILS_BYTES = 256 * 1024
"""The most bytes of item failures one page reports in detail (besides at most 1,000 of them);
past it they are only counted. Its result carries them."""

# -- what each payload may hold ------------------------------------------------------------------

PROGRESS_BYTES = 768 * 1024
"""The most a progress object may hold (a query or update answer, the batch's result, and the
larger part of every tracker, notifier and health-check call). Past it, its detailed lists are
shortened (``progress.lists_trimmed`` says so); counts stay exact. With a notifier chunk and the
hook's args beside it, a notifier call stays under 1.3 MB."""
CURSOR_PREVIEW_CHARS = 200
"""A cursor in a progress list is shown as its first 200 characters and "…" when it is longer
(``PageFailure.cursor_length`` has its full length): 400 listed pages stay small."""
KEY_PREVIEW_CHARS = 200
"""The same for an item key in ``progress.failed_items`` (``ItemFailure.key_length``)."""
NOTIFY_CHUNK_BYTES = 256 * 1024
"""The most bytes of failed pages (with their whole cursors) or failed items one notifier call
carries; more go in the next call."""
NOTIFY_OUTBOX_BYTES = 8 * 1024 * 1024
"""The most bytes of failed pages waiting for the notifier in the workflow's memory; past it,
the oldest are not delivered (they stay in the failure ledger, with a warning in the log)."""
REDUCE_INPUT_BYTES = 512 * 1024
"""The most bytes of page values one ``reduce`` call carries, besides the result so far."""
MAX_OPEN_ITEMS = 10_000
"""The largest ``max_open_items``: the open keys travel in every hand-over."""
MAX_ITEM_WORKFLOW_KEY = 64
"""The longest item key (characters): it is part of the item workflow's ID and of the hand-over."""
HANDOVER_BYTES = 1_500_000
"""The most the continue-as-new input may hold, measured as it is sent; a hand-over that would
carry more is put off until pages have run and released their cursors."""
HISTORY_BYTES = 30 * 1024
"""The most the batch's history of throughput samples holds in a hand-over (at most 360 rows of
numbers: ``history.py``); part of what the workflow's ``HANDOVER_STATE_BYTES`` estimates."""
HISTORY_PROGRESS_BYTES = 80 * 1024
"""The most the same history holds in progress, as named samples (``progress.history``); part of
``PROGRESS_BYTES``, never trimmed."""
START_BYTES_PER_TASK = 1_000_000
"""The most bytes of attempt inputs one workflow task sends (Temporal refuses a workflow task
completion over 4 MB; every attempt carries the batch's args and its page's cursor)."""
LEDGER_RECORD_BYTES = 256 * 1024
"""The most one failure-ledger record holds (one entry may make it longer: at most one page with
a 16 KB cursor and its error)."""
LEDGER_RECORDS_PER_TASK = 4
"""The most ledger records one workflow task sends (about 1 MB)."""
LEDGER_RECORDS_IN_FLIGHT = 20
"""The most ledger records scheduled and not yet done (Temporal's 2,000 pending activities:
1,900 pages, 50 discoveries, the hooks, the ledger reader and these)."""
LEDGER_FLUSH_SECONDS = 2.0
"""A failure waits at most this long in memory before its ledger record is written (so that
failures arriving together share one)."""
LEDGER_READ_BYTES = 512 * 1024
"""The most bytes of failed pages or items one read of a ledger returns."""
FAILURE_DETAILS_BYTES = 512 * 1024
"""The most bytes one answer of the ``failure_details`` query holds (a page of held pages with
their whole cursors)."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-friendly")


def wire_size(value: Any) -> int:
    """Bytes of ``value`` as Temporal's default JSON converter writes it."""
    return len(json.dumps(value, default=_default, separators=(",", ":")))


def enqueue_size(pages: Any) -> int:
    """About the bytes of successor pages as an enqueue sends them (cursors and their fields)."""
    return sum(text_size(p.cursor_str) + 32 for p in pages)


def text_size(text: str) -> int:
    """Bytes of one string as JSON (quotes and escapes included)."""
    return len(encode_basestring_ascii(text))


def clip(text: str, chars: int, max_bytes: int | None = None) -> str:
    """``text`` cut to ``chars`` characters and to ``max_bytes`` as JSON (default: 2 per char).

    ASCII text is cut at ``chars``; text that JSON escapes (non-ASCII, control characters) is cut
    shorter, so that its size stays bounded whatever it holds.
    """
    text = text[:chars]
    limit = 2 * chars + 2 if max_bytes is None else max_bytes
    size = text_size(text)
    while size > limit and text:
        text = text[: max(0, len(text) * limit // size - 1)]
        size = text_size(text)
    return text


def preview(text: str, chars: int) -> str:
    """``text`` if it is short, else its first ``chars`` characters and "…".

    Fewer characters for text that JSON escapes: a preview holds at most about ``2 * chars``
    bytes.
    """
    if len(text) <= chars and text_size(text) <= 2 * chars + 2:
        return text
    return clip(text, chars) + "…"
