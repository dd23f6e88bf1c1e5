"""The load generator's own websocket client (`loadtests.client.LeanSocket`): against a scripted
Engine.IO/Socket.IO server on aiohttp, and byte by byte against a fake transport. No database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
from aiohttp import WSMsgType, web

from loadtests.client import (
    Closed,
    Envelope,
    LeanSocket,
    Refused,
    encode_frame,
    mask_payload,
)
from loadtests.worker import ACK_EVERY_S, Worker, WorkerSpec

OPEN = '0{"sid":"x","upgrades":[],"pingInterval":12345,"pingTimeout":20000,"maxPayload":1000000}'
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Script = Callable[[web.WebSocketResponse, web.Request], Awaitable[None]]


def push(seq: int, type_: str = "pager.message", data: Any = None) -> str:
    body = {"seq": seq, "type": type_, "at": "2026-01-01T00:00:00Z", "data": data or {"n": seq}}
    return "42" + json.dumps(["event", body])


class Recorder:
    """on_event / on_close for one socket."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.closes: list[str] = []
        self.closed = asyncio.Event()
        self.arrived = asyncio.Event()

    def on_event(self, env: Envelope, at: float) -> None:
        assert at > 0
        self.events.append(env)
        self.arrived.set()

    def on_close(self, sock: LeanSocket, reason: str) -> None:
        self.closes.append(reason)
        self.closed.set()

    def socket(self) -> LeanSocket:
        return LeanSocket(self.on_event, self.on_close)

    async def wait_events(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.events) < n:
                self.arrived.clear()
                await self.arrived.wait()

    @property
    def seqs(self) -> list[int | None]:
        return [e.seq for e in self.events]


class Scripted:
    """A scripted server: each websocket runs `script(ws, request)`; what the scripts saw is
    kept for the test to check."""

    def __init__(self) -> None:
        self.script: Script | None = None
        self.done: asyncio.Queue[Any] = asyncio.Queue()  # each script's result or exception
        self.url = ""
        self.plain_url = ""
        self.autoping = True

    async def handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=self.autoping)
        await ws.prepare(request)
        assert self.script is not None
        try:
            await self.script(ws, request)
        except BaseException as exc:
            await self.done.put(exc)
            raise
        else:
            await self.done.put(None)
        finally:
            if not ws.closed:
                await ws.close()
        return ws

    async def finished(self) -> None:
        """The script's own assertions held."""
        async with asyncio.timeout(5):
            result = await self.done.get()
        if result is not None:
            raise result


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_get("/socket.io/", scripted.handler)

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="not a websocket")

    app.router.add_get("/plain/", plain)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    scripted.url = f"ws://{host}:{port}/socket.io/?EIO=4&transport=websocket"
    scripted.plain_url = f"ws://{host}:{port}/plain/"
    try:
        yield scripted
    finally:
        await runner.cleanup()


async def join(
    ws: web.WebSocketResponse, *, before: list[str] | None = None, auth: Any = None
) -> None:
    """The server's half of connecting: open packet, the client's `40{auth}`, the answer."""
    await ws.send_str(OPEN)
    msg = await ws.receive_str(timeout=5)
    assert msg.startswith("40")
    if auth is not None:
        assert json.loads(msg[2:]) == auth
    for text in before or []:
        await ws.send_str(text)
    await ws.send_str('40{"sid":"y"}')


async def until_closed(ws: web.WebSocketResponse) -> list[tuple[WSMsgType, Any]]:
    """Everything the client sends until its connection ends."""
    seen = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            seen.append((msg.type, msg.data))
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                return seen


# -- against a scripted server -------------------------------------------------------------------
async def test_connect_dispatches_pushes_in_order_and_answers_pings(server: Scripted) -> None:
    auth = {"token": "t-1", "last_seq": 7}

    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        assert "Sec-WebSocket-Extensions" not in request.headers
        await join(ws, before=[push(1)], auth=auth)  # a push racing the connect answer
        await ws.send_str(push(2))
        await ws.send_str('42["something_else",{"seq":99}]')  # not an `event`: ignored
        await ws.send_str("2")
        assert await ws.receive_str(timeout=5) == "3"
        await ws.send_str(push(3, "sync.ready", {"seq": 3}))
        await until_closed(ws)

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, auth)
    assert sock.open and sock.ws is not None
    assert sock.ping_interval == 12.345
    await rec.wait_events(3)
    assert rec.seqs == [1, 2, 3]
    assert [e.type for e in rec.events] == ["pager.message", "pager.message", "sync.ready"]
    assert msgspec.json.decode(rec.events[2].data) == {"seq": 3}
    assert rec.closes == []
    await sock.close()
    await server.finished()
    assert rec.closes == ["client closed"]


