"""The checks of a whole batch input: ``validate_input`` names the first bad field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .._engine.budgets import (
    MAX_ARGS_BYTES,
    MAX_BATCH_ID_CHARS,
    MAX_HOOK_ARGS_BYTES,
    MAX_ITEM_KEYS_BYTES,
    MAX_OPEN_ITEMS,
)
from .checks import check_cursor, check_rate, fail, is_int
from .hooks import BatchNotifierConfig, BatchTrackerConfig, HealthCheckConfig
from .input import BatchOrchestratorInput, RedrivePage, RedriveSource
from .policy import FailurePolicy
from .window import check_window

__all__ = [
    "validate_input",
]


def _validate_policy(p: Any) -> None:
    if not isinstance(p, FailurePolicy):
        raise fail(f"failure_policy must be a FailurePolicy or None, got {p!r}")
    rate = p.max_failure_rate
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1
    ):
        raise fail(
            f"failure_policy.max_failure_rate must be None or a fraction in (0, 1], got {rate!r}"
        )
    if not is_int(p.window) or p.window < 1 or p.window > 10_000:
        raise fail(f"failure_policy.window must be an int in [1, 10000], got {p.window!r}")
    if not is_int(p.min_attempts) or not 1 <= p.min_attempts <= p.window:
        raise fail(
            f"failure_policy.min_attempts must be an int in [1, window={p.window}], "
            f"got {p.min_attempts!r}"
        )
    for name in ("max_failed_pages", "max_failed_items"):
        v = getattr(p, name)
        if v is not None and (not is_int(v) or v < 0):
            raise fail(f"failure_policy.{name} must be None or an int >= 0, got {v!r}")
    n = p.no_progress_attempts
    if n is not None and (not is_int(n) or n < 1):
        raise fail(f"failure_policy.no_progress_attempts must be None or an int >= 1, got {n!r}")


def _validate_items(inp: BatchOrchestratorInput) -> None:
    n, most = inp.max_open_items, MAX_OPEN_ITEMS
    if n is not None and (not is_int(n) or not 1 <= n <= most):
        raise fail(f"max_open_items must be None or an int from 1 to {most:,}, got {n!r}")
    if n is not None and is_int(inp.page_size) and inp.page_size > n:
        raise fail(
            f"max_open_items={n} is less than page_size={inp.page_size}: a running page reserves "
            "room for as many item workflows as its size, so no page could start. Raise "
            "max_open_items or lower page_size"
        )
    t = inp.item_check_interval
    if not isinstance(t, timedelta) or t < timedelta(seconds=1):
        raise fail(f"item_check_interval must be a timedelta of at least 1 s, got {t!r}")
    if not isinstance(inp.cancel_open_items, bool):
        raise fail(f"cancel_open_items must be True or False, got {inp.cancel_open_items!r}")


def _validate_flow(inp: BatchOrchestratorInput) -> None:
    if inp.ramp_up is not None and (
        not isinstance(inp.ramp_up, timedelta) or inp.ramp_up <= timedelta(0)
    ):
        raise fail(f"ramp_up must be None or a positive timedelta, got {inp.ramp_up!r}")
    check_rate(inp.max_pages_per_second, "max_pages_per_second")
    check_rate(inp.max_items_per_second, "max_items_per_second")
    if not isinstance(inp.adaptive, bool):
        raise fail(f"adaptive must be True or False, got {inp.adaptive!r}")
    t = inp.target_page_latency
    if t is not None and (not isinstance(t, timedelta) or t <= timedelta(0)):
        raise fail(f"target_page_latency must be None or a positive timedelta, got {t!r}")
    if t is not None and not inp.adaptive:
        raise fail(
            f"target_page_latency={t!r} only steers adaptive parallelism; pass adaptive=True "
            "too, or leave it out"
        )
    _validate_items(inp)
    if inp.canary_pages is not None and (not is_int(inp.canary_pages) or inp.canary_pages < 1):
        raise fail(f"canary_pages must be None or an int >= 1, got {inp.canary_pages!r}")
    h = inp.health_check
    if h is None:
        return
    if not isinstance(h, HealthCheckConfig) or not isinstance(h.name, str) or not h.name:
        raise fail(
            f"health_check must be None or a HealthCheckConfig with a registered check's name, "
            f"got {h!r}"
        )
    if h.args is not None and not isinstance(h.args, str):
        raise fail(f"health_check.args must be a str or None, got {h.args!r}")
    for name in ("interval", "timeout"):
        v = getattr(h, name)
        if not isinstance(v, timedelta) or v <= timedelta(0):
            raise fail(f"health_check.{name} must be a positive timedelta, got {v!r}")
    n = h.failures_before_unhealthy
    if not is_int(n) or n < 1:
        raise fail(f"health_check.failures_before_unhealthy must be an int >= 1, got {n!r}")


def _validate_item_keys(inp: BatchOrchestratorInput) -> None:
    keys = inp.item_keys
    if keys is None:
        return
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise fail(f"item_keys must be a non-empty list of str or None, got {keys!r:.200}")
    size = sum(len(k) + 3 for k in keys)
    if size > MAX_ITEM_KEYS_BYTES:
        raise fail(
            f"item_keys hold {len(keys):,} keys ({size:,} bytes); at most "
            f"{MAX_ITEM_KEYS_BYTES:,} bytes: redrive them in several batches"
        )
    long = next((k for k in keys if len(k) > 1_000), None)
    if long is not None:
        raise fail(f"an item key is {len(long):,} characters ({long[:40]!r}...); at most 1,000")
    if inp.first_cursor_str or inp.first_cursor_strs or inp.redrive_pages:
        raise fail(
            "give either item_keys or first_cursor_str(s)/redrive_pages, not both: a batch of "
            "item keys does not page from a cursor"
        )


def _validate_redrive(inp: BatchOrchestratorInput) -> None:
    if inp.redrive_of is not None and not isinstance(inp.redrive_of, str):
        raise fail(f"redrive_of must be a workflow ID (str) or None, got {inp.redrive_of!r}")
    pages = inp.redrive_pages
    if pages is None:
        return
    if not isinstance(pages, list) or not pages:
        raise fail(f"redrive_pages must be a non-empty list of RedrivePage or None, got {pages!r}")
    for page in pages:
        if not isinstance(page, RedrivePage):
            raise fail(f"redrive_pages holds RedrivePage objects, got {page!r}")
        check_cursor(page.cursor_str, "a cursor in redrive_pages")
        if not is_int(page.size) or page.size < 1:
            raise fail(f"a page in redrive_pages has size {page.size!r}; it must be an int >= 1")
    if inp.first_cursor_str or inp.first_cursor_strs:
        raise fail(
            "give either redrive_pages or first_cursor_str(s), not both: a redrive starts from "
            "the failed pages only"
        )


def _validate_redrive_source(inp: BatchOrchestratorInput) -> None:
    src = inp.redrive_source
    if src is None:
        return
    if not isinstance(src, RedriveSource):
        raise fail(f"redrive_source must be a RedriveSource or None, got {src!r:.200}")
    for name in ("workflow_id", "first_run_id"):
        value = getattr(src, name)
        if not isinstance(value, str) or not value or len(value) > MAX_BATCH_ID_CHARS:
            raise fail(f"redrive_source.{name} must be a non-empty str, got {value!r:.200}")
    if not isinstance(src.items, bool):
        raise fail(f"redrive_source.items must be True or False, got {src.items!r}")
    if not is_int(src.from_record) or src.from_record < 0:
        raise fail(f"redrive_source.from_record must be an int >= 0, got {src.from_record!r}")
    if src.to_record is not None and (not is_int(src.to_record) or src.to_record < 0):
        raise fail(f"redrive_source.to_record must be None or an int >= 0, got {src.to_record!r}")
    if inp.first_cursor_str or inp.first_cursor_strs or inp.redrive_pages or inp.item_keys:
        raise fail(
            "give either redrive_source or first_cursor_str(s)/redrive_pages/item_keys, not "
            "both: a redrive batch starts from the old batch's failures only"
        )


def _validate_sizes(inp: BatchOrchestratorInput) -> None:
    """The limits that keep every call of the batch within its payload budget.

    Checked for new batches only: a batch started before a limit existed goes on.
    """
    if isinstance(inp.batch_id, str) and len(inp.batch_id) > MAX_BATCH_ID_CHARS:
        raise fail(
            f"batch_id is {len(inp.batch_id):,} characters ({inp.batch_id[:40]!r}...); at most "
            f"{MAX_BATCH_ID_CHARS:,}: it labels logs and every attempt carries it"
        )
    for name in ("batch_tracker", "notifier", "health_check"):
        hook = getattr(inp, name)
        args = getattr(hook, "args", None)
        if isinstance(args, str) and len(args.encode()) > MAX_HOOK_ARGS_BYTES:
            raise fail(
                f"{name}.args is {len(args.encode()):,} bytes ({args[:40]!r}...); every call "
                f"carries a copy, so it may hold at most {MAX_HOOK_ARGS_BYTES:,}: keep large "
                "data elsewhere and put its location in args"
            )


def validate_input(inp: BatchOrchestratorInput, *, strict: bool = True) -> None:
    """Raise ``InvalidBatchInputError`` naming the first bad field of ``inp``.

    ``strict``: also the size limits added in later versions (off for a batch that is already
    running, which goes on with the input it started with).
    """
    name = inp.processor_name() if isinstance(inp.page_processor, (str, type)) else None
    if not isinstance(name, str) or not name:
        raise fail(
            f"page_processor must be a registered processor's name or its class, got {name!r}"
        )
    if not is_int(inp.page_size) or inp.page_size < 1:
        raise fail(f"page_size must be an int >= 1, got {inp.page_size!r}")
    if not is_int(inp.max_parallelism) or inp.max_parallelism < 0:
        raise fail(
            f"max_parallelism must be an int >= 0 (0 starts paused), got {inp.max_parallelism!r}"
        )
    if inp.args is not None and not isinstance(inp.args, str):
        raise fail(
            f"args must be a str or None, got {type(inp.args).__name__} {inp.args!r}; "
            "serialize it first, e.g. json.dumps(args)"
        )
    if inp.args is not None and len(inp.args.encode()) > MAX_ARGS_BYTES:
        raise fail(
            f"args is {len(inp.args.encode()):,} bytes ({inp.args[:40]!r}...); every page "
            f"attempt carries a copy, so it may hold at most {MAX_ARGS_BYTES:,}: keep large data "
            "in your database or a file and put its location in args"
        )
    check_cursor(inp.first_cursor_str, "first_cursor_str")
    _validate_redrive(inp)
    _validate_item_keys(inp)
    _validate_redrive_source(inp)
    if strict:
        _validate_sizes(inp)
    if inp.first_cursor_strs is not None:
        cursors = inp.first_cursor_strs
        if not isinstance(cursors, list) or not cursors:
            raise fail(
                f"first_cursor_strs must be a non-empty list of str or None, got {cursors!r}"
            )
        for c in cursors:
            check_cursor(c, "a cursor in first_cursor_strs")
        if inp.first_cursor_str:
            raise fail(
                "give either first_cursor_str or first_cursor_strs, not both "
                f"(first_cursor_str={inp.first_cursor_str!r})"
            )
    if not isinstance(inp.page_timeout, timedelta) or inp.page_timeout <= timedelta(0):
        raise fail(f"page_timeout must be a positive timedelta, got {inp.page_timeout!r}")
    if not isinstance(inp.handover_wait, timedelta) or inp.handover_wait <= timedelta(0):
        raise fail(f"handover_wait must be a positive timedelta, got {inp.handover_wait!r}")
    if not isinstance(inp.batch_id, str):
        raise fail(f"batch_id must be a str, got {inp.batch_id!r}")
    if inp.pages_per_run is not None and (not is_int(inp.pages_per_run) or inp.pages_per_run < 1):
        raise fail(f"pages_per_run must be None or an int >= 1, got {inp.pages_per_run!r}")
    if inp.total_items is not None and (not is_int(inp.total_items) or inp.total_items < 0):
        raise fail(f"total_items must be None or an int >= 0, got {inp.total_items!r}")
    if inp.heartbeat_timeout is not None and (
        not isinstance(inp.heartbeat_timeout, timedelta) or inp.heartbeat_timeout <= timedelta(0)
    ):
        raise fail(
            f"heartbeat_timeout must be None or a positive timedelta, got {inp.heartbeat_timeout!r}"
        )
    if inp.failure_policy is not None:
        _validate_policy(inp.failure_policy)
    _validate_flow(inp)
    check_window(inp.window)
    n = inp.notifier
    if n is not None:
        if not isinstance(n, BatchNotifierConfig) or not isinstance(n.name, str) or not n.name:
            raise fail(
                f"notifier must be None or a BatchNotifierConfig with a registered notifier's "
                f"name, got {n!r}"
            )
        if n.args is not None and not isinstance(n.args, str):
            raise fail(f"notifier.args must be a str or None, got {n.args!r}")
    t = inp.batch_tracker
    if t is not None:
        if not isinstance(t, BatchTrackerConfig):
            raise fail(f"batch_tracker must be a BatchTrackerConfig or None, got {t!r}")
        if not isinstance(t.name, str) or not t.name:
            raise fail(f"batch_tracker.name must be a registered tracker's name, got {t.name!r}")
        if t.args is not None and not isinstance(t.args, str):
            raise fail(f"batch_tracker.args must be a str or None, got {t.args!r}")
        if not isinstance(t.interval, timedelta) or t.interval <= timedelta(0):
            raise fail(f"batch_tracker.interval must be a positive timedelta, got {t.interval!r}")
