"""Test fixtures: one embedded PostgreSQL per run, a fresh database per test cloned from a migrated
template, and a real Liaison server on a loopback port per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from server.auth import hash_password
from storage.embedded import embedded_postgres, ensure_database
from storage.migrate import migrate
from tests.support import TEST_PASSWORD, Office, start_server

TEMPLATE = "liaison_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
async def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """LIAISON_TEST_DATABASE_URL (a server's admin DSN) or an embedded server for this run."""
    external = os.environ.get("LIAISON_TEST_DATABASE_URL")
    if external:
        yield external
        return
    async with embedded_postgres(tmp_path_factory.mktemp("pg"), database="postgres") as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def template_db(pg_admin_dsn: str) -> str:
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(_dsn_for(pg_admin_dsn, TEMPLATE))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return TEMPLATE


def _dsn_for(admin_dsn: str, database: str) -> str:
    base, _, query = admin_dsn.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{database}" + (f"?{query}" if query else "")


@pytest.fixture
async def database_url(pg_admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    await ensure_database(pg_admin_dsn, name, template=template_db)
    yield _dsn_for(pg_admin_dsn, name)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(TEST_PASSWORD)


@pytest.fixture
async def server(database_url: str, tmp_path: Path, password_hash: str):  # type: ignore[no-untyped-def]
    async with start_server(database_url, tmp_path, password_hash) as srv:
        yield srv
        assert not srv.bad_events, (
            f"pushed events that break their declared schema: {srv.bad_events}"
        )


@pytest.fixture
async def office(server) -> Office:  # type: ignore[no-untyped-def]
    """A small organisation: 综合科 (leader 王明, 李华, 张伟) inside 办公室 (director 陈建国),
    and 财务科 (赵敏)."""
    return await Office.create(server)
