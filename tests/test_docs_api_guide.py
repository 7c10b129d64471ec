"""The example of "Calling an API for every row" (docs/writing-processors.md) runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from batch_orchestra import EmbeddedTemporal

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "writing-processors.md"


def _example() -> str:
    text = GUIDE.read_text()
    section = text.index("## Calling an API for every row")
    begin = text.index("```python\n", section) + len("```python\n")
    return text[begin : text.index("```", begin)]


def test_the_api_guide_example_repeats_no_successful_call(
    tmp_path: Path, temporal: EmbeddedTemporal
) -> None:
    script = tmp_path / "example.py"
    script.write_text(_example())
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
    assert done.stdout == "99 1 ['13']\n1 100 1\n"
