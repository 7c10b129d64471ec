"""The whole sample in one process: ``make demo`` (``python -m samples.inflate_prices.demo``).

Creates a SQLite database of products, starts a Temporal dev server with its Web UI (or uses
``TEMPORAL_ADDRESS``), runs a worker in-process, migrates every product with the
``InflateProductPrices`` batch while printing progress, then checks in SQL that each product
was migrated exactly once. Exits 0 when it was, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from temporalio.worker import Worker

from batch_orchestra import (
    BatchOrchestraPlugin,
    BatchOrchestratorClient,
    BatchOrchestratorInput,
    BatchOrchestratorProgress,
    EmbeddedTemporal,
)
from batch_orchestra.testing import free_port

from .db import MyDB, ProductDBCursor, create_products
from .processor import ConfigArgs, InflateProductPrices
from .progress import wait_printing_progress

SLOWER_ARGS = "--io-delay 2 --hold"
SLOWER_HINT = (
    f'run `make demo DEMO_ARGS="{SLOWER_ARGS}"` (or `python -m samples.inflate_prices.demo '
    f"{SLOWER_ARGS}`): a slower batch, and the dashboard stays up after it"
)
"""What the demo suggests when it ran too fast to watch; tests/test_cli.py runs its command."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--percent", type=int, default=10)
    parser.add_argument(
        "--io-delay",
        type=float,
        default=None,
        help="simulated seconds of downstream I/O per page (default: 2 in a terminal, so there "
        "is time to pause it from the dashboard; 0.2 otherwise)",
    )
    parser.add_argument(
        "--db", type=Path, help="SQLite file to (re)create (default: one in a temp directory)"
    )
    parser.add_argument(
        "--hold",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the dev server, its Web UI and the dashboard up after the batch, until Ctrl-C "
        "(default: in a terminal)",
    )
    parser.add_argument(
        "--dashboard-port",
        type=int,
        default=8234,
        help="port of the Batch Orchestra dashboard (0: do not serve it; default: %(default)s)",
    )
    opts = parser.parse_args(argv)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if opts.hold is None:
        opts.hold = interactive
    if opts.io_delay is None:
        opts.io_delay = 2.0 if interactive else 0.2
    return opts


