"""The Batch Orchestra web dashboard: see and steer batches from a browser.

``batch-orchestra dashboard`` serves it; ``create_app()`` returns the ASGI app to mount in your
own. Needs the ``dashboard`` extra: ``pip install 'batch-orchestra[dashboard]'``.
"""

from __future__ import annotations

from ._app import create_app
from ._serve import DashboardServer, serve

__all__ = ["DashboardServer", "create_app", "serve"]
