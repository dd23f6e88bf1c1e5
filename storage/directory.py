"""Departments and users: lookups, search, authority, and the bulk import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from storage.pool import Executor
from storage.records import Department, User

_USER_COLS = (
    "u.id, u.account, u.name, u.department_id, u.title, u.phone, u.email, u.roles, u.supervisor_id"
)
# Deactivated people keep their rows (history names them) but are nobody to look up, pick,
# sign in as or send to: every lookup of a live user carries this condition.
_ACTIVE = "u.deactivated_at IS NULL"


class Recipient(msgspec.Struct, frozen=True):
    id: int
    name: str
    phone: str | None
    email: str | None


class ManagedUser(msgspec.Struct, frozen=True):
    """A user as the administrator sees them: deactivated ones too."""

    user: User
    deactivated_at: datetime | None
    last_seen: datetime | None


def _user(r: asyncpg.Record) -> User:
    return User(
        r["id"],
        r["account"],
        r["name"],
        r["department_id"],
        r["title"],
        r["phone"],
        r["email"],
        tuple(r["roles"]),
        r["supervisor_id"],
    )


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def get_user(db: Executor, user_id: int) -> User | None:
    """An active user (a deactivated one is None: their tokens and sockets are refused)."""
    row = await db.fetchrow(
        f"SELECT {_USER_COLS} FROM users u WHERE u.id = $1 AND {_ACTIVE}", user_id
    )
    return _user(row) if row else None


async def user_by_phone(db: Executor, phone: str) -> int | None:
    """Whose phone this is; a deactivated person's SMS answer nothing."""
    return await db.fetchval(
        "SELECT id FROM users WHERE (phone = $1 OR phone = $2) AND deactivated_at IS NULL"
        " ORDER BY id LIMIT 1",
        phone,
        phone.removeprefix("+86"),
    )


async def users_by_ids(db: Executor, ids: Sequence[int]) -> list[User]:
    """The active ones among these users."""
    rows = await db.fetch(
        f"SELECT {_USER_COLS} FROM users u WHERE u.id = ANY($1::bigint[]) AND {_ACTIVE}"
        " ORDER BY u.id",
        list(ids),
    )
    return [_user(r) for r in rows]


async def departments(db: Executor) -> list[Department]:
    rows = await db.fetch("SELECT id, key, name, parent_id FROM departments ORDER BY sort, id")
    return [Department(r["id"], r["key"], r["name"], r["parent_id"]) for r in rows]


async def department_exists(db: Executor, department_id: int) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM departments WHERE id = $1", department_id))


def _user_filter(
    department_id: int | None, query: str | None, before: int | None
) -> tuple[list[str], list[object]]:
    """Directory search's conditions (over `users u` joined to `departments d`) and arguments."""
    conds: list[str] = []
    args: list[object] = []
    if department_id is not None:
        args.append(department_id)
        conds.append(f"u.department_id = ${len(args)}")
    if query:
        args.append(_like(query.strip().lower()))
        n = len(args)
        conds.append(f"(u.search_text LIKE ${n} OR lower(d.name) LIKE ${n})")
    if before is not None:
        args.append(before)
        conds.append(f"u.id < ${len(args)}")
    return conds, args


async def search_users(
    db: Executor, *, department_id: int | None, query: str | None, before: int | None, limit: int
) -> list[User]:
    conds, args = _user_filter(department_id, query, before)
    where = " AND ".join([*conds, _ACTIVE])
    args.append(limit)
    rows = await db.fetch(
        f"SELECT {_USER_COLS} FROM users u LEFT JOIN departments d ON d.id = u.department_id"
        f" WHERE {where} ORDER BY u.id DESC LIMIT ${len(args)}",
        *args,
    )
    return [_user(r) for r in rows]


UserState = Literal["active", "deactivated", "all"]
_STATE_FILTER = {"active": _ACTIVE, "deactivated": "u.deactivated_at IS NOT NULL", "all": "TRUE"}


def _managed(r: asyncpg.Record) -> ManagedUser:
    return ManagedUser(_user(r), r["deactivated_at"], r["last_seen"])


