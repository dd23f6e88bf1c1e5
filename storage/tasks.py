"""Tasks' SQL (交办): a task, its assignees' parts, and the lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor


class TaskRecord(msgspec.Struct, frozen=True):
    id: int
    assigner_id: int
    assigner_name: str
    title: str
    body: str
    urgency: str
    due_at: datetime | None
    source: str
    created_at: datetime


class Part(msgspec.Struct, frozen=True):
    task_id: int
    user_id: int
    name: str
    state: str
    percent: int
    note: str
    handed_to: int | None
    updated_at: datetime


_TASK = (
    "t.id, t.assigner_id, a.name AS assigner_name, t.title, t.body, t.urgency, t.due_at,"
    " t.source, t.created_at"
)
_PART = "p.task_id, p.user_id, u.name, p.state, p.percent, p.note, p.handed_to, p.updated_at"


async def create(
    conn: asyncpg.Connection,
    *,
    assigner_id: int,
    title: str,
    body: str,
    urgency: str,
    due_at: datetime | None,
    assignees: Sequence[int],
    source: str = "task",
    meeting_mark_id: int | None = None,
) -> int:
    task_id = int(
        await conn.fetchval(
            "INSERT INTO tasks (assigner_id, title, body, urgency, due_at, source,"
            " meeting_mark_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            assigner_id,
            title,
            body,
            urgency,
            due_at,
            source,
            meeting_mark_id,
        )
    )
    await conn.execute(
        "INSERT INTO task_assignees (task_id, user_id) SELECT $1, unnest($2::bigint[])",
        task_id,
        list(assignees),
    )
    return task_id


async def task(db: Executor, task_id: int) -> TaskRecord | None:
    row = await db.fetchrow(
        f"SELECT {_TASK} FROM tasks t JOIN users a ON a.id = t.assigner_id WHERE t.id = $1",
        task_id,
    )
    return None if row is None else TaskRecord(**dict(row))


async def parts(db: Executor, task_id: int, *, lock: bool = False) -> list[Part]:
    rows = await db.fetch(
        f"SELECT {_PART} FROM task_assignees p JOIN users u ON u.id = p.user_id"
        " WHERE p.task_id = $1 ORDER BY p.user_id" + (" FOR UPDATE OF p" if lock else ""),
        task_id,
    )
    return [Part(**dict(r)) for r in rows]


async def update_part(
    conn: asyncpg.Connection,
    task_id: int,
    user_id: int,
    *,
    state: str,
    percent: int,
    note: str,
    handed_to: int | None = None,
) -> Part:
    row = await conn.fetchrow(
        "WITH p AS (UPDATE task_assignees SET state = $3, percent = $4, note = $5,"
        " handed_to = $6, updated_at = now() WHERE task_id = $1 AND user_id = $2 RETURNING *)"
        f" SELECT {_PART} FROM p JOIN users u ON u.id = p.user_id",
        task_id,
        user_id,
        state,
        percent,
        note,
        handed_to,
    )
    return Part(**dict(row))


async def add_part(conn: asyncpg.Connection, task_id: int, user_id: int) -> None:
    await conn.execute(
        "INSERT INTO task_assignees (task_id, user_id) VALUES ($1, $2)", task_id, user_id
    )


async def mine(db: Executor, user_id: int, before: int | None, limit: int) -> list[TaskRecord]:
    rows = await db.fetch(
        f"SELECT {_TASK} FROM task_assignees p JOIN tasks t ON t.id = p.task_id"
        " JOIN users a ON a.id = t.assigner_id"
        " WHERE p.user_id = $1 AND ($2::bigint IS NULL OR t.id < $2) ORDER BY t.id DESC LIMIT $3",
        user_id,
        before,
        limit,
    )
    return [TaskRecord(**dict(r)) for r in rows]


async def assigned_by(
    db: Executor, user_id: int, before: int | None, limit: int
) -> list[TaskRecord]:
    rows = await db.fetch(
        f"SELECT {_TASK} FROM tasks t JOIN users a ON a.id = t.assigner_id"
        " WHERE t.assigner_id = $1 AND ($2::bigint IS NULL OR t.id < $2)"
        " ORDER BY t.id DESC LIMIT $3",
        user_id,
        before,
        limit,
    )
    return [TaskRecord(**dict(r)) for r in rows]


async def parts_of(db: Executor, task_ids: Sequence[int]) -> dict[int, list[Part]]:
    rows = await db.fetch(
        f"SELECT {_PART} FROM task_assignees p JOIN users u ON u.id = p.user_id"
        " WHERE p.task_id = ANY($1::bigint[]) ORDER BY p.task_id, p.user_id",
        list(task_ids),
    )
    out: dict[int, list[Part]] = {i: [] for i in task_ids}
    for r in rows:
        out[r["task_id"]].append(Part(**dict(r)))
    return out
