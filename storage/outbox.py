"""The outbox's SQL: SMS and e-mail rows, each sent by a job (server/outbox.py)."""

from __future__ import annotations

import asyncpg
import msgspec

SEND = "outbox.send"  # the job kind that sends a row: its key and payload name the row


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


async def insert(
    conn: asyncpg.Connection,
    *,
    kind: str,
    topic: str,
    user_id: int | None,
    address: str,
    subject: str,
    body: str,
    refs: list[int],
) -> int:
    """The row and the job that sends it, in one statement; returns the row's id."""
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


async def pending_for_update(conn: asyncpg.Connection, row_id: int) -> OutboxRow | None:
    """The row, locked, if it still waits to be sent."""
    rec = await conn.fetchrow(
        "SELECT id, kind, topic, user_id, address, subject, body, refs, attempts"
        " FROM outbox WHERE id = $1 AND state = 'pending' FOR UPDATE",
        row_id,
    )
    return None if rec is None else OutboxRow(**dict(rec))


async def mark_sent(conn: asyncpg.Connection, row_id: int) -> None:
    await conn.execute(
        "UPDATE outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1 WHERE id = $1",
        row_id,
    )


async def mark_failed(conn: asyncpg.Connection, row_id: int, attempts: int, error: str) -> None:
    await conn.execute(
        "UPDATE outbox SET state = 'failed', attempts = $2, last_error = $3 WHERE id = $1",
        row_id,
        attempts,
        error[:500],
    )
