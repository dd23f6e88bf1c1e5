"""The outbox: SMS and e-mail written in the deciding transaction, carried out by this worker.

A row is locked while it is sent and marked sent in the same transaction, so two workers never
send it twice; if the process dies between the provider's acceptance and the commit, the row is
sent again with the same id, which the provider uses to drop the duplicate. Failures are retried
with capped exponential backoff and given up after a bounded number of tries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg
import msgspec

from server.sms import SendFailed, SmsGateway
from server.stream import Stream, Transaction
from server.worker import POLL_S, Worker

if TYPE_CHECKING:
    from server.mailer import Mailer
    from server.services import Services

log = logging.getLogger(__name__)


class OutboxRow(msgspec.Struct, frozen=True):
    id: int
    kind: str
    topic: str
    user_id: int | None
    address: str
    subject: str
    body: str
    refs: list[int]
    attempts: int


Hook = Callable[["Services", Transaction, OutboxRow], Awaitable[None]]


class OutboxSet:
    """What a handler module declares: what happens in the database when its rows are sent or
    finally fail (receipts, say). `outbox = OutboxSet()`, `@outbox.sent("topic")`."""

    def __init__(self) -> None:
        self.on_sent: dict[str, Hook] = {}
        self.on_failed: dict[str, Hook] = {}

    def sent(self, topic: str) -> Callable[[Hook], Hook]:
        def register(fn: Hook) -> Hook:
            self.on_sent[topic] = fn
            return fn

        return register

    def failed(self, topic: str) -> Callable[[Hook], Hook]:
        def register(fn: Hook) -> Hook:
            self.on_failed[topic] = fn
            return fn

        return register


async def enqueue(
    conn: asyncpg.Connection,
    *,
    kind: str,
    topic: str,
    user_id: int | None,
    address: str,
    body: str,
    refs: list[int],
    subject: str = "",
) -> int:
    """Part of the caller's transaction: nothing goes out unless it commits."""
    return int(
        await conn.fetchval(
            "INSERT INTO outbox (kind, topic, user_id, address, subject, body, refs)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            kind,
            topic,
            user_id,
            address,
            subject,
            body,
            refs,
        )
    )


class Outbox(Worker):
    name = "outbox"

    def __init__(
        self,
        stream: Stream,
        sets: list[OutboxSet],
        *,
        gateway: SmsGateway,
        mailer: Mailer | None,
        max_attempts: int,
        backoff_s: float,
    ) -> None:
        super().__init__()
        self.stream = stream
        self.gateway = gateway
        self.mailer = mailer
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.on_sent: dict[str, Hook] = {}
        self.on_failed: dict[str, Hook] = {}
        for s in sets:
            self.on_sent.update(s.on_sent)
            self.on_failed.update(s.on_failed)

    async def until_next(self) -> float:
        wait = await self.stream.pool.fetchval(
            "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM outbox"
            " WHERE state = 'pending'"
        )
        return POLL_S if wait is None else max(0.0, min(POLL_S, float(wait)))

    async def work_one(self, services: Services) -> bool:
        async with self.stream.transaction() as tx:
            rec = await tx.conn.fetchrow(
                "SELECT id, kind, topic, user_id, address, subject, body, refs, attempts"
                " FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()"
                " ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT 1"
            )
            if rec is None:
                return False
            row = OutboxRow(**dict(rec))
            try:
                await self._send(row)
            except SendFailed as exc:
                await self._failed_attempt(services, tx, row, exc)
                return True
            await tx.conn.execute(
                "UPDATE outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1"
                " WHERE id = $1",
                row.id,
            )
            hook = self.on_sent.get(row.topic)
            if hook:
                await hook(services, tx, row)
        return True

    async def _send(self, row: OutboxRow) -> None:
        if row.kind == "sms":
            await self.gateway.send(str(row.id), row.address, row.body)
        elif self.mailer is None:
            raise SendFailed("no LIAISON_SMTP_URL configured", final=True)
        else:
            await self.mailer.send(row.address, row.subject, row.body, f"outbox-{row.id}")

    async def _failed_attempt(
        self, services: Services, tx: Transaction, row: OutboxRow, exc: SendFailed
    ) -> None:
        attempts = row.attempts + 1
        if exc.final or attempts >= self.max_attempts:
            log.warning("outbox %s %s failed for good: %s", row.kind, row.id, exc)
            await tx.conn.execute(
                "UPDATE outbox SET state = 'failed', attempts = $2, last_error = $3 WHERE id = $1",
                row.id,
                attempts,
                str(exc)[:500],
            )
            hook = self.on_failed.get(row.topic)
            if hook:
                await hook(services, tx, row)
            return
        delay = timedelta(seconds=min(300.0, self.backoff_s * 2 ** (attempts - 1)))
        log.info(
            "outbox %s %s attempt %d failed, retry in %s: %s",
            row.kind,
            row.id,
            attempts,
            delay,
            exc,
        )
        await tx.conn.execute(
            "UPDATE outbox SET attempts = $2, last_error = $3, next_attempt_at = now() + $4"
            " WHERE id = $1",
            row.id,
            attempts,
            str(exc)[:500],
            delay,
        )
