"""The README's quickstart runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quickstart")
    begin = readme.index("```python\n", start) + len("```python\n")
    code = readme[begin : readme.index("```", begin)]
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "20 pages, 1000 items, 0 failed" in done.stdout
