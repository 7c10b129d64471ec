"""Sources: a SQL table or a CSV/JSON Lines file read as a batch, the cursor handled for you.

``SqlSource`` pages through a table by keyset pagination and ``FileSource`` through a file by
byte offset; ``SqlPageProcessor`` and ``FilePageProcessor`` turn either into a page processor
whose only method is ``process(context, items)``. Both need extras: ``pip install
'batch-orchestra[sql]'`` (SQLAlchemy 2, psycopg) and, for URLs, ``'batch-orchestra[files]'``
(fsspec). See docs/sources.md.
"""

from __future__ import annotations

from ._common import SourcePage
from ._files import FileSource, PathFactory
from ._processors import FilePageProcessor, SqlPageProcessor
from ._sql import EngineFactory, SqlSource

__all__ = [
    "EngineFactory",
    "FilePageProcessor",
    "FileSource",
    "PathFactory",
    "SourcePage",
    "SqlPageProcessor",
    "SqlSource",
]