async def managed_users(
    db: Executor, *, query: str | None, state: UserState, before: int | None, limit: int
) -> list[ManagedUser]:
    """Directory search for the administrator: deactivated people can be found here."""
    conds, args = _user_filter(None, query, before)
    where = " AND ".join([*conds, _STATE_FILTER[state]])
    args.append(limit)
    rows = await db.fetch(
        f"SELECT {_USER_COLS}, u.deactivated_at, u.last_seen"
        " FROM users u LEFT JOIN departments d ON d.id = u.department_id"
        f" WHERE {where} ORDER BY u.id DESC LIMIT ${len(args)}",
        *args,
    )
    return [_managed(r) for r in rows]


async def managed_user(db: Executor, user_id: int) -> ManagedUser | None:
    row = await db.fetchrow(
        f"SELECT {_USER_COLS}, u.deactivated_at, u.last_seen FROM users u WHERE u.id = $1",
        user_id,
    )
    return _managed(row) if row else None


async def set_deactivated(
    conn: asyncpg.Connection, user_id: int, deactivated: bool
) -> ManagedUser | None:
    """Deactivate (keeping the first time) or reactivate; None for an unknown user."""
    row = await conn.fetchrow(
        "UPDATE users u SET deactivated_at ="
        " CASE WHEN $2 THEN COALESCE(u.deactivated_at, now()) END"
        f" WHERE u.id = $1 RETURNING {_USER_COLS}, u.deactivated_at, u.last_seen",
        user_id,
        deactivated,
    )
    return _managed(row) if row else None


async def set_password_hash(conn: asyncpg.Connection, user_id: int, phc: str) -> bool:
    status = await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, phc)
    return status.endswith(" 1")


async def password_hashes(db: Executor, accounts: Sequence[str]) -> dict[str, str | None]:
    """The current hash of each of these accounts that exists."""
    rows = await db.fetch(
        "SELECT account, password_hash FROM users WHERE account = ANY($1::text[])", list(accounts)
    )
    return {r["account"]: r["password_hash"] for r in rows}


async def audit(
    db: Executor, actor_id: int, action: str, subject_id: int, details: dict[str, object]
) -> None:
    await db.execute(
        "INSERT INTO audit_log (actor_id, action, subject_id, details) VALUES ($1, $2, $3, $4::jsonb)",
        actor_id,
        action,
        subject_id,
        msgspec.json.encode(details),
    )


async def may_act_for(
    db: Executor, actor_id: int, target_id: int, *, delegates: bool = True
) -> bool:
    """Is the actor the target's leader (supervisor, or a leader over the target's department or
    one above it) or, with `delegates`, someone the target named as a delegate?"""
    return bool(
        await db.fetchval(
            """
            WITH RECURSIVE target AS (
                SELECT id, department_id, supervisor_id FROM users WHERE id = $2
            ), chain AS (
                SELECT d.id, d.parent_id FROM departments d JOIN target t ON d.id = t.department_id
                UNION
                SELECT d.id, d.parent_id FROM departments d JOIN chain c ON d.id = c.parent_id
            )
            SELECT EXISTS (SELECT 1 FROM target WHERE supervisor_id = $1)
                OR ($3 AND EXISTS (
                    SELECT 1 FROM delegates WHERE user_id = $2 AND delegate_id = $1))
                OR EXISTS (
                    SELECT 1 FROM users a JOIN chain c ON c.id = a.department_id
                    WHERE a.id = $1 AND 'leader' = ANY(a.roles) AND a.id <> $2
                )
            """,
            actor_id,
            target_id,
            delegates,
        )
    )


async def upsert_departments(
    conn: asyncpg.Connection, keys: list[str], names: list[str], parents: list[str | None]
) -> dict[str, int]:
    rows = await conn.fetch(
        "INSERT INTO departments (key, name, sort)"
        " SELECT k, n, o FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(k, n, o)"
        " ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, sort = EXCLUDED.sort"
        " RETURNING key, id",
        keys,
        names,
    )
    await conn.execute(
        "UPDATE departments d SET parent_id = p.id"
        " FROM unnest($1::text[], $2::text[]) AS t(k, pk)"
        " LEFT JOIN departments p ON p.key = t.pk"
        " WHERE d.key = t.k",
        keys,
        parents,
    )
    return {r["key"]: r["id"] for r in rows}


async def department_ids_by_key(db: Executor, keys: Sequence[str]) -> dict[str, int]:
    rows = await db.fetch("SELECT key, id FROM departments WHERE key = ANY($1::text[])", list(keys))
    return {r["key"]: r["id"] for r in rows}


