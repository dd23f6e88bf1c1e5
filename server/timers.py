"""Durable timers: a row in `timers` fires once at its due time, even if the process restarted in
between. Handler modules declare what a kind of timer does, for a list of timers at once: due
timers are fired in batches, one transaction each (every page sets a timer, so a server paging
hundreds a second fires hundreds a second a minute later)."""

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

# Does what the timers of one kind are for, given their payloads (due order); part of the
# transaction that deletes them.
TimerHandler = Callable[["Services", Transaction, list[dict[str, Any]]], Awaitable[None]]
MAX_ATTEMPTS = 8
BATCH = 100  # timers fired per transaction
# A timer fires up to this long after its due time, so timers falling due close together (a
# page's SMS grace timer a minute after each page) are fired together, not one by one.
GATHER_S = 0.1

# Due timers no other worker holds, taken (deleted) by the transaction that fires them.
_TAKE_DUE = """
DELETE FROM timers WHERE id IN (
    SELECT id FROM timers WHERE due_at <= now() ORDER BY due_at FOR UPDATE SKIP LOCKED LIMIT $1
) RETURNING id, kind, payload, attempts, due_at
"""
_TAKE_ONE = """
DELETE FROM timers WHERE id = (SELECT id FROM timers WHERE id = $1 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, payload, attempts, due_at
"""


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
        return max(0.0, min(POLL_S, (due - utcnow()).total_seconds() + GATHER_S))

    async def work_one(self, services: Services) -> bool:
        """Fire up to BATCH due timers in one transaction. If that fails, each is fired again
        alone, so one bad timer neither holds back nor repeats the others; a timer that fails
        alone is retried later."""
        taken: list[asyncpg.Record] = []
        try:
            async with self.stream.transaction() as tx:
                taken = await tx.conn.fetch(_TAKE_DUE, BATCH)
                await self._fire(services, tx, taken)
        except Exception:
            if not taken:
                raise  # the database itself: the loop waits and tries again
            if len(taken) == 1:
                log.exception("timer %s (%s) failed", taken[0]["id"], taken[0]["kind"])
                await self._retry_later(taken[0]["id"], taken[0]["attempts"])
            else:
                log.warning("%d timers failed together: each alone", len(taken), exc_info=True)
                for row in taken:
                    await self._fire_alone(services, row["id"], row["attempts"])
        return bool(taken)

    async def _fire_alone(self, services: Services, timer_id: int, attempts: int) -> None:
        try:
            async with self.stream.transaction() as tx:
                await self._fire(services, tx, await tx.conn.fetch(_TAKE_ONE, timer_id))
        except Exception:
            log.exception("timer %s failed", timer_id)
            await self._retry_later(timer_id, attempts)

    async def _fire(self, services: Services, tx: Transaction, rows: list[asyncpg.Record]) -> None:
        """Each kind's handler once, with its timers' payloads in due order."""
        kinds: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: (r["due_at"], r["id"])):
            kinds.setdefault(row["kind"], []).append(row["payload"])
        for kind, payloads in kinds.items():
            handler = self.handlers.get(kind)
            if handler is None:
                log.error("no handler for timer kind %s; %d dropped", kind, len(payloads))
            else:
                await handler(services, tx, payloads)

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
