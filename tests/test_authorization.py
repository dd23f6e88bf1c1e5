"""Authorization on every command: nothing runs without a valid token, and the administrator's
bootstrap account works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from storage.migrate import migrate
from tests.support import Office, start_server


async def test_every_command_refuses_an_anonymous_caller(office: Office) -> None:
    names = sorted(office.server.services.registry.commands)
    assert len(names) >= 12
    for name in names:
        status, env = await office.server.post(f"/api/v1/commands/{name}", {})
        assert status == 401, (name, env)
        assert env["error"]["code"] == "unauthorized", name
        status, env = await office.server.post(f"/api/v1/commands/{name}", {}, token="not-a-token")
        assert status == 401 and env["error"]["code"] == "unauthorized", name


async def test_socket_only_commands_say_so_over_http(office: Office) -> None:
    li = await office.person("li")
    for name in ("sync.ack", "auth.renew", "presence.idle"):
        payload = {
            "sync.ack": {"seq": 1},
            "auth.renew": {"token": li.token},
            "presence.idle": {"idle": True},
        }[name]
        env = await office.server.command(li.token, name, payload)
        assert env["error"]["code"] == "bad_request", (name, env)


async def test_bootstrap_admin_is_created_once(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(
        database_url, tmp_path, password_hash, bootstrap_admin="boss:first-pass-1"
    ) as srv:
        boss = await srv.login("boss", "first-pass-1")
        assert "admin" in boss["user"]["roles"]
    async with start_server(
        database_url, tmp_path, password_hash, bootstrap_admin="boss:other-pass-2"
    ) as srv:
        status, _ = await srv.post(
            "/api/v1/auth/login", {"account": "boss", "password": "other-pass-2"}
        )
        assert status == 401  # an existing account is left alone
        await srv.login("boss", "first-pass-1")


async def test_concurrent_migrations_apply_once(pg_admin_dsn: str, database_url: str) -> None:
    base, _, query = database_url.partition("?")
    name = "mig_" + base.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    try:
        conns = [await asyncpg.connect(dsn) for _ in range(3)]
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(a) for a in applied)[:2] == [0, 0]
        assert sum(len(a) for a in applied) >= 1
        versions = await conns[0].fetch("SELECT version FROM schema_migrations")
        assert len(versions) == sum(len(a) for a in applied)
        for c in conns:
            await c.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
