"""Approvals' SQL: definitions (versioned), instances, tasks, the trail, delegations, and who may
approve (supervisor chain, department head, role, named or picked people, administrators)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from storage.pool import Executor


class Definition(msgspec.Struct, frozen=True):
    key: str
    version: int
    name: str
    form: list[dict[str, Any]]
    steps: list[dict[str, Any]]


class Instance(msgspec.Struct, frozen=True):
    id: int
    key: str
    version: int
    applicant_id: int
    title: str
    form: dict[str, Any]
    picked: list[int]
    state: str
    step: int
    round: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    urged_at: datetime | None


class TaskRow(msgspec.Struct, frozen=True):
    id: int
    instance_id: int
    step: int
    round: int
    ord: int
    assignee_id: int
    on_behalf_of: int | None
    state: str
    created_at: datetime
    acted_at: datetime | None
    acted_by: int | None
    comment: str | None


class TrailRow(msgspec.Struct, frozen=True):
    seq: int
    at: datetime
    actor_id: int
    on_behalf_of: int | None
    action: str
    step: int
    comment: str
    hash: str


class Delegation(msgspec.Struct, frozen=True):
    id: int
    grantor_id: int
    delegate_id: int
    starts_at: datetime
    ends_at: datetime
    keys: list[str] | None
    revoked_at: datetime | None


def _rec(cls: Any, r: asyncpg.Record) -> Any:
    return cls(**dict(r))


# --- definitions ----------------------------------------------------------------------------------
async def definitions(db: Executor) -> list[Definition]:
    """The newest version of every definition."""
    rows = await db.fetch(
        "SELECT DISTINCT ON (key) key, version, name, form, steps FROM workflow_definitions"
        " ORDER BY key, version DESC"
    )
    return [_rec(Definition, r) for r in rows]


async def definition(db: Executor, key: str, version: int | None = None) -> Definition | None:
    row = await db.fetchrow(
        "SELECT key, version, name, form, steps FROM workflow_definitions"
        " WHERE key = $1 AND ($2::int IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
        key,
        version,
    )
    return None if row is None else _rec(Definition, row)


async def define(
    conn: asyncpg.Connection,
    key: str,
    name: str,
    form: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    created_by: int,
) -> int:
    """Store a new version (versions are never changed); returns its number."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('workflow_define:' || $1))", key)
    return int(
        await conn.fetchval(
            "INSERT INTO workflow_definitions (key, version, name, form, steps, created_by)"
            " SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5"
            " FROM workflow_definitions WHERE key = $1 RETURNING version",
            key,
            name,
            form,
            steps,
            created_by,
        )
    )


# --- instances and tasks --------------------------------------------------------------------------
_INSTANCE = (
    "id, key, version, applicant_id, title, form, picked, state, step, round, created_at,"
    " updated_at, finished_at, urged_at"
)
_TASK = (
    "id, instance_id, step, round, ord, assignee_id, on_behalf_of, state, created_at, acted_at,"
    " acted_by, comment"
)


async def create_instance(
    conn: asyncpg.Connection,
    d: Definition,
    applicant_id: int,
    title: str,
    form: dict[str, Any],
    picked: Sequence[int],
) -> Instance:
    row = await conn.fetchrow(
        "INSERT INTO workflow_instances (key, version, applicant_id, title, form, picked, state,"
        f" step, round) VALUES ($1, $2, $3, $4, $5, $6, 'running', -1, 0) RETURNING {_INSTANCE}",
        d.key,
        d.version,
        applicant_id,
        title,
        form,
        list(picked),
    )
    return _rec(Instance, row)


async def attach_files(conn: asyncpg.Connection, instance_id: int, file_ids: list[int]) -> None:
    await conn.execute(
        "INSERT INTO workflow_files (instance_id, file_id) SELECT $1, unnest($2::bigint[])"
        " ON CONFLICT DO NOTHING",
        instance_id,
        file_ids,
    )


async def instance(db: Executor, instance_id: int, *, lock: bool = False) -> Instance | None:
    row = await db.fetchrow(
        f"SELECT {_INSTANCE} FROM workflow_instances WHERE id = $1"
        + (" FOR UPDATE" if lock else ""),
        instance_id,
    )
    return None if row is None else _rec(Instance, row)


