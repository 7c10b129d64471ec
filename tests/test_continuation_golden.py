"""The hand-over's wire format, byte for byte, as the released code wrote it.

A batch handed over by one version goes on under the next, so the scheduler state a run hands
the next (``scheduler_to_state``, ``continuation_to_wire``) must keep its exact encoding when the
code that produces it is restructured. The golden files were written by the code at d0ca683 from
the scenario below (pages pending, running, retrying, stuck and failed, discoveries apart,
item failures, a pause and a redrive); regenerate them only for a deliberate format change
(``python -m tests.test_continuation_golden``), with a new ``CONTINUATION_VERSION``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from batch_orchestra._engine.continuation import (
    BatchContinuation,
    continuation_from_wire,
    continuation_to_wire,
    scheduler_from_state,
    scheduler_to_state,
)
from batch_orchestra._engine.flow import FlowState
from batch_orchestra._engine.history import History
from batch_orchestra._engine.scheduler import Scheduler
from batch_orchestra._model import FailurePolicy, ItemFailure, ProcessorSettings
from tests.test_scheduler import settings as processor_settings

GOLDEN = Path(__file__).parent / "golden"
POLICY = FailurePolicy(max_failure_rate=None)


def _settings() -> ProcessorSettings:
    return processor_settings(name="Golden", maximum_attempts=2, discovers_apart=True)


def _first_run() -> Scheduler:
    """A run with a page in every state, ending in a hand-over with pages still running."""
    s = Scheduler(_settings(), 4, 1_000.0, POLICY)
    s.enqueue(None, [("a/0001", 10), ("a/0002", 10), ("b/" + "x" * 300, 10), ("c/é\n", 5)])
    s.enqueue(None, [(f"d/{i:04d}", 10) for i in range(6)])
    first = s.take_runnable()
    s.take_discoveries()
    s.discovered(first[0].page_num, [("a/0003", 10)])
    s.discovery_failed(first[1].page_num, "OSError", "no route", 1_001.5)
    s.complete(first[0].page_num, 10, 1_002.0)
    assert s.fail(first[1].page_num, "ValueError", "boom", non_retryable=False, now=1_003.0)
    s.fail(first[2].page_num, "Fatal", "bad row é", non_retryable=True, now=1_004.0)
    s.keep_preview(s.failed[-1])
    s.fail(first[3].page_num, "Fatal", "kept whole", non_retryable=True, now=1_004.5)
    s.record_item_failures(
        3,
        [
            ItemFailure(
                key="k" * 300,
                page_num=first[0].page_num,
                error_type="KeyError",
                error_message="missing",
                failed_at=datetime.fromtimestamp(1_002.0, tz=timezone.utc),
            )
        ],
    )
    for att in s.take_runnable():  # these fail until stuck
        s.fail(att.page_num, "Timeout", "slow", non_retryable=False, now=1_005.0)
    s.release_due(1_020.0)
    for att in s.take_runnable():
        s.fail(att.page_num, "Timeout", "slow", non_retryable=False, now=1_021.0)
    s.take_runnable()
    s.not_started(s.pages[min(s.running)].page_num, s.pages[min(s.running)].attempts)
    s.set_parallelism(6, 1_030.0)
    s.pause("paused by an operator", 1_031.0)
    return s


def _wire(s: Scheduler, deadline: float | None, confirm_by: float | None) -> str:
    history = History()
    history.record(1_040.0, pages=1, items=10, running=3, cap=6, effective=0)
    cont = BatchContinuation(
        settings=s.settings,
        scheduler=scheduler_to_state(s, deadline, confirm_by),
        flow=FlowState(max_pages_per_second=2.5),
        history=history.state(),
    )
    return json.dumps(continuation_to_wire(cont), separators=(",", ":"), sort_keys=True)


def encodings() -> dict[str, str]:
    """The scenario's hand-overs: the first run's, and the next run's after more events."""
    s = _first_run()
    first = _wire(s, 1_100.0, 1_050.0)
    t = scheduler_from_state(
        _settings(), POLICY, continuation_from_wire(json.loads(first)).scheduler
    )
    t.confirm_started(min(t.running), t.pages[min(t.running)].attempts)
    t.resume(1_060.0)
    t.release_due(1_200.0)
    t.redrive_failed()
    t.take_runnable()
    t.take_discoveries()
    second = _wire(t, 1_300.0, None)
    u = scheduler_from_state(
        _settings(), POLICY, continuation_from_wire(json.loads(second)).scheduler, exact=False
    )
    u.complete(min(u.running), 7, 1_310.0)
    u.take_runnable()
    third = _wire(u, 1_400.0, 1_350.0)
    return {"first": first, "second": second, "third": third}


def test_the_hand_over_is_encoded_as_the_released_code_encoded_it() -> None:
    for name, text in encodings().items():
        golden = (GOLDEN / f"handover_{name}.json").read_text().strip()
        assert text == golden, f"the {name} hand-over's encoding changed"


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for name, text in encodings().items():
        (GOLDEN / f"handover_{name}.json").write_text(text + "\n")
