"""Moved to ``_engine/budgets.py``: this old path re-exports it until the imports move."""

from ._engine.budgets import *  # noqa: F403
from ._engine.budgets import __all__ as __all__
