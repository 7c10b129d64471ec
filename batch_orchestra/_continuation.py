"""Moved to ``_engine/continuation.py``: this old path re-exports it until the imports move."""

from ._engine.continuation import *  # noqa: F403
from ._engine.continuation import __all__ as __all__
