"""Moved to ``_engine/ranges.py``: this old path re-exports it until the imports move."""

from ._engine.ranges import *  # noqa: F403
from ._engine.ranges import __all__ as __all__
