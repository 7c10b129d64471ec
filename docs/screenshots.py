"""Refresh the dashboard screenshots in docs/ from a real run.

The screenshots are what the browser test of the dashboard takes on real batches (a dev server,
a worker, Playwright driving Debian's Chromium): ``dashboard.png`` is a failing batch at
1,440 px (``failing-1440.png``), ``dashboard-phone.png`` the same batch at 375 px after a retry,
a skip and a redrive (``operated-375.png``). The batch runs for a few seconds, so the batch
samples its history every half second here instead of every minute: its charts then show the
batch's own history, as a long batch's do.

Run from a clone, with the dev extras and Chromium installed::

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import batch_orchestra._engine.history as history

DOCS = Path(__file__).resolve().parent
SHOTS = {"failing-1440.png": "dashboard.png", "operated-375.png": "dashboard-phone.png"}


def main() -> int:
    """Run the browser test in this process (so the shorter sampling holds), copy its shots."""
    history.SAMPLE_SECONDS = 0.5
    with tempfile.TemporaryDirectory() as out:
        os.environ["TEST_ARTIFACTS"] = out
        test = "tests/test_dashboard_browser.py::test_operating_a_batch_in_a_browser"
        code = pytest.main(["-q", "-p", "no:cacheprovider", str(DOCS.parent / test)])
        if code != 0:
            return int(code)
        for shot, name in SHOTS.items():
            shutil.copyfile(Path(out) / "dashboard" / shot, DOCS / name)
            print(f"docs/{name} from {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
