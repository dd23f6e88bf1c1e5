"""Official documents' SQL (公文): the record, its files, numbering prefixes and counters, the
handling tasks of a received one, who may see one, and the boxes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from storage import archive as aq
from storage.pool import Executor
from storage.records import User


class Document(msgspec.Struct, frozen=True):
    id: int
    kind: str
    title: str
    drafter_id: int
    drafter_name: str
    department_id: int | None
    to_users: list[int]
    to_departments: list[int]
    from_org: str | None
    prefix: str | None
    state: str
    instance_id: int
    year: int | None
    seq: int | None
    number: str | None
    numbered_at: datetime | None
    circulation_id: int | None
    circulated_at: datetime | None
    archive_id: int | None
    archive_code: str | None
    filed_at: datetime | None
    instruction: str | None
    handling_at: datetime | None
    handled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    failed_step: str | None
    failure: str | None
    failed_at: datetime | None


class DocFile(msgspec.Struct, frozen=True):
    file_id: int
    name: str
    size: int
    content_type: str


class Prefix(msgspec.Struct, frozen=True):
    department_id: int | None
    prefix: str
    updated_at: datetime


class HandlingPart(msgspec.Struct, frozen=True):
    user_id: int
    name: str
    state: str
    percent: int
    note: str


class Handling(msgspec.Struct, frozen=True):
    department_id: int
    department_name: str
    task_id: int
    parts: list[HandlingPart]


_COLS = (
    "d.id, d.kind, d.title, d.drafter_id, u.name AS drafter_name, d.department_id, d.to_users,"
    " d.to_departments, d.from_org, d.prefix, d.state, d.instance_id, d.year, d.seq, d.number,"
    " d.numbered_at, d.circulation_id, d.circulated_at, d.archive_id, d.archive_code,"
    " d.filed_at, d.instruction, d.handling_at, d.handled_at, d.created_at, d.updated_at,"
    " d.failed_step, d.failure, d.failed_at"
)
_FROM = "documents d JOIN users u ON u.id = d.drafter_id"


def _doc(r: asyncpg.Record) -> Document:
    row: dict[str, Any] = dict(r)
    row["to_users"] = list(row["to_users"])
    row["to_departments"] = list(row["to_departments"])
    return Document(**row)


# --- prefixes -------------------------------------------------------------------------------------
async def prefix_for(db: Executor, department_id: int | None) -> str:
    """The prefix of this department, else of its nearest ancestor that has one, else the
    default."""
    return str(
        await db.fetchval(
            """
            WITH RECURSIVE up(id, parent_id, n) AS (
                SELECT id, parent_id, 0 FROM departments WHERE id = $1
                UNION ALL
                SELECT d.id, d.parent_id, up.n + 1 FROM departments d JOIN up ON d.id = up.parent_id
                WHERE up.n < 20
            )
            SELECT p.prefix FROM document_prefixes p LEFT JOIN up ON up.id = p.department_id
            WHERE up.id IS NOT NULL OR p.department_id IS NULL
            ORDER BY up.n NULLS LAST LIMIT 1
            """,
            department_id,
        )
    )


async def prefixes(db: Executor) -> list[Prefix]:
    rows = await db.fetch(
        "SELECT department_id, prefix, updated_at FROM document_prefixes"
        " ORDER BY department_id NULLS FIRST"
    )
    return [Prefix(**dict(r)) for r in rows]


async def prefix_known(db: Executor, prefix: str) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM document_prefixes WHERE prefix = $1", prefix))


async def set_prefix(
    conn: asyncpg.Connection, department_id: int | None, prefix: str | None, by: int
) -> None:
    """Set (or, with None, clear) a department's prefix, or the default's (department None; the
    default can be changed but not cleared)."""
    if department_id is None:
        assert prefix is not None
        await conn.execute(
            "UPDATE document_prefixes SET prefix = $1, updated_by = $2, updated_at = now()"
            " WHERE department_id IS NULL",
            prefix,
            by,
        )
    elif prefix is None:
        await conn.execute("DELETE FROM document_prefixes WHERE department_id = $1", department_id)
    else:
        await conn.execute(
            "INSERT INTO document_prefixes (department_id, prefix, updated_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (department_id) DO UPDATE SET prefix = EXCLUDED.prefix,"
            " updated_by = EXCLUDED.updated_by, updated_at = now()",
            department_id,
            prefix,
            by,
        )


# --- the record -----------------------------------------------------------------------------------
async def create(
    conn: asyncpg.Connection,
    *,
    kind: str,
    title: str,
    drafter_id: int,
    department_id: int | None,
    to_users: Sequence[int],
    to_departments: Sequence[int],
    from_org: str | None,
    prefix: str | None,
    instance_id: int,
    file_ids: Sequence[int],
) -> int:
    document_id = int(
        await conn.fetchval(
            "INSERT INTO documents (kind, title, drafter_id, department_id, to_users,"
            " to_departments, from_org, prefix, state, instance_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'approving', $9) RETURNING id",
            kind,
            title,
            drafter_id,
            department_id,
            list(to_users),
            list(to_departments),
            from_org,
            prefix,
            instance_id,
        )
    )
    await conn.execute(
        "INSERT INTO document_files (document_id, file_id, ord)"
        " SELECT $1, f, n FROM unnest($2::bigint[]) WITH ORDINALITY AS x(f, n)",
        document_id,
        list(file_ids),
    )
    return document_id


async def get(db: Executor, document_id: int, *, lock: bool = False) -> Document | None:
    row = await db.fetchrow(
        f"SELECT {_COLS} FROM {_FROM} WHERE d.id = $1" + (" FOR UPDATE OF d" if lock else ""),
        document_id,
    )
    return None if row is None else _doc(row)


async def by_instance(db: Executor, instance_id: int, *, lock: bool = False) -> Document | None:
    row = await db.fetchrow(
        f"SELECT {_COLS} FROM {_FROM} WHERE d.instance_id = $1"
        + (" FOR UPDATE OF d" if lock else ""),
        instance_id,
    )
    return None if row is None else _doc(row)


async def files(db: Executor, document_id: int) -> list[DocFile]:
    rows = await db.fetch(
        "SELECT f.id AS file_id, f.name, f.size, f.content_type FROM document_files x"
        " JOIN files f ON f.id = x.file_id WHERE x.document_id = $1 ORDER BY x.ord",
        document_id,
    )
    return [DocFile(**dict(r)) for r in rows]


async def set_state(conn: asyncpg.Connection, document_id: int, state: str) -> None:
    await conn.execute(
        "UPDATE documents SET state = $2, updated_at = now() WHERE id = $1", document_id, state
    )


async def set_departments(
    conn: asyncpg.Connection, document_id: int, department_ids: Sequence[int]
) -> None:
    await conn.execute(
        "UPDATE documents SET to_departments = $2, updated_at = now() WHERE id = $1",
        document_id,
        list(department_ids),
    )


async def number(conn: asyncpg.Connection, document_id: int, year: int) -> tuple[int, str] | None:
    """Give the document the next number of its prefix and year, unless it has one: the counter
    moves in the transaction that stores the number (no gap, no repeat)."""
    prefix = await conn.fetchval(
        "SELECT prefix FROM documents WHERE id = $1 AND number IS NULL AND prefix IS NOT NULL"
        " FOR UPDATE",
        document_id,
    )
    if prefix is None:
        return None
    seq = await aq.next_in_series(conn, "document_counters", prefix, year)
    row = await conn.fetchrow(
        "UPDATE documents SET year = $2, seq = $3,"
        " number = prefix || '〔' || $2::int || '〕' || $3::int || '号',"
        " numbered_at = now(), state = 'numbered', updated_at = now()"
        " WHERE id = $1 RETURNING seq, number",
        document_id,
        year,
        seq,
    )
    return int(row["seq"]), str(row["number"])


async def mark_circulated(
    conn: asyncpg.Connection, document_id: int, circulation_id: int | None
) -> None:
    await conn.execute(
        "UPDATE documents SET circulation_id = $2, circulated_at = now(), state = 'circulated',"
        " updated_at = now() WHERE id = $1 AND circulated_at IS NULL",
        document_id,
        circulation_id,
    )


async def mark_filed(
    conn: asyncpg.Connection, document_id: int, archive_id: int, code: str
) -> None:
    await conn.execute(
        "UPDATE documents SET archive_id = $2, archive_code = $3, filed_at = now(),"
        " state = 'filed', updated_at = now() WHERE id = $1 AND archive_id IS NULL",
        document_id,
        archive_id,
        code,
    )


async def mark_failed(
    conn: asyncpg.Connection, document_id: int, from_state: str, step: str, error: str
) -> bool:
    """A step that can never be done: the document waiting for it is `failed` (once)."""
    row = await conn.fetchval(
        "UPDATE documents SET state = 'failed', failed_step = $3, failure = $4,"
        " failed_at = now(), updated_at = now() WHERE id = $1 AND state = $2 RETURNING id",
        document_id,
        from_state,
        step,
        error[:2000],
    )
    return row is not None


async def mark_handling(
    conn: asyncpg.Connection, document_id: int, instruction: str, handled: bool
) -> None:
    """The leader's 批示 is in; the handling departments' tasks start (or, with none, a document
    for reading only, 阅件, is handled at once)."""
    await conn.execute(
        "UPDATE documents SET instruction = $2, handling_at = now(),"
        " handled_at = CASE WHEN $3 THEN now() END,"
        " state = CASE WHEN $3 THEN 'handled' ELSE 'handling' END, updated_at = now()"
        " WHERE id = $1 AND handling_at IS NULL",
        document_id,
        instruction,
        handled,
    )


async def mark_handled(conn: asyncpg.Connection, document_id: int) -> bool:
    """Handled once every part of every handling task is done (or handed on and done)."""
    row = await conn.fetchval(
        """
        UPDATE documents d SET handled_at = now(), state = 'handled', updated_at = now()
        WHERE d.id = $1 AND d.state = 'handling' AND NOT EXISTS (
            SELECT 1 FROM document_tasks t JOIN task_assignees p ON p.task_id = t.task_id
            WHERE t.document_id = d.id AND p.state IN ('open', 'in_progress')
        )
        RETURNING d.id
        """,
        document_id,
    )
    return row is not None


async def add_task(
    conn: asyncpg.Connection, document_id: int, department_id: int, task_id: int
) -> None:
    await conn.execute(
        "INSERT INTO document_tasks (document_id, department_id, task_id) VALUES ($1, $2, $3)",
        document_id,
        department_id,
        task_id,
    )


async def tasked_departments(db: Executor, document_id: int) -> set[int]:
    rows = await db.fetch(
        "SELECT department_id FROM document_tasks WHERE document_id = $1", document_id
    )
    return {r["department_id"] for r in rows}


async def by_task(db: Executor, task_id: int) -> int | None:
    value = await db.fetchval("SELECT document_id FROM document_tasks WHERE task_id = $1", task_id)
    return None if value is None else int(value)


async def handling(db: Executor, document_id: int) -> list[Handling]:
    rows = await db.fetch(
        """
        SELECT t.department_id, dp.name AS department_name, t.task_id,
               coalesce(jsonb_agg(jsonb_build_object('user_id', p.user_id, 'name', u.name,
                   'state', p.state, 'percent', p.percent, 'note', p.note)
                   ORDER BY p.user_id) FILTER (WHERE p.user_id IS NOT NULL), '[]') AS parts
        FROM document_tasks t
        JOIN departments dp ON dp.id = t.department_id
        LEFT JOIN task_assignees p ON p.task_id = t.task_id
        LEFT JOIN users u ON u.id = p.user_id
        WHERE t.document_id = $1
        GROUP BY t.department_id, dp.name, t.task_id
        ORDER BY t.department_id
        """,
        document_id,
    )
    return [
        Handling(
            r["department_id"],
            r["department_name"],
            r["task_id"],
            msgspec.convert(r["parts"], list[HandlingPart]),
        )
        for r in rows
    ]


async def heads(db: Executor, department_ids: Sequence[int]) -> dict[int, list[int]]:
    """Who handles for each department: its leaders, else those of its nearest ancestor that has
    any, else the administrators. Active people only."""
    rows = await db.fetch(
        """
        WITH RECURSIVE up(start, id, parent_id, n) AS (
            SELECT d.id, d.id, d.parent_id, 0 FROM departments d WHERE d.id = ANY($1::bigint[])
            UNION ALL
            SELECT up.start, d.id, d.parent_id, up.n + 1 FROM departments d
            JOIN up ON d.id = up.parent_id WHERE up.n < 20
        ), leaders AS (
            SELECT up.start, up.n, u.id FROM up JOIN users u ON u.department_id = up.id
            WHERE 'leader' = ANY(u.roles) AND u.deactivated_at IS NULL
        ), nearest AS (
            SELECT l.start, l.id FROM leaders l
            WHERE l.n = (SELECT min(n) FROM leaders m WHERE m.start = l.start)
        )
        SELECT s.start, coalesce(array_agg(n.id ORDER BY n.id) FILTER (WHERE n.id IS NOT NULL),
            (SELECT array_agg(a.id ORDER BY a.id) FROM users a
             WHERE 'admin' = ANY(a.roles) AND a.deactivated_at IS NULL)) AS ids
        FROM unnest($1::bigint[]) AS s(start) LEFT JOIN nearest n ON n.start = s.start
        GROUP BY s.start
        """,
        list(department_ids),
    )
    return {r["start"]: list(r["ids"] or []) for r in rows}


class Receipts(msgspec.Struct, frozen=True):
    unopened: int = 0
    opened: int = 0
    confirmed: int = 0


async def receipts(db: Executor, circulation_id: int) -> Receipts:
    rows = await db.fetch(
        "SELECT state, count(*) AS n FROM circulation_recipients WHERE circulation_id = $1"
        " GROUP BY state",
        circulation_id,
    )
    return Receipts(**{r["state"]: int(r["n"]) for r in rows})


# --- who sees what --------------------------------------------------------------------------------
# A document is seen by its drafter (registrar), whoever had a task on its approval, the
# recipients of its circulation, and the people of its handling tasks.
_SEES = """
    d.drafter_id = $2
    OR EXISTS (SELECT 1 FROM workflow_tasks t WHERE t.instance_id = d.instance_id
               AND $2 IN (t.assignee_id, t.on_behalf_of))
    OR EXISTS (SELECT 1 FROM circulation_recipients r
               WHERE r.circulation_id = d.circulation_id AND r.user_id = $2)
    OR EXISTS (SELECT 1 FROM document_tasks x JOIN tasks k ON k.id = x.task_id
               WHERE x.document_id = d.id AND (k.assigner_id = $2 OR EXISTS (
                   SELECT 1 FROM task_assignees p WHERE p.task_id = k.id AND p.user_id = $2)))
