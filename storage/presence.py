"""Whereabouts, the message board (notes) and board members."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from storage.directory import _USER_COLS, _user
from storage.pool import Executor
from storage.records import BoardMember, Note, Whereabouts

DEFAULT_STATUS = "in_office"


def _whereabouts(user_id: int, r: asyncpg.Record) -> Whereabouts:
    if r["status"] is None:
        return Whereabouts(user_id, DEFAULT_STATUS, "", "", None, None, None, None)
    return Whereabouts(
        user_id,
        r["status"],
        r["note"],
        r["location"],
        r["until"],
        r["set_by"],
        r["set_by_name"],
        r["set_at"],
    )


async def set_whereabouts(
    conn: asyncpg.Connection,
    *,
    user_id: int,
    status: str,
    note: str,
    location: str,
    until: datetime | None,
    set_by: int,
) -> Whereabouts:
    row = await conn.fetchrow(
        """
        INSERT INTO whereabouts (user_id, status, note, location, until, set_by, set_at)
        VALUES ($1, $2, $3, $4, $5, $6, now())
        ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note,
            location = EXCLUDED.location, until = EXCLUDED.until, set_by = EXCLUDED.set_by,
            set_at = EXCLUDED.set_at
        RETURNING status, note, location, until, set_by, set_at,
            (SELECT name FROM users WHERE id = $6) AS set_by_name
        """,
        user_id,
        status,
        note,
        location,
        until,
        set_by,
    )
    return _whereabouts(user_id, row)


async def expire_whereabouts(
    conn: asyncpg.Connection, user_id: int, until: datetime
) -> Whereabouts | None:
    """Return a user to the office if the whereabouts with this `until` is still the current one."""
    row = await conn.fetchrow(
        """
        UPDATE whereabouts SET status = $3, note = '', location = '', until = NULL,
            set_by = NULL, set_at = now()
        WHERE user_id = $1 AND until = $2
        RETURNING status, note, location, until, set_by, set_at, NULL::text AS set_by_name
        """,
        user_id,
        until,
        DEFAULT_STATUS,
    )
    return _whereabouts(user_id, row) if row else None


async def board(db: Executor, department_id: int) -> list[BoardMember]:
    rows = await db.fetch(
        f"""
        SELECT {_USER_COLS}, u.last_seen, w.status, w.note, w.location, w.until, w.set_by,
               w.set_at, sb.name AS set_by_name,
               (SELECT count(*) FROM notes n WHERE n.to_user = u.id AND n.read_at IS NULL)
                   AS notes_waiting
        FROM users u
        LEFT JOIN whereabouts w ON w.user_id = u.id
        LEFT JOIN users sb ON sb.id = w.set_by
        WHERE u.department_id = $1 AND u.deactivated_at IS NULL
        ORDER BY ('leader' = ANY(u.roles)) DESC, u.id
        """,
        department_id,
    )
    return [
        BoardMember(_user(r), _whereabouts(r["id"], r), r["notes_waiting"], r["last_seen"])
        for r in rows
    ]


async def leave_note(conn: asyncpg.Connection, from_id: int, to_id: int, body: str) -> Note:
    row = await conn.fetchrow(
        """
        WITH n AS (
            INSERT INTO notes (from_user, to_user, body) VALUES ($1, $2, $3)
            RETURNING id, from_user, to_user, body, at, read_at
        )
        SELECT n.*, f.name AS from_name, t.name AS to_name
        FROM n JOIN users f ON f.id = n.from_user JOIN users t ON t.id = n.to_user
        """,
        from_id,
        to_id,
        body,
    )
    return _note(row)


def _note(r: asyncpg.Record) -> Note:
    return Note(
        r["id"],
        r["from_user"],
        r["from_name"],
        r["to_user"],
        r["to_name"],
        r["body"],
        r["at"],
        r["read_at"],
    )


async def notes_for(db: Executor, user_id: int, before: int | None, limit: int) -> list[Note]:
    rows = await db.fetch(
        """
        SELECT n.id, n.from_user, n.to_user, n.body, n.at, n.read_at,
               f.name AS from_name, t.name AS to_name
        FROM notes n JOIN users f ON f.id = n.from_user JOIN users t ON t.id = n.to_user
        WHERE n.to_user = $1 AND ($2::bigint IS NULL OR n.id < $2)
        ORDER BY n.id DESC LIMIT $3
        """,
        user_id,
        before,
        limit,
    )
    return [_note(r) for r in rows]


async def mark_notes_read(
    conn: asyncpg.Connection, user_id: int, note_ids: Sequence[int]
) -> tuple[int, int]:
    """Mark the user's own notes read; returns (how many changed, how many remain unread)."""
    status = await conn.execute(
        "UPDATE notes SET read_at = now()"
        " WHERE to_user = $1 AND id = ANY($2::bigint[]) AND read_at IS NULL",
        user_id,
        list(note_ids),
    )
    return int(status.split()[-1]), await notes_waiting(conn, user_id)


async def notes_waiting(db: Executor, user_id: int) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM notes WHERE to_user = $1 AND read_at IS NULL", user_id
        )
    )


async def whereabouts_of(db: Executor, user_ids: Sequence[int]) -> dict[int, Whereabouts]:
    rows = await db.fetch(
        "SELECT u.id, w.status, w.note, w.location, w.until, w.set_by, w.set_at,"
        " sb.name AS set_by_name"
        " FROM unnest($1::bigint[]) AS u(id)"
        " LEFT JOIN whereabouts w ON w.user_id = u.id LEFT JOIN users sb ON sb.id = w.set_by",
        list(user_ids),
    )
    return {r["id"]: _whereabouts(r["id"], r) for r in rows}


async def set_delegates(
    conn: asyncpg.Connection, user_id: int, delegate_ids: Sequence[int]
) -> None:
    await conn.execute("DELETE FROM delegates WHERE user_id = $1", user_id)
    await conn.execute(
        "INSERT INTO delegates (user_id, delegate_id)"
        " SELECT $1, d FROM unnest($2::bigint[]) AS d WHERE d <> $1",
        user_id,
        list(delegate_ids),
    )


async def delegates_of(db: Executor, user_id: int) -> list[tuple[int, str]]:
    rows = await db.fetch(
        "SELECT u.id, u.name FROM delegates d JOIN users u ON u.id = d.delegate_id"
        " WHERE d.user_id = $1 ORDER BY u.id",
        user_id,
    )
    return [(r["id"], r["name"]) for r in rows]