async def test_calls_are_answered_by_their_ids_and_time_out_without_an_answer(
    server: Scripted,
) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await join(ws)
        first = await ws.receive_str(timeout=5)
        second = await ws.receive_str(timeout=5)
        assert first == '421["pager.send",{"to":[1,2],"text":"héllo"}]'
        assert second == '422["sync.ack",{"seq":5}]'
        # answered in the other order
        await ws.send_str('432[{"ok":true,"data":{"seq":5}}]')
        await ws.send_str('431[{"ok":false,"error":{"code":"forbidden","message":"no"}}]')
        third = await ws.receive_str(timeout=5)
        assert third == '423["whereabouts.set",{}]'  # never answered
        await until_closed(ws)

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {"token": "t"})
    a, b = await asyncio.gather(
        sock.call("pager.send", {"to": [1, 2], "text": "héllo"}),
        sock.call("sync.ack", {"seq": 5}),
    )
    assert (a.ok, a.code, a.error and a.error.message) == (False, "forbidden", "no")
    assert (b.ok, b.code, msgspec.json.decode(b.data)) == (True, "ok", {"seq": 5})
    c = await sock.call("whereabouts.set", {}, timeout=0.2)
    assert (c.ok, c.code) == (False, "timeout")
    await sock.close()
    await server.finished()
    assert rec.closes == ["client closed"]
    d = await sock.call("sync.ack", {"seq": 6})
    assert d.code == "disconnected"


async def test_a_refusal_raises_refused_and_never_calls_on_close(server: Scripted) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await ws.send_str(OPEN)
        assert (await ws.receive_str(timeout=5)).startswith("40")
        await ws.send_str('44{"message":"no","data":{"code":"unauthorized"}}')
        seen = await until_closed(ws)
        assert seen[-1] == (WSMsgType.CLOSE, 1000)

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    with pytest.raises(Refused) as info:
        await sock.connect(server.url, {"token": "bad"})
    assert info.value.code == "unauthorized"
    assert str(info.value) == "unauthorized: no"
    await server.finished()
    assert sock.ws is None and not sock.open
    await asyncio.sleep(0.05)
    assert rec.closes == []


async def test_a_non_websocket_answer_is_closed_with_its_status_line(server: Scripted) -> None:
    rec = Recorder()
    sock = rec.socket()
    with pytest.raises(Closed, match=r"HTTP/1\.1 404 Not Found"):
        await sock.connect(server.url.replace("/socket.io/", "/nowhere/"), {})
    with pytest.raises(Closed, match=r"HTTP/1\.1 200 OK"):
        await rec.socket().connect(server.plain_url, {})
    assert sock.ws is None and rec.closes == []


async def test_connect_times_out_and_bad_urls_are_refused(server: Scripted) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        seen = await until_closed(ws)  # never sends the open packet
        assert seen[-1][0] is WSMsgType.CLOSE

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    with pytest.raises(TimeoutError):
        await sock.connect(server.url, {}, timeout=0.2)
    await server.finished()
    assert sock.ws is None and rec.closes == []
    with pytest.raises(ValueError, match="ws:// or wss://"):
        await rec.socket().connect("http://127.0.0.1:1/socket.io/", {})


async def test_the_server_closing_the_websocket_is_transport_closed(server: Scripted) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await join(ws)
        assert (await ws.receive_str(timeout=5)).startswith('421["pager.send"')
        await ws.close()

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {})
    answer = await sock.call("pager.send", {})  # pending when the server goes
    assert answer.code == "disconnected"
    await server.finished()
    async with asyncio.timeout(5):
        await rec.closed.wait()
    assert rec.closes == ["transport closed"]
    assert sock.ws is None and not sock.open
    await sock.close()  # nothing left to do
    assert rec.closes == ["transport closed"]


