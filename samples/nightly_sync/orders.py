"""The orders database: ``create``, ``add`` new orders (as the shop does all day), ``check``.

::

    python -m samples.nightly_sync.orders create orders.db 1000
    python -m samples.nightly_sync.orders add orders.db 250
    python -m samples.nightly_sync.orders check orders.db [--wait 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .db import add_orders, counts, create


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("create", "add"):
        p = sub.add_parser(name)
        p.add_argument("db", type=Path)
        p.add_argument("n", type=int)
    p = sub.add_parser("check")
    p.add_argument("db", type=Path)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the sync")
    opts = parser.parse_args()
    if opts.command == "create":
        create(opts.db)
        ids = add_orders(opts.db, opts.n)
        print(f"created {opts.db} with orders {ids.start}..{ids.stop - 1}")
        return 0
    if opts.command == "add":
        ids = add_orders(opts.db, opts.n)
        print(f"added orders {ids.start}..{ids.stop - 1}")
        return 0
    deadline = time.monotonic() + opts.wait
    while True:
        total, synced, missing, twice = counts(opts.db)
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if missing:
        print(f"NOT YET: {missing} of {total} orders are not in the warehouse")
        return 1
    again = (
        " (copies overwrite the same row: a backfill or a mark set back re-runs its window)"
        if twice
        else ""
    )
    print(f"OK: {synced}/{total} orders in the warehouse, {twice} copied more than once{again}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
