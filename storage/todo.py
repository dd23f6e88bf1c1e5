"""The to-do inbox's SQL: items added and closed by the modules, counts per person."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor

KINDS = ("approval", "task", "circulation", "meeting_action", "schedule", "document", "notice")


class NewTodo(msgspec.Struct, frozen=True):
    user_id: int
    kind: str
    ref_id: int
    title: str
    from_id: int | None = None
    urgency: str = "normal"
    due_at: datetime | None = None


class Todo(msgspec.Struct, frozen=True):
    id: int
    user_id: int
    kind: str
    ref_id: int
    title: str
    from_id: int | None
    from_name: str | None
    urgency: str
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None


class Counts(msgspec.Struct, frozen=True):
    open: int = 0
    urgent: int = 0
    overdue: int = 0
    by_kind: dict[str, int] = {}


_COLS = (
    "t.id, t.user_id, t.kind, t.ref_id, t.title, t.from_id, f.name AS from_name, t.urgency,"
    " t.due_at, t.created_at, t.done_at"
)


async def add(conn: asyncpg.Connection, items: Sequence[NewTodo]) -> list[Todo]:
    """Add (or reopen) items; returns those that are new or were done."""
    rows = await conn.fetch(
        f"""
        WITH t AS (
            INSERT INTO todos (user_id, kind, ref_id, title, from_id, urgency, due_at)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],
                                 $6::text[], $7::timestamptz[])
            ON CONFLICT (user_id, kind, ref_id) DO UPDATE SET done_at = NULL,
                title = EXCLUDED.title, urgency = EXCLUDED.urgency, due_at = EXCLUDED.due_at,
                created_at = now()
            WHERE todos.done_at IS NOT NULL
            RETURNING *
        )
        SELECT {_COLS} FROM t LEFT JOIN users f ON f.id = t.from_id ORDER BY t.id
        """,
        [i.user_id for i in items],
        [i.kind for i in items],
        [i.ref_id for i in items],
        [i.title for i in items],
        [i.from_id for i in items],
        [i.urgency for i in items],
        [i.due_at for i in items],
    )
    return [Todo(**dict(r)) for r in rows]


async def close(
    conn: asyncpg.Connection, kind: str, ref_ids: Sequence[int], user_ids: Sequence[int] | None
) -> list[Todo]:
    """Close the open items of these refs (of these people only, when given)."""
    rows = await conn.fetch(
        f"""
        WITH t AS (
            UPDATE todos SET done_at = now()
            WHERE kind = $1 AND ref_id = ANY($2::bigint[]) AND done_at IS NULL
              AND ($3::bigint[] IS NULL OR user_id = ANY($3::bigint[]))
            RETURNING *
        )
        SELECT {_COLS} FROM t LEFT JOIN users f ON f.id = t.from_id ORDER BY t.id
        """,
        kind,
        list(ref_ids),
        list(user_ids) if user_ids is not None else None,
    )
    return [Todo(**dict(r)) for r in rows]


async def owners(conn: asyncpg.Connection, kind: str, ref_ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT user_id FROM todos WHERE kind = $1 AND ref_id = ANY($2::bigint[])"
        " AND done_at IS NULL",
        kind,
        list(ref_ids),
    )
    return [r["user_id"] for r in rows]


async def counts(db: Executor, user_ids: Sequence[int]) -> dict[int, Counts]:
    rows = await db.fetch(
        """
        SELECT user_id, kind, count(*) AS n,
               count(*) FILTER (WHERE urgency = 'urgent') AS urgent,
               count(*) FILTER (WHERE due_at < now()) AS overdue
        FROM todos WHERE user_id = ANY($1::bigint[]) AND done_at IS NULL
        GROUP BY user_id, kind
        """,
        list(set(user_ids)),
    )
    acc: dict[int, dict[str, object]] = {
        u: {"open": 0, "urgent": 0, "overdue": 0, "by_kind": {}} for u in user_ids
    }
    for r in rows:
        c = acc[r["user_id"]]
        c["open"] = int(c["open"]) + r["n"]  # type: ignore[call-overload]
        c["urgent"] = int(c["urgent"]) + r["urgent"]  # type: ignore[call-overload]
        c["overdue"] = int(c["overdue"]) + r["overdue"]  # type: ignore[call-overload]
        c["by_kind"][r["kind"]] = r["n"]  # type: ignore[index]
    return {u: Counts(**v) for u, v in acc.items()}  # type: ignore[arg-type]


async def items(
    db: Executor,
    user_id: int,
    *,
    kind: str | None,
    done: bool,
    before: int | None,
    limit: int,
) -> list[Todo]:
    """Open items: urgent first, then by due time (none last), then newest; done ones newest
    first. `before` pages by id."""
    order = (
        "t.done_at DESC, t.id DESC"
        if done
        else "(t.urgency = 'urgent') DESC, t.due_at ASC NULLS LAST, t.id DESC"
    )
    rows = await db.fetch(
        f"SELECT {_COLS} FROM todos t LEFT JOIN users f ON f.id = t.from_id"
        " WHERE t.user_id = $1 AND ($2::text IS NULL OR t.kind = $2)"
        " AND (t.done_at IS NOT NULL) = $3 AND ($4::bigint IS NULL OR t.id < $4)"
        f" ORDER BY {order} LIMIT $5",
        user_id,
        kind,
        done,
        before,
        limit,
    )
    return [Todo(**dict(r)) for r in rows]


async def get(db: Executor, todo_id: int) -> Todo | None:
    row = await db.fetchrow(
        f"SELECT {_COLS} FROM todos t LEFT JOIN users f ON f.id = t.from_id WHERE t.id = $1",
        todo_id,
    )
    return None if row is None else Todo(**dict(row))
