"""A lean Socket.IO v5 / Engine.IO v4 client over one aiohttp websocket.

python-socketio's client is far too heavy for ten thousand users in one process; this speaks just
what a Liaison tab needs: the open packet, connect with `auth`, server pings, `event` pushes,
and commands with acknowledgements."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

_encode = msgspec.json.encode


class ErrorBody(msgspec.Struct):
    code: str
    message: str = ""
    details: Any = None


class Answer(msgspec.Struct):
    """A command's envelope: `{ok, data}` or `{ok: false, error}`."""

    ok: bool
    data: msgspec.Raw = msgspec.Raw(b"null")
    error: ErrorBody | None = None

    @property
    def code(self) -> str:
        return "ok" if self.ok else (self.error.code if self.error else "unknown")


class Envelope(msgspec.Struct):
    """A pushed `event`: its data stays raw until someone wants it."""

    seq: int | None
    type: str
    data: msgspec.Raw
    at: str | None = None


class _Open(msgspec.Struct):
    sid: str
    pingInterval: int = 25000
    pingTimeout: int = 20000


class _ConnectError(msgspec.Struct):
    message: str = ""
    data: dict[str, Any] | None = None


_event_decoder = msgspec.json.Decoder(tuple[str, Envelope])
_ack_decoder = msgspec.json.Decoder(list[Answer])
_open_decoder = msgspec.json.Decoder(_Open)
_refusal_decoder = msgspec.json.Decoder(_ConnectError)


class Refused(Exception):
    """The server refused the Socket.IO connect (`connect_error`)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Closed(Exception):
    pass


def timeout_answer(name: str) -> Answer:
    return Answer(ok=False, error=ErrorBody("timeout", f"{name}: no answer"))


def closed_answer(name: str) -> Answer:
    return Answer(ok=False, error=ErrorBody("disconnected", f"{name}: connection closed"))


OnEvent = Callable[[Envelope, float], None]
OnClose = Callable[["LeanSocket", str], None]


class LeanSocket:
    """One tab's connection. `on_event(envelope, arrived_at)` runs for every push;
    `on_close(socket, reason)` once when the connection ends, whoever ended it."""

    __slots__ = (
        "_acks",
        "_ids",
        "_on_close",
        "_on_event",
        "_reader",
        "aborted",
        "closing",
        "ping_interval",
        "ws",
    )

    def __init__(self, on_event: OnEvent, on_close: OnClose) -> None:
        self._on_event = on_event
        self._on_close = on_close
        self._acks: dict[int, asyncio.Future[Answer]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.closing = False
        self.aborted = False
        self.ping_interval = 25.0

    @property
    def open(self) -> bool:
        return self.ws is not None and not self.ws.closed and not self.closing

    async def connect(
        self,
        session: aiohttp.ClientSession,
        url: str,
        auth: dict[str, Any],
        *,
        timeout: float = 20.0,
        deflate: bool = False,
    ) -> None:
        """Open the websocket and the namespace; raises Refused, Closed or TimeoutError."""
        async with asyncio.timeout(timeout):
            ws = await session.ws_connect(
                url,
                autoping=True,
                compress=15 if deflate else 0,
                max_msg_size=0,
            )
            self.ws = ws
            try:
                opened = await self._receive_text(ws)
                if opened[:1] != "0":
                    raise Closed(f"expected the Engine.IO open packet, got {opened[:40]!r}")
                self.ping_interval = _open_decoder.decode(opened[1:]).pingInterval / 1000
                await ws.send_str("40" + _encode(auth).decode())
                while True:
                    text = await self._receive_text(ws)
                    if text == "2":
                        await ws.send_str("3")
                    elif text.startswith("40"):
                        break
                    elif text.startswith("44"):
                        refusal = _refusal_decoder.decode(text[2:])
                        code = str((refusal.data or {}).get("code", "refused"))
                        raise Refused(code, refusal.message)
                    elif text.startswith("42"):
                        # A push racing the connect answer: keep it, in order.
                        self._dispatch(text, time.monotonic())
            except BaseException:
                await ws.close()
                self.ws = None
                raise
        self._reader = asyncio.create_task(self._read(ws))

    @staticmethod
    async def _receive_text(ws: aiohttp.ClientWebSocketResponse) -> str:
        msg = await ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise Closed(f"connection ended during connect ({msg.type.name})")
        return str(msg.data)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        reason = "transport closed"
        try:
            while True:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        reason = f"transport error: {ws.exception()!r}"
                    break
                text: str = msg.data
                head = text[:2]
                if head == "42":
                    self._dispatch(text, time.monotonic())
                elif head == "43":
                    self._answer(text)
                elif text == "2":
                    await ws.send_str("3")
                elif head == "41" or text[:1] == "1":
                    reason = "server disconnect"
                    break
        except (aiohttp.ClientError, ConnectionError, asyncio.CancelledError) as exc:
            reason = f"transport error: {type(exc).__name__}"
        finally:
            self._finish(reason)
            if not ws.closed:
                await ws.close()

    def _finish(self, reason: str) -> None:
        if self.ws is None:
            return
        self.ws = None
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(Closed(reason))
        self._acks.clear()
        self._on_close(self, "client closed" if self.closing else reason)

    def _dispatch(self, text: str, arrived: float) -> None:
        try:
            name, env = _event_decoder.decode(text[2:])
        except (msgspec.ValidationError, msgspec.DecodeError):
            return  # not an `event` push: nothing a Liaison client listens to
        if name == "event":
            self._on_event(env, arrived)

    def _answer(self, text: str) -> None:
        i = 2
        while i < len(text) and text[i].isdigit():
            i += 1
        fut = self._acks.pop(int(text[2:i]), None) if i > 2 else None
        if fut is None or fut.done():
            return
        try:
            answers = _ack_decoder.decode(text[i:])
            fut.set_result(answers[0] if answers else Answer(ok=True))
        except (msgspec.ValidationError, msgspec.DecodeError, IndexError) as exc:
            fut.set_result(Answer(ok=False, error=ErrorBody("bad_answer", repr(exc))))

    async def call(self, name: str, payload: Any, timeout: float = 10.0) -> Answer:
        """A command with its acknowledgement; never raises: failures come back as envelopes
        with the codes `timeout` or `disconnected`."""
        ws = self.ws
        if ws is None or ws.closed or self.closing:
            return closed_answer(name)
        ack = next(self._ids)
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._acks[ack] = fut
        try:
            await ws.send_str(f"42{ack}" + _encode([name, payload]).decode())
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return timeout_answer(name)
        except (Closed, ConnectionError, aiohttp.ClientError, RuntimeError):
            return closed_answer(name)
        finally:
            self._acks.pop(ack, None)

    async def close(self) -> None:
        """A clean goodbye (Socket.IO disconnect, then the websocket close)."""
        ws = self.ws
        self.closing = True
        if ws is not None and not ws.closed:
            try:
                await ws.send_str("41")
            except (ConnectionError, aiohttp.ClientError, RuntimeError):
                pass
            await ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def abort(self) -> None:
        """Drop the connection the way a network does: no goodbye."""
        ws = self.ws
        if ws is None:
            return
        self.aborted = True
        conn = getattr(ws, "_conn", None)  # aiohttp keeps the transport's connection there
        transport = conn.transport if conn is not None else None
        if transport is not None:
            transport.abort()
        elif self._reader is not None:
            self._reader.cancel()
