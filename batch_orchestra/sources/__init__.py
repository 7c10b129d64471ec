"""Sources: a SQL table or a CSV/JSON Lines file read as a batch, the cursor handled for you.

``SqlSource`` pages through a table by keyset pagination and ``FileSource`` through a file by
byte offset; ``SqlPageProcessor`` and ``FilePageProcessor`` turn either into a page processor
whose only method is ``process(context, items)``. See docs/sources.md.

The SQL names need SQLAlchemy (``pip install 'batch-orchestra[sql]'``); they are imported on
first use, so ``FileSource`` works without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._common import SourcePage
from ._file_processor import FilePageProcessor
from ._files import FileSource, PathFactory

if TYPE_CHECKING:
    from ._sql import EngineFactory, SqlSource
    from ._sql_processor import SqlPageProcessor

__all__ = [
    "EngineFactory",
    "FilePageProcessor",
    "FileSource",
    "PathFactory",
    "SourcePage",
    "SqlPageProcessor",
    "SqlSource",
]

_SQL_NAMES = {
    "EngineFactory": "._sql",
    "SqlSource": "._sql",
    "SqlPageProcessor": "._sql_processor",
}


def __getattr__(name: str) -> Any:
    module = _SQL_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ImportError as err:
        raise ImportError(
            f"batch_orchestra.sources.{name} needs SQLAlchemy 2 ({err}); install it with "
            "pip install 'batch-orchestra[sql]'"
        ) from err
    globals()[name] = value
    return value