async def department_cycle(conn: asyncpg.Connection) -> bool:
    """True when some department is its own ancestor (checked after an import, before commit)."""
    return bool(
        await conn.fetchval(
            """
            WITH RECURSIVE walk(start, id, depth) AS (
                SELECT id, parent_id, 1 FROM departments WHERE parent_id IS NOT NULL
                UNION ALL
                SELECT w.start, d.parent_id, w.depth + 1
                FROM walk w JOIN departments d ON d.id = w.id
                WHERE d.parent_id IS NOT NULL AND w.depth < 100
            )
            SELECT EXISTS (SELECT 1 FROM walk WHERE id = start)
            """
        )
    )


async def upsert_users(
    conn: asyncpg.Connection,
    *,
    accounts: list[str],
    names: list[str],
    department_ids: list[int],
    titles: list[str],
    phones: list[str | None],
    emails: list[str | None],
    roles: list[str],
    password_hashes: list[str | None],
    search_texts: list[str],
    supervisors: list[str | None],
) -> tuple[dict[str, int], list[int]]:
    """Upsert by account in one statement; roles come comma-joined (2-D arrays don't unnest).
    Returns the ids by account, and the existing users whose password hash this changed (the
    `old` CTE reads the rows as they were: every part of one statement shares its snapshot)."""
    rows = await conn.fetch(
        """
        WITH old AS (
            SELECT id, password_hash FROM users WHERE account = ANY($1::text[])
        ), up AS (
            INSERT INTO users (account, name, department_id, title, phone, email, roles,
                               password_hash, search_text)
            SELECT a, n, d, t, p, e, string_to_array(r, ','), h, s
            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                        $6::text[], $7::text[], $8::text[], $9::text[])
                AS x(a, n, d, t, p, e, r, h, s)
            ON CONFLICT (account) DO UPDATE SET
                name = EXCLUDED.name, department_id = EXCLUDED.department_id,
                title = EXCLUDED.title, phone = EXCLUDED.phone, email = EXCLUDED.email,
                roles = EXCLUDED.roles, search_text = EXCLUDED.search_text,
                password_hash = COALESCE(EXCLUDED.password_hash, users.password_hash)
            RETURNING account, id, password_hash
        )
        SELECT up.account, up.id,
               old.id IS NOT NULL AND old.password_hash IS DISTINCT FROM up.password_hash
                   AS password_changed
        FROM up LEFT JOIN old ON old.id = up.id
        """,
        accounts,
        names,
        department_ids,
        titles,
        phones,
        emails,
        roles,
        password_hashes,
        search_texts,
    )
    ids = {r["account"]: r["id"] for r in rows}
    changed = sorted(r["id"] for r in rows if r["password_changed"])
    await conn.execute(
        "UPDATE users u SET supervisor_id = s.id"
        " FROM unnest($1::text[], $2::text[]) AS t(a, sa)"
        " LEFT JOIN users s ON s.account = t.sa"
        " WHERE u.account = t.a",
        accounts,
        supervisors,
    )
    await conn.execute(
        "INSERT INTO streams (user_id) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
        list(ids.values()),
    )
    return ids, changed


async def accounts_exist(db: Executor, accounts: Sequence[str]) -> set[str]:
    rows = await db.fetch(
        "SELECT account FROM users WHERE account = ANY($1::text[])", list(accounts)
    )
    return {r["account"] for r in rows}


async def active_ids(db: Executor, ids: Sequence[int]) -> list[int]:
    """Those of `ids` who are active users, in the order given."""
    rows = await db.fetch(
        "SELECT id FROM users WHERE id = ANY($1::bigint[]) AND deactivated_at IS NULL", list(ids)
    )
    found = {r["id"] for r in rows}
    return [i for i in ids if i in found]


class SmsTarget(msgspec.Struct, frozen=True):
    user_id: int
    phone: str


