"""The ``batch-orchestra`` command line: a thin layer over the public API.

::

    batch-orchestra server [--port 7233] [--ui-port 8233] [--db FILE] [--headless]
    batch-orchestra worker MODULE... --task-queue Q
    batch-orchestra start PROCESSOR --page-size N --max-parallelism N --task-queue Q [--watch]
    batch-orchestra status ID [--watch] [--json]
    batch-orchestra failures ID [--all] [--json | --csv]
    batch-orchestra redrive ID [--id NEW_ID]
    batch-orchestra pause ID | resume ID | set-parallelism ID N | set-rate ID ... | cancel ID
    batch-orchestra retry-page ID N [--reason TEXT] | skip-page ID N --reason TEXT
    batch-orchestra terminate ID
    batch-orchestra list [--limit N] [--running]
    batch-orchestra dashboard [--host 127.0.0.1] [--port 8234] [--token T] [--read-only]

Commands that talk to Temporal take ``--address`` and ``--namespace`` (env ``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``) and ``--ui-url`` (env ``TEMPORAL_UI_URL``) for the Web UI links. Expected
failures (no server, unknown batch, unknown processor, ...) print one ``error:`` line on stderr
and exit with 1; bad usage exits with 2. This module assembles the group; the ``*_commands``
modules parse (click), the ``*_actions`` modules act.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from ._batch_commands import failures, list_, redrive, start, status
from ._control_commands import (
    cancel,
    pause,
    resume,
    retry_page,
    set_parallelism,
    set_rate,
    skip_page,
    terminate,
)
from ._process_commands import dashboard, server, worker
from ._series import series

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batch-orchestra")
def cli() -> None:
    """Run and operate Batch Orchestra batches on Temporal."""


for _command in (
    server,
    worker,
    start,
    status,
    failures,
    redrive,
    pause,
    resume,
    set_parallelism,
    set_rate,
    retry_page,
    skip_page,
    cancel,
    terminate,
    list_,
    dashboard,
    series,
):
    cli.add_command(_command)


def main() -> None:
    """The ``batch-orchestra`` console script (and ``python -m batch_orchestra``)."""
    try:
        cli.main(prog_name="batch-orchestra")
        code: Any = 0
    except SystemExit as exit_:
        code = exit_.code
    if not isinstance(code, int):
        if code is not None:
            click.echo(code, err=True)
        code = 0 if code is None else 1
    # Skip interpreter teardown: the Temporal client's Rust threads can abort a short-lived
    # process while Python finalizes ("PyGILState_Release ... must be current",
    # temporalio/sdk-python#300). Everything worth keeping is flushed first.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