def check(
    db: MyDB, args: ConfigArgs, progress: BatchOrchestratorProgress, n: int, page_size: int
) -> list[str]:
    """Everything wrong with the batch's outcome; empty when it is right."""
    problems = db.check_migrated(args.percent, args.migration_version)
    if progress.num_failed_pages or progress.num_stuck_pages:
        problems.append(
            f"{progress.num_failed_pages} failed and {progress.num_stuck_pages} stuck page(s): "
            + "; ".join(
                f"page {f.page_num}: {f.error_type}: {f.error_message}"
                for f in progress.failed_pages + progress.stuck_pages
            )
        )
    pages = max(1, -(-n // page_size))  # ceil; an empty table still takes one (empty) page
    if progress.num_completed_pages != pages:
        problems.append(f"the batch ran {progress.num_completed_pages} pages, not {pages}")
    return problems


async def run_demo(opts: argparse.Namespace, tmp: Path) -> int:
    # SIGTERM stops the demo like Ctrl-C does, so the dev server is always shut down.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    n = opts.products
    db_path = (opts.db or tmp / "products.db").resolve()
    print(f"Creating {n} products in {db_path} ...")
    db = await asyncio.to_thread(create_products, db_path, n)
    args = ConfigArgs(
        db_path=str(db_path),
        percent=opts.percent,
        migration_version=1,
        simulated_io_delay=opts.io_delay,
    )
    before = (await asyncio.to_thread(db.query_page, ProductDBCursor(), 1))[0]

    print("Starting Temporal ...")
    async with EmbeddedTemporal(ui=True) as temporal, contextlib.AsyncExitStack() as stack:
        if temporal.is_embedded:
            print(f"Temporal dev server at {temporal.address}, Web UI at {temporal.ui_url}")
        else:
            print(f"Using the Temporal server at TEMPORAL_ADDRESS={temporal.address}")
        task_queue = f"inflate-prices-demo-{uuid.uuid4().hex[:8]}"
        dashboard_url = await start_dashboard(stack, temporal, opts.dashboard_port)
        async with Worker(temporal.client, task_queue=task_queue, plugins=[BatchOrchestraPlugin()]):
            handle = await BatchOrchestratorClient(temporal.client).start(
                BatchOrchestratorInput(
                    page_processor=InflateProductPrices,
                    page_size=opts.page_size,
                    max_parallelism=opts.parallelism,
                    args=args.to_json(),
                    batch_id=task_queue,
                    total_items=n,
                ),
                id=f"inflate-prices-demo-{time.strftime('%Y%m%d-%H%M%S')}-{task_queue[-8:]}",
                task_queue=task_queue,
            )
            print(
                f"Started batch {handle.id}: {n} products, page size {opts.page_size}, "
                f"max parallelism {opts.parallelism}, +{opts.percent}%"
            )
            url = temporal.workflow_url(handle.id)
            if dashboard_url:
                print(
                    f"Watch, pause and resume it in the dashboard: "
                    f"{dashboard_url}batches/{quote(handle.id, safe='')}"
                )
                if not opts.hold:
                    print(f"  (too quick to catch? {SLOWER_HINT})")
            if url:
                print(f"Its workflow in the Temporal Web UI: {url}")
            else:
                print(f"Find workflow {handle.id} in your Temporal server's Web UI")
            started = time.monotonic()
            progress = await wait_printing_progress(handle)
            elapsed = time.monotonic() - started

        problems = await asyncio.to_thread(check, db, args, progress, n, opts.page_size)
        print()
        if problems:
            print(f"FAILED: the batch {handle.id} did not migrate every product exactly once:")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print(
                f"OK: {n}/{n} products migrated exactly once (+{args.percent}%, "
                f"migration_version {args.migration_version}) in {progress.num_completed_pages} "
                f"pages, {elapsed:.1f}s, up to {progress.max_parallelism_achieved} pages at once"
            )
            if progress.num_completed_items != n:
                # Not an error: a page retried after its UPDATE committed reports 0 rows the
                # second time, although each of them was updated once.
                print(
                    f"    (pages reported {progress.num_completed_items} rows updated: some "
                    "pages were retried after their update had committed)"
                )
            after = db.query_page(ProductDBCursor(), 1)[0]
            if before and after:
                print(
                    f"    e.g. product {after[0].id} {after[0].name!r}: {before[0].price_cents}"
                    f" -> {after[0].price_cents} cents"
                )
        if opts.hold and (url or dashboard_url):
            where = " and ".join(u for u in (dashboard_url, url) if u)
            print(f"\nStaying up at {where}; Ctrl-C to stop.", flush=True)
            print(
                "Next, in another terminal (.venv/bin/ on your PATH):\n"
                f"  batch-orchestra status {handle.id} --address {temporal.address}\n"
                f"  batch-orchestra list --address {temporal.address}\n"
                "  batch-orchestra start InflateProductPrices -q ... --help   "
                "(your own batch: see the README)",
                flush=True,
            )
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                print("\nstopping")
    return 1 if problems else 0


async def start_dashboard(
    stack: contextlib.AsyncExitStack, temporal: EmbeddedTemporal, port: int
) -> str | None:
    """Serve the dashboard in this process (when its extra is installed); its URL, or None."""
    if port == 0:
        return None
    try:
        from batch_orchestra.dashboard import DashboardServer, create_app
    except ImportError:
        print("(pip install 'batch-orchestra[dashboard]' to watch the batch in the dashboard)")
        return None
    ui_url = temporal.ui_url or os.environ.get("TEMPORAL_UI_URL", "http://localhost:8233")
    app = create_app(temporal.client, ui_url=ui_url)
    try:
        server = await stack.enter_async_context(DashboardServer(app, port=port))
    except OSError:  # the port is taken: any free one will do
        server = await stack.enter_async_context(DashboardServer(app, port=free_port()))
    print(f"Batch Orchestra dashboard at {server.url}")
    return server.url


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("temporalio", "temporalio.worker", "temporalio.activity", "temporalio.workflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="inflate-prices-demo-") as tmp:
        try:
            return asyncio.run(run_demo(opts, Path(tmp)))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("\ninterrupted")
            return 130


if __name__ == "__main__":
    sys.exit(main())
