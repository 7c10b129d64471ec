"""The ``batch-orchestra`` command line: a thin layer over the public API.

``_commands`` parses (click), ``_actions`` acts through the public API, ``_lookup`` finds
batches on a Temporal server and reads their state, ``_render`` formats what is printed.
"""

from __future__ import annotations

from ._commands import cli, main

__all__ = ["cli", "main"]
