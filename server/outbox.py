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

from server.delivery import SendFailed
from server.jobs import GiveUp, JobSet, Retry
from server.sms import SmsGateway
from server.stream import Transaction, utcnow
from storage import outbox as q
from storage.outbox import SEND, OutboxRow

__all__ = ["SEND", "Outbox", "OutboxRow", "OutboxSet", "enqueue", "jobs"]

if TYPE_CHECKING:
    from server.mailer import Mailer
    from server.services import Services

log = logging.getLogger(__name__)

jobs = JobSet()


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
    tx: Transaction,
    *,
    kind: str,
    topic: str,
    user_id: int | None,
    address: str,
    body: str,
    refs: list[int],
    subject: str = "",
) -> int:
    """Part of the caller's transaction: nothing goes out unless it commits, and then at once."""
    tx.job_set(utcnow())
    return await q.insert(
        tx.conn,
        kind=kind,
        topic=topic,
        user_id=user_id,
        address=address,
        subject=subject,
        body=body,
        refs=refs,
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

    async def _send(self, row: OutboxRow) -> None:
        if row.kind == "sms":
            await self.gateway.send(str(row.id), row.address, row.body)
        elif self.mailer is None:
            raise SendFailed("no LIAISON_SMTP_URL configured", final=True)
        else:
            await self.mailer.send(row.address, row.subject, row.body, f"outbox-{row.id}")


async def _failed(
    services: Services, tx: Transaction, payload: dict[str, object], error: str
) -> None:
    row = await q.pending_for_update(tx.conn, int(str(payload["id"])))
    if row is None:
        return
    log.warning("outbox %s %s failed for good: %s", row.kind, row.id, error)
    await q.mark_failed(tx.conn, row.id, row.attempts + 1, error)
    hook = services.outbox.on_failed.get(row.topic)
    if hook:
        await hook(services, tx, row)


@jobs(SEND, batch=1, on_dead=_failed)
async def send(services: Services, tx: Transaction, payloads: list[dict[str, object]]) -> None:
    """Send one row; a failure is a Retry (the job is tried again later) or, when the provider
    says it is final, GiveUp (dead at once, and `failed` below marks the row)."""
    outbox = services.outbox
    for payload in payloads:
        row = await q.pending_for_update(tx.conn, int(str(payload["id"])))
        if row is None:
            continue  # sent already (a retry of a send whose commit was lost), or failed
        try:
            await outbox._send(row)
        except SendFailed as exc:
            if exc.final:
                raise GiveUp(str(exc)) from exc
            raise Retry(str(exc)) from exc
        await q.mark_sent(tx.conn, row.id)
        hook = outbox.on_sent.get(row.topic)
        if hook:
            await hook(services, tx, row)
