"""Sessions and refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor
from storage.records import SessionRow


class SpendResult(msgspec.Struct, frozen=True):
    """The outcome of presenting a refresh token."""

    session_id: str
    user_id: int
    reused: bool  # the token had been spent already: a thief or a replay
    revoked: bool
    expired: bool


async def password_hash(db: Executor, account: str) -> tuple[int, str | None] | None:
    """The account's id and hash; a deactivated account has none, so it cannot sign in."""
    row = await db.fetchrow(
        "SELECT id, password_hash FROM users WHERE account = $1 AND deactivated_at IS NULL",
        account,
    )
    return (row["id"], row["password_hash"]) if row else None


async def create_session(
    conn: asyncpg.Connection, session_id: str, user_id: int, token_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute("INSERT INTO sessions (id, user_id) VALUES ($1, $2)", session_id, user_id)
    await add_refresh_token(conn, session_id, token_hash, expires_at)


async def add_refresh_token(
    conn: asyncpg.Connection, session_id: str, token_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        session_id,
        expires_at,
    )
    await conn.execute("UPDATE sessions SET refreshed_at = now() WHERE id = $1", session_id)


async def spend_refresh_token(conn: asyncpg.Connection, token_hash: bytes) -> SpendResult | None:
    """Mark a refresh token spent (locking it, so two concurrent uses cannot both win). A
    deactivated user's session counts as revoked, whatever the session row says."""
    row = await conn.fetchrow(
        "SELECT t.session_id, t.spent_at, t.expires_at < now() AS expired,"
        " s.user_id, COALESCE(s.revoked_at, u.deactivated_at) AS revoked_at"
        " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id"
        " JOIN users u ON u.id = s.user_id"
        " WHERE t.token_hash = $1 FOR UPDATE OF t, s",
        token_hash,
    )
    if row is None:
        return None
    reused = row["spent_at"] is not None
    if not reused:
        await conn.execute(
            "UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1", token_hash
        )
    return SpendResult(
        row["session_id"], row["user_id"], reused, row["revoked_at"] is not None, row["expired"]
    )


async def revoke_session(db: Executor, session_id: str, reason: str) -> bool:
    status = await db.execute(
        "UPDATE sessions SET revoked_at = now(), revoke_reason = $2"
        " WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        reason,
    )
    return status.endswith(" 1")


async def revoke_user_sessions(
    db: Executor, user_ids: Sequence[int], reason: str, live_within_s: float
) -> list[str]:
    """Revoke every open session of these users in one statement. Returns those refreshed within
    `live_within_s`: only they can still hold an unexpired access token or a live socket."""
    rows = await db.fetch(
        "UPDATE sessions SET revoked_at = now(), revoke_reason = $2"
        " WHERE user_id = ANY($1::bigint[]) AND revoked_at IS NULL"
        " RETURNING id, refreshed_at > now() - make_interval(secs => $3) AS live",
        list(user_ids),
        reason,
        float(live_within_s),
    )
    return [r["id"] for r in rows if r["live"]]


async def get_session(db: Executor, session_id: str) -> SessionRow | None:
    row = await db.fetchrow(
        "SELECT id, user_id, revoked_at FROM sessions WHERE id = $1", session_id
    )
    return SessionRow(row["id"], row["user_id"], row["revoked_at"]) if row else None


async def revoked_since(db: Executor, since: datetime) -> list[str]:
    rows = await db.fetch("SELECT id FROM sessions WHERE revoked_at >= $1", since)
    return [r["id"] for r in rows]
