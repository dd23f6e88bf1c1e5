"""The outbox: SMS and e-mail written in the deciding transaction, sent by a job each.

`enqueue` writes the row and its job in the caller's transaction. The job (server/jobs.py) locks
the row while it is sent and marks it sent in the same transaction, so it is never sent twice
by two workers; if the process dies between the provider's acceptance and the commit, the row is
sent again with the same id, which the provider uses to drop the duplicate. A failed send is
retried by the job machinery with capped exponential backoff (LIAISON's outbox settings), and
after the last try, or a failure the provider calls final, the row is failed and its topic's
hook hears it (the sender's `sms_failed` receipt)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg
import msgspec

from server.delivery import SendFailed
from server.jobs import GiveUp, JobSet, Retry
from server.sms import SmsGateway
from server.stream import Transaction, utcnow

if TYPE_CHECKING:
    from server.mailer import Mailer
    from server.services import Services

log = logging.getLogger(__name__)

SEND = "outbox.send"  # the job kind: its key is the row's id
jobs = JobSet()


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
    """Part of the caller's transaction: nothing goes out unless it commits (the caller wakes
    the job worker: `Outbox.wake_after_commit`)."""
    return int(
        await conn.fetchval(
            "WITH row AS (INSERT INTO outbox (kind, topic, user_id, address, subject, body, refs)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id)"
            f" INSERT INTO jobs (kind, key, payload) SELECT '{SEND}', id::text,"
            " jsonb_build_object('id', id) FROM row RETURNING key::bigint",
            kind,
            topic,
            user_id,
            address,
            subject,
            body,
            refs,
        )
    )


class Outbox:
    """The gateways the rows go out through, and what each topic does when its rows are sent or
    finally fail."""

    def __init__(
        self, sets: list[OutboxSet], *, gateway: SmsGateway, mailer: Mailer | None
    ) -> None:
        self.gateway = gateway
        self.mailer = mailer
        self.on_sent: dict[str, Hook] = {}
        self.on_failed: dict[str, Hook] = {}
        for s in sets:
            self.on_sent.update(s.on_sent)
            self.on_failed.update(s.on_failed)

    @staticmethod
    def wake_after_commit(tx: Transaction) -> None:
        """Rows were enqueued in `tx`: their jobs are due now."""
        tx.job_set(utcnow())

    async def _send(self, row: OutboxRow) -> None:
        if row.kind == "sms":
            await self.gateway.send(str(row.id), row.address, row.body)
        elif self.mailer is None:
            raise SendFailed("no LIAISON_SMTP_URL configured", final=True)
        else:
            await self.mailer.send(row.address, row.subject, row.body, f"outbox-{row.id}")


async def _pending(tx: Transaction, row_id: int) -> OutboxRow | None:
    rec = await tx.conn.fetchrow(
        "SELECT id, kind, topic, user_id, address, subject, body, refs, attempts"
        " FROM outbox WHERE id = $1 AND state = 'pending' FOR UPDATE",
        row_id,
    )
    return None if rec is None else OutboxRow(**dict(rec))


async def _failed(
    services: Services, tx: Transaction, payload: dict[str, object], error: str
) -> None:
    row = await _pending(tx, int(str(payload["id"])))
    if row is None:
        return
    log.warning("outbox %s %s failed for good: %s", row.kind, row.id, error)
    await tx.conn.execute(
        "UPDATE outbox SET state = 'failed', attempts = $2, last_error = $3 WHERE id = $1",
        row.id,
        row.attempts + 1,
        error[:500],
    )
    hook = services.outbox.on_failed.get(row.topic)
    if hook:
        await hook(services, tx, row)


@jobs(SEND, batch=1, on_dead=_failed)
async def send(services: Services, tx: Transaction, payloads: list[dict[str, object]]) -> None:
    """Send one row; a failure is a Retry (the job is tried again later) or, when the provider
    says it is final, GiveUp (dead at once, and `failed` below marks the row)."""
    outbox = services.outbox
    for payload in payloads:
        row = await _pending(tx, int(str(payload["id"])))
        if row is None:
            continue  # sent already (a retry of a send whose commit was lost), or failed
        try:
            await outbox._send(row)
        except SendFailed as exc:
            if exc.final:
                raise GiveUp(str(exc)) from exc
            raise Retry(str(exc)) from exc
        await tx.conn.execute(
            "UPDATE outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1"
            " WHERE id = $1",
            row.id,
        )
        hook = outbox.on_sent.get(row.topic)
        if hook:
            await hook(services, tx, row)
