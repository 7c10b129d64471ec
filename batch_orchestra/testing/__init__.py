"""Helpers for testing page processors and code that runs batches.

``EmbeddedTemporal`` (also importable from ``batch_orchestra``) runs a real local Temporal dev
server; ``free_port`` finds a loopback port for one.
"""

from __future__ import annotations

from .._devserver import EmbeddedTemporal, free_port

__all__ = ["EmbeddedTemporal", "free_port"]
