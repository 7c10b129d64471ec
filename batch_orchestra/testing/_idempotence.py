"""``check_idempotent``: does running pages again change the end state?

An at-least-once page can run more than once: its attempt may time out after doing its work,
or its worker may die half-way. This check runs the user's batch for real, with faults injected
by the worker's activity interceptor (see ``_local``), and compares the user's end state.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import pprint
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from .._model import FailurePolicy
from .._worker.processor import PageProcessor, get_page_processor, processor_settings
from ._local import FAULT_ERROR_TYPE, LocalRun, PageRun, SimulatedCrash, _client_for, _Faults, _run

__all__ = ["check_idempotent"]

_MAX_DIFF_LINES = 30
_SHOWN_CURSOR = 80


class _QuietFaults(logging.Filter):
    """Drops the SDK's and the workflow's warnings about the faults the check injects."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if isinstance(err, SimulatedCrash) or (
            isinstance(err, ApplicationError) and err.type == FAULT_ERROR_TYPE
        ):
            return False
        message = record.getMessage()
        return "SimulatedCrash: check_idempotent" not in message and FAULT_ERROR_TYPE not in message


@contextmanager
def _quiet_faults() -> Iterator[None]:
    quiet = _QuietFaults()
    loggers = [logging.getLogger(n) for n in ("temporalio.activity", "temporalio.workflow")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


async def _call(fn: Callable[[], Any]) -> Any:
    value = fn()
    if inspect.isawaitable(value):
        value = await value
    return value


def _page_name(page: PageRun) -> str:
    cursor = page.cursor_str
    shown = repr(cursor) if len(cursor) <= _SHOWN_CURSOR else f"{cursor[:_SHOWN_CURSOR]!r}..."
    return f"page {page.page_num} (cursor {shown})"


def _lines(items: list[str]) -> str:
    if len(items) > _MAX_DIFF_LINES:
        items = items[:_MAX_DIFF_LINES] + [f"... and {len(items) - _MAX_DIFF_LINES} more"]
    return "\n".join(f"  {line}" for line in items)


def snapshot_diff(expected: Any, actual: Any) -> str:
    """A compact difference of two state snapshots, ``expected`` (each page run once) first.

    Mappings show the keys whose values differ; lists, tuples and sets show what is only in
    one (counting repeats); anything else gets a line diff of its pretty-printed form.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        keys = set(expected) | set(actual)
        try:
            ordered = sorted(keys)
        except TypeError:  # keys of mixed types
            ordered = sorted(keys, key=repr)
        out = []
        for key in ordered:
            once, twice = expected.get(key, "<missing>"), actual.get(key, "<missing>")
            if once != twice:
                out.append(f"{key!r}: {once!r} once, {twice!r} after the rerun")
        return f"{len(out)} keys differ:\n" + _lines(out)
    if isinstance(expected, (list, tuple, set, frozenset)) and isinstance(
        actual, (list, tuple, set, frozenset)
    ):
        once, twice = Counter(map(repr, expected)), Counter(map(repr, actual))
        out = [f"- {item} (missing after the rerun)" for item in sorted((once - twice).elements())]
        out += [f"+ {item} (extra after the rerun)" for item in sorted((twice - once).elements())]
        if not out:
            return f"the same elements in another order: {list(actual)!r:.200}"
        return f"{len(out)} elements differ:\n" + _lines(out)
    diff = difflib.unified_diff(
        pprint.pformat(expected, width=88).splitlines(),
        pprint.pformat(actual, width=88).splitlines(),
        "each page once",
        "after the rerun",
        n=1,
        lineterm="",
    )
    return _lines(list(diff))


async def check_idempotent(
    processor: type[PageProcessor] | str,
    *,
    state: Callable[[], Any] | Callable[[], Awaitable[Any]],
    reset: Callable[[], Any] | Callable[[], Awaitable[Any]],
    args: str | None = None,
    first_cursor_str: str = "",
    first_cursor_strs: list[str] | None = None,
    page_size: int = 100,
    max_parallelism: int = 4,
    client: Client | None = None,
    max_interruption_points: int = 3,
    timeout: timedelta | None = timedelta(minutes=5),
    **input_fields: Any,
) -> LocalRun:
    """Check that running a page again leaves the same end state as running each page once.

    Running again means after a full or a partial attempt.

    Runs the batch (as ``run_locally`` does) several times, calling ``reset()`` before and
    ``state()`` after each run:

    1. twice plainly: the reference end state (the two must agree, or ``state()`` holds
       something that changes from run to run, like a timestamp);
    2. with every page run twice: each page's first attempt finishes, then is failed, so the
       orchestrator retries the page for real (as in production, the retry enqueues the
       page's successors only if the orchestrator does not have them yet);
    3. for each ``interruption_point()`` your processor passes (up to
       ``max_interruption_points``): every page's first attempt crashes at that point, and the
       retry runs the page from the start.

    A difference is narrowed down to one page by running again with only some pages doubled
    (or interrupted): about log2(pages) more runs.

    What it cannot see: side effects outside ``state()`` (an email sent twice), crashes
    between two writes with no ``interruption_point()`` between them, and two attempts of
    one page running at the same time. Keep the batch small (a few to a few dozen pages): it
    runs several times.

    Args:
        processor: the processor class, or its registered name (at-least-once).
        state: returns a comparable (``==``) snapshot of everything the batch changes,
            e.g. ``lambda: dict(db.execute("SELECT id, v FROM t"))``. May be async.
        reset: puts that state back to where the batch starts. May be async.
        args: as in ``run_locally`` (so are the cursors, sizes, ``client`` and ``timeout``).
        first_cursor_str: the first page's cursor.
        first_cursor_strs: several first cursors instead.
        page_size: the pages' size.
        max_parallelism: how many pages run at once.
        client: a client of the Temporal server to use; None starts a local dev server.
        max_interruption_points: how many ``interruption_point()`` positions to test.
        timeout: the limit of each run.
        **input_fields: other ``BatchOrchestratorInput`` fields. The failure policy is
            disabled unless given (every page fails once on purpose).

    Returns:
        The reference run (pages, cursors, progress).

    Raises:
        AssertionError: an end state differed (naming the page and showing the difference),
            a page failed when run again, or the reference run did not complete.
        ValueError: the processor is at-most-once (its pages never run twice).
    """
    cls = processor if not isinstance(processor, str) else get_page_processor(processor)
    if processor_settings(cls).at_most_once:
        raise ValueError(
            f"{cls.__name__} is EXECUTE_AT_MOST_ONCE: its pages are never retried, so there "
            "is nothing to check; check_idempotent checks at-least-once processors"
        )
    fields = dict(
        input_fields,
        args=args,
        first_cursor_str=first_cursor_str,
        first_cursor_strs=first_cursor_strs,
        page_size=page_size,
        max_parallelism=max_parallelism,
    )
    fields.setdefault("failure_policy", FailurePolicy.disabled())

    async with _client_for(client) as c:
        with _quiet_faults():
            return await _check_all(c, cls, state, reset, fields, timeout, max_interruption_points)


async def _check_all(
    c: Client,
    cls: type[PageProcessor],
    state: Callable[[], Any],
    reset: Callable[[], Any],
    fields: dict[str, Any],
    timeout: timedelta | None,
    max_interruption_points: int,
) -> LocalRun:
    async def run(faults: _Faults | None) -> tuple[LocalRun, Any]:
        await _call(reset)
        result = await _run(c, cls, faults, timeout, fields)
        return result, await _call(state)

    reference, expected = await run(None)
    _check_complete(reference, "the reference run")
    _, second = await run(None)
    if second != expected:
        raise AssertionError(
            f"two plain runs of {cls.__name__} ended in different states, so reruns "
            "cannot be judged: leave out of state() what changes from run to run "
            "(timestamps, generated ids), or make the outcome independent of page order:\n"
            + snapshot_diff(expected, second)
        )
    pages = reference.pages
    await _check(run, cls.__name__, pages, expected, "run twice", lambda s: _Faults(rerun=s))
    points = max((p.interruption_points for p in reference.attempts), default=0)
    for at in range(1, min(points, max_interruption_points) + 1):
        candidates = [p for p in pages if p.interruption_points >= at]
        await _check(
            run,
            cls.__name__,
            candidates,
            expected,
            f"interrupted at interruption_point() #{at} and run again",
            _interrupting(at),
        )
    return reference


def _interrupting(at: int) -> Callable[[set[str]], _Faults]:
    return lambda cursors: _Faults(interrupt=cursors, interrupt_at=at)


def _check_complete(result: LocalRun, what: str) -> None:
    p = result.progress
    if p.num_failed_pages or p.num_stuck_pages:
        errors = "; ".join(f"{_page_name(r)}: {r.error}" for r in result.attempts if r.error)
        raise AssertionError(
            f"{what} did not complete ({p.num_failed_pages} failed, {p.num_stuck_pages} stuck "
            f"pages): {errors[:1000]}"
        )


async def _check(
    run: Callable[[_Faults | None], Awaitable[tuple[LocalRun, Any]]],
    name: str,
    pages: list[PageRun],
    expected: Any,
    how: str,
    faults_for: Callable[[set[str]], _Faults],
) -> None:
    """Fault every page in ``pages``; on a difference, bisect down to one page."""

    async def differs(subset: list[PageRun]) -> tuple[bool, str]:
        faults = faults_for({p.cursor_str for p in subset})
        result, actual = await run(faults)
        if faults.rerun_failures:
            cursor, error = faults.rerun_failures[0]
            page = next((p for p in subset if p.cursor_str == cursor), None)
            shown = _page_name(page) if page else f"the page with cursor {cursor!r:.80}"
            raise AssertionError(f"{name} is not idempotent: {shown} failed when {how}: {error}")
        _check_complete(result, f"the run with pages {how}")
        if actual != expected:
            return True, snapshot_diff(expected, actual)
        return False, ""

    if not pages:
        return
    bad, diff = await differs(pages)
    if not bad:
        return
    suspects, confirmed = pages, len(pages) == 1
    while len(suspects) > 1:
        half = suspects[: len(suspects) // 2]
        half_bad, half_diff = await differs(half)
        if half_bad:
            suspects, diff, confirmed = half, half_diff, len(half) == 1
        else:  # then the other half (not run: it would cost one more run per step)
            suspects, confirmed = suspects[len(half) :], False
    if not confirmed:
        confirmed, alone_diff = await differs(suspects)
        diff = alone_diff or diff
    if confirmed:
        raise AssertionError(
            f"{name} is not idempotent: {_page_name(suspects[0])} {how} changed the end "
            f"state (expected: each page once):\n{diff}"
        )
    raise AssertionError(
        f"{name} is not idempotent: with all {len(pages)} pages {how} the end state changed, "
        f"but no single page did it alone:\n{diff}"
    )
