"""Moved to ``_engine/progress.py``: this old path re-exports it until the imports move."""

from ._engine.progress import *  # noqa: F403
from ._engine.progress import __all__ as __all__
