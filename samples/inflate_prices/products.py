"""Create the sample's products database, or check it after a batch.

::

    python -m samples.inflate_prices.products create products.db 20000
    python -m samples.inflate_prices.products check products.db --percent 10

``create`` (re)creates the SQLite file with N products. ``check`` verifies in SQL that every
product was raised by ``--percent`` exactly once (migration version ``--migration-version``):
it prints ``OK: ...`` and exits 0, or lists what is wrong and exits 1. The README's command-line
walkthrough uses both around a batch started with ``batch-orchestra start``.
"""

from __future__ import annotations

import argparse
import sys

from .db import MyDB, create_products


def main(argv: list[str] | None = None) -> int:
    """Run the ``create`` or ``check`` command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m samples.inflate_prices.products", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="(re)create the database with N products")
    create.add_argument("db", help="SQLite file to (re)create")
    create.add_argument("n", type=int, help="how many products")
    check = commands.add_parser("check", help="check that every product was migrated once")
    check.add_argument("db", help="SQLite file to check")
    check.add_argument("--percent", type=int, default=10, help="the batch's price rise")
    check.add_argument("--migration-version", type=int, default=1)
    opts = parser.parse_args(argv)

    if opts.command == "create":
        if opts.n < 0:
            parser.error(f"N must be 0 or more, not {opts.n}")
        create_products(opts.db, opts.n)
        print(f"created {opts.db} with {opts.n} products")
        return 0
    db = MyDB(opts.db)
    try:
        n = db.count()
    except Exception as err:  # no such file or table: say so in one line
        print(f"error: cannot read products from {opts.db}: {err}", file=sys.stderr)
        return 1
    problems = db.check_migrated(opts.percent, opts.migration_version)
    if problems:
        print(f"FAILED: {opts.db} was not migrated exactly once:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"OK: {n}/{n} products migrated exactly once "
        f"(+{opts.percent}%, migration_version {opts.migration_version})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
