"""Schedule's SQL (日程): entries, their attendees, and what a viewer may see of a calendar."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor


class Entry(msgspec.Struct, frozen=True):
    id: int
    owner_id: int
    owner_name: str
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    visibility: str
    remind_before_s: int
    cancelled_at: datetime | None
    attendees: list[int]


_ENTRY = (
    "e.id, e.owner_id, o.name AS owner_name, e.title, e.starts_at, e.ends_at, e.location,"
    " e.visibility, e.remind_before_s, e.cancelled_at,"
    " coalesce((SELECT array_agg(a.user_id ORDER BY a.user_id) FROM schedule_attendees a"
    " WHERE a.entry_id = e.id), '{}') AS attendees"
)


async def create(
    conn: asyncpg.Connection,
    *,
    owner_id: int,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    location: str,
    visibility: str,
    remind_before_s: int,
    attendees: Sequence[int],
) -> Entry:
    entry_id = await conn.fetchval(
        "INSERT INTO schedule_entries (owner_id, title, starts_at, ends_at, location, visibility,"
        " remind_before_s) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        owner_id,
        title,
        starts_at,
        ends_at,
        location,
        visibility,
        remind_before_s,
    )
    await conn.execute(
        "INSERT INTO schedule_attendees (entry_id, user_id) SELECT $1, unnest($2::bigint[])",
        entry_id,
        list(attendees),
    )
    found = await entry(conn, entry_id)
    assert found is not None
    return found


async def entry(db: Executor, entry_id: int, *, lock: bool = False) -> Entry | None:
    row = await db.fetchrow(
        f"SELECT {_ENTRY} FROM schedule_entries e JOIN users o ON o.id = e.owner_id"
        " WHERE e.id = $1" + (" FOR UPDATE OF e" if lock else ""),
        entry_id,
    )
    return None if row is None else Entry(**dict(row))


async def cancel(conn: asyncpg.Connection, entry_id: int) -> None:
    await conn.execute(
        "UPDATE schedule_entries SET cancelled_at = now() WHERE id = $1 AND cancelled_at IS NULL",
        entry_id,
    )


async def calendar(db: Executor, user_id: int, start: datetime, end: datetime) -> list[Entry]:
    """The entries a person owns or attends that overlap [start, end), not cancelled."""
    rows = await db.fetch(
        f"SELECT {_ENTRY} FROM schedule_entries e JOIN users o ON o.id = e.owner_id"
        " WHERE e.cancelled_at IS NULL AND e.starts_at < $3 AND e.ends_at >= $2"
        " AND (e.owner_id = $1 OR EXISTS (SELECT 1 FROM schedule_attendees a"
        " WHERE a.entry_id = e.id AND a.user_id = $1))"
        " ORDER BY e.starts_at, e.id LIMIT 500",
        user_id,
        start,
        end,
    )
    return [Entry(**dict(r)) for r in rows]
