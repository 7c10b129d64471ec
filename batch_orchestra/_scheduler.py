"""Moved to ``_engine/scheduler.py``: this old path re-exports it until the imports move."""

from ._engine.failures import FAILED_LIST_BYTES as FAILED_LIST_BYTES
from ._engine.failures import FAILURE_LIST_LIMIT as FAILURE_LIST_LIMIT
from ._engine.pages import MAX_HELD_BYTES as MAX_HELD_BYTES
from ._engine.pages import RECENT_CURSOR_WINDOW as RECENT_CURSOR_WINDOW
from ._engine.parallelism import MAX_RUNNING_PAGES as MAX_RUNNING_PAGES
from ._engine.scheduler import *  # noqa: F403
from ._engine.scheduler import __all__ as __all__
