"""Idempotency keys: a create claims (user, command, client_msg_id) in its own transaction, and a
retry of the same key gets the answer stored with the claim instead of creating again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from storage.pool import Executor, Params


class Key(NamedTuple):
    user_id: int
    command: str
    client_msg_id: str


def _columns(keys: Sequence[Key]) -> tuple[list[int], list[str], list[str]]:
    """Keys as the three arrays the statements unnest."""
    return (
        [k.user_id for k in keys],
        [k.command for k in keys],
        [k.client_msg_id for k in keys],
    )


def insert_sql(p: Params, keys: Sequence[Key], answers: Sequence[bytes | None]) -> str:
    """Claim every key with its answer: an INSERT that fails on a key claimed before (also a CTE
    of a larger statement, which then fails as a whole: see `claimed_before`)."""
    users, commands, client_ids = _columns(keys)
    return (
        "INSERT INTO idempotency (user_id, command, client_msg_id, answer) SELECT * FROM unnest("
        f"{p(users, 'bigint[]')}, {p(commands, 'text[]')}, {p(client_ids, 'text[]')},"
        f" {p(list(answers), 'jsonb[]')})"
    )


def claimed_before(exc: asyncpg.UniqueViolationError) -> bool:
    """Whether `insert_sql` failed because one of its keys was claimed before."""
    return exc.constraint_name == "idempotency_pkey"


async def claim(
    conn: asyncpg.Connection, keys: Sequence[Key], answers: Sequence[bytes | None]
) -> list[bool]:
    """Claim each key with its answer (None: stored later by `store_answer`); a key claimed before,
    or by a concurrent transaction that commits, is not claimed again. One statement for all."""
    p = Params(1)
    sql = insert_sql(p, keys, answers)
    rows = await conn.fetch(
        sql + " ON CONFLICT DO NOTHING RETURNING user_id, command, client_msg_id", *p.args
    )
    won = {Key(r["user_id"], r["command"], r["client_msg_id"]) for r in rows}
    return [k in won for k in keys]


async def store_answer(conn: asyncpg.Connection, key: Key, answer: bytes) -> None:
    await conn.execute(
        "UPDATE idempotency SET answer = $4::jsonb"
        " WHERE user_id = $1 AND command = $2 AND client_msg_id = $3",
        *key,
        answer,
    )


async def answers(db: Executor, keys: Sequence[Key]) -> dict[Key, Any]:
    """The stored answers of those keys that were claimed and committed."""
    rows = await db.fetch(
        "SELECT i.user_id, i.command, i.client_msg_id, i.answer FROM idempotency i"
        " JOIN unnest($1::bigint[], $2::text[], $3::text[]) AS k(user_id, command, client_msg_id)"
        " USING (user_id, command, client_msg_id)",
        *_columns(keys),
    )
    return {Key(r["user_id"], r["command"], r["client_msg_id"]): r["answer"] for r in rows}
