"""The batch's input to and from the JSON-friendly dict the workflow takes."""

from __future__ import annotations

from typing import Any

from .checks import fail
from .codec import WireError, from_wire, to_wire
from .input import BatchOrchestratorInput
from .validation import validate_input

__all__ = [
    "input_from_wire",
    "input_to_wire",
]


def input_to_wire(inp: BatchOrchestratorInput) -> dict[str, Any]:
    """The JSON-friendly dict the workflow takes (durations as seconds, the processor by name)."""
    wire: dict[str, Any] = to_wire(inp)
    wire["page_processor"] = inp.processor_name()
    return wire


def input_from_wire(raw: Any, *, strict: bool = True) -> BatchOrchestratorInput:
    """Parse and validate the workflow's wire input (from any client, SDK or the CLI).

    A ``continuation`` key (the state carried by continue-as-new) is skipped here. ``strict``:
    see ``validate_input``.
    """
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != "continuation"}
        for key in ("page_processor", "page_size", "max_parallelism"):
            if key not in raw:
                raise fail(f"the BatchOrchestrator input needs {key!r}")
        if isinstance(raw.get("batch_tracker"), dict):
            raw["batch_tracker"] = {"interval": 60, **raw["batch_tracker"]}
        if isinstance(raw.get("health_check"), dict):
            raw["health_check"] = {"interval": 30, "timeout": 10, **raw["health_check"]}
    try:
        inp = from_wire(BatchOrchestratorInput, raw, "", "BatchOrchestrator input")
    except WireError as err:
        raise fail(str(err)) from None
    validate_input(inp, strict=strict)
    return inp
