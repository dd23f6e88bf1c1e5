"""Administration of people: cutting someone off (deactivation) and letting them back, a new
password, the administrator's own view of everyone, deactivated people included, and the bulk
import of the organisation (departments and people, by POST /api/v1/admin/import or `liaison seed`).

A deactivated person keeps their row, so history still names them, but cannot sign in, their
tokens are refused and their sockets dropped on every node (the revocations are announced on the
bus after commit), and they are left out of the directory, the pickers, the board and fan-out."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from aiohttp import web

from handlers.directory import search_text
from server.auth import (
    ROLES,
    Auth,
    hash_password,
    is_phc_argon2,
    require_admin,
    user_view,
    verify_password,
)
from server.commands import CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, not_found, ok
from server.feature import Feature
from server.http import authenticate, envelope_response, read_body
from server.keys import SERVICES
from storage import auth as aq
from storage import directory as q

commands = CommandSet()
routes = web.RouteTableDef()

Password = Annotated[str, msgspec.Meta(min_length=6, max_length=200)]


def managed_view(m: q.ManagedUser) -> dict[str, Any]:
    return {
        **user_view(m.user),
        "deactivated_at": m.deactivated_at,
        "last_seen": m.last_seen,
    }


async def _managed(ctx: Ctx, user_id: str) -> q.ManagedUser:
    require_admin(ctx.user)
    found = await q.managed_user(ctx.db, int(user_id))
    if found is None:
        raise not_found("no such user")
    return found


class UsersList(Input):
    query: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    state: q.UserState = "all"
    before: Id | None = None
    limit: Limit = 100


@commands("admin.users.list")
async def users_list(ctx: Ctx, p: UsersList) -> dict[str, Any]:
    require_admin(ctx.user)
    found = await q.managed_users(
        ctx.db,
        query=p.query,
        state=p.state,
        before=int(p.before) if p.before else None,
        limit=p.limit,
    )
    return {"users": [managed_view(m) for m in found]}


class UserTarget(Input):
    user_id: Id


@commands("admin.users.deactivate")
async def deactivate(ctx: Ctx, p: UserTarget) -> dict[str, Any]:
    target = await _managed(ctx, p.user_id)
    if target.user.id == ctx.user.id:
        raise AppError("conflict", "administrators cannot deactivate themselves")
    async with ctx.transaction() as tx:
        changed = await q.set_deactivated(tx.conn, target.user.id, True)
        assert changed is not None  # users are never deleted
        # Every session ends with the deactivation, even one that was open when it started
        # (a retried deactivation ends whatever a crash left open).
        ended = await ctx.services.auth.revoke_users(tx.conn, [target.user.id], "deactivated")
        if target.deactivated_at is None:
            await q.audit(tx.conn, ctx.user.id, "user.deactivate", target.user.id, {})
    await ctx.services.auth.announce_revoked(ended)
    return {"user": managed_view(changed)}


@commands("admin.users.reactivate")
async def reactivate(ctx: Ctx, p: UserTarget) -> dict[str, Any]:
    target = await _managed(ctx, p.user_id)
    async with ctx.transaction() as tx:
        changed = await q.set_deactivated(tx.conn, target.user.id, False)
        assert changed is not None
        if target.deactivated_at is not None:
            await q.audit(tx.conn, ctx.user.id, "user.reactivate", target.user.id, {})
    return {"user": managed_view(changed)}


class ResetPassword(Input):
    user_id: Id
    password: Password


@commands("admin.users.reset_password")
async def reset_password(ctx: Ctx, p: ResetPassword) -> dict[str, Any]:
    target = await _managed(ctx, p.user_id)
    if not p.password.strip():
        raise bad_request("the password is blank", [{"field": "password", "message": "blank"}])
    phc = await asyncio.to_thread(hash_password, p.password)
    async with ctx.transaction() as tx:
        await q.set_password_hash(tx.conn, target.user.id, phc)
        # Whoever signed in with the old password is signed out, on every node.
        ended = await ctx.services.auth.revoke_users(
            tx.conn, [target.user.id], "password reset by an administrator"
        )
        await q.audit(tx.conn, ctx.user.id, "user.reset_password", target.user.id, {})
    await ctx.services.auth.announce_revoked(ended)
    return {"user": managed_view(target)}


# --- organisation import ----------------------------------------------------------------------
# An organisation of 10,000 users with password hashes is about 3 MB of JSON.
IMPORT_MAX_BYTES = 16 * 1024 * 1024
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


@routes.post("/api/v1/admin/import")
async def admin_import(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user, _ = await authenticate(request)
    require_admin(user)
    # 10,000 users are a few megabytes: this endpoint has its own, larger limit, and reads
    # nothing before it knows the caller is an administrator.
    raw = await read_body(request, IMPORT_MAX_BYTES)
    return envelope_response(ok(await import_organisation(services.pool, raw, auth=services.auth)))


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


feature = Feature("admin", commands=commands, routes=routes)
