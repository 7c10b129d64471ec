"""Wait for a workflow's result through a loaded server's long-poll timeouts.

``WorkflowHandle.result()`` long-polls the history for the close event. A busy server (seen near
the end of a 100,000-item run on two cores) can answer that poll with DEADLINE_EXCEEDED, "context
deadline exceeded", although the workflow is still running and healthy; the SDK raises it. Waiting
again is always right: the workflow has not closed, and the next poll sees its close when it comes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

# A pause between polls after a timeout, so an overloaded server is not polled in a tight loop.
_AFTER_TIMEOUT_S = 0.5


async def wait_for_result(handle: WorkflowHandle[Any, Any], *, follow_runs: bool = True) -> Any:
    """``handle.result(follow_runs=...)``, polling again whenever the server times the poll out."""
    timeouts = 0
    while True:
        try:
            return await handle.result(follow_runs=follow_runs)
        except RPCError as err:
            if err.status != RPCStatusCode.DEADLINE_EXCEEDED:
                raise
            timeouts += 1
            log.debug("waiting for %s: poll %d timed out (%s)", handle.id, timeouts, err)
            await asyncio.sleep(_AFTER_TIMEOUT_S)
