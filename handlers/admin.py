"""Administration of people: cutting someone off (deactivation) and letting them back, a new
password, and the administrator's own view of everyone, deactivated people included.

A deactivated person keeps their row, so history still names them, but cannot sign in, their
tokens are refused and their sockets dropped on every node (the revocations are announced on the
bus after commit), and they are left out of the directory, the pickers, the board and fan-out."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from handlers.directory import require_admin, user_view
from server.auth import hash_password
from server.commands import CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, not_found
from storage import directory as q

commands = CommandSet()

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