@pytest.mark.parametrize("packet", ["41", "1"])
async def test_a_socketio_or_engineio_disconnect_is_server_disconnect(
    server: Scripted, packet: str
) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await join(ws)
        await ws.send_str(packet)
        seen = await until_closed(ws)
        assert seen == [(WSMsgType.CLOSE, 1000)]  # the client's goodbye, nothing else

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {})
    async with asyncio.timeout(5):
        await rec.closed.wait()
    await server.finished()
    assert rec.closes == ["server disconnect"]
    assert sock.ws is None and not sock.open


async def test_close_says_goodbye_and_calls_on_close_once(server: Scripted) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await join(ws)
        seen = await until_closed(ws)
        assert seen == [(WSMsgType.TEXT, "41"), (WSMsgType.CLOSE, 1000)]

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {})
    await sock.close()
    assert rec.closes == ["client closed"]  # already, when close() returns
    assert sock.closing and not sock.open and sock.ws is None
    await sock.close()
    sock.abort()
    await server.finished()
    await asyncio.sleep(0.05)
    assert rec.closes == ["client closed"]


async def test_abort_drops_the_line_without_a_goodbye(server: Scripted) -> None:
    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await join(ws)
        seen = await until_closed(ws)
        assert seen[-1][0] is not WSMsgType.CLOSE and len(seen) == 1

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {})
    sock.abort()
    assert sock.aborted and not sock.open
    assert (await sock.call("sync.ack", {})).code == "disconnected"
    async with asyncio.timeout(5):
        await rec.closed.wait()
    await server.finished()
    assert rec.closes == ["transport closed"]


async def test_raw_fragmented_frames_from_a_real_connection_are_reassembled(
    server: Scripted,
) -> None:
    text = push(1, data={"pad": "x" * 300}).encode()

    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        await join(ws)
        transport = request.transport
        assert transport is not None
        transport.write(server_frame(text[:10], 0x1, fin=False))
        transport.write(server_frame(b"hi", 0x9))  # a ping between the fragments
        transport.write(server_frame(text[10:200], 0x0, fin=False))
        transport.write(server_frame(text[200:], 0x0))
        msg = await ws.receive(timeout=5)
        assert (msg.type, msg.data) == (WSMsgType.PONG, b"hi")
        await until_closed(ws)

    server.script = script
    server.autoping = False  # to see the pong
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {})
    await rec.wait_events(1)
    assert msgspec.json.decode(rec.events[0].data) == {"pad": "x" * 300}
    await sock.close()
    await server.finished()


async def test_permessage_deflate_both_ways_against_aiohttp(server: Scripted) -> None:
    big = {"text": "lorem ipsum dolor sit amet " * 200}

    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        assert request.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; client_max_window_bits"
        )
        assert ws.compress == 15
        await join(ws, before=[push(1, data=big)])
        for seq in (2, 3):  # the same text again: context takeover makes it tiny
            await ws.send_str(push(seq, data=big))
        for ack in (1, 2):
            got = await ws.receive_str(timeout=5)
            assert got == f'42{ack}["note.save",' + json.dumps(big, separators=(",", ":")) + "]"
            await ws.send_str(f'43{ack}[{{"ok":true,"data":{json.dumps(big)}}}]')
        await until_closed(ws)

    server.script = script
    rec = Recorder()
    sock = rec.socket()
    await sock.connect(server.url, {}, deflate=True)
    for _ in (1, 2):
        answer = await sock.call("note.save", big)
        assert answer.ok and msgspec.json.decode(answer.data) == big
    await rec.wait_events(3)
    assert rec.seqs == [1, 2, 3]
    assert all(msgspec.json.decode(e.data) == big for e in rec.events)
    await sock.close()
    await server.finished()
    assert rec.closes == ["client closed"]


