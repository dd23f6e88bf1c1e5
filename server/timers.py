"""Durable timers: a row in `timers` fires once at its due time, in its own transaction, even if
the process restarted in between. Handler modules declare what a kind of timer does."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg
import msgspec

from server.stream import Stream, Transaction, utcnow
from server.worker import POLL_S, Worker
from storage.pool import Params

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

TimerHandler = Callable[["Services", Transaction, dict[str, Any]], Awaitable[None]]
MAX_ATTEMPTS = 8


class TimerSet:
    """What one handler module declares: `timers = TimerSet()`, then `@timers("kind")`."""

    def __init__(self) -> None:
        self.handlers: dict[str, TimerHandler] = {}

    def __call__(self, kind: str) -> Callable[[TimerHandler], TimerHandler]:
        def register(fn: TimerHandler) -> TimerHandler:
            self.handlers[kind] = fn
            return fn

        return register


class Due(NamedTuple):
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]


async def schedule(
    conn: asyncpg.Connection, kind: str, key: str, due_at: datetime, payload: dict[str, Any]
) -> None:
    """Set (or move) the timer `kind/key`; part of the caller's transaction."""
    await schedule_many(conn, [Due(kind, key, due_at, payload)])


async def schedule_many(conn: asyncpg.Connection, timers: Sequence[Due]) -> None:
    """`schedule` for several timers in one statement (a timer named twice: the last wins)."""
    p = Params(1)
    await conn.execute(upsert_sql(p, timers), *p.args)


def upsert_sql(p: Params, timers: Sequence[Due]) -> str:
    """The statement of `schedule_many`, to run alone or as a CTE of a larger one."""
    last = list({(t.kind, t.key): t for t in timers}.values())
    return (
        "INSERT INTO timers (kind, key, due_at, payload) SELECT * FROM unnest("
        f"{p([t.kind for t in last], 'text[]')}, {p([t.key for t in last], 'text[]')},"
        f" {p([t.due_at for t in last], 'timestamptz[]')},"
        f" {p([msgspec.json.encode(t.payload) for t in last], 'jsonb[]')})"
        " ON CONFLICT (kind, key) DO UPDATE SET due_at = EXCLUDED.due_at,"
        " payload = EXCLUDED.payload, attempts = 0"
    )


def per_user_sql(p: Params, kind: str, user_ids: list[int], due_at: datetime) -> str:
    """One timer per user (key = the user id, payload {user_id}), as a CTE of a larger
    statement; a user whose timer of this kind is already pending keeps it, since the earlier
    one covers this too."""
    return (
        f"INSERT INTO timers (kind, key, due_at, payload) SELECT {p(kind, 'text')}, u::text,"
        f" {p(due_at, 'timestamptz')}, jsonb_build_object('user_id', u)"
        f" FROM unnest({p(user_ids, 'bigint[]')}) AS u ON CONFLICT (kind, key) DO NOTHING"
    )


async def cancel(conn: asyncpg.Connection, kind: str, key: str) -> None:
    await conn.execute("DELETE FROM timers WHERE kind = $1 AND key = $2", kind, key)


class Timers(Worker):
    name = "timers"

    def __init__(self, stream: Stream, sets: list[TimerSet]) -> None:
        super().__init__()
        self.stream = stream
        self.handlers: dict[str, TimerHandler] = {}
        for s in sets:
            self.handlers.update(s.handlers)

    async def until_next(self) -> float:
        due = await self.stream.pool.fetchval("SELECT min(due_at) FROM timers")
        if due is None:
            return POLL_S
        return max(0.0, min(POLL_S, (due - utcnow()).total_seconds()))

    async def work_one(self, services: Services) -> bool:
        row = None
        try:
            async with self.stream.transaction() as tx:
                row = await tx.conn.fetchrow(
                    "SELECT id, kind, payload, attempts FROM timers WHERE due_at <= now()"
                    " ORDER BY due_at FOR UPDATE SKIP LOCKED LIMIT 1"
                )
                if row is None:
                    return False
                await tx.conn.execute("DELETE FROM timers WHERE id = $1", row["id"])
                handler = self.handlers.get(row["kind"])
                if handler is None:
                    log.error("no handler for timer kind %s; dropped", row["kind"])
                else:
                    await handler(services, tx, row["payload"])
            return True
        except Exception:
            if row is None:
                raise
            log.exception("timer %s (%s) failed", row["id"], row["kind"])
            await self._retry_later(row["id"], row["attempts"])
            return True

    async def _retry_later(self, timer_id: int, attempts: int) -> None:
        if attempts + 1 >= MAX_ATTEMPTS:
            log.error("timer %s given up after %d attempts", timer_id, attempts + 1)
            await self.stream.pool.execute("DELETE FROM timers WHERE id = $1", timer_id)
            return
        backoff = timedelta(seconds=min(300, 2 ** (attempts + 1)))
        await self.stream.pool.execute(
            "UPDATE timers SET attempts = attempts + 1, due_at = now() + $2 WHERE id = $1",
            timer_id,
            backoff,
        )
