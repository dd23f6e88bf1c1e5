"""A lean Socket.IO v5 / Engine.IO v4 client over one hand-rolled websocket.

python-socketio's client is far too heavy for ten thousand users in one process, and so is
aiohttp's `ws_connect` (about 1.5 ms of CPU per connection); this speaks just what a Liaison tab
needs: the WebSocket handshake and frames (RFC 6455, with permessage-deflate, RFC 7692) on a plain
asyncio connection, the Engine.IO open packet, connect with `auth`, server pings, `event` pushes,
and commands with acknowledgements. Everything is driven from `data_received`: no task and no
timer per connection."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import ipaddress
import os
import random
import socket
import ssl
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

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


# -- WebSocket framing (RFC 6455 section 5) ------------------------------------------------------
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FIN, _RSV1 = 0x80, 0x40
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_MAX_HEAD = 64 * 1024  # a handshake response larger than this is not a websocket server's
_HIGH_WATER = 1 << 20  # write buffer above which `call` waits (pause_writing/resume_writing)
_LINGER_S = 1.0  # how long a goodbye waits for the server's close before dropping the line
_COMPACT_AT = 64 * 1024  # consumed bytes at the front of the read buffer before it is compacted
_CLOSE_NORMAL = b"\x03\xe8"  # status 1000

_rng = random.Random()  # masks need not be secret from a load generator's own server
_getrandbits = _rng.getrandbits


def mask_payload(data: bytes | bytearray, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated (RFC 6455 5.3), as one big-integer operation:
    many times faster in CPython than a loop over the bytes."""
    n = len(data)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(
    opcode: int, payload: bytes, *, rsv1: bool = False, mask: bytes | None = None
) -> bytes:
    """One complete (FIN) client frame, masked."""
    if mask is None:
        mask = _getrandbits(32).to_bytes(4, "little")
    n = len(payload)
    b0 = _FIN | opcode | (_RSV1 if rsv1 else 0)
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0xFE, n)
    else:
        head = struct.pack("!BBQ", b0, 0xFF, n)
    return head + mask + mask_payload(payload, mask)


class _Target(msgspec.Struct, frozen=True):
    host: str
    port: int
    tls: bool
    request_head: bytes  # the request up to the key header


@functools.lru_cache(maxsize=32)
def _target(url: str, deflate: bool) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in {url!r}")
    tls = parts.scheme == "wss"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        + (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            if deflate
            else ""
        )
    )
    return _Target(host, port, tls, head.encode("latin-1"))


_RESOLVE_TTL_S = 10.0  # like aiohttp's DNS cache
_resolved: dict[tuple[str, int], tuple[float, str]] = {}
_resolving: dict[tuple[str, int], asyncio.Task[str]] = {}


@functools.lru_cache(maxsize=32)
def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int) -> str:
    """One address for `host`, cached for a few seconds and looked up once however many
    connections ask at the same time: ten thousand connections must not mean ten thousand
    getaddrinfo calls in the executor."""
    if _is_address(host):
        return host
    key = (host, port)
    hit = _resolved.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    task = _resolving.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(_lookup(host, port))
        _resolving[key] = task
        task.add_done_callback(lambda t: _resolving.pop(key) if _resolving.get(key) is t else None)
    return await asyncio.shield(task)


async def _lookup(host: str, port: int) -> str:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    address = str(infos[0][4][0])
    _resolved[(host, port)] = (time.monotonic() + _RESOLVE_TTL_S, address)
    return address


_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


# connection states
_HTTP, _OPENING, _JOINING, _LIVE, _DONE = range(5)
# permessage-deflate flags
_Z_ON, _Z_SERVER_RESET, _Z_CLIENT_RESET = 1, 2, 4


