"""The asyncpg pool, with jsonb carried as msgspec-encoded bytes."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import msgspec

# Queries that need no transaction of their own take either a pool or a connection.
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

_encode = msgspec.json.encode
_decode = msgspec.json.decode


class Params:
    """Parameters for SQL written in pieces: `p(value, "bigint[]")` appends the value and returns
    its placeholder, numbered on from the statement's own (`first`)."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.args: list[Any] = []

    def __call__(self, value: Any, cast: str) -> str:
        self.args.append(value)
        return f"${self.first + len(self.args) - 1}::{cast}"


def _jsonb_encode(value: object) -> bytes:
    # jsonb's binary format is a version byte and the JSON text; pre-encoded bytes pass as is.
    return b"\x01" + (value if isinstance(value, bytes | bytearray) else _encode(value))


def _jsonb_decode(data: bytes) -> object:
    return _decode(data[1:])


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_encode, decoder=_jsonb_decode, format="binary"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections keep their session as it is. asyncpg's default reset sends
    `RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()` on every release: a round trip
    that was 9% of the server's time under load. Nothing here changes session state (no SET,
    no LISTEN, cursors end with their transaction, the one advisory lock, the migrations', is
    released in a `finally`), and asyncpg still rolls back a transaction left open."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init,
        reset=_keep_session,
        command_timeout=60,
    )
    assert pool is not None
    return pool
