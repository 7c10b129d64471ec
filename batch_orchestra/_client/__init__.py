"""The client side: start and steer batches, read their failures, find the server.

``client`` starts batches, ``handle`` steers one, ``failures`` reads its failures with whole
cursors, and ``connect`` resolves which Temporal server and namespace to talk to.
"""

from __future__ import annotations

from .client import BatchOrchestratorClient
from .handle import BatchOrchestratorHandle

__all__ = ["BatchOrchestratorClient", "BatchOrchestratorHandle"]
