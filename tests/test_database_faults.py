"""The database going away for a moment: a command caught by it is answered `unavailable`, having
done nothing or being safe to retry; deadlocks are retried, not answered `internal` (issue 16,
items 2 and 3)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from tests.support import Office

WAITERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


async def test_a_command_whose_connection_is_cut_is_unavailable_and_safe_to_retry(
    office: Office,
) -> None:
    wang = await office.person("wang")
    li = await office.person("li")
    dsn = office.server.services.config.database_url
    blocker = await asyncpg.connect(dsn)
    killer = await asyncpg.connect(dsn)
    try:
        # Hold li's stream so the page waits inside its transaction, then cut that connection.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM streams WHERE user_id = $1 FOR UPDATE", int(li.id))
        payload = {"to": [li.id], "body": "停电通知", "client_msg_id": "cut-1"}
        sending = asyncio.create_task(office.server.command(wang.token, "pager.send", payload))
        while not sending.done():
            await killer.execute(WAITERS)
            await asyncio.sleep(0.05)
        first = sending.result()
        await tx.rollback()
        assert first["ok"] is False, first
        assert first["error"]["code"] == "unavailable"
        assert first["error"]["details"]["retry_after_s"] > 0
        assert await killer.fetchval("SELECT count(*) FROM pager_messages") == 0

        again = await office.server.command(wang.token, "pager.send", payload)
        assert again["ok"], again
        third = await office.server.command(wang.token, "pager.send", payload)
        assert third["data"]["message_id"] == again["data"]["message_id"]
        assert await killer.fetchval("SELECT count(*) FROM pager_messages") == 1
    finally:
        with contextlib.suppress(Exception):
            await blocker.close()
        await killer.close()


async def test_a_deadlocked_command_is_run_again(office: Office) -> None:
    """PostgreSQL aborts one side of a deadlock (raised here by the handler, as asyncpg raises
    it): the command is run again from the start, and answered once it goes through."""
    li = await office.person("li")
    services = office.server.services
    cmd = services.registry.commands["notes.list"]
    runs = [0]

    async def deadlocking(ctx, p):  # type: ignore[no-untyped-def]
        runs[0] += 1
        if runs[0] < 3:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return await cmd.handler(ctx, p)

    services.registry.commands["notes.list"] = type(cmd)(
        cmd.name, cmd.model, deadlocking, cmd.idempotent, cmd.claims_key
    )
    env = await office.server.command(li.token, "notes.list")
    assert env["ok"], env
    assert runs[0] == 3


async def test_an_http_call_whose_connection_is_cut_is_unavailable(office: Office) -> None:
    """Outside the command registry too (the admin import here): 503 unavailable, not 500."""
    admin = await office.server.login("admin")
    dsn = office.server.services.config.database_url
    blocker = await asyncpg.connect(dsn)
    killer = await asyncpg.connect(dsn)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM users WHERE account = 'li' FOR UPDATE")
        body = {
            "departments": [],
            "users": [{"account": "li", "name": "李华华", "department_key": "general"}],
        }
        importing = asyncio.create_task(
            office.server.post("/api/v1/admin/import", body, token=admin["access_token"])
        )
        while not importing.done():
            await killer.execute(WAITERS)
            await asyncio.sleep(0.05)
        await tx.rollback()
        status, env = importing.result()
        assert (status, env["error"]["code"]) == (503, "unavailable"), env
        assert await killer.fetchval("SELECT name FROM users WHERE account = 'li'") == "李华"
    finally:
        with contextlib.suppress(Exception):
            await blocker.close()
        await killer.close()
