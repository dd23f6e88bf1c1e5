"""A client that stops reading is cut once its unsent data passes the bound, and never holds up
delivery to anyone else (issue 16, item 1); a missed pong cuts it too, even with a full buffer."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from loadtests.stalled import StalledSocket
from tests.support import Office, eventually, start_server

BOUND = 64 * 1024
_keys = itertools.count()


async def _page(office: Office, sender: str, to: str, body: str) -> dict:
    p = await office.person(sender)
    env = await office.server.command(
        p.token,
        "pager.send",
        {"to": [office.user_ids[to]], "body": body, "client_msg_id": f"bp-{next(_keys)}"},
    )
    assert env["ok"], env
    return env


def _cut(office: Office, reason: str) -> float:
    return office.server.services.metrics.sockets_cut.labels(reason)._value.get()


async def test_a_client_that_stops_reading_is_cut_and_slows_nobody(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(
        database_url,
        tmp_path,
        password_hash,
        max_send_buffer_bytes=BOUND,
        rate_per_s=1000,
        rate_burst=1000,
    ) as srv:
        office = await Office.create(srv)
        li = await office.person("li")
        stalled = await StalledSocket.open(srv.url, li.token)
        stalled.stall()
        zhang = await office.tab("zhang")
        hub = srv.services.hub
        await eventually(lambda: li.id and int(li.id) in hub.by_user)

        # Pages of ~5 KB to the stalled reader until the server has cut it: each one is also
        # a page to someone reading, whose delivery must go on all the while.
        body = "寻" * 1600
        sent = 0
        while int(li.id) in hub.by_user:
            assert sent < 2000, "the stalled socket was never cut"
            await _page(office, "wang", "li", body)
            await _page(office, "chen", "zhang", f"第{sent}页")
            sent += 1
        assert sent > 5, "the bound was not the reason it went"
        assert _cut(office, "send_buffer") == 1
        await zhang.wait_for(lambda e: e["data"].get("body") == f"第{sent - 1}页", timeout=10)
        assert [e["seq"] for e in zhang.durable()] == list(range(1, sent + 1))
        assert await stalled.was_cut(timeout=10)

        # It resumes with what it had and misses nothing.
        tab = await office.tab("li", last_seq=0)
        pages = tab.durable("pager.message")
        assert len(pages) == sent
        assert [e["seq"] for e in tab.durable()] == list(range(1, len(tab.durable()) + 1))


async def test_a_missed_pong_cuts_a_socket_whose_writes_are_stuck(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(database_url, tmp_path, password_hash, rate_per_s=1000) as srv:
        srv.services.sio.eio.ping_interval = 0.5
        srv.services.sio.eio.ping_timeout = 1
        office = await Office.create(srv)
        li = await office.person("li")
        stalled = await StalledSocket.open(srv.url, li.token)
        stalled.stall()
        hub = srv.services.hub
        await eventually(lambda: int(li.id) in hub.by_user)
        # Far below the 1 MB bound, far above what the kernel and the transport take unpaused.
        for _ in range(60):
            await _page(office, "wang", "li", "寻" * 1600)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await eventually(lambda: int(li.id) not in hub.by_user, timeout=10)
        assert loop.time() - started < 10
        assert _cut(office, "ping_timeout") == 1
        # Everyone else is still served.
        env = await office.server.command((await office.person("zhang")).token, "notes.list")
        assert env["ok"], env
        stalled.close()
