"""Engine.IO's websocket path, made lean for thousands of sockets.

python-engineio gives every websocket a queue and a writer task that waits on it with
`asyncio.wait_for`, wraps every received frame in a task of its own under another
`wait_for`, tries each message as JSON with the standard library (an exception per
Socket.IO frame), and keeps a sleeping task per socket between pings. A profile of the load
benchmark put those at a quarter of the server's time, and they are most of the ~30 KB each
idle socket costs.

`LeanSocket` keeps python-engineio's protocol and state and changes only the mechanics for
clients that connect straight over websocket (ours do): frames are written to the websocket
when sent (aiohttp writes an uncompressed frame synchronously, so order is the order of the
`send` calls), read in one loop, each Socket.IO message handed on in one task without a JSON
attempt, and the next ping is a timer, not a task. Polling clients and upgrades from
polling take python-engineio's own path unchanged.

A write never waits for the peer. aiohttp's websocket writer awaits the transport's drain once
its buffer is full, and that await sat in the middle of every fan-out: one client that stopped
reading (a stalled mobile link) held up every push and answer behind it, and python-engineio's
ping check, which closes a silent socket by writing to it, hung on the same wait. Here the
transport never pauses; after each write the unsent data is measured, and past
`max_send_buffer_bytes` the connection is cut (aborted, its buffer dropped). The client resumes
with `last_seq` when it can read again; nothing durable is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web
from engineio import async_socket, packet

log = logging.getLogger(__name__)

_TEXT_OR_BINARY = (WSMsgType.TEXT, WSMsgType.BINARY)
_background_tasks: set[asyncio.Task[Any]] = set()
# A transport's high-water mark that is never reached (uvloop takes a C int).
_NEVER_PAUSE = 2**31 - 1


class LeanSocket(async_socket.AsyncSocket):  # type: ignore[misc]
    # python-engineio's state, typed for mypy (set in its __init__)
    connected: bool
    upgraded: bool
    last_ping: float | None
    ws: web.WebSocketResponse | None = None
    _ping_timer: asyncio.TimerHandle | None = None
    _transport: asyncio.Transport | None = None

    @classmethod
    def adopt(cls, sock: async_socket.AsyncSocket) -> None:
        """Take over a socket python-engineio has just created (it has no hook for its socket
        class; the state is the same, only the methods differ)."""
        if type(sock) is async_socket.AsyncSocket:
            sock.__class__ = cls

    async def send(self, pkt: packet.Packet) -> None:
        ws = self.ws
        if ws is None:  # polling, or not yet on the websocket
            await super().send(pkt)
            return
        if self.closed or ws.closed:
            return
        try:
            if pkt.binary:
                await ws.send_bytes(pkt.encode())
            else:
                await ws.send_str(pkt.encode())
        except (ConnectionError, RuntimeError):  # gone meanwhile: the reader ends the socket
            log.debug("write to closed websocket %s", self.sid)
            return
        transport = self._transport
        if (
            transport is not None
            and transport.get_write_buffer_size() > self.server.max_send_buffer_bytes
        ):
            self.cut("send_buffer")

    def cut(self, reason: str) -> None:
        """Abort the connection at once, unsent data and all: the read loop then ends the socket
        as for any lost connection (disconnect handlers, presence)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        log.info("cutting socket %s: %s", self.sid, reason)
        on_cut = getattr(self.server, "on_cut", None)
        if on_cut is not None:
            on_cut(reason)
        transport.abort()

    async def check_ping_timeout(self) -> bool:
        """python-engineio closes a socket that missed its pong by writing a CLOSE packet and
        waiting for the peer; a peer that does not read never answers, so it is cut instead."""
        if self.ws is None or self.closed:
            return bool(await super().check_ping_timeout())
        last_ping = self.last_ping
        if last_ping and time.time() - last_ping > self.server.ping_timeout:
            self.cut("ping_timeout")
            return False
        return True

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:  # an upgrade from polling: python-engineio's own path
            await super()._websocket_handler(ws)
            return
        self.connected = self.upgraded = True
        sock: web.WebSocketResponse = ws._sock
        # The request's environ (every header, copied under WSGI names) is held by
        # python-engineio's handler frames and python-socketio for the socket's whole life;
        # past the handshake nothing reads it (the connect handler uses the auth payload
        # only): emptied, ~2.5 KB a connection.
        transport = ws.environ["aiohttp.request"].transport
        ws.environ.clear()
        if transport is not None:
            # Never paused: writes return at once, and `send` bounds the backlog itself.
            transport.set_write_buffer_limits(high=_NEVER_PAUSE)
            self._transport = transport
        # What was sent before the websocket existed (the OPEN packet) went to the queue.
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            self.queue.task_done()
            if queued is not None:
                await sock.send_str(queued.encode())
        self.ws = sock
        limit = self.server.max_http_buffer_size
        on_message = self.server.handlers["message"]
        reason = self.server.reason.TRANSPORT_CLOSE
        try:
            while not self.closed:
                msg = await sock.receive()
                if msg.type not in _TEXT_OR_BINARY:
                    break  # closed by the client, or the connection failed
                data = msg.data
                if len(data) > limit:
                    break
                if isinstance(data, str) and data[:1] == "4":
                    # A message (a Socket.IO packet): straight on, as text, in a task of its own
                    # (commands of one socket run side by side, as python-engineio runs them).
                    _background(on_message(self.sid, data[1:]))
                    continue
                if data == "1":  # the client says goodbye
                    reason = self.server.reason.CLIENT_DISCONNECT
                    break
                try:
                    await self.receive(packet.Packet(encoded_packet=data))
                except Exception:
                    log.debug("bad engine.io packet from %s", self.sid, exc_info=True)
        finally:
            self.ws = None
            self._transport = None
            self._cancel_ping()
            # Ending the socket runs the disconnect handlers (database work, a meeting room
            # left). aiohttp cancels this request's task once the connection is gone, which
            # must not cut them short.
            ending = _background(self._end(sock, reason))
            await asyncio.shield(ending)

    async def _end(self, sock: web.WebSocketResponse, reason: Any) -> None:
        await self.close(wait=False, abort=True, reason=reason)
        if not sock.closed:
            await sock.close()

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        ws = self.ws
        await super().close(wait=wait, abort=abort, reason=reason)
        self._cancel_ping()
        if ws is not None and not ws.closed:
            # Closing waits for the client's answer; whoever closed us need not.
            _background(ws.close())

    # -- pings: a timer per socket instead of a task sleeping between them --------------------
    def schedule_ping(self) -> None:
        if self.last_ping:
            self.last_ping = None
            self._cancel_ping()
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(self.server.ping_interval, self._ping_due)

    def _ping_due(self) -> None:
        self._ping_timer = None
        _background(self._ping())

    async def _ping(self) -> None:
        if self.closing or self.closed:
            return
        self.last_ping = time.time()
        try:
            await self.send(packet.Packet(packet.PING))
        except Exception:  # closed meanwhile
            log.debug("ping to closed socket %s", self.sid)

    def _cancel_ping(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None


async def settle(timeout: float) -> None:
    """Wait, at most `timeout`, for the sockets' work in flight (commands, and the disconnect
    handlers of sockets that are ending): on shutdown, before the database closes under it."""
    me = asyncio.current_task()
    pending = [t for t in _background_tasks if not t.done() and t is not me]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def _background(coro: Any) -> asyncio.Future[Any]:
    task = asyncio.ensure_future(coro)
    _background_tasks.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Future[Any]) -> None:
    _background_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
