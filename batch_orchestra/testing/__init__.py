"""Helpers for testing page processors and code that runs batches.

``run_locally`` runs a whole batch in this process and returns every page attempt;
``check_idempotent`` checks that pages run again (after a full or an interrupted attempt) leave
the same end state, with ``interruption_point()`` marking where a crash would hurt.
``EmbeddedTemporal`` (also importable from ``batch_orchestra``) runs a real local Temporal dev
server; ``free_port`` finds a loopback port for one.
"""

from __future__ import annotations

from .._devserver import EmbeddedTemporal, free_port
from ._idempotence import check_idempotent, snapshot_diff
from ._local import LocalRun, PageRun, SimulatedCrash, interruption_point, run_locally

__all__ = [
    "EmbeddedTemporal",
    "LocalRun",
    "PageRun",
    "SimulatedCrash",
    "check_idempotent",
    "free_port",
    "interruption_point",
    "run_locally",
    "snapshot_diff",
]