async def update_instance(
    conn: asyncpg.Connection,
    instance_id: int,
    *,
    state: str,
    step: int,
    round_: int,
    finished: bool,
    form: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "UPDATE workflow_instances SET state = $2, step = $3, round = $4, updated_at = now(),"
        " finished_at = CASE WHEN $5 THEN now() END, form = coalesce($6, form) WHERE id = $1",
        instance_id,
        state,
        step,
        round_,
        finished,
        form,
    )


async def mark_urged(conn: asyncpg.Connection, instance_id: int) -> None:
    await conn.execute("UPDATE workflow_instances SET urged_at = now() WHERE id = $1", instance_id)


async def tasks(db: Executor, instance_id: int) -> list[TaskRow]:
    rows = await db.fetch(
        f"SELECT {_TASK} FROM workflow_tasks WHERE instance_id = $1 ORDER BY id", instance_id
    )
    return [_rec(TaskRow, r) for r in rows]


async def task(db: Executor, task_id: int) -> TaskRow | None:
    row = await db.fetchrow(f"SELECT {_TASK} FROM workflow_tasks WHERE id = $1", task_id)
    return None if row is None else _rec(TaskRow, row)


async def open_tasks(
    conn: asyncpg.Connection,
    instance_id: int,
    new: Sequence[tuple[int, int, int, int, int | None]],
) -> list[TaskRow]:
    """Insert tasks (step, round, order, assignee, on behalf of)."""
    if not new:
        return []
    rows = await conn.fetch(
        "INSERT INTO workflow_tasks (instance_id, step, round, ord, assignee_id, on_behalf_of)"
        " SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::bigint[], $6::bigint[])"
        f" RETURNING {_TASK}",
        instance_id,
        [n[0] for n in new],
        [n[1] for n in new],
        [n[2] for n in new],
        [n[3] for n in new],
        [n[4] for n in new],
    )
    return [_rec(TaskRow, r) for r in rows]


async def close_tasks(
    conn: asyncpg.Connection,
    states: Mapping[int, str],
    acted: tuple[int, int, str] | None,
) -> None:
    """Set tasks' new states; `acted` = (task, who acted, comment) for the task acted on."""
    if not states:
        return
    await conn.execute(
        "UPDATE workflow_tasks t SET state = s.state, acted_at = now(),"
        " acted_by = CASE WHEN t.id = $3::bigint THEN $4::bigint END,"
        " comment = CASE WHEN t.id = $3::bigint THEN $5::text END"
        " FROM unnest($1::bigint[], $2::text[]) AS s(id, state) WHERE t.id = s.id",
        list(states),
        list(states.values()),
        acted[0] if acted else None,
        acted[1] if acted else None,
        acted[2] if acted else None,
    )


async def move_open_tasks(
    conn: asyncpg.Connection, grantor_id: int, delegate_id: int
) -> list[TaskRow]:
    """A delegation ended: the delegate's open tasks held for the grantor go back to the
    grantor."""
    rows = await conn.fetch(
        "UPDATE workflow_tasks SET assignee_id = on_behalf_of, on_behalf_of = NULL"
        " WHERE state = 'open' AND assignee_id = $2 AND on_behalf_of = $1"
        f" RETURNING {_TASK}",
        grantor_id,
        delegate_id,
    )
    return [_rec(TaskRow, r) for r in rows]


# --- the trail -------------------------------------------------------------------------------------
async def last_hash(conn: asyncpg.Connection, instance_id: int) -> tuple[int, str]:
    row = await conn.fetchrow(
        "SELECT seq, hash FROM workflow_trail WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1",
        instance_id,
    )
    return (0, "") if row is None else (row["seq"], row["hash"])


async def append_trail(
    conn: asyncpg.Connection, instance_id: int, rows: Sequence[TrailRow]
) -> None:
    await conn.executemany(
        "INSERT INTO workflow_trail (instance_id, seq, at, actor_id, on_behalf_of, action, step,"
        " comment, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            (
                instance_id,
                r.seq,
                r.at,
                r.actor_id,
                r.on_behalf_of,
                r.action,
                r.step,
                r.comment,
                r.hash,
            )
            for r in rows
        ],
    )


