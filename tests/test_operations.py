"""Operations: health, readiness, metrics, logs without tokens, and the browser origin allow-list."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import pytest
import socketio

from tests.support import Office, eventually, start_server


async def test_healthz_and_readyz(office: Office) -> None:
    async with office.server.http.get(office.server.url + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True
    async with office.server.http.get(office.server.url + "/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["data"] == {"database": "ok", "bus": "ok"}


async def test_metrics_count_connections_commands_latency_and_pushes(office: Office) -> None:
    tab = await office.tab("li")
    wang = await office.person("wang")
    li = await office.person("li")
    await office.server.command(wang.token, "notes.leave", {"to": li.id, "body": "hi"})
    await tab.wait_for("note.received")
    await tab.call("no.such.command")
    async with office.server.http.get(office.server.url + "/metrics") as resp:
        text = await resp.text()
    assert "liaison_connections 1.0" in text
    assert 'liaison_commands_total{name="notes.leave",outcome="ok"} 1.0' in text
    assert 'liaison_commands_total{name="unknown",outcome="not_found"} 1.0' in text
    assert 'liaison_command_seconds_count{name="notes.leave"} 1.0' in text
    assert 'liaison_events_pushed_total{kind="durable"} 1.0' in text


async def test_tokens_never_reach_the_log(office: Office, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    li = await office.person("li")
    tab = await office.tab("li")
    await tab.call("auth.renew", {"token": li.token})
    await tab.call("whereabouts.set", {"status": "out", "note": 5})  # an error path too
    await office.server.command(li.token, "no.such")
    await office.server.post("/api/v1/auth/refresh", {"refresh_token": li.refresh_token})
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert li.token not in logged
    assert li.refresh_token not in logged


async def _try_connect(url: str, token: str, origin: str) -> bool:
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(
            url,
            auth={"token": token},
            headers={"Origin": origin},
            transports=["websocket"],
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        return False
    await sio.disconnect()
    return True


async def test_browser_origins_are_checked(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(
        database_url, tmp_path, password_hash, allowed_origins=("https://oa.example.gov.cn",)
    ) as srv:
        office = await Office.create(srv)
        li = await office.person("li")
        assert await _try_connect(srv.url, li.token, srv.url)  # same origin
        assert await _try_connect(srv.url, li.token, "https://oa.example.gov.cn")
        assert not await _try_connect(srv.url, li.token, "https://evil.example.com")


async def _connect_with_host(url: str, token: str, host: str, origin: str) -> bool:
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(
            url,
            auth={"token": token},
            headers={"Origin": origin, "Host": host},
            transports=["websocket"],
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        return False
    await sio.disconnect()
    return True


async def test_a_host_header_alone_does_not_make_an_origin_ours(office: Office) -> None:
    """DNS rebinding: a hostile name resolving to this server sends a Host and an Origin that
    agree. Only the address the connection arrived at (or localhost on loopback) is ours."""
    srv = office.server
    li = await office.person("li")
    port = srv.url.rsplit(":", 1)[1]
    assert not await _connect_with_host(
        srv.url, li.token, f"evil.example:{port}", f"http://evil.example:{port}"
    )
    assert await _try_connect(srv.url, li.token, f"http://localhost:{port}")
    assert not await _try_connect(srv.url, li.token, f"http://127.0.0.1:{int(port) + 1}")


async def test_a_public_url_is_the_only_own_origin(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(
        database_url, tmp_path, password_hash, public_url="https://oa.jiangzhou.gov.cn"
    ) as srv:
        office = await Office.create(srv)
        li = await office.person("li")
        assert await _try_connect(srv.url, li.token, "https://oa.jiangzhou.gov.cn")
        assert not await _try_connect(srv.url, li.token, srv.url)


async def test_a_shutdown_answers_every_command_already_read(
    database_url: str, tmp_path: Path, password_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with start_server(database_url, tmp_path, password_hash) as srv:
        office = await Office.create(srv)
        li = await office.person("li")
        wang = await office.tab("wang")
        registry = srv.services.registry
        blocker = await asyncpg.connect(database_url)
        try:
            # Ten notes wait inside their transactions on li's stream, held here.
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("SELECT 1 FROM streams WHERE user_id = $1 FOR UPDATE", int(li.id))
            calls = [
                asyncio.create_task(wang.call("notes.leave", {"to": li.id, "body": f"便条{i}"}))
                for i in range(10)
            ]
            await eventually(lambda: registry.running == 10)
            stopping = asyncio.create_task(srv.ts.close())
            await eventually(lambda: registry.draining)
            await asyncio.sleep(0.3)
            await tx.rollback()
            answers = await asyncio.gather(*calls)
            await stopping
        finally:
            await blocker.close()
        assert [a["ok"] for a in answers] == [True] * 10, answers
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 10
    finally:
        await conn.close()
    # (asyncio's own complaints about clients' sessions collected late are not the server's)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "asyncio"]
    assert not errors, [r.getMessage() for r in errors]
