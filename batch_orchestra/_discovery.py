"""Moved to ``_engine/discovery.py``: this old path re-exports it until the imports move."""

from ._engine.discovery import *  # noqa: F403
from ._engine.discovery import __all__ as __all__