# -- byte by byte, against a fake transport ------------------------------------------------------
def server_frame(payload: bytes, opcode: int, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A server frame (unmasked), with whichever length encoding the size needs."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes((b0, n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def reference_mask(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse what the client wrote: (first byte, unmasked payload) per frame; every frame must
    be masked and complete."""
    out = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        assert b1 & 0x80, "client frames must be masked"
        n = b1 & 0x7F
        i += 2
        if n == 126:
            (n,) = struct.unpack("!H", data[i : i + 2])
            i += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", data[i : i + 8])
            i += 8
        mask = data[i : i + 4]
        i += 4
        out.append((b0, reference_mask(data[i : i + n], mask)))
        i += n
    assert i == len(data)
    return out


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.limits: tuple[int | None, int | None] = (None, None)

    def write(self, data: Any) -> None:
        assert not self.closed
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (high, low)

    def get_write_buffer_size(self) -> int:
        return 0

    def take(self) -> list[tuple[int, bytes]]:
        frames = client_frames(bytes(self.written))
        self.written.clear()
        return frames


def feed(sock: LeanSocket, data: bytes, *, by_byte: bool) -> None:
    if by_byte:
        for i in range(len(data)):
            sock.data_received(data[i : i + 1])
    else:
        sock.data_received(data)


async def fake_connect(
    monkeypatch: pytest.MonkeyPatch,
    sock: LeanSocket,
    *,
    by_byte: bool,
    extensions: str | None = None,
    deflate: bool = False,
    before: list[bytes] | None = None,
) -> FakeTransport:
    """Run connect() over a fake transport, feeding the handshake answer, the open packet and
    the connect answer (with `before` in between) one byte at a time if asked."""
    transport = FakeTransport()
    loop = asyncio.get_running_loop()

    async def create_connection(factory: Any, host: str, port: int, **kw: Any) -> Any:
        assert (host, port) == ("127.0.0.1", 9)
        protocol = factory()
        protocol.connection_made(transport)
        return transport, protocol

    monkeypatch.setattr(loop, "create_connection", create_connection)
    task = asyncio.create_task(
        sock.connect(
            "ws://127.0.0.1:9/socket.io/?EIO=4&transport=websocket", {"token": "7"}, deflate=deflate
        )
    )
    await asyncio.sleep(0)
    request = bytes(transport.written).decode()
    transport.written.clear()
    lines = request.split("\r\n")
    assert lines[0] == "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert headers["Host"] == "127.0.0.1:9"
    assert headers["Upgrade"] == "websocket" and headers["Connection"] == "Upgrade"
    assert headers["Sec-WebSocket-Version"] == "13"
    assert len(base64.b64decode(headers["Sec-WebSocket-Key"])) == 16
    assert request.endswith("\r\n\r\n")
    assert ("Sec-WebSocket-Extensions" in headers) == deflate
    accept = base64.b64encode(hashlib.sha1(headers["Sec-WebSocket-Key"].encode() + GUID).digest())
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n"
    )
    if extensions:
        answer += f"Sec-WebSocket-Extensions: {extensions}\r\n".encode()
    answer += b"\r\n" + server_frame(OPEN.encode(), 0x1)
    feed(sock, answer, by_byte=by_byte)
    sent = transport.take()
    assert len(sent) == 1 and sent[0][0] & 0x0F == 0x1
    body = sent[0][1]
    if extensions:
        assert sent[0][0] & 0x40
        body = zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff")
    assert body == b'40{"token":"7"}'
    feed(sock, b"".join(before or []) + server_frame(b'40{"sid":"y"}', 0x1), by_byte=by_byte)
    async with asyncio.timeout(1):
        await task
    return transport


@pytest.mark.parametrize("by_byte", [False, True])
async def test_the_frame_parser_handles_every_length_split_anywhere(
    monkeypatch: pytest.MonkeyPatch, by_byte: bool
) -> None:
    rec = Recorder()
    sock = rec.socket()
    transport = await fake_connect(
        monkeypatch, sock, by_byte=by_byte, before=[server_frame(push(1).encode(), 0x1)]
    )
    assert transport.limits[0] == 1 << 20
    assert sock.open and sock.ping_interval == 12.345
    medium = push(2, data={"pad": "m" * 300}).encode()  # 16-bit length
    large = push(3, data={"pad": "L" * 70_000}).encode()  # 64-bit length
    after = push(4, data={"pad": "a" * 20_000}).encode()  # split across the compaction
    fragmented = push(5, data={"pad": "f" * 1000}).encode()
    stream = (
        server_frame(b"", 0x9)  # an empty ping
        + server_frame(medium, 0x1)
        + server_frame(large, 0x1)
        + server_frame(after, 0x1)
        + server_frame(fragmented[:3], 0x1, fin=False)
        + server_frame(b"ping!", 0x9)
        + server_frame(fragmented[3:500], 0x0, fin=False)
        + server_frame(b"", 0x0, fin=False)
        + server_frame(b"pong", 0xA)  # ignored
        + server_frame(fragmented[500:], 0x0)
        + server_frame(b"\x00\x01", 0x2)  # binary: ignored
        + server_frame(b"2", 0x1)  # Engine.IO ping
        + server_frame(push(6).encode(), 0x1)
    )
    if by_byte:
        feed(sock, stream, by_byte=True)
    else:  # in uneven pieces, to also cross the buffer's compaction
        for i in range(0, len(stream), 7_001):
            sock.data_received(stream[i : i + 7_001])
    assert rec.seqs == [1, 2, 3, 4, 5, 6]
    assert msgspec.json.decode(rec.events[2].data) == {"pad": "L" * 70_000}
    assert msgspec.json.decode(rec.events[3].data) == {"pad": "a" * 20_000}
    assert msgspec.json.decode(rec.events[4].data) == {"pad": "f" * 1000}
    assert transport.take() == [(0x8A, b""), (0x8A, b"ping!"), (0x81, b"3")]
    assert sock._buf == bytearray() and sock._pos == 0  # nothing left over
    # the server's close: echoed, the line closed, on_close once
    feed(sock, server_frame(b"\x03\xe8bye", 0x8), by_byte=by_byte)
    assert transport.take() == [(0x88, b"\x03\xe8")]
    assert transport.closed and not transport.aborted
    assert rec.closes == ["transport closed"]
    sock.connection_lost(None)
    assert rec.closes == ["transport closed"]


async def test_a_masked_server_frame_is_a_transport_error(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder()
    sock = rec.socket()
    transport = await fake_connect(monkeypatch, sock, by_byte=False)
    sock.data_received(b"\x81\x82abcd" + mask_payload(b"42", b"abcd"))
    assert transport.aborted
    assert rec.closes == ["transport error: a masked frame from the server"]
    assert rec.events == []


@pytest.mark.parametrize("by_byte", [False, True])
async def test_deflate_without_context_takeover(
    monkeypatch: pytest.MonkeyPatch, by_byte: bool
) -> None:
    rec = Recorder()
    sock = rec.socket()
    transport = await fake_connect(
        monkeypatch,
        sock,
        by_byte=by_byte,
        deflate=True,
        extensions=(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "client_max_window_bits=10"
        ),
    )

    def deflated(text: bytes) -> bytes:  # a fresh context per message, as the server said
        c = zlib.compressobj(wbits=-15)
        body = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
        assert body.endswith(b"\x00\x00\xff\xff")
        return server_frame(body[:-4], 0x1, rsv1=True)

    pushes = [push(1, data={"t": "same " * 50}), push(2, data={"t": "same " * 50})]
    first = deflated(pushes[0].encode())
    compressed_fragments = server_frame(first[2:10], 0x1, fin=False, rsv1=True) + server_frame(
        first[10:], 0x0
    )
    assert first[1] < 126
    feed(sock, compressed_fragments + deflated(pushes[1].encode()), by_byte=by_byte)
    assert rec.seqs == [1, 2]
    call = asyncio.create_task(sock.call("note.save", {"t": "again " * 50}))
    call2 = asyncio.create_task(sock.call("note.save", {"t": "again " * 50}))
    await asyncio.sleep(0)
    frames = transport.take()
    assert len(frames) == 2
    texts = []
    for b0, body in frames:
        assert b0 == 0xC1  # FIN, RSV1, text
        # a fresh decompressor each: the client kept no context, as the server asked
        texts.append(zlib.decompressobj(-10).decompress(body + b"\x00\x00\xff\xff"))
    assert texts == [
        b'421["note.save",{"t":"' + b"again " * 50 + b'"}]',
        b'422["note.save",{"t":"' + b"again " * 50 + b'"}]',
    ]
    feed(
        sock, deflated(b'431[{"ok":true}]') + server_frame(b'432[{"ok":true}]', 0x1), by_byte=False
    )
    assert [a.ok for a in await asyncio.gather(call, call2)] == [True, True]


async def test_a_handshake_with_the_wrong_accept_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport()
    loop = asyncio.get_running_loop()

    async def create_connection(factory: Any, host: str, port: int, **kw: Any) -> Any:
        protocol = factory()
        protocol.connection_made(transport)
        return transport, protocol

    monkeypatch.setattr(loop, "create_connection", create_connection)
    rec = Recorder()
    sock = rec.socket()
    task = asyncio.create_task(sock.connect("ws://127.0.0.1:9/socket.io/", {}))
    await asyncio.sleep(0)
    sock.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        b"Sec-WebSocket-Accept: " + base64.b64encode(os.urandom(20)) + b"\r\n\r\n"
    )
    with pytest.raises(Closed, match="wrong Sec-WebSocket-Accept"):
        await task
    assert transport.aborted and sock.ws is None and rec.closes == []


async def test_calls_wait_while_the_transport_is_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder()
    sock = rec.socket()
    transport = await fake_connect(monkeypatch, sock, by_byte=False)
    sock.pause_writing()
    call = asyncio.create_task(sock.call("sync.ack", {"seq": 1}))
    assert not sock.signal("sync.ack", {"seq": 1})  # a signal is not queued: the next one goes
    await asyncio.sleep(0.01)
    assert transport.take() == []
    sock.resume_writing()
    await asyncio.sleep(0.01)
    assert transport.take() == [(0x81, b'421["sync.ack",{"seq":1}]')]
    sock.data_received(server_frame(b'431[{"ok":true,"data":{"seq":1}}]', 0x1))
    answer = await call
    assert answer.ok and msgspec.json.decode(answer.data) == {"seq": 1}
    assert sock.signal("sync.ack", {"seq": 2})  # no acknowledgement id, nothing to wait for
    assert transport.take() == [(0x81, b'42["sync.ack",{"seq":2}]')]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 125, 126, 127, 65535, 65536, 70_001])
def test_masking_and_frame_lengths_match_a_reference(n: int) -> None:
    data = os.urandom(n)
    mask = os.urandom(4)
    assert mask_payload(data, mask) == reference_mask(data, mask)
    assert mask_payload(mask_payload(data, mask), mask) == data
    frame = encode_frame(0x1, data, mask=mask)
    assert frame[0] == 0x81
    if n < 126:
        assert frame[1] == 0x80 | n and frame[2:6] == mask
    elif n < 65536:
        assert frame[1] == 0xFE and frame[2:4] == n.to_bytes(2, "big") and frame[4:8] == mask
    else:
        assert frame[1] == 0xFF and frame[2:10] == n.to_bytes(8, "big") and frame[10:14] == mask
    assert client_frames(frame) == [(0x81, data)]
    masks = {encode_frame(0x1, b"abcd")[2:6] for _ in range(8)}
    assert len(masks) > 1  # a fresh random mask per frame


async def test_an_ack_not_written_is_sent_again() -> None:
    """The generator's `sync.ack` goes without an acknowledgement; when the socket refuses it
    (the server is not reading), the worker tries again rather than leave the stream unacked."""

    class Refusing:
        open = True

        def __init__(self) -> None:
            self.answers = [False, True]
            self.sent: list[tuple[str, Any]] = []

        def signal(self, name: str, payload: Any) -> bool:
            self.sent.append((name, payload))
            return self.answers.pop(0)

    spec = WorkerSpec(
        index=0,
        base_url="http://127.0.0.1:1",
        password="x",
        t0=0.0,
        deadline=0.0,
        people=[(0, "a", 1, 1)],
    )
    worker = Worker(spec, lambda _: None, lambda _: None)
    u = worker.users[0]
    sock = Refusing()
    u.sock = sock  # type: ignore[assignment]
    assert u.checker.on_event(1) == "ok"
    worker._send_ack(u)
    assert u.acked == 0 and u.ack_handle is not None
    await asyncio.sleep(ACK_EVERY_S + 0.1)
    assert sock.sent == [("sync.ack", {"seq": 1})] * 2
    sent = sum(b.counts.get("sent.sync.ack", 0) for b in worker.rec.buckets.values())
    assert u.acked == 1 and sent == 1
