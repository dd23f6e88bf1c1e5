"""The jobs table: deferred work claimed under a lease (see migrations/0006_jobs.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import msgspec

from storage.pool import Executor, Params


class Due(NamedTuple):
    """A job to set: `kind/key`, due at `due_at`, with its payload."""

    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]


class Claimed(NamedTuple):
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int  # this claim included
    run_at: datetime


def upsert_sql(p: Params, jobs: Sequence[Due]) -> str:
    """Set (or move) these jobs, as a statement or a CTE of a larger one; a job named twice: the
    last wins. Moving a job starts its tries afresh and takes it out of the dead letters."""
    last = list({(j.kind, j.key): j for j in jobs}.values())
    return (
        "INSERT INTO jobs (kind, key, run_at, payload) SELECT * FROM unnest("
        f"{p([j.kind for j in last], 'text[]')}, {p([j.key for j in last], 'text[]')},"
        f" {p([j.due_at for j in last], 'timestamptz[]')},"
        f" {p([msgspec.json.encode(j.payload) for j in last], 'jsonb[]')})"
        " ON CONFLICT (kind, key) DO UPDATE SET run_at = EXCLUDED.run_at,"
        " payload = EXCLUDED.payload, attempts = 0, lease_until = NULL, leased_by = NULL,"
        " last_error = NULL, dead_at = NULL"
    )


def per_user_sql(p: Params, kind: str, user_ids: list[int], run_at: datetime) -> str:
    """One job per user (key: the user id, payload {user_id}), as a CTE of a larger statement;
    a user whose job of this kind is already pending keeps it, since the earlier one covers
    this too."""
    return (
        f"INSERT INTO jobs (kind, key, run_at, payload) SELECT {p(kind, 'text')}, u::text,"
        f" {p(run_at, 'timestamptz')}, jsonb_build_object('user_id', u)"
        f" FROM unnest({p(user_ids, 'bigint[]')}) AS u ON CONFLICT (kind, key) DO NOTHING"
    )


async def upsert(conn: asyncpg.Connection, jobs: Sequence[Due]) -> None:
    p = Params(1)
    await conn.execute(upsert_sql(p, jobs), *p.args)


async def cancel(conn: asyncpg.Connection, kind: str, key: str) -> None:
    await conn.execute("DELETE FROM jobs WHERE kind = $1 AND key = $2", kind, key)


async def claim(
    db: Executor, worker: str, limit: int, lease: timedelta, kinds: Sequence[str]
) -> list[Claimed]:
    """Take up to `limit` due jobs of these kinds that nobody holds (no lease, or one that has
    run out: its worker died), under a lease for `worker`; each claim counts as a try."""
    rows = await db.fetch(
        """
        UPDATE jobs SET lease_until = now() + $3, leased_by = $1, attempts = attempts + 1
        WHERE id IN (
            SELECT id FROM jobs
            WHERE run_at <= now() AND dead_at IS NULL
              AND (lease_until IS NULL OR lease_until < now()) AND kind = ANY($4::text[])
            ORDER BY run_at FOR UPDATE SKIP LOCKED LIMIT $2
        )
        RETURNING id, kind, key, payload, attempts, run_at
        """,
        worker,
        limit,
        lease,
        list(kinds),
    )
    return [Claimed(*r) for r in rows]


async def take(conn: asyncpg.Connection, worker: str, ids: Sequence[int]) -> set[int]:
    """Inside the transaction that does their work: delete the claimed jobs still ours (a lease
    that ran out may have passed one to another worker); they are gone if it commits."""
    rows = await conn.fetch(
        "DELETE FROM jobs WHERE id = ANY($2::bigint[]) AND leased_by = $1 RETURNING id",
        worker,
        list(ids),
    )
    return {r["id"] for r in rows}


async def release(db: Executor, worker: str) -> None:
    await db.execute(
        "UPDATE jobs SET lease_until = NULL, leased_by = NULL WHERE leased_by = $1", worker
    )


async def retry_later(db: Executor, job_id: int, after: timedelta, error: str) -> None:
    await db.execute(
        "UPDATE jobs SET run_at = now() + $2, lease_until = NULL, leased_by = NULL,"
        " last_error = $3 WHERE id = $1",
        job_id,
        after,
        error[:500],
    )


async def bury(db: Executor, job_id: int, error: str) -> None:
    """A dead letter: kept for inspection (and a retry by hand: `upsert` the job again)."""
    await db.execute(
        "UPDATE jobs SET dead_at = now(), lease_until = NULL, leased_by = NULL, last_error = $2"
        " WHERE id = $1",
        job_id,
        error[:500],
    )


async def seconds_to_next(db: Executor, kinds: Sequence[str]) -> float | None:
    """Seconds until the next job of these kinds nobody holds is due (negative: overdue)."""
    wait = await db.fetchval(
        "SELECT extract(epoch FROM min(run_at) - now()) FROM jobs"
        " WHERE dead_at IS NULL AND (lease_until IS NULL OR lease_until < now())"
        " AND kind = ANY($1::text[])",
        list(kinds),
    )
    return None if wait is None else float(wait)


async def dead(db: Executor, kind: str | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT id, kind, key, payload, attempts, last_error, dead_at FROM jobs"
        " WHERE dead_at IS NOT NULL AND ($1::text IS NULL OR kind = $1) ORDER BY dead_at",
        kind,
    )
    return [dict(r) for r in rows]
