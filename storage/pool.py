"""The asyncpg pool, with jsonb carried as msgspec-encoded bytes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias, TypeVar

import asyncpg
import msgspec

# Queries that need no transaction of their own take either a pool or a connection.
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

_encode = msgspec.json.encode
_decode = msgspec.json.decode
log = logging.getLogger(__name__)
T = TypeVar("T")

# The transaction was rolled back by PostgreSQL and did nothing: run it again as it is.
_ROLLED_BACK = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
# The connection went (a restart, pg_terminate_backend, a network cut, the server refusing new
# connections for a moment): a transaction in flight was rolled back, unless its COMMIT had
# already reached the server, which the client cannot know.
_LOST = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed", a connection lost meanwhile
    OSError,  # refused, reset, unreachable
)


async def ping(db: Executor) -> None:
    """A round trip to the database (readiness)."""
    await db.fetchval("SELECT 1")


def transient(exc: BaseException) -> Literal["rolled_back", "lost"] | None:
    """Whether a database failure is passing: "rolled_back" (nothing happened; safe to run the
    transaction again), "lost" (the connection went; a retry is safe only for work that is
    idempotent), or None (a real error)."""
    if isinstance(exc, _ROLLED_BACK):
        return "rolled_back"
    if isinstance(exc, _LOST):
        return "lost"
    return None


async def retrying(
    work: Callable[[], Awaitable[T]], what: str, *, attempts: int = 5, lost_too: bool = True
) -> T:
    """Run `work` (one transaction), again after a deadlock or serialization failure and, with
    `lost_too` (work that is idempotent), after a lost connection, with capped exponential
    backoff and jitter; the last failure is raised."""
    for attempt in range(attempts):
        try:
            return await work()
        except Exception as exc:
            kind = transient(exc)
            if kind is None or (kind == "lost" and not lost_too) or attempt == attempts - 1:
                raise
            delay = min(1.0, 0.02 * 2**attempt) * (0.5 + random.random())
            log.warning("%s: %s (%s), retrying in %.2f s", what, kind, type(exc).__name__, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


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
