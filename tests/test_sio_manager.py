"""The Socket.IO client manager keeps nothing behind once connections are gone, and refused
connects leave no trace either."""

from __future__ import annotations

import asyncio

import socketio

from tests.support import Office


async def test_connections_leave_no_trace_in_the_manager(office: Office) -> None:
    tabs = [await office.tab(a) for a in ("li", "li", "zhang", "wang", "zhao")]
    manager = office.server.services.sio.manager
    assert len(manager.rooms["/"][None]) == 5
    bad = socketio.AsyncClient(reconnection=False)
    try:
        await bad.connect(office.server.url, auth={"token": "nope"}, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        pass
    for tab in tabs:
        await tab.close()
    for _ in range(50):
        if not manager.rooms.get("/", {}).get(None):
            break
        await asyncio.sleep(0.05)
    assert not manager.rooms.get("/", {}).get(None)
    assert manager._rooms_of == {}
    assert manager.pending_connect == {} and manager.pending_disconnect == {}
    assert office.server.services.hub.by_sid == {}