async def trail(db: Executor, instance_id: int) -> list[TrailRow]:
    rows = await db.fetch(
        "SELECT seq, at, actor_id, on_behalf_of, action, step, comment, hash FROM workflow_trail"
        " WHERE instance_id = $1 ORDER BY seq",
        instance_id,
    )
    return [_rec(TrailRow, r) for r in rows]


# --- lists -----------------------------------------------------------------------------------------
async def mine(db: Executor, user_id: int, before: int | None, limit: int) -> list[Instance]:
    rows = await db.fetch(
        f"SELECT {_INSTANCE} FROM workflow_instances WHERE applicant_id = $1"
        " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        user_id,
        before,
        limit,
    )
    return [_rec(Instance, r) for r in rows]


async def with_tasks_of(
    db: Executor, user_id: int, open_: bool, before: int | None, limit: int
) -> list[tuple[Instance, TaskRow]]:
    """Instances where the user has (open_) an open task or (not open_) had one closed, with the
    task, newest task first."""
    tcols = [c.strip() for c in _TASK.split(",")]
    icols = [c.strip() for c in _INSTANCE.split(",")]
    rows = await db.fetch(
        "SELECT "
        + ", ".join([f"t.{c} AS t_{c}" for c in tcols] + [f"i.{c} AS i_{c}" for c in icols])
        + " FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id"
        " WHERE (t.assignee_id = $1 OR t.on_behalf_of = $1)"
        " AND (t.state = 'open') = $2 AND ($3::bigint IS NULL OR t.id < $3)"
        " ORDER BY t.id DESC LIMIT $4",
        user_id,
        open_,
        before,
        limit,
    )
    return [
        (
            Instance(**{c: r[f"i_{c}"] for c in icols}),
            TaskRow(**{c: r[f"t_{c}"] for c in tcols}),
        )
        for r in rows
    ]


async def had_task(db: Executor, instance_id: int, user_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM workflow_tasks WHERE instance_id = $1"
            " AND (assignee_id = $2 OR on_behalf_of = $2))",
            instance_id,
            user_id,
        )
    )


# --- who approves ----------------------------------------------------------------------------------
class Approvers(msgspec.Struct, frozen=True):
    candidates: list[list[int]]  # per step, in order
    admins: list[int]
    delegations: dict[int, int]  # grantor -> delegate, in force for this definition now


