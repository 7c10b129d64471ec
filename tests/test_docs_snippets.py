"""The processors, notifiers and trackers the guides in docs/ define are valid definitions.

Each ```python block of the guides is parsed; its decorated classes and functions (the
``@page_processor``, ``@batch_notifier`` and ``@batch_tracker`` definitions) are run, which
registers and validates them as a user's import would, under a prefixed name so that they do not
replace processors other tests register (the quickstart's name is the sample's). The rest of a
block (``...`` placeholders, fragments of a larger program) is left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import batch_orchestra

ROOT = Path(__file__).resolve().parent.parent
GUIDES = [
    "docs/writing-processors.md",
    "docs/failures.md",
    "docs/operating.md",
    "docs/flow-control.md",
]
PRELUDE = (
    "import asyncio\nfrom datetime import timedelta\nfrom temporalio.common import RetryPolicy\n"
    "from batch_orchestra import *\n"
    "from batch_orchestra.sources import FilePageProcessor, FileSource\n"
)


def _definitions(guide: str) -> list[tuple[str, ast.Module]]:
    """(registered name, module defining it under that name) for each decorated definition."""
    text = (ROOT / guide).read_text()
    found = []
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for node in ast.parse(block).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and (
                node.decorator_list
            ):
                node.name = f"DocsSnippet_{node.name}"
                module = ast.parse(PRELUDE)
                module.body.append(node)
                found.append((node.name, module))
    return found


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_definitions_register(guide: str) -> None:
    definitions = _definitions(guide)
    assert definitions, f"{guide} defines nothing to check"
    for name, source in definitions:
        namespace: dict[str, object] = {}
        exec(compile(source, f"{guide}:{name}", "exec"), namespace)
        registered = (
            batch_orchestra.registered_page_processors()
            + batch_orchestra.registered_batch_notifiers()
            + batch_orchestra.registered_batch_trackers()
            + batch_orchestra.registered_health_checks()
        )
        assert name in registered, f"{guide}: {name} did not register"
