"""``run_locally``: a whole batch in this process, with a record of every page attempt.

Pages are observed by an activity interceptor on the worker that ``run_locally`` starts: it
sees each attempt's input (page number, cursor, size, attempt) and outcome (items or error).
The workflow and the processor run unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from .._client import BatchOrchestratorClient
from .._devserver import EmbeddedTemporal
from .._model import BatchOrchestratorInput, BatchOrchestratorProgress
from .._model.messages import PROCESS_PAGE
from .._worker.plugin import BatchOrchestraPlugin
from .._worker.processor import PageProcessor

__all__ = ["LocalRun", "PageRun", "SimulatedCrash", "interruption_point", "run_locally"]


@dataclass(frozen=True)
class PageRun:
    """One attempt at one page, as the worker saw it."""

    page_num: int
    """The page's number in the batch (the first page is 0)."""
    cursor_str: str
    """The page's cursor."""
    size: int
    """The page's size."""
    attempt: int
    """1 for the page's first attempt, 2 for its first retry, and so on."""
    items: int | None
    """Items the attempt reported (what ``run`` returned plus ``add_completed_items``);
    None when the attempt failed."""
    error: str | None = None
    """``"Type: message"`` of a failed attempt; None when it succeeded."""
    seconds: float = 0.0
    """How long the attempt ran."""
    interruption_points: int = 0
    """How many times the attempt passed ``interruption_point()``."""
    value: Any = None
    """The page's value (what ``run`` returned, for a processor that defines ``reduce``)."""

    @property
    def ok(self) -> bool:
        """Whether the attempt succeeded."""
        return self.error is None


@dataclass
class LocalRun:
    """What ``run_locally`` returns: the batch's final progress and every page attempt."""

    progress: BatchOrchestratorProgress
    """The batch's final progress (counts, failed pages and their errors)."""
    workflow_id: str
    """The batch's workflow ID (on the server ``run_locally`` used)."""
    attempts: list[PageRun] = field(default_factory=list)
    """Every page attempt, in the order they ended."""

    @property
    def pages(self) -> list[PageRun]:
        """The last attempt of each page, by page number."""
        last: dict[int, PageRun] = {}
        for run in self.attempts:
            last[run.page_num] = run
        return [last[n] for n in sorted(last)]

    @property
    def cursors(self) -> list[str]:
        """Each page's cursor, by page number."""
        return [p.cursor_str for p in self.pages]

    @property
    def items(self) -> int:
        """Items reported by the pages' successful attempts."""
        return sum(p.items or 0 for p in self.pages)


class SimulatedCrash(Exception):
    """Raised by ``interruption_point()`` where ``check_idempotent`` interrupts an attempt."""


