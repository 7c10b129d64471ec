"""The README's command-line walkthrough runs as written.

The walkthrough sits between ``<!-- walkthrough:start -->`` and ``<!-- walkthrough:end -->``
in README.md. Each fenced block in it follows a marker that says how it runs:

* ``<!-- walkthrough:setup -->``: run before every other command, as a user does in each
  terminal (activating the virtualenv);
* ``<!-- walkthrough:server -->``: the dev server; the test session's server stands in for it
  (``TEMPORAL_ADDRESS``), so it is only checked to be ``batch-orchestra server``;
* ``<!-- walkthrough:background -->``: one long-running command (the worker), started in the
  background and stopped with Ctrl-C (SIGINT) at the end;
* ``<!-- walkthrough:steps -->``: commands run one after another; each must exit 0.

Commands run with bash in a directory laid out like a fresh clone after ``make install``
(``.venv`` and ``samples`` linked in), so relative paths in the walkthrough mean what they mean
for a user.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.service import RPCError

from batch_orchestra import BatchOrchestratorClient, EmbeddedTemporal
from samples.inflate_prices.db import MyDB

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- walkthrough:(\w+) -->\s*```bash\n(.*?)```", re.S)


def walkthrough() -> dict[str, list[str]]:
    """The walkthrough's commands by role, each command whole (``\\`` continuations joined)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- walkthrough:start -->")
    section = readme[start : readme.index("<!-- walkthrough:end -->", start)]
    roles: dict[str, list[str]] = {}
    for role, body in MARKER.findall(section):
        assert role in ("setup", "server", "background", "steps"), role
        joined = re.sub(r"\\\n\s*", " ", body)
        for line in joined.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                roles.setdefault(role, []).append(line.strip())
    return roles


def test_walkthrough_is_marked_up() -> None:
    roles = walkthrough()
    assert roles["setup"] == [". .venv/bin/activate"]
    assert [c.split("#")[0].strip() for c in roles["server"]] == ["batch-orchestra server"]
    assert len(roles["background"]) == 1
    assert roles["background"][0].startswith("batch-orchestra worker ")
    assert len(roles["steps"]) >= 5


def _fresh_clone(tmp: Path) -> Path:
    """A directory that looks like the repository root after ``make install``."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").exists():
        pytest.skip(f"the tests do not run in a virtualenv ({sys.prefix}); run them with make test")
    (tmp / ".venv").symlink_to(venv)
    (tmp / "samples").symlink_to(ROOT / "samples")
    return tmp


async def test_walkthrough_runs_as_written(
    temporal: EmbeddedTemporal, orchestra: BatchOrchestratorClient, tmp_path: Path
) -> None:
    roles = walkthrough()
    setup = " && ".join(roles["setup"])
    batch = re.search(r"--id (\S+)", " ".join(roles["steps"]))
    assert batch is not None, "the walkthrough starts its batch with --id"
    try:
        await temporal.client.get_workflow_handle(batch.group(1)).describe()
    except RPCError:
        pass  # a server the walkthrough has not run on yet
    else:
        pytest.skip(
            f"batch {batch.group(1)!r} already ran on {temporal.address}; the "
            "walkthrough needs a server it has not run on"
        )
    cwd = _fresh_clone(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "COLUMNS": "200",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            ["bash", "-c", f"{setup} && exec {roles['background'][0]}"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "worker polling" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        outputs = []
        for command in roles["steps"]:
            done = subprocess.run(
                ["bash", "-c", f"{setup} && {command}"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, (command, done.stdout, done.stderr, log.read_text())
            outputs.append(done.stdout)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(40)
    assert worker.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()

    # What the walkthrough promises: the batch went through pause and resume and changed every
    # row exactly once.
    progress = await orchestra.get_handle(batch.group(1)).result()
    assert progress.num_completed_pages == 100
    assert progress.num_completed_items == 20_000
    assert progress.num_failed_pages == progress.num_stuck_pages == 0
    assert progress.max_parallelism == 16
    assert any("PAUSED" in out for out in outputs), outputs
    assert MyDB(cwd / "products.db").check_migrated(10, 1) == []
    assert "OK: 20000/20000 products migrated exactly once" in outputs[-1]
