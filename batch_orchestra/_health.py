"""Moved to ``batch_orchestra._worker``: re-exports for the importers outside the worker lane.

The lead removes it once every importer reads the new module.
"""

from __future__ import annotations

from ._worker.health import Health, HealthCheckContext, health_check, registered_health_checks

__all__ = ["Health", "HealthCheckContext", "health_check", "registered_health_checks"]
