"""The package as users get it: built, checked, installed into a fresh virtualenv outside this
source tree, and run from there.

One build (``python -m build``: an sdist, then a wheel from that sdist, so both are checked),
``twine check`` on both, then ``pip install 'batch_orchestra-*.whl[dashboard]'`` into a new venv
in a temporary directory. Its dependencies come from the package index pip is configured with
(PyPI), as on a user's machine; nothing of this checkout is on the venv's path. From there: the
README's quickstart, ``batch-orchestra --help``, ``batch-orchestra dashboard --help``, and the
dashboard's static files served by the installed package (package data a wheel can miss).

About 40 s. Where the index cannot be reached, or ``build``/``twine`` are missing, the test is
skipped with one line saying so, except under CI=true, where it fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import ROOT

pytestmark = [pytest.mark.wheel, pytest.mark.slow]

_NO_INDEX = (
    "Could not find a version",
    "No matching distribution",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not fetch URL",
)
"""What pip and build say when the package index cannot be reached."""

_NOT_SOURCE = (
    ".git",
    ".venv",
    "*.egg-info",
    "build",
    "dist",
    "test-artifacts",
    "__pycache__",
    ".*_cache",
    "*.db",
)
"""What a fresh clone does not have."""

_STATIC_CHECK = """
import asyncio
from batch_orchestra.dashboard import create_app

async def get(app, path):
    sent, requested, finished = [], [], asyncio.Event()
    async def receive():
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # the client stays until the whole response is sent
        return {"type": "http.disconnect"}
    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body

async def main():
    app = create_app(address="127.0.0.1:1")  # connects on first use: static files need none
    for path, marker in (("/static/dashboard.js", b"textContent"),
                         ("/static/dashboard.css", b".counts")):
        status, body = await get(app, path)
        assert status == 200 and marker in body, (path, status, body[:200])
    print("static files served")

asyncio.run(main())
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the wheel test must run under CI, but {reason}")
    pytest.skip(f"wheel test skipped: {reason}")


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "PYTHONPATH")}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(done: subprocess.CompletedProcess[str], what: str) -> str:
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(marker in output for marker in _NO_INDEX):
            _unavailable(f"{what} could not reach the package index")
        raise AssertionError(f"{what} failed ({done.returncode}):\n{output[-3000:]}")
    return done.stdout


def test_built_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    for module in ("build", "twine"):
        if importlib.util.find_spec(module) is None:
            _unavailable(f"{module} is not installed (make install brings the dev extra)")
    # A clean copy, as a fresh clone has it: no egg-info or build/ left by an editable install
    # (setuptools would take the list of files from a stale egg-info's SOURCES.txt).
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    dist = tmp_path / "dist"
    _ok(_run([sys.executable, "-m", "build", "--outdir", str(dist)], source), "python -m build")
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    checked = _ok(
        _run([sys.executable, "-m", "twine", "check", str(wheels[0]), str(sdists[0])], tmp_path),
        "twine check",
    )
    assert checked.count("PASSED") == 2, checked

    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path), "venv")
    python = venv / "bin" / "python"
    _ok(
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--quiet",
                f"{wheels[0]}[dashboard]",
            ],
            tmp_path,
        ),
        "pip install of the wheel",
    )
    work = tmp_path / "work"  # outside the source tree: only the installed package is found
    work.mkdir()
    where = _ok(
        _run([str(python), "-c", "import batch_orchestra; print(batch_orchestra.__file__)"], work),
        "import",
    )
    assert where.strip().startswith(str(venv)), where

    cli = str(venv / "bin" / "batch-orchestra")
    assert "Run and operate Batch Orchestra batches" in _ok(_run([cli, "--help"], work), "--help")
    assert "--users-file" in _ok(_run([cli, "dashboard", "--help"], work), "dashboard --help")
    assert "static files served" in _ok(_run([str(python), "-c", _STATIC_CHECK], work), "static")

    readme = (ROOT / "README.md").read_text()
    begin = readme.index("```python\n", readme.index("## Quickstart")) + len("```python\n")
    (work / "quickstart.py").write_text(readme[begin : readme.index("```", begin)])
    out = _ok(_run([str(python), "quickstart.py"], work, timeout=180), "the README's quickstart")
    assert "20 pages, 1000 items, 0 failed" in out