async def approvers(
    db: Executor,
    applicant_id: int,
    steps: Sequence[dict[str, Any]],
    picked: Sequence[int],
    key: str,
    at: datetime,
) -> Approvers:
    """Who may approve each step, the administrators, and the delegations in force among them,
    in one statement: the supervisor `level` up the chain; the department head (the leaders of
    the applicant's department, or of the nearest one above that has a leader other than the
    applicant); everyone with a role; named people; the people the applicant picked. Only
    active people; named and picked ones in the order given."""
    kinds = [str(s["approvers"]["kind"]) for s in steps]
    named = [
        (i, int(u), n)
        for i, s in enumerate(steps)
        if s["approvers"]["kind"] == "users"
        for n, u in enumerate(s["approvers"].get("user_ids", []))
    ]
    rows = await db.fetch(
        """
        WITH RECURSIVE chain(id, up, n) AS (
            SELECT id, supervisor_id, 0 FROM users WHERE id = $1
            UNION ALL
            SELECT u.id, u.supervisor_id, c.n + 1 FROM users u JOIN chain c ON u.id = c.up
            WHERE c.n < 5
        ), up(id, parent_id, n) AS (
            SELECT d.id, d.parent_id, 0 FROM departments d
            JOIN users u ON u.department_id = d.id WHERE u.id = $1
            UNION ALL
            SELECT d.id, d.parent_id, up.n + 1 FROM departments d JOIN up ON d.id = up.parent_id
            WHERE up.n < 20
        ), heads AS (
            SELECT up.n, u.id FROM up JOIN users u ON u.department_id = up.id
            WHERE 'leader' = ANY(u.roles) AND u.id <> $1 AND u.deactivated_at IS NULL
        ), steps AS (
            SELECT * FROM unnest($2::int[], $3::text[], $4::int[], $5::text[])
                AS s(i, kind, level, role)
        ), cand AS (
            SELECT s.i, c.id AS user_id, 0::bigint AS ord FROM steps s
            JOIN chain c ON s.kind = 'supervisor' AND c.n = s.level
            UNION ALL
            SELECT s.i, h.id, h.id FROM steps s
            JOIN heads h ON s.kind = 'department_head' AND h.n = (SELECT min(n) FROM heads)
            UNION ALL
            SELECT s.i, u.id, u.id FROM steps s
            JOIN users u ON s.kind = 'role' AND s.role = ANY(u.roles)
            UNION ALL
            SELECT x.i, x.id, x.n FROM unnest($6::int[], $7::bigint[], $8::bigint[]) AS x(i, id, n)
            UNION ALL
            SELECT s.i, x.id, x.n FROM steps s
            JOIN unnest($9::bigint[]) WITH ORDINALITY AS x(id, n) ON s.kind = 'picked'
            UNION ALL
            SELECT -1, u.id, u.id FROM users u WHERE 'admin' = ANY(u.roles)
        ), active AS (
            SELECT c.* FROM cand c JOIN users u ON u.id = c.user_id AND u.deactivated_at IS NULL
        ), dels AS (
            SELECT DISTINCT ON (grantor_id) grantor_id, delegate_id FROM delegations
            WHERE grantor_id IN (SELECT user_id FROM active) AND revoked_at IS NULL
              AND starts_at <= $10 AND ends_at > $10 AND (keys IS NULL OR $11 = ANY(keys))
            ORDER BY grantor_id, id DESC
        )
        SELECT 'c' AS what, i, user_id, ord FROM active
        UNION ALL
        SELECT 'd', NULL, grantor_id, delegate_id FROM dels
        ORDER BY what, i, ord
        """,
        applicant_id,
        list(range(len(steps))),
        kinds,
        [int(s["approvers"].get("level", 1)) for s in steps],
        [s["approvers"].get("role") for s in steps],
        [n[0] for n in named],
        [n[1] for n in named],
        [n[2] for n in named],
        list(picked),
        at,
        key,
    )
    candidates: list[list[int]] = [[] for _ in steps]
    admins: list[int] = []
    delegations: dict[int, int] = {}
    for r in rows:
        if r["what"] == "d":
            delegations[r["user_id"]] = r["ord"]
        elif r["i"] < 0:
            admins.append(r["user_id"])
        elif r["user_id"] not in candidates[r["i"]]:
            candidates[r["i"]].append(r["user_id"])
    return Approvers(candidates, admins, delegations)


# --- delegations -----------------------------------------------------------------------------------
_DELEGATION = "id, grantor_id, delegate_id, starts_at, ends_at, keys, revoked_at"


async def grant(
    conn: asyncpg.Connection,
    grantor_id: int,
    delegate_id: int,
    starts_at: datetime,
    ends_at: datetime,
    keys: Sequence[str] | None,
) -> Delegation:
    row = await conn.fetchrow(
        "INSERT INTO delegations (grantor_id, delegate_id, starts_at, ends_at, keys)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {_DELEGATION}",
        grantor_id,
        delegate_id,
        starts_at,
        ends_at,
        list(keys) if keys is not None else None,
    )
    return _rec(Delegation, row)


async def delegates_back(
    db: Executor, grantor_id: int, delegate_id: int, starts_at: datetime, ends_at: datetime
) -> bool:
    """Whether the delegate already delegates to the grantor in an overlapping window (a
    cycle)."""
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM delegations WHERE grantor_id = $2 AND delegate_id = $1"
            " AND revoked_at IS NULL AND starts_at < $4 AND ends_at > $3)",
            grantor_id,
            delegate_id,
            starts_at,
            ends_at,
        )
    )


async def delegation(db: Executor, delegation_id: int, *, lock: bool = False) -> Delegation | None:
    row = await db.fetchrow(
        f"SELECT {_DELEGATION} FROM delegations WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        delegation_id,
    )
    return None if row is None else _rec(Delegation, row)


async def revoke(conn: asyncpg.Connection, delegation_id: int) -> None:
    await conn.execute(
        "UPDATE delegations SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        delegation_id,
    )


async def delegations_of(db: Executor, user_id: int) -> list[Delegation]:
    rows = await db.fetch(
        f"SELECT {_DELEGATION} FROM delegations WHERE grantor_id = $1 OR delegate_id = $1"
        " ORDER BY id DESC LIMIT 100",
        user_id,
    )
    return [_rec(Delegation, r) for r in rows]
