"""What every benchmark worker process does once its worker is built: serve, then exit hard."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from temporalio.worker import Worker


async def serve_until_signal(worker: Worker) -> None:
    """Run ``worker`` until SIGTERM or SIGINT; print "ready" once it runs (the parent waits)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def run_and_exit(main: Callable[[], Coroutine[Any, Any, None]]) -> NoReturn:
    """Run ``main``, then exit without interpreter finalisation.

    The worker has shut down cleanly by then; finalisation is where the SDK's native threads can
    abort the process ("PyGILState_Release ... must be current"). A failing ``main`` exits 2.
    """
    code = 0
    try:
        asyncio.run(main())
    except Exception as err:
        print(f"worker failed: {err!r}", file=sys.stderr, flush=True)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
