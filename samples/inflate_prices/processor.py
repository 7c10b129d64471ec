"""The page processor: the seed README's ``InflateProductPrices``, on SQLite."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass

from batch_orchestra import BatchPage, BatchProcessorContext, PageProcessor, page_processor

from .db import MyDB, ProductDBCursor

__all__ = ["ConfigArgs", "InflateProductPrices"]


@dataclass(frozen=True, kw_only=True)
class ConfigArgs:
    """The batch's args (``BatchOrchestratorInput.args``), read by every page."""

    db_path: str
    """The SQLite file holding the ``products`` table; the worker must be able to open it."""
    percent: int = 10
    """How much to raise each price, in percent."""
    migration_version: int = 1
    """The version this migration brings products to; products already there are skipped."""
    simulated_io_delay: float = 0.05
    """Seconds each page waits, standing in for a slow downstream call (makes parallelism
    visible in a demo; 0 to disable)."""

    def to_json(self) -> str:
        """The args as the string the batch carries."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, args_str: str) -> ConfigArgs:
        """Parse ``to_json()``'s output."""
        return cls(**json.loads(args_str))


@page_processor
class InflateProductPrices(PageProcessor):
    """Raises the price of every product by ``ConfigArgs.percent``, exactly once per product."""

    # The batch's args are checked against ConfigArgs when it starts: a misspelled key
    # (``"percentage"``) fails ``start`` at once instead of running with the default.
    args_type = ConfigArgs

    async def run(self, context: BatchProcessorContext) -> int:
        page = context.page
        cursor = ProductDBCursor.from_json(page.cursor_str)

        args: ConfigArgs = context.args()
        db = MyDB(args.db_path)
        # sqlite3 blocks; a thread keeps the worker's event loop free for the other pages.
        products, next_cursor = await asyncio.to_thread(db.query_page, cursor, results=page.size)

        if next_cursor:
            # There's another page to process. Kick it off before doing this page's work.
            await context.enqueue_next_page(BatchPage(next_cursor, page.size))

        await asyncio.sleep(args.simulated_io_delay)
        # One idempotent UPDATE for the page: products already at the target version are
        # skipped, so a retry (or a second batch) never inflates a price twice.
        updated = await asyncio.to_thread(
            db.inflate_prices, [p.id for p in products], args.percent, args.migration_version
        )
        context.logger.debug("inflated %d of %d products", updated, len(products))
        return updated

    # Retried pages are safe: the UPDATE above is idempotent.
    @property
    def retry_mode(self) -> PageProcessor.RetryMode:
        return PageProcessor.RetryMode.EXECUTE_AT_LEAST_ONCE
