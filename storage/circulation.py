"""Circulation queries: creation in set-based statements, per-recipient state transitions that
happen once, status, lists, reminders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor


class Circulation(msgspec.Struct, frozen=True):
    id: int
    sender_id: int
    sender_name: str
    title: str
    body: str
    deadline: datetime | None
    created_at: datetime
    recalled_at: datetime | None
    last_reminded_at: datetime | None
    recipients_count: int


class Change(msgspec.Struct, frozen=True):
    """A recipient's state moved: the sender is told."""

    user_id: int
    state: str
    at: datetime
    comment: str | None


class RecipientRow(msgspec.Struct, frozen=True):
    user_id: int
    name: str
    state: str
    opened_at: datetime | None
    confirmed_at: datetime | None
    comment: str | None


class Unconfirmed(msgspec.Struct, frozen=True):
    user_id: int
    name: str
    phone: str | None
    sms_fallback: str


class ListItem(msgspec.Struct, frozen=True):
    id: int
    sender_id: int
    sender_name: str
    title: str
    deadline: datetime | None
    created_at: datetime
    recalled_at: datetime | None
    my_state: str | None
    unopened: int
    opened: int
    confirmed: int


async def insert(
    conn: asyncpg.Connection,
    *,
    sender_id: int,
    title: str,
    body: str,
    departments: Sequence[int],
    deadline: datetime | None,
) -> tuple[int, datetime]:
    row = await conn.fetchrow(
        "INSERT INTO circulations (sender_id, title, body, departments, deadline)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at",
        sender_id,
        title,
        body,
        list(departments),
        deadline,
    )
    return row["id"], row["created_at"]


async def insert_recipients(
    conn: asyncpg.Connection, circulation_id: int, user_ids: Sequence[int]
) -> None:
    await conn.execute(
        "INSERT INTO circulation_recipients (circulation_id, user_id)"
        " SELECT $1, unnest($2::bigint[])",
        circulation_id,
        list(user_ids),
    )


async def insert_attachments(
    conn: asyncpg.Connection, circulation_id: int, file_ids: Sequence[int]
) -> None:
    await conn.execute(
        "INSERT INTO circulation_attachments (circulation_id, file_id)"
        " SELECT $1, unnest($2::bigint[])",
        circulation_id,
        list(file_ids),
    )


async def get(db: Executor, circulation_id: int) -> Circulation | None:
    row = await db.fetchrow(
        """
        SELECT c.id, c.sender_id, s.name AS sender_name, c.title, c.body, c.deadline, c.created_at,
               c.recalled_at, c.last_reminded_at,
               (SELECT count(*) FROM circulation_recipients r WHERE r.circulation_id = c.id)
                   AS recipients_count
        FROM circulations c JOIN users s ON s.id = c.sender_id WHERE c.id = $1
        """,
        circulation_id,
    )
    return Circulation(**dict(row)) if row else None


async def my_row(db: Executor, circulation_id: int, user_id: int) -> RecipientRow | None:
    row = await db.fetchrow(
        "SELECT r.user_id, u.name, r.state, r.opened_at, r.confirmed_at, r.comment"
        " FROM circulation_recipients r JOIN users u ON u.id = r.user_id"
        " WHERE r.circulation_id = $1 AND r.user_id = $2",
        circulation_id,
        user_id,
    )
    return RecipientRow(**dict(row)) if row else None


async def open_(conn: asyncpg.Connection, circulation_id: int, user_id: int) -> Change | None:
    """unopened → opened, once: of two tabs opening together, one gets the change."""
    row = await conn.fetchrow(
        "UPDATE circulation_recipients SET state = 'opened', opened_at = now()"
        " WHERE circulation_id = $1 AND user_id = $2 AND state = 'unopened'"
        " RETURNING opened_at",
        circulation_id,
        user_id,
    )
    return Change(user_id, "opened", row["opened_at"], None) if row else None


async def confirm(
    conn: asyncpg.Connection, circulation_id: int, user_id: int, comment: str | None
) -> Change | None:
    row = await conn.fetchrow(
        "UPDATE circulation_recipients SET state = 'confirmed', confirmed_at = now(),"
        " opened_at = coalesce(opened_at, now()), comment = $3"
        " WHERE circulation_id = $1 AND user_id = $2 AND state <> 'confirmed'"
        " RETURNING confirmed_at",
        circulation_id,
        user_id,
        comment,
    )
    return Change(user_id, "confirmed", row["confirmed_at"], comment) if row else None


async def recipients(db: Executor, circulation_id: int) -> list[RecipientRow]:
    rows = await db.fetch(
        "SELECT r.user_id, u.name, r.state, r.opened_at, r.confirmed_at, r.comment"
        " FROM circulation_recipients r JOIN users u ON u.id = r.user_id"
        " WHERE r.circulation_id = $1 ORDER BY u.department_id, r.user_id",
        circulation_id,
    )
    return [RecipientRow(**dict(r)) for r in rows]


