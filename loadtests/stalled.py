"""A client that signs in over Socket.IO and then stops reading, as a stalled mobile link does:
the fault the server must survive without slowing anyone else (issue 16, item 1)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from urllib.parse import urlsplit

import msgspec

from loadtests.client import encode_frame

_TEXT = 0x1


class StalledSocket:
    """A websocket that completed the Socket.IO handshake, then never reads again. Its receive
    window is made small so that what the server sends piles up on the server's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str, token: str, *, rcvbuf: int = 4096) -> StalledSocket:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"upgrade refused: {head[:100]!r}")
        self = cls(reader, writer)
        await self._read_message()  # Engine.IO OPEN
        auth = msgspec.json.encode({"token": token}).decode()
        writer.write(encode_frame(_TEXT, f"40{auth}".encode()))
        connected = await self._read_message()
        if not connected.startswith("40"):
            raise ConnectionError(f"connect refused: {connected[:200]}")
        return self

    async def _read_message(self) -> str:
        _, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return (await self.reader.readexactly(n)).decode()

    def stall(self) -> None:
        """Stop reading: the kernel's buffers fill, then the server's."""
        transport = self.writer.transport
        transport.pause_reading()  # type: ignore[attr-defined]

    async def was_cut(self, timeout: float) -> bool:
        """Read again: True once the server has closed the connection (everything it had sent
        drained first), False if it is still open after `timeout`."""
        self.writer.transport.resume_reading()  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                chunk = await asyncio.wait_for(
                    self.reader.read(1 << 16), max(0.01, deadline - loop.time())
                )
            except TimeoutError:
                return False
            except ConnectionError:
                return True
            if not chunk:
                return True
        return False

    def close(self) -> None:
        self.writer.transport.abort()
