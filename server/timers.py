"""Timers are jobs (server/jobs.py) set for a time: the names the handler modules use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from server.jobs import Jobs as Timers
from server.jobs import JobSet as TimerSet
from storage.jobs import Due, cancel, per_user_sql, upsert, upsert_sql

__all__ = ["Due", "TimerSet", "Timers", "cancel", "per_user_sql", "schedule", "upsert_sql"]


async def schedule(
    conn: asyncpg.Connection, kind: str, key: str, due_at: datetime, payload: dict[str, Any]
) -> None:
    """Set (or move) the timer `kind/key`; part of the caller's transaction."""
    await upsert(conn, [Due(kind, key, due_at, payload)])


async def schedule_many(conn: asyncpg.Connection, timers: Sequence[Due]) -> None:
    await upsert(conn, timers)