class LeanSocket(asyncio.Protocol):
    """One tab's connection. `on_event(envelope, arrived_at)` runs for every push;
    `on_close(socket, reason)` once when a connection that `connect` opened ends, whoever
    ended it.

    The socket is its own asyncio protocol: the transport calls `data_received`, which parses
    frames out of one buffer and handles the Engine.IO/Socket.IO packets in them right there."""

    __slots__ = (
        "_acks",
        "_auth",
        "_buf",
        "_close_sent",
        "_deflater",
        "_drain",
        "_frag",
        "_frag_head",
        "_gone",
        "_inflater",
        "_key",
        "_last_id",
        "_linger",
        "_lost",
        "_on_close",
        "_on_event",
        "_pos",
        "_state",
        "_transport",
        "_waiter",
        "_wbits",
        "_zflags",
        "aborted",
        "closing",
        "ping_interval",
        "ws",
    )

    def __init__(self, on_event: OnEvent, on_close: OnClose) -> None:
        self._on_event = on_event
        self._on_close = on_close
        self._acks: dict[int, asyncio.Future[Answer]] = {}
        self._last_id = 0
        self._transport: asyncio.Transport | None = None
        self._state = _HTTP
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already parsed
        self._frag: bytearray | None = None  # a fragmented message being reassembled
        self._frag_head = 0  # the first byte of its first frame
        self._waiter: asyncio.Future[None] | None = None  # connect's
        self._auth: bytes | None = None
        self._key: bytes | None = None  # the Sec-WebSocket-Accept expected
        self._zflags = 0
        self._wbits = 15
        self._inflater: Any = None  # zlib objects, made on first use
        self._deflater: Any = None
        self._close_sent = False
        self._linger: asyncio.TimerHandle | None = None
        self._lost = False
        self._gone: asyncio.Future[None] | None = None  # close()'s wait for connection_lost
        self._drain: asyncio.Future[None] | None = None  # set while the transport is paused
        # The transport while this connection is on (set during connect, None again after a
        # failed connect or once the connection has ended).
        self.ws: asyncio.Transport | None = None
        self.closing = False
        self.aborted = False
        self.ping_interval = 25.0

    @property
    def open(self) -> bool:
        return (
            self._state == _LIVE and not self.closing and not self._close_sent and not self.aborted
        )

    # -- connecting --------------------------------------------------------------------------
    async def connect(
        self,
        url: str,
        auth: dict[str, Any],
        *,
        timeout: float = 20.0,
        deflate: bool = False,
    ) -> None:
        """Open the websocket and the namespace; raises Refused, Closed or TimeoutError (and
        OSError when the TCP connection cannot be made; ValueError for a URL that is not
        ws:// or wss://)."""
        target = _target(url, deflate)
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._auth = _encode(auth)
        key = base64.b64encode(os.urandom(16))
        self._key = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self._zflags = _Z_ON if deflate else 0  # offered; the answer decides
        try:
            async with asyncio.timeout(timeout):
                address = await _resolve(target.host, target.port)
                if target.tls:
                    await loop.create_connection(
                        lambda: self,
                        address,
                        target.port,
                        ssl=_tls(),
                        server_hostname=target.host,
                    )
                else:
                    await loop.create_connection(lambda: self, address, target.port)
                transport = self._transport
                assert transport is not None
                transport.write(target.request_head + b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
                await waiter
        except BaseException:
            self._abandon()
            raise
        finally:
            self._waiter = None
            self._auth = None
            self._key = None

    def _abandon(self) -> None:
        """A connect that did not complete: close the line, never call on_close."""
        state = self._state
        self._state = _DONE
        self.ws = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if state in (_OPENING, _JOINING, _LIVE):
                self._send_close(transport)
            transport.close()

    def _fail_connect(self, exc: Exception, polite: bool = False) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if polite:  # after the handshake: say goodbye, then close once it is written
                self._send_close(transport)
                transport.close()
            else:
                transport.abort()
        self._state = _DONE

    def _handshake(self, data: bytes) -> bytes | None:
        """Collect the HTTP answer to the upgrade; returns the bytes after it once complete."""
        buf = self._buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                self._fail_connect(Closed("websocket handshake: response header too long"))
            return None
        head = buf[:end].decode("latin-1")
        rest = bytes(buf[end + 4 :])
        buf.clear()
        lines = head.split("\r\n")
        status = lines[0]
        parts = status.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101" or not parts[0].startswith("HTTP/1."):
            self._fail_connect(Closed(f"websocket handshake refused: {status}"))
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        problem = None
        if headers.get("upgrade", "").lower() != "websocket":
            problem = "no Upgrade: websocket"
        elif self._key is None or headers.get("sec-websocket-accept", "").encode() != self._key:
            problem = "wrong Sec-WebSocket-Accept"
        else:
            problem = self._negotiate(headers.get("sec-websocket-extensions", ""))
        if problem is not None:
            self._fail_connect(Closed(f"websocket handshake: {problem} ({status})"))
            return None
        self._state = _OPENING
        return rest

    def _negotiate(self, extensions: str) -> str | None:
        """Take the server's permessage-deflate parameters; a problem's description or None."""
        offered = self._zflags & _Z_ON
        self._zflags = 0
        ext = [e.strip() for e in extensions.split(",") if e.strip()]
        if not ext:
            return None
        if not offered or len(ext) > 1:
            return f"unrequested extension {extensions!r}"
        params = [p.strip() for p in ext[0].split(";")]
        if params[0].lower() != "permessage-deflate":
            return f"unrequested extension {extensions!r}"
        flags, wbits = _Z_ON, 15
        for p in params[1:]:
            name, _, value = p.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name == "server_no_context_takeover":
                flags |= _Z_SERVER_RESET
            elif name == "client_no_context_takeover":
                flags |= _Z_CLIENT_RESET
            elif name in ("server_max_window_bits", "client_max_window_bits"):
                try:
                    bits = int(value) if value else 15
                except ValueError:
                    return f"bad {name} in {extensions!r}"
                if not 8 <= bits <= 15:
                    return f"bad {name} in {extensions!r}"
                if name == "client_max_window_bits":
                    if bits < 9:  # zlib cannot compress with a 256-byte window
                        return f"unsupported {p}"
                    wbits = bits
            else:
                return f"unknown deflate parameter {p!r}"
        self._zflags, self._wbits = flags, wbits
        return None

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)
        t.set_write_buffer_limits(high=_HIGH_WATER)
        self._transport = t
        self.ws = t

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        state = self._state
        if state < _LIVE:
            self._fail_connect(Closed("connection ended during connect"))
        elif state == _LIVE:
            self._finish(
                "transport closed" if exc is None else f"transport error: {type(exc).__name__}"
            )
        self._state = _DONE
        self._inflater = self._deflater = self._frag = None
        self._buf = bytearray()
        for fut in (self._drain, self._gone):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._drain = None

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        fut, self._drain = self._drain, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._state == _HTTP:
            rest = self._handshake(data)
            if not rest:
                return
            data = rest
        transport = self._transport
        assert transport is not None
        buf = self._buf
        if buf:
            buf += data
            view: bytes | memoryview = memoryview(buf)
            pos = self._pos
        else:
            view = data
            pos = 0
        end = len(view)
        try:
            while end - pos >= 2 and not transport.is_closing():
                b1 = view[pos + 1]
                if b1 & 0x80:
                    self._fail("a masked frame from the server")
                    return
                n = b1 & 0x7F
                start = pos + 2
                if n >= 126:
                    if n == 126:
                        if end - pos < 4:
                            break
                        n = (view[pos + 2] << 8) | view[pos + 3]
                        start = pos + 4
                    else:
                        if end - pos < 10:
                            break
                        n = int.from_bytes(view[pos + 2 : pos + 10], "big")
                        start = pos + 10
                stop = start + n
                if stop > end:
                    break
                b0 = view[pos]
                pos = stop
                self._frame(b0, bytes(view[start:stop]))
        finally:
            if buf:
                if isinstance(view, memoryview):
                    view.release()
                if pos >= len(buf):
                    buf.clear()
                    self._pos = 0
                elif pos >= _COMPACT_AT and pos * 2 >= len(buf):
                    del buf[:pos]
                    self._pos = 0
                else:
                    self._pos = pos
            elif pos < end and not self._lost:
                self._buf += data[pos:]
                self._pos = 0

    # -- frames and messages -----------------------------------------------------------------
    def _frame(self, b0: int, payload: bytes) -> None:
        op = b0 & 0x0F
        if op >= OP_CLOSE:
            if not b0 & _FIN or len(payload) > 125 or b0 & 0x70:
                self._fail("a bad control frame")
            elif op == OP_CLOSE:
                self._closed_by_server(payload)
            elif op == OP_PING:
                self._write(encode_frame(OP_PONG, payload))
            elif op != OP_PONG:
                self._fail(f"unknown opcode {op}")
            return
        if b0 & 0x30 or (b0 & _RSV1 and not self._zflags):
            self._fail("reserved bits set")
            return
        if op == OP_CONT:
            frag = self._frag
            if frag is None:
                self._fail("a continuation frame outside a message")
                return
            frag += payload
            if not b0 & _FIN:
                return
            b0 = self._frag_head
            op = b0 & 0x0F
            payload = bytes(frag)
            self._frag = None
        elif op == OP_TEXT or op == OP_BINARY:
            if self._frag is not None:
                self._fail("a new message inside a fragmented one")
                return
            if not b0 & _FIN:
                self._frag = bytearray(payload)
                self._frag_head = b0
                return
        else:
            self._fail(f"unknown opcode {op}")
            return
        if b0 & _RSV1:
            payload = self._inflate(payload)
        if op == OP_TEXT:
            self._message(payload)
        # binary messages carry nothing a Liaison tab listens to

    def _inflate(self, payload: bytes) -> bytes:
        d = self._inflater
        if d is None:
            d = self._inflater = zlib.decompressobj(-15)
        out: bytes = d.decompress(payload + _DEFLATE_TAIL)
        if self._zflags & _Z_SERVER_RESET:
            self._inflater = None
        return out

    def _message(self, data: bytes) -> None:
        state = self._state
        if state == _LIVE:
            head = data[:2]
            if head == b"42":
                self._dispatch(data, time.monotonic())
            elif head == b"43":
                self._answer(data)
            elif data == b"2":
                self._send(b"3")
            elif head == b"41" or data[:1] == b"1":
                self._finish("server disconnect")
                self._goodbye()
        elif state == _JOINING:
            head = data[:2]
            if data == b"2":
                self._send(b"3")
            elif head == b"40":
                self._state = _LIVE
                waiter = self._waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif head == b"44":
                try:
                    refusal = _refusal_decoder.decode(data[2:])
                except (msgspec.ValidationError, msgspec.DecodeError):
                    refusal = _ConnectError(message=data[2:200].decode(errors="replace"))
                code = str((refusal.data or {}).get("code", "refused"))
                self._fail_connect(Refused(code, refusal.message), polite=True)
            elif head == b"42":
                # A push racing the connect answer: keep it, in order.
                self._dispatch(data, time.monotonic())
            elif head == b"41" or data[:1] == b"1":
                self._fail_connect(Closed("server disconnect during connect"), polite=True)
        elif state == _OPENING:
            try:
                if data[:1] != b"0":
                    raise ValueError
                self.ping_interval = _open_decoder.decode(data[1:]).pingInterval / 1000
            except (ValueError, msgspec.ValidationError, msgspec.DecodeError):
                text = data[:40].decode(errors="replace")
                self._fail_connect(
                    Closed(f"expected the Engine.IO open packet, got {text!r}"), polite=True
                )
                return
            self._state = _JOINING
            self._send(b"40" + (self._auth or b"{}"))
            self._auth = None

    def _dispatch(self, data: bytes, arrived: float) -> None:
        try:
            name, env = _event_decoder.decode(data[2:])
        except (msgspec.ValidationError, msgspec.DecodeError):
            return  # not an `event` push: nothing a Liaison client listens to
        if name == "event":
            self._on_event(env, arrived)

    def _answer(self, data: bytes) -> None:
        i = 2
        n = len(data)
        while i < n and 48 <= data[i] <= 57:
            i += 1
        fut = self._acks.pop(int(data[2:i]), None) if i > 2 else None
        if fut is None or fut.done():
            return
        try:
            answers = _ack_decoder.decode(data[i:])
            fut.set_result(answers[0] if answers else Answer(ok=True))
        except (msgspec.ValidationError, msgspec.DecodeError, IndexError) as exc:
            fut.set_result(Answer(ok=False, error=ErrorBody("bad_answer", repr(exc))))

    # -- writing -----------------------------------------------------------------------------
    def _write(self, frame: bytes) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing() or self._close_sent:
            return False
        transport.write(frame)
        return True

    def _send(self, text: bytes) -> bool:
        """One text message, compressed when permessage-deflate is on."""
        flags = self._zflags
        if not flags:
            return self._write(encode_frame(OP_TEXT, text))
        c = self._deflater
        if c is None:
            c = self._deflater = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._wbits
            )
        body: bytes = c.compress(text) + c.flush(
            zlib.Z_FULL_FLUSH if flags & _Z_CLIENT_RESET else zlib.Z_SYNC_FLUSH
        )
        if body.endswith(_DEFLATE_TAIL):
            body = body[:-4]
        return self._write(encode_frame(OP_TEXT, body, rsv1=True))

    def _send_close(self, transport: asyncio.Transport, code: bytes = _CLOSE_NORMAL) -> None:
        """Our close frame, once."""
        if not self._close_sent and not transport.is_closing():
            transport.write(encode_frame(OP_CLOSE, code))
        self._close_sent = True

    def _abort_later(self, transport: asyncio.Transport) -> None:
        """Drop the line if it has not ended within _LINGER_S (a server that does not answer
        our close, a write buffer that never drains)."""
        if self._linger is None and not self._lost:
            self._linger = asyncio.get_running_loop().call_later(_LINGER_S, transport.abort)

    def _goodbye(self) -> None:
        """Send the close frame (once) and drop the line if the server does not answer."""
        transport = self._transport
        if transport is None or self._lost:
            return
        self._send_close(transport)
        self._abort_later(transport)

    def _closed_by_server(self, payload: bytes) -> None:
        transport = self._transport
        assert transport is not None
        self._send_close(transport, payload[:2])
        if self._state < _LIVE:
            self._fail_connect(Closed("connection ended during connect (CLOSE)"), polite=True)
            return
        self._finish("transport closed")
        transport.close()
        self._abort_later(transport)

    def _fail(self, problem: str) -> None:
        """A protocol error: drop the connection."""
        if self._state < _LIVE:
            self._fail_connect(Closed(f"websocket protocol error: {problem}"))
            return
        transport = self._transport
        if transport is not None:
            transport.abort()
        self._finish(f"transport error: {problem}")

    def _finish(self, reason: str) -> None:
        if self._state != _LIVE:
            return
        self._state = _DONE
        self.ws = None
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(Closed(reason))
        self._acks.clear()
        self._on_close(self, "client closed" if self.closing else reason)

    # -- the API -----------------------------------------------------------------------------
    async def call(self, name: str, payload: Any, timeout: float = 10.0) -> Answer:
        """A command with its acknowledgement; never raises: failures come back as envelopes
        with the codes `timeout` or `disconnected`."""
        if self._state != _LIVE or self.closing or self._close_sent or self.aborted:
            return closed_answer(name)
        if self._drain is not None:  # the server is not reading: wait like a browser would
            await asyncio.shield(self._drain)
            if self._state != _LIVE or self._close_sent:
                return closed_answer(name)
        self._last_id = ack = self._last_id + 1
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Answer] = loop.create_future()
        self._acks[ack] = fut
        timer = loop.call_later(timeout, _expire, fut, name)
        try:
            if not self._send(b"42%d" % ack + _encode([name, payload])):
                return closed_answer(name)
            return await fut
        except Closed:
            return closed_answer(name)
        finally:
            timer.cancel()
            self._acks.pop(ack, None)

    def signal(self, name: str, payload: Any) -> bool:
        """A command sent without asking for an acknowledgement, as the web client sends
        `sync.ack`; False when it could not be written (closed, or the server is not reading)."""
        if self._state != _LIVE or self.closing or self._drain is not None:
            return False
        return self._send(b"42" + _encode([name, payload]))

    async def close(self) -> None:
        """A clean goodbye (Socket.IO disconnect, then the websocket close); returns once the
        connection has ended (on_close has run), at the latest about a second later."""
        self.closing = True
        transport = self._transport
        if self.ws is None or transport is None:
            return
        if not self._close_sent and not transport.is_closing():
            self._send(b"41")
            self._goodbye()
        else:
            self._abort_later(transport)
        if not self._lost:
            if self._gone is None:
                self._gone = asyncio.get_running_loop().create_future()
            await self._gone

    def abort(self) -> None:
        """Drop the connection the way a network does: no goodbye."""
        transport = self._transport
        if self.ws is None or transport is None:
            return
        self.aborted = True
        transport.abort()


def _expire(fut: asyncio.Future[Answer], name: str) -> None:
    if not fut.done():
        fut.set_result(timeout_answer(name))
