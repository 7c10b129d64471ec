"""The ``batch-orchestra`` command line: a thin layer over the public API.

``_commands`` assembles the command group from ``_process_commands``, ``_batch_commands``,
``_control_commands`` and ``_series`` (which parse, with click, sharing ``_options``);
``_actions``, ``_control_actions``, ``_process_actions`` and ``_page_actions`` act through
the public API; ``_render`` and ``_list`` format what is printed.
Finding batches and wording their state is shared with the dashboard in
``batch_orchestra._read``.
"""

from __future__ import annotations

from ._commands import cli, main

__all__ = ["cli", "main"]
