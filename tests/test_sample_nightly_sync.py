"""samples/nightly_sync runs as its README says.

The README marks the worker (``<!-- sample:background -->``) and the commands run one after
another (``<!-- sample:steps -->``); they run with bash in a directory laid out like the
repository root after ``make install``, against the test session's server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from batch_orchestra import BatchOrchestratorClient, EmbeddedTemporal, UnknownSeriesError
from tests.test_walkthrough import _fresh_clone

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "samples" / "nightly_sync" / "README.md"
MARKER = re.compile(r"<!-- sample:(\w+) -->\s*```bash\n(.*?)```", re.S)


def _commands() -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for role, body in MARKER.findall(README.read_text()):
        roles.setdefault(role, []).extend(
            line.strip() for line in body.splitlines() if line.strip()
        )
    return roles


async def test_the_sample_runs_as_its_readme_says(
    temporal: EmbeddedTemporal, orchestra: BatchOrchestratorClient, tmp_path: Path
) -> None:
    roles = _commands()
    assert len(roles["background"]) == 1 and len(roles["steps"]) >= 5
    try:
        await orchestra.get_series("nightly-sync").describe()
    except UnknownSeriesError:
        pass
    else:
        pytest.skip(f"series 'nightly-sync' exists on {temporal.address} already")
    cwd = _fresh_clone(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "COLUMNS": "200",
    }
    setup = ". .venv/bin/activate"
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            ["bash", "-c", f"{setup} && exec {roles['background'][0]}"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    outputs = []
    try:
        deadline = time.monotonic() + 30
        while "worker running" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for command in roles["steps"]:
            done = subprocess.run(
                ["bash", "-c", f"{setup} && {command}"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert done.returncode == 0, (command, done.stdout, done.stderr, log.read_text())
            outputs.append(done.stdout)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(40)
    assert "Traceback" not in log.read_text(), log.read_text()
    checks = [o for o in outputs if o.startswith("OK:")]
    assert checks == [
        "OK: 1000/1000 orders in the warehouse, 0 copied more than once\n",
        "OK: 1250/1250 orders in the warehouse, 0 copied more than once\n",
    ]
    status = next(o for o in outputs if o.startswith("series nightly-sync"))
    assert "'1250'" in status and "(1000, 1250]" in status and "committed" in status
