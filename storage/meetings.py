"""Meeting queries: participants, the ordered transcript, marks, attendance, minutes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor


class Meeting(msgspec.Struct, frozen=True):
    id: int
    title: str
    agenda: str
    created_by: int
    chair_id: int
    chair_name: str
    starts_at: datetime | None
    created_at: datetime
    closed_at: datetime | None
    summary: str | None
    circulation_id: int | None


class Said(msgspec.Struct, frozen=True):
    id: int
    position: int
    sender_id: int
    sender_name: str
    body: str
    at: datetime


class Mark(msgspec.Struct, frozen=True):
    id: int
    message_id: int
    kind: str
    assignee_id: int | None
    assignee_name: str | None
    due: datetime | None
    at: datetime


class Stay(msgspec.Struct, frozen=True):
    user_id: int
    name: str
    joined_at: datetime
    left_at: datetime | None


_MEETING = """
    SELECT m.id, m.title, m.agenda, m.created_by, m.chair_id, c.name AS chair_name, m.starts_at,
           m.created_at, m.closed_at, m.summary, m.circulation_id
    FROM meetings m JOIN users c ON c.id = m.chair_id
"""


async def create(
    conn: asyncpg.Connection,
    *,
    title: str,
    agenda: str,
    creator: int,
    starts_at: datetime | None,
    participants: Sequence[int],
) -> int:
    meeting_id = await conn.fetchval(
        "INSERT INTO meetings (title, agenda, created_by, chair_id, starts_at)"
        " VALUES ($1, $2, $3, $3, $4) RETURNING id",
        title,
        agenda,
        creator,
        starts_at,
    )
    await conn.execute(
        "INSERT INTO meeting_participants (meeting_id, user_id) SELECT $1, unnest($2::bigint[])",
        meeting_id,
        list(participants),
    )
    return int(meeting_id)


async def get(db: Executor, meeting_id: int, *, lock: bool = False) -> Meeting | None:
    suffix = " WHERE m.id = $1" + (" FOR UPDATE OF m" if lock else "")
    row = await db.fetchrow(_MEETING + suffix, meeting_id)
    return Meeting(**dict(row)) if row else None


async def participants(db: Executor, meeting_id: int) -> list[tuple[int, str]]:
    rows = await db.fetch(
        "SELECT u.id, u.name FROM meeting_participants p JOIN users u ON u.id = p.user_id"
        " WHERE p.meeting_id = $1 ORDER BY u.id",
        meeting_id,
    )
    return [(r["id"], r["name"]) for r in rows]


async def is_participant(db: Executor, meeting_id: int, user_id: int) -> bool:
    """An active participant: a deactivated one stays in the list but takes no chair or action."""
    return bool(
        await db.fetchval(
            "SELECT 1 FROM meeting_participants p JOIN users u ON u.id = p.user_id"
            " WHERE p.meeting_id = $1 AND p.user_id = $2 AND u.deactivated_at IS NULL",
            meeting_id,
            user_id,
        )
    )


async def mine(
    db: Executor, user_id: int, open_only: bool | None, before: int | None, limit: int
) -> list[Meeting]:
    rows = await db.fetch(
        _MEETING + " JOIN meeting_participants p ON p.meeting_id = m.id AND p.user_id = $1"
        " WHERE ($2::bool IS NULL OR (m.closed_at IS NULL) = $2)"
        " AND ($3::bigint IS NULL OR m.id < $3) ORDER BY m.id DESC LIMIT $4",
        user_id,
        open_only,
        before,
        limit,
    )
    return [Meeting(**dict(r)) for r in rows]


async def say(conn: asyncpg.Connection, meeting_id: int, sender_id: int, body: str) -> Said:
    """Append to the transcript. The meeting row's counter is bumped first: that row lock puts
    concurrent speakers in one order, the same for the transcript and for every stream."""
    position = await conn.fetchval(
        "UPDATE meetings SET said = said + 1 WHERE id = $1 RETURNING said", meeting_id
    )
    row = await conn.fetchrow(
        "WITH m AS (INSERT INTO meeting_messages (meeting_id, position, sender_id, body)"
        " VALUES ($1, $2, $3, $4) RETURNING id, position, sender_id, body, at)"
        " SELECT m.*, u.name AS sender_name FROM m JOIN users u ON u.id = m.sender_id",
        meeting_id,
        position,
        sender_id,
        body,
    )
    return Said(**dict(row))


async def transcript(db: Executor, meeting_id: int, last: int | None = None) -> list[Said]:
    rows = await db.fetch(
        "SELECT * FROM (SELECT mm.id, mm.position, mm.sender_id, u.name AS sender_name, mm.body, mm.at"
        " FROM meeting_messages mm JOIN users u ON u.id = mm.sender_id WHERE mm.meeting_id = $1"
        " ORDER BY mm.position DESC LIMIT $2) t ORDER BY position",
        meeting_id,
        last,
    )
    return [Said(**dict(r)) for r in rows]


async def message(db: Executor, meeting_id: int, message_id: int) -> Said | None:
    row = await db.fetchrow(
        "SELECT mm.id, mm.position, mm.sender_id, u.name AS sender_name, mm.body, mm.at"
        " FROM meeting_messages mm JOIN users u ON u.id = mm.sender_id"
        " WHERE mm.meeting_id = $1 AND mm.id = $2",
        meeting_id,
        message_id,
    )
    return Said(**dict(row)) if row else None


async def add_mark(
    conn: asyncpg.Connection,
    *,
    meeting_id: int,
    message_id: int,
    kind: str,
    assignee_id: int | None,
    due: datetime | None,
    marked_by: int,
) -> Mark:
    row = await conn.fetchrow(
        "WITH k AS (INSERT INTO meeting_marks (meeting_id, message_id, kind, assignee_id, due, marked_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, message_id, kind, assignee_id, due, at)"
        " SELECT k.*, u.name AS assignee_name FROM k LEFT JOIN users u ON u.id = k.assignee_id",
        meeting_id,
        message_id,
        kind,
        assignee_id,
        due,
        marked_by,
    )
    return Mark(**dict(row))


async def marks(db: Executor, meeting_id: int) -> list[Mark]:
    rows = await db.fetch(
        "SELECT k.id, k.message_id, k.kind, k.assignee_id, u.name AS assignee_name, k.due, k.at"
        " FROM meeting_marks k LEFT JOIN users u ON u.id = k.assignee_id"
        " WHERE k.meeting_id = $1 ORDER BY k.id",
        meeting_id,
    )
    return [Mark(**dict(r)) for r in rows]


async def set_chair(conn: asyncpg.Connection, meeting_id: int, user_id: int) -> None:
    await conn.execute("UPDATE meetings SET chair_id = $2 WHERE id = $1", meeting_id, user_id)


async def enter(db: Executor, meeting_id: int, user_id: int) -> None:
    """A stay begins, unless one is already open (a second tab)."""
    await db.execute(
        "INSERT INTO meeting_attendance (meeting_id, user_id)"
        " SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM meeting_attendance"
        " WHERE meeting_id = $1 AND user_id = $2 AND left_at IS NULL)",
        meeting_id,
        user_id,
    )


async def leave(db: Executor, meeting_id: int, user_id: int) -> None:
    await db.execute(
        "UPDATE meeting_attendance SET left_at = now()"
        " WHERE meeting_id = $1 AND user_id = $2 AND left_at IS NULL",
        meeting_id,
        user_id,
    )


async def close_stays(conn: asyncpg.Connection, meeting_id: int) -> None:
    await conn.execute(
        "UPDATE meeting_attendance SET left_at = now() WHERE meeting_id = $1 AND left_at IS NULL",
        meeting_id,
    )


async def stays(db: Executor, meeting_id: int) -> list[Stay]:
    """Each attendee's first arrival and last departure."""
    rows = await db.fetch(
        "SELECT a.user_id, u.name, min(a.joined_at) AS joined_at,"
        " CASE WHEN bool_or(a.left_at IS NULL) THEN NULL ELSE max(a.left_at) END AS left_at"
        " FROM meeting_attendance a JOIN users u ON u.id = a.user_id"
        " WHERE a.meeting_id = $1 GROUP BY a.user_id, u.name ORDER BY min(a.joined_at)",
        meeting_id,
    )
    return [Stay(**dict(r)) for r in rows]


async def close(
    conn: asyncpg.Connection, meeting_id: int, summary: str | None, minutes: bytes
) -> datetime:
    return await conn.fetchval(
        "UPDATE meetings SET closed_at = now(), summary = $2, minutes = $3::jsonb"
        " WHERE id = $1 RETURNING closed_at",
        meeting_id,
        summary,
        minutes,
    )


async def set_minutes(
    conn: asyncpg.Connection, meeting_id: int, minutes: bytes, circulation_id: int | None
) -> None:
    await conn.execute(
        "UPDATE meetings SET minutes = $2::jsonb, circulation_id = $3 WHERE id = $1",
        meeting_id,
        minutes,
        circulation_id,
    )


async def minutes(db: Executor, meeting_id: int) -> object | None:
    return await db.fetchval("SELECT minutes FROM meetings WHERE id = $1", meeting_id)
