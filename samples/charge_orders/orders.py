"""The orders database: ``create`` it, ``check`` it after the batch.

::

    python -m samples.charge_orders.orders create orders.db 500
    python -m samples.charge_orders.orders check orders.db
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create", help="(re)create DB with orders 1..N")
    p.add_argument("db", type=Path)
    p.add_argument("n", type=int)
    p = sub.add_parser("check", help="verify every order's charge, shipment, email, refund")
    p.add_argument("db", type=Path)
    opts = parser.parse_args()
    if opts.command == "create":
        db.create(opts.db, opts.n)
        declined = opts.n // db.DECLINED_EVERY
        print(f"created {opts.db} with orders 1..{opts.n} ({declined} to be declined)")
        return 0
    r = db.check(opts.db)
    for problem in r.problems[:20]:
        print(f"  {problem}")
    if r.problems:
        print(f"FAILED: {len(r.problems)} problems in {r.orders} orders")
        return 1
    print(
        f"OK: {r.orders} orders: {r.done} charged, shipped and emailed once; {r.refunded} "
        f"declined, charged and refunded once, not shipped; none charged twice "
        f"({r.repeats} repeated requests absorbed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