class _Interruption:
    """Counts an attempt's interruption points; raises at the ``at``-th (None: never)."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.passed = 0

    def hit(self) -> None:
        self.passed += 1
        if self.passed == self.at:
            raise SimulatedCrash(
                f"check_idempotent interrupted this attempt at its interruption point {self.at}"
            )


_INTERRUPTION: contextvars.ContextVar[_Interruption | None] = contextvars.ContextVar(
    "batch_orchestra_interruption", default=None
)


def interruption_point() -> None:
    """Mark a place in your processor where a crash would leave a page half done.

    For example between two side effects.

    Outside ``check_idempotent`` this does nothing (it costs a context-variable lookup).
    ``check_idempotent`` raises ``SimulatedCrash`` here in the first attempt of each page, to
    check that the retry still reaches the same end state. Sync and async ``run`` alike.
    """
    interruption = _INTERRUPTION.get()
    if interruption is not None:
        interruption.hit()


@dataclass
class _Faults:
    """What ``check_idempotent`` does to first attempts (by cursor)."""

    rerun: set[str] = field(default_factory=set)
    """Pages whose first attempt, once finished, is failed, so the page runs again."""
    interrupt: set[str] = field(default_factory=set)
    """Pages whose first attempt crashes at interruption point ``interrupt_at``."""
    interrupt_at: int = 0
    done: set[str] = field(default_factory=set)
    """Pages whose fault has been injected: their later attempts run normally."""
    rerun_failures: list[tuple[str, str]] = field(default_factory=list)
    """(cursor, error) of pages that failed when run again."""


FAULT_ERROR_TYPE = "BatchOrchestraCheckIdempotentRerun"
RERUN_FAILED_ERROR_TYPE = "BatchOrchestraCheckIdempotentRerunFailed"


class _Recorder(Interceptor):
    def __init__(self, faults: _Faults | None) -> None:
        self.attempts: list[PageRun] = []
        self.faults = faults

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, recorder: _Recorder) -> None:
        super().__init__(next)
        self._recorder = recorder

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.info().activity_type != PROCESS_PAGE:
            return await super().execute_activity(input)
        inp = input.args[0]
        page, faults = inp.page, self._recorder.faults
        cursor = page.cursor_str
        fresh = faults is not None and cursor not in faults.done
        interrupt_at = (
            faults.interrupt_at
            if faults is not None and fresh and cursor in faults.interrupt
            else None
        )
        interruption = _Interruption(interrupt_at)
        token = _INTERRUPTION.set(interruption)
        start = time.monotonic()

        def record(items: int | None, error: str | None, result: Any = None) -> None:
            self._recorder.attempts.append(
                PageRun(
                    page_num=inp.page_num,
                    cursor_str=cursor,
                    size=page.size,
                    attempt=inp.attempt,
                    items=items,
                    error=error,
                    seconds=time.monotonic() - start,
                    interruption_points=interruption.passed,
                    value=getattr(result, "value", None),
                )
            )

        try:
            result = await super().execute_activity(input)
        except BaseException as err:
            record(None, _describe(err))
            if faults is not None and interruption.passed == interrupt_at:
                faults.done.add(cursor)  # the simulated crash: the retry runs normally
            elif faults is not None and cursor in faults.done and isinstance(err, Exception):
                # A page that fails when run again is not idempotent: fail it for good.
                faults.rerun_failures.append((cursor, _describe(err)))
                raise ApplicationError(
                    f"failed when run again after an earlier attempt: {_describe(err)}",
                    type=RERUN_FAILED_ERROR_TYPE,
                    non_retryable=True,
                ) from err
            raise
        finally:
            _INTERRUPTION.reset(token)
        record(result.items, None, result)
        if faults is not None and fresh and cursor in faults.rerun:
            faults.done.add(cursor)
            raise ApplicationError(
                "check_idempotent failed this attempt after it finished, so the page runs again",
                type=FAULT_ERROR_TYPE,
            )
        return result


def _describe(err: BaseException) -> str:
    if isinstance(err, ApplicationError):
        return f"{err.type or 'ApplicationError'}: {err.message}"
    return f"{type(err).__name__}: {err}"


@asynccontextmanager
async def _client_for(client: Client | None) -> AsyncIterator[Client]:
    if client is not None:
        yield client
        return
    async with EmbeddedTemporal() as temporal:
        yield temporal.client


async def _run(
    client: Client,
    processor: type[PageProcessor] | str,
    faults: _Faults | None,
    timeout: timedelta | None,
    input_fields: dict[str, Any],
) -> LocalRun:
    recorder = _Recorder(faults)
    input_fields = dict(input_fields)
    plugin = BatchOrchestraPlugin(resources=input_fields.pop("resources", None))
    workflow_id = f"run-locally-{uuid.uuid4().hex[:12]}"
    task_queue = f"run-locally-{uuid.uuid4().hex[:12]}"
    inp = BatchOrchestratorInput(page_processor=processor, **input_fields)
    async with Worker(client, task_queue=task_queue, plugins=[plugin], interceptors=[recorder]):
        handle = await BatchOrchestratorClient(client).start(
            inp, id=workflow_id, task_queue=task_queue
        )
        try:
            progress = await asyncio.wait_for(
                handle.result(), timeout.total_seconds() if timeout else None
            )
        except asyncio.TimeoutError:
            progress = await handle.get_progress()
            await handle.workflow_handle.terminate("run_locally: timed out")
            raise TimeoutError(
                f"the batch did not finish within {timeout}: {progress.num_completed_pages} "
                f"pages completed, {progress.num_processing_pages} running, "
                f"{progress.num_stuck_pages} stuck (a stuck page waits for extended retries); "
                "pass a longer timeout=, or fix the failing pages"
            ) from None
    return LocalRun(progress=progress, workflow_id=workflow_id, attempts=recorder.attempts)


async def run_locally(
    processor: type[PageProcessor] | str,
    *,
    args: str | None = None,
    first_cursor_str: str = "",
    first_cursor_strs: list[str] | None = None,
    page_size: int = 100,
    max_parallelism: int = 4,
    client: Client | None = None,
    timeout: timedelta | None = timedelta(minutes=5),
    **input_fields: Any,
) -> LocalRun:
    """Run a whole batch of ``processor`` in this process and return what every page did.

    Starts a worker (with ``BatchOrchestraPlugin``) on a fresh task queue of ``client``'s
    server, or of an ``EmbeddedTemporal`` dev server started for the call when ``client`` is
    None (a few seconds; pass one to run several batches). The processor must be registered
    (decorated with ``@page_processor``) in this process. From synchronous code:
    ``asyncio.run(run_locally(...))``.

    Args:
        processor: the processor class, or its registered name.
        args: the batch's ``args`` string (``args_str(...)`` for a typed one).
        first_cursor_str: the first page's cursor.
        first_cursor_strs: several first cursors (several chains) instead.
        page_size: the pages' size.
        max_parallelism: how many pages run at once.
        client: a client of the Temporal server to use; None starts a local dev server.
        timeout: how long the batch may run; then it is terminated and ``TimeoutError``
            raised (a stuck page waits minutes for its extended retries). None: no limit.
        **input_fields: any other ``BatchOrchestratorInput`` field (``pages_per_run``,
            ``failure_policy``, ...), and ``resources``: the worker's resources, as
            ``BatchOrchestraPlugin(resources=...)`` takes them (``context.resource(name)``).

    Returns:
        The final progress and every page attempt (``.pages``, ``.cursors``, ``.attempts``).

    Raises:
        TimeoutError: the batch did not finish within ``timeout``.
        temporalio.client.WorkflowFailureError: the batch itself failed (e.g. bad input).
    """
    fields = dict(
        input_fields,
        args=args,
        first_cursor_str=first_cursor_str,
        first_cursor_strs=first_cursor_strs,
        page_size=page_size,
        max_parallelism=max_parallelism,
    )
    async with _client_for(client) as c:
        return await _run(c, processor, None, timeout, fields)