"""


async def may_see(db: Executor, document_id: int, user_id: int) -> bool:
    return bool(
        await db.fetchval(
            f"SELECT 1 FROM documents d WHERE d.id = $1 AND ({_SEES})", document_id, user_id
        )
    )


# The boxes: mine (drafted or registered by me), drafts (my issues still in approval),
# incoming (circulated to me, or received ones I handle), todo (waiting on me: an open
# approval task, or an unfinished part of a handling task).
_BOXES = {
    "mine": "d.drafter_id = $1",
    "drafts": "d.drafter_id = $1 AND d.kind = 'issue' AND d.state = 'approving'",
    "incoming": """(
        EXISTS (SELECT 1 FROM circulation_recipients r
                WHERE r.circulation_id = d.circulation_id AND r.user_id = $1)
        OR EXISTS (SELECT 1 FROM document_tasks x JOIN task_assignees p ON p.task_id = x.task_id
                   WHERE x.document_id = d.id AND p.user_id = $1))""",
    "todo": """(
        EXISTS (SELECT 1 FROM workflow_tasks t WHERE t.instance_id = d.instance_id
                AND t.state = 'open' AND $1 IN (t.assignee_id, t.on_behalf_of))
        OR EXISTS (SELECT 1 FROM document_tasks x JOIN task_assignees p ON p.task_id = x.task_id
                   WHERE x.document_id = d.id AND p.user_id = $1
                   AND p.state IN ('open', 'in_progress')))""",
}


async def listing(
    db: Executor, user_id: int, box: str, before: int | None, limit: int
) -> list[Document]:
    rows = await db.fetch(
        f"SELECT {_COLS} FROM {_FROM} WHERE ({_BOXES[box]}) AND ($2::bigint IS NULL OR d.id < $2)"
        " ORDER BY d.id DESC LIMIT $3",
        user_id,
        before,
        limit,
    )
    return [_doc(r) for r in rows]


async def people(db: Executor, user_ids: Sequence[int]) -> list[User]:
    """These users, deactivated ones too (a drafter who left still sends what was approved; a
    requester who left is still named in the registers), in id order."""
    rows = await db.fetch(
        "SELECT id, account, name, department_id, title, phone, email, roles, supervisor_id"
        " FROM users WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(user_ids),
    )
    return [User(**{**dict(r), "roles": tuple(r["roles"])}) for r in rows]


async def person(db: Executor, user_id: int) -> User | None:
    found = await people(db, [user_id])
    return found[0] if found else None
