"""Moved to ``_engine/flow.py``: this old path re-exports it until the imports move."""

from ._engine.flow import *  # noqa: F403
from ._engine.flow import __all__ as __all__
