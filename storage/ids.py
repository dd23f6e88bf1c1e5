"""Ids handed out ahead of their rows, from blocks of a table's identity sequence."""

from __future__ import annotations

import asyncio

from storage.pool import Executor


class IdBlocks:
    """A table's next ids, fetched `block` at a time, so a batch of creates can name its rows
    (and the events about them) without a round trip of its own. Ids are unique and increase
    within a process; those left in a block at a restart are skipped, as with a sequence's own
    `CACHE`."""

    def __init__(self, table: str, block: int = 256) -> None:
        self.table = table
        self.block = block
        self._free: list[int] = []
        self._refill = asyncio.Lock()  # one fetch at a time, so blocks stay in order

    async def take(self, db: Executor, n: int) -> list[int]:
        async with self._refill:
            while len(self._free) < n:
                rows = await db.fetch(
                    "SELECT nextval(pg_get_serial_sequence($1, 'id')) AS id"
                    " FROM generate_series(1, $2)",
                    self.table,
                    max(self.block, n - len(self._free)),
                )
                self._free.extend(r["id"] for r in rows)
            taken, self._free = self._free[:n], self._free[n:]
        return taken
