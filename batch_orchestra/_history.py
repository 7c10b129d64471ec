"""Moved to ``_engine/history.py``: this old path *is* that module until the imports move.

The same module object, not a copy of its names: tests set ``SAMPLE_SECONDS`` here.
"""

import sys

from ._engine import history as _history
from ._engine.history import *  # noqa: F403
from ._engine.history import __all__ as __all__

sys.modules[__name__] = _history