async def sms_targets(db: Executor, user_ids: Sequence[int]) -> list[SmsTarget]:
    """Those of the users, active, with a phone, who have not turned SMS off."""
    rows = await db.fetch(
        "SELECT u.id AS user_id, u.phone FROM users u LEFT JOIN prefs p ON p.user_id = u.id"
        " WHERE u.id = ANY($1::bigint[]) AND u.phone IS NOT NULL AND u.deactivated_at IS NULL"
        " AND coalesce(p.sms_fallback, 'offline') <> 'off' ORDER BY u.id",
        list(user_ids),
    )
    return [SmsTarget(**dict(r)) for r in rows]


async def ids_by_account(db: Executor, accounts: Sequence[str]) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT account, id FROM users WHERE account = ANY($1::text[])", list(accounts)
    )
    return {r["account"]: r["id"] for r in rows}


async def touch_last_seen(db: Executor, user_ids: Sequence[int]) -> None:
    await db.execute(
        "UPDATE users SET last_seen = now() WHERE id = ANY($1::bigint[])", list(user_ids)
    )


async def ensure_admin(conn: asyncpg.Connection, account: str, phc: str) -> bool:
    """Create an administrator with this account unless the account exists; True if created."""
    user_id = await conn.fetchval(
        "INSERT INTO users (account, name, roles, password_hash, search_text)"
        " VALUES ($1, $1, '{staff,admin}', $2, lower($1)) ON CONFLICT (account) DO NOTHING"
        " RETURNING id",
        account,
        phc,
    )
    if user_id is not None:
        await conn.execute("INSERT INTO streams (user_id) VALUES ($1)", user_id)
    return user_id is not None


async def expand_recipients(
    db: Executor, user_ids: Sequence[int], department_ids: Sequence[int], exclude: int
) -> list[Recipient]:
    """People named, plus everyone in the departments named and the departments below them,
    but `exclude` (the sender)."""
    return (await expand_many(db, [(user_ids, department_ids, exclude)]))[0]


_NAMED = """
    SELECT t.i, u.id, u.name, u.phone, u.email
    FROM unnest($1::bigint[], $2::bigint[]) AS t(i, user_id) JOIN users u ON u.id = t.user_id
    WHERE u.deactivated_at IS NULL
"""


async def expand_many(
    db: Executor, requests: Sequence[tuple[Sequence[int], Sequence[int], int]]
) -> list[list[Recipient]]:
    """`expand_recipients` for several (user_ids, department_ids, exclude) in one statement;
    deactivated people are nobody's recipients (a named one is simply not found).
    A UNION, not an OR: with OR PostgreSQL reads every user for each request. Without any
    department, the people named alone: PostgreSQL plans the recursive statement afresh on
    every call, and that planning cost three times its execution (pg_stat_statements at 500
    pages/s, none of them to a department)."""
    named = [dict.fromkeys(users) for users, _, _ in requests]  # each person once, in order
    args = [[i for i, users in enumerate(named) for _ in users], [u for us in named for u in us]]
    if any(depts for _, depts, _ in requests):
        sql = f"""
        WITH RECURSIVE depts AS (
            SELECT t.i, d.id FROM unnest($3::bigint[], $4::bigint[]) AS t(i, dept_id)
            JOIN departments d ON d.id = t.dept_id
            UNION
            SELECT p.i, d.id FROM departments d JOIN depts p ON d.parent_id = p.id
        )
        {_NAMED}
        UNION
        SELECT p.i, u.id, u.name, u.phone, u.email
        FROM depts p JOIN users u ON u.department_id = p.id
        WHERE u.deactivated_at IS NULL
        ORDER BY 1, 2
        """
        args.append([i for i, (_, depts, _) in enumerate(requests) for _ in depts])
        args.append([d for _, depts, _ in requests for d in depts])
    else:
        sql = f"{_NAMED} ORDER BY 1, 2"
    out: list[list[Recipient]] = [[] for _ in requests]
    for r in await db.fetch(sql, *args):
        if r["id"] != requests[r["i"]][2]:
            out[r["i"]].append(Recipient(r["id"], r["name"], r["phone"], r["email"]))
    return out


async def existing_ids(db: Executor, table: str, ids: Sequence[int]) -> set[int]:
    """Which of these ids exist (for users: active ones, the only ones anyone may name)."""
    assert table in ("users", "departments")
    active = " AND deactivated_at IS NULL" if table == "users" else ""
    rows = await db.fetch(f"SELECT id FROM {table} WHERE id = ANY($1::bigint[]){active}", list(ids))
    return {r["id"] for r in rows}
