"""Open the database the configuration names (or the embedded one), migrated and pooled."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from storage.embedded import embedded_postgres
from storage.migrate import migrate
from storage.pool import create_pool


@contextlib.asynccontextmanager
async def open_database(
    data_dir: Path, database_url: str | None, *, max_size: int = 20
) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with contextlib.AsyncExitStack() as stack:
        dsn = database_url
        if not dsn:
            dsn = await stack.enter_async_context(embedded_postgres(data_dir))
        pool = await create_pool(dsn, max_size=max_size)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await migrate(conn)
        yield dsn, pool