async def recipient_ids(db: Executor, circulation_id: int) -> list[int]:
    rows = await db.fetch(
        "SELECT user_id FROM circulation_recipients WHERE circulation_id = $1", circulation_id
    )
    return [r["user_id"] for r in rows]


async def unconfirmed(db: Executor, circulation_id: int) -> list[Unconfirmed]:
    rows = await db.fetch(
        """
        SELECT r.user_id, u.name, u.phone, coalesce(p.sms_fallback, 'offline') AS sms_fallback
        FROM circulation_recipients r JOIN users u ON u.id = r.user_id
        LEFT JOIN prefs p ON p.user_id = r.user_id
        WHERE r.circulation_id = $1 AND r.state <> 'confirmed' ORDER BY r.user_id
        """,
        circulation_id,
    )
    return [Unconfirmed(**dict(r)) for r in rows]


async def claim_remind(
    conn: asyncpg.Connection, circulation_id: int, every_s: float
) -> datetime | None:
    """Take the reminder slot if the last one is old enough; None when taken, else when it
    frees (the slot is per circulation, so two senders' tabs cannot both remind)."""
    row = await conn.fetchrow(
        "UPDATE circulations SET last_reminded_at = now()"
        " WHERE id = $1 AND (last_reminded_at IS NULL"
        "   OR last_reminded_at <= now() - make_interval(secs => $2))"
        " RETURNING id",
        circulation_id,
        every_s,
    )
    if row is not None:
        return None
    return await conn.fetchval(
        "SELECT last_reminded_at + make_interval(secs => $2) FROM circulations WHERE id = $1",
        circulation_id,
        every_s,
    )


async def carries_document(db: Executor, circulation_id: int) -> bool:
    """Whether this circulation delivers an issued document (公文)."""
    return bool(
        await db.fetchval("SELECT 1 FROM documents WHERE circulation_id = $1", circulation_id)
    )


async def recall(conn: asyncpg.Connection, circulation_id: int) -> bool:
    status = await conn.execute(
        "UPDATE circulations SET recalled_at = now() WHERE id = $1 AND recalled_at IS NULL",
        circulation_id,
    )
    return status.endswith(" 1")


async def listing(
    db: Executor,
    *,
    user_id: int,
    box: str,
    state: str | None,
    before: int | None,
    limit: int,
) -> list[ListItem]:
    if box == "inbox":
        where = "r.user_id = $1 AND ($2::text IS NULL OR r.state = $2)"
        source = "FROM circulation_recipients r JOIN circulations c ON c.id = r.circulation_id"
        mine = "r.state"
    else:
        where = "c.sender_id = $1 AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM circulation_recipients x WHERE x.circulation_id = c.id AND x.state = $2))"
        source = "FROM circulations c"
        mine = "NULL::text"
    rows = await db.fetch(
        f"""
        SELECT c.id, c.sender_id, s.name AS sender_name, c.title, c.deadline, c.created_at,
               c.recalled_at, {mine} AS my_state,
               coalesce(k.unopened, 0) AS unopened, coalesce(k.opened, 0) AS opened,
               coalesce(k.confirmed, 0) AS confirmed
        {source}
        JOIN users s ON s.id = c.sender_id
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE state = 'unopened') AS unopened,
                   count(*) FILTER (WHERE state = 'opened') AS opened,
                   count(*) FILTER (WHERE state = 'confirmed') AS confirmed
            FROM circulation_recipients WHERE circulation_id = c.id AND $5
        ) k ON true
        WHERE {where} AND ($3::bigint IS NULL OR c.id < $3)
        ORDER BY c.id DESC LIMIT $4
        """,
        user_id,
        state,
        before,
        limit,
        box == "sent",
    )
    return [ListItem(**dict(r)) for r in rows]


async def attachments_of(db: Executor, circulation_id: int) -> list[dict[str, object]]:
    rows = await db.fetch(
        "SELECT f.id, f.name, f.size, f.content_type FROM circulation_attachments a"
        " JOIN files f ON f.id = a.file_id WHERE a.circulation_id = $1 ORDER BY f.id",
        circulation_id,
    )
    return [
        {
            "file_id": str(r["id"]),
            "name": r["name"],
            "size": r["size"],
            "content_type": r["content_type"],
        }
        for r in rows
    ]


async def by_code_for(db: Executor, circulation_id: int, user_id: int) -> bool:
    """Is this person a recipient of this live circulation (an SMS confirmation's check)?"""
    return bool(
        await db.fetchval(
            "SELECT 1 FROM circulation_recipients r JOIN circulations c ON c.id = r.circulation_id"
            " WHERE r.circulation_id = $1 AND r.user_id = $2 AND c.recalled_at IS NULL",
            circulation_id,
            user_id,
        )
    )
