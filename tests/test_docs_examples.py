"""The examples of docs/testing.md, docs/typed-cursors.md and docs/series.md run as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch_orchestra import EmbeddedTemporal

DOCS = Path(__file__).resolve().parent.parent / "docs"


def first_python_block(doc: str) -> str:
    text = (DOCS / doc).read_text()
    begin = text.index("```python\n") + len("```python\n")
    return text[begin : text.index("```", begin)]


@pytest.mark.parametrize(
    "doc, expected",
    [
        (
            "typed-cursors.md",
            "['{\"product_id\":100}', '{\"product_id\":150}', '{\"product_id\":200}'] 150\n",
        ),
        ("testing.md", "['', '25', '50', '75', '100'] 100 0\nReprice is idempotent\n"),
        ("series.md", "130 True ['(100, 130]', '(0, 100]']\n"),
    ],
)
def test_doc_example_runs(
    doc: str, expected: str, tmp_path: Path, temporal: EmbeddedTemporal
) -> None:
    script = tmp_path / "example.py"
    script.write_text(first_python_block(doc))
    # The example's own EmbeddedTemporal() uses the session's server through TEMPORAL_ADDRESS.
    env = dict(os.environ, TEMPORAL_ADDRESS=temporal.address)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == expected
