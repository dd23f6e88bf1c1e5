"""Directory: departments, people, search (Chinese names, pinyin and initials too), and the
admin's bulk import of the organisation."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from pypinyin import Style, lazy_pinyin

from server.auth import Auth, hash_password, is_phc_argon2, verify_password
from server.commands import CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, not_found
from server.events import UserRef, WhereaboutsView
from server.services import Services
from storage import auth as aq
from storage import directory as q
from storage import presence as pq
from storage.records import User, Whereabouts

commands = CommandSet()

ROLES = ("staff", "leader", "admin")


def user_ref(user: User) -> UserRef:
    return UserRef(str(user.id), user.name)


def whereabouts_view(w: Whereabouts) -> WhereaboutsView:
    set_by = UserRef(str(w.set_by), w.set_by_name or "") if w.set_by is not None else None
    return WhereaboutsView(w.status, w.note, w.location, w.until, set_by, w.set_at)


def search_text(name: str, account: str, phone: str | None, email: str | None) -> str:
    """What directory search matches: the name, its pinyin with and without spaces and its
    initials (so 'wangming', 'wang ming' and 'wm' all find 王明), account, phone and e-mail."""
    syllables = lazy_pinyin(name, errors="ignore")
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore"))
    parts = [
        name,
        account,
        "".join(syllables),
        " ".join(syllables),
        initials,
        phone or "",
        email or "",
    ]
    return " | ".join(p for p in parts if p).lower()


# --- commands ------------------------------------------------------------------------------
class Departments(Input):
    pass


@commands("directory.departments")
async def departments(ctx: Ctx, p: Departments) -> dict[str, Any]:
    rows = await q.departments(ctx.db)
    return {
        "departments": [
            {
                "id": str(d.id),
                "name": d.name,
                "parent_id": str(d.parent_id) if d.parent_id else None,
            }
            for d in rows
        ]
    }


class Users(Input):
    department_id: Id | None = None
    query: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    before: Id | None = None
    limit: Limit = 100


@commands("directory.users")
async def users(ctx: Ctx, p: Users) -> dict[str, Any]:
    found = await q.search_users(
        ctx.db,
        department_id=int(p.department_id) if p.department_id else None,
        query=p.query,
        before=int(p.before) if p.before else None,
        limit=p.limit,
    )
    presence = ctx.services.hub.presence_of(u.id for u in found)
    wheres = await pq.whereabouts_of(ctx.db, [u.id for u in found])
    return {
        "users": [
            {
                "id": str(u.id),
                "account": u.account,
                "name": u.name,
                "department_id": str(u.department_id) if u.department_id else None,
                "title": u.title,
                "phone": u.phone,
                "email": u.email,
                "presence": presence[u.id],
                "whereabouts": whereabouts_view(wheres[u.id]),
            }
            for u in found
        ]
    }


def _named(to: list[str], departments: list[str]) -> tuple[list[int], list[int]]:
    user_ids = sorted({int(i) for i in to})
    dept_ids = sorted({int(i) for i in departments})
    if not user_ids and not dept_ids:
        raise bad_request(
            "no recipients", [{"field": "to", "message": "name people or departments"}]
        )
    return user_ids, dept_ids


async def _check_departments(db: Any, dept_ids: list[int]) -> None:
    if dept_ids and len(await q.existing_ids(db, "departments", dept_ids)) != len(dept_ids):
        raise not_found("no such department")


async def checked_recipients(
    db: Any, to: list[str], departments: list[str]
) -> tuple[list[int], list[int]]:
    """People and departments named as recipients: at least one, and all of them real."""
    user_ids, dept_ids = _named(to, departments)
    if user_ids and len(await q.existing_ids(db, "users", user_ids)) != len(user_ids):
        raise not_found("no such user")
    await _check_departments(db, dept_ids)
    return user_ids, dept_ids


async def resolved_recipients(
    services: Services, to: list[str], departments: list[str], sender: int
) -> tuple[list[int], list[q.Recipient]]:
    """`checked_recipients`'s departments, and who the recipients are: the people named and
    everyone in the departments (and those below), but the sender; whether the people named
    exist is answered by the same query, shared by every send at about the same moment."""
    user_ids, dept_ids = _named(to, departments)
    await _check_departments(services.pool, dept_ids)
    recipients = await services.batcher(_expand_batch)((user_ids, dept_ids, sender))
    found = {r.id for r in recipients} | {sender}
    if any(u not in found for u in user_ids):
        raise not_found("no such user")
    return dept_ids, recipients


async def _expand_batch(
    services: Services, requests: list[tuple[list[int], list[int], int]]
) -> list[list[q.Recipient]]:
    return await q.expand_many(services.pool, requests)


def user_view(user: User) -> dict[str, Any]:
    """The signed-in user as login returns it."""
    return {
        "id": str(user.id),
        "account": user.account,
        "name": user.name,
        "department_id": str(user.department_id) if user.department_id else None,
        "title": user.title,
        "phone": user.phone,
        "email": user.email,
        "roles": list(user.roles),
        "supervisor_id": str(user.supervisor_id) if user.supervisor_id else None,
    }


# --- import ---------------------------------------------------------------------------------
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ImportDepartment(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    key: Key
    name: Name
    parent_key: Key | None = None


class ImportUser(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    account: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    name: Name
    department_key: Key
    title: Annotated[str, msgspec.Meta(max_length=100)] = ""
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{5,20}$")] | None = None
    email: Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    password: Annotated[str, msgspec.Meta(min_length=6, max_length=200)] | None = None
    password_hash: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    roles: list[str] = msgspec.field(default_factory=lambda: ["staff"])
    supervisor_account: str | None = None


class ImportBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    departments: Annotated[list[ImportDepartment], msgspec.Meta(max_length=10_000)] = []
    users: Annotated[list[ImportUser], msgspec.Meta(max_length=20_000)] = []


def _check_import(body: ImportBody, known_departments: set[str], known_accounts: set[str]) -> None:
    problems: list[dict[str, str]] = []
    dept_keys = {d.key for d in body.departments}
    if len(dept_keys) != len(body.departments):
        problems.append({"field": "departments", "message": "duplicate department key"})
    for i, d in enumerate(body.departments):
        if d.parent_key is not None and d.parent_key not in dept_keys | known_departments:
            problems.append({"field": f"departments[{i}].parent_key", "message": "unknown key"})
        if d.parent_key == d.key:
            problems.append({"field": f"departments[{i}].parent_key", "message": "own parent"})
    accounts = {u.account for u in body.users}
    if len(accounts) != len(body.users):
        problems.append({"field": "users", "message": "duplicate account"})
    for i, u in enumerate(body.users):
        if u.department_key not in dept_keys | known_departments:
            problems.append({"field": f"users[{i}].department_key", "message": "unknown key"})
        if u.supervisor_account and u.supervisor_account not in accounts | known_accounts:
            problems.append(
                {"field": f"users[{i}].supervisor_account", "message": "unknown account"}
            )
        if u.supervisor_account == u.account:
            problems.append(
                {"field": f"users[{i}].supervisor_account", "message": "own supervisor"}
            )
        if any(r not in ROLES for r in u.roles):
            problems.append(
                {"field": f"users[{i}].roles", "message": f"roles are {', '.join(ROLES)}"}
            )
        if u.password is not None and u.password_hash is not None:
            problems.append({"field": f"users[{i}]", "message": "give password or password_hash"})
        if u.password_hash is not None and not is_phc_argon2(u.password_hash):
            problems.append(
                {"field": f"users[{i}].password_hash", "message": "not an argon2 PHC string"}
            )
        if len(problems) > 50:
            break
    if problems:
        raise bad_request("the import has errors; nothing was changed", problems[:50])


async def import_organisation(pool: Any, raw: bytes, *, auth: Auth | None = None) -> dict[str, Any]:
    """Upsert departments by key and users by account, all in one transaction. A changed
    password ends that person's sessions in the same transaction; with `auth` (a running
    server) their tokens are refused and their sockets dropped on every node after commit."""
    try:
        body = msgspec.json.decode(raw, type=ImportBody)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise bad_request("invalid import", [{"field": "", "message": str(exc)}]) from None
    wanted_depts = {d.parent_key for d in body.departments if d.parent_key}
    wanted_depts |= {u.department_key for u in body.users}
    known_departments = set(await q.department_ids_by_key(pool, list(wanted_depts)))
    known_accounts = await q.accounts_exist(
        pool, [u.supervisor_account for u in body.users if u.supervisor_account]
    )
    _check_import(body, known_departments, known_accounts)
    current = await q.password_hashes(pool, [u.account for u in body.users if u.password])
    hashes = await _password_hashes(body.users, current)
    async with pool.acquire() as conn, conn.transaction():
        dept_ids = await q.upsert_departments(
            conn,
            [d.key for d in body.departments],
            [d.name for d in body.departments],
            [d.parent_key for d in body.departments],
        )
        if await q.department_cycle(conn):
            raise bad_request(
                "departments would form a cycle", [{"field": "departments", "message": "cycle"}]
            )
        all_depts = await q.department_ids_by_key(conn, [u.department_key for u in body.users])
        user_ids, changed = await q.upsert_users(
            conn,
            accounts=[u.account for u in body.users],
            names=[u.name for u in body.users],
            department_ids=[all_depts[u.department_key] for u in body.users],
            titles=[u.title for u in body.users],
            phones=[u.phone for u in body.users],
            emails=[u.email for u in body.users],
            roles=[",".join(dict.fromkeys(["staff", *u.roles])) for u in body.users],
            password_hashes=hashes,
            search_texts=[search_text(u.name, u.account, u.phone, u.email) for u in body.users],
            supervisors=[u.supervisor_account for u in body.users],
        )
        ended = await _end_sessions(conn, auth, changed)
    if auth is not None:
        await auth.announce_revoked(ended)
    return {
        "departments": {k: str(v) for k, v in dept_ids.items()},
        "users": {k: str(v) for k, v in user_ids.items()},
    }


async def _password_hashes(
    users: list[ImportUser], current: dict[str, str | None]
) -> list[str | None]:
    """Plain passwords are hashed off the event loop; PHC hashes pass through unchanged. A plain
    password the account already has keeps its hash (None: unchanged), so importing the same
    file again signs nobody out."""
    plain = [(i, u.account, u.password) for i, u in enumerate(users) if u.password is not None]
    out: list[str | None] = [u.password_hash for u in users]
    if plain:
        hashed = await asyncio.gather(
            *(asyncio.to_thread(_rehash, current.get(account), pw) for _, account, pw in plain)
        )
        for (i, _, _), h in zip(plain, hashed, strict=True):
            out[i] = h
    return out


def _rehash(current: str | None, password: str) -> str | None:
    if current is not None and verify_password(current, password):
        return None
    return hash_password(password)


async def _end_sessions(conn: Any, auth: Auth | None, user_ids: list[int]) -> list[str]:
    """Revoke the sessions of people whose password changed; those to announce after commit."""
    if not user_ids:
        return []
    reason = "password changed by import"
    if auth is None:
        # Nobody to tell (the CLI): the database alone refuses their refresh tokens, and a
        # server learns of the revocations when it next starts.
        await aq.revoke_user_sessions(conn, user_ids, reason, 0)
        return []
    return await auth.revoke_users(conn, user_ids, reason)


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise AppError("forbidden", "administrators only")
