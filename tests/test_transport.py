"""The Engine.IO transport (server/eio.py): websocket clients on the lean path, polling clients
and upgrades from polling on python-engineio's own, pings and server-side closes on both."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from server.eio import LeanSocket
from tests.support import Office, eventually


async def _page(office: Office, to: str, body: str) -> None:
    wang = await office.person("wang")
    target = await office.person(to)
    answer = await office.server.command(
        wang.token, "pager.send", {"to": [target.id], "body": body, "client_msg_id": body}
    )
    assert answer["ok"], answer


@pytest.mark.parametrize(
    "transports", [("polling",), ("polling", "websocket")], ids=["polling", "upgrade"]
)
async def test_polling_and_upgrading_clients_get_commands_and_pushes(
    office: Office, transports: tuple[str, ...]
) -> None:
    li = await office.person("li")
    tab = await office.server.connect(li.token, transports=transports)
    assert (await tab.call("pager.history", {}))["ok"]
    await _page(office, "li", "over " + "+".join(transports))
    got = await tab.wait_for("pager.message")
    assert got["data"]["body"] == "over " + "+".join(transports)
    assert (await tab.call("sync.ack", {"seq": got["seq"]}))["ok"]
    assert tab.sio.transport() == transports[-1]


async def test_websocket_clients_are_on_the_lean_path_and_ordered(office: Office) -> None:
    tab = await office.tab("li")
    sockets = office.server.services.sio.eio.sockets
    assert sockets and all(type(s) is LeanSocket for s in sockets.values())
    for i in range(30):
        await _page(office, "li", f"n{i}")
    await tab.wait_for(lambda e: e["type"] == "pager.message" and e["data"]["body"] == "n29")
    assert [e["data"]["body"] for e in tab.durable("pager.message")] == [f"n{i}" for i in range(30)]


async def _raw_socket(office: Office, account: str) -> aiohttp.ClientWebSocketResponse:
    """A bare Engine.IO v4 / Socket.IO v5 client over websocket: every frame visible."""
    person = await office.person(account)
    url = office.server.url + "/socket.io/?EIO=4&transport=websocket"
    ws = await office.server.http.ws_connect(url)
    opened = await ws.receive_str()
    assert opened.startswith("0{")
    await ws.send_str("40" + json.dumps({"token": person.token}))
    assert (await ws.receive_str()).startswith("40{")
    assert '"sync.ready"' in await ws.receive_str()
    return ws


async def test_pings_go_out_on_a_timer_and_a_silent_client_is_dropped(office: Office) -> None:
    eio = office.server.services.sio.eio
    eio.ping_interval, eio.ping_timeout = 0.3, 0.6
    ws = await _raw_socket(office, "li")
    seen: list[str] = []
    # Answer two pings, then go silent: the server must close the socket.
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            seen.append(msg.data)
            if msg.data == "2" and seen.count("2") <= 2:
                await ws.send_str("3")
    assert seen.count("2") >= 3  # pinged again after each answer, and once more unanswered
    assert ws.closed or msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    li = int((await office.person("li")).id)
    await eventually(lambda: office.server.services.hub.count_for(li) == 0)


async def test_a_server_side_disconnect_closes_the_websocket(office: Office) -> None:
    ws = await _raw_socket(office, "li")
    hub = office.server.services.hub
    [conn] = list(hub.by_sid.values())
    await hub.drop(conn)
    frames = []
    async with asyncio.timeout(5):
        while not ws.closed:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                frames.append(msg.data)
    assert frames[:2] == ["41", "1"]  # Socket.IO's disconnect, Engine.IO's close, then closed
    assert hub.count_for(conn.user_id) == 0


async def test_a_broken_engine_io_frame_hurts_nobody(office: Office) -> None:
    other = await office.tab("zhang")
    ws = await _raw_socket(office, "li")
    for junk in ("", "9", "x{", "3probe", "6", "b"):
        await ws.send_str(junk)
    await ws.send_bytes(b"\x00\x01")
    await ws.send_str('42["sync.ack",{"seq":0}]')
    await _page(office, "zhang", "still here")
    await other.wait_for("pager.message")
    assert (await other.call("pager.history", {}))["ok"]
    await ws.close()
