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

# Real SMTP and SMS-gateway peers; a real Redis for the several-node tests.
pytest_plugins = ["tests.servers", "tests.redis_server"]

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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist" / "index.html"


@pytest.fixture(scope="session")
async def browser():  # type: ignore[no-untyped-def]
    """Debian's headless Chromium driven by Playwright (its own browser download cannot work here).
    Missing Chromium or an unbuilt web client skips locally but fails on CI."""
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} missing (apt-get install chromium)"
    elif not WEB_DIST.exists():
        problem = "web client not built (make install)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        await b.close()


@pytest.fixture
def artifacts() -> Path:
    path = Path(__file__).resolve().parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
async def new_page(server, browser):  # type: ignore[no-untyped-def]
    """Open a page in a fresh browser context (a separate person); closed before the server."""
    contexts = []

    async def open_page():  # type: ignore[no-untyped-def]
        context = await browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
        contexts.append(context)
        return await context.new_page()

    yield open_page
    for context in contexts:
        await context.close()
