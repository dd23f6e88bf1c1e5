"""Commands about the connection itself rather than the office: acks, token renewal, idleness."""

from __future__ import annotations

from typing import Annotated

import msgspec

from server.commands import CommandSet, Ctx, Input
from server.errors import AppError, bad_request

commands = CommandSet()


def _socket(ctx: Ctx):  # type: ignore[no-untyped-def]
    if ctx.conn is None:
        raise bad_request("this command needs a socket connection")
    return ctx.conn


class SyncAck(Input):
    seq: Annotated[int, msgspec.Meta(ge=0)]


@commands("sync.ack")
async def sync_ack(ctx: Ctx, p: SyncAck) -> dict[str, int]:
    """Cumulative: everything up to `seq` has reached this user (delivery tracking). A seq past
    what the stream holds acknowledges nothing that exists: refused, not echoed."""
    conn = _socket(ctx)
    if p.seq > conn.sent_seq and p.seq > await ctx.services.stream.head(ctx.user.id):
        raise bad_request(
            "seq is beyond the last event of your stream",
            [{"field": "seq", "message": "beyond the stream's head"}],
        )
    moved = await ctx.services.stream.ack(ctx.user.id, p.seq)
    return {"acked_seq": moved[1] if moved else p.seq}


class AuthRenew(Input):
    token: Annotated[str, msgspec.Meta(max_length=4096)]


@commands("auth.renew")
async def auth_renew(ctx: Ctx, p: AuthRenew) -> dict[str, float]:
    conn = _socket(ctx)
    claims = ctx.services.auth.decode(p.token)
    if claims.user_id != conn.user_id:
        raise AppError("forbidden", "the token belongs to another user")
    conn.token_exp = claims.exp
    conn.session_id = claims.session_id
    return {"expires_at": claims.exp}


class PresenceIdle(Input):
    idle: bool


@commands("presence.idle")
async def presence_idle(ctx: Ctx, p: PresenceIdle) -> dict[str, str]:
    conn = _socket(ctx)
    await ctx.services.hub.set_idle(conn, p.idle)
    return {"presence": (await ctx.services.hub.presence_anywhere([ctx.user.id]))[ctx.user.id]}
