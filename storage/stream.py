"""The event stream's SQL: per-user sequences, the append, cumulative acks, replay, pruning."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from storage.pool import Executor, Params

# Events for lists of users (a user may appear under several events, and gets them in list
# order), one statement however many events and recipients: lock the streams in id order (no
# deadlock between overlapping fan-outs; the count makes the update wait for every lock), bump
# each by its count and append. The streams are named by `= ANY` too, not only by the join:
# joined alone, PostgreSQL read every stream for a batch of a few (a seq scan of all 2,001 in
# the pager benchmark, 0.3 ms of a 1 ms statement). Each event's type and data are sent once,
# in two JSON arrays indexed by event number; a user's event numbers are its run in $4 ($3:
# where it starts, $2: how long). Only joins the planner cannot misjudge: with `JOIN`s between
# CTEs it looped 5,000 x 5,000 rows once (a 10 s page). A caller's own CTEs (`-- also`) see
# the new events as `appended(user_id, seq, k)`, k being the event's number, so rows that name
# an event's seq are written in the same round trip.
EMIT = """
WITH users AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[]) AS u(user_id, n, first)
), locked AS (
    SELECT user_id FROM streams WHERE user_id = ANY($1::bigint[]) ORDER BY user_id FOR UPDATE
), bumped AS (
    UPDATE streams s SET seq = s.seq + u.n FROM users u
    WHERE s.user_id = u.user_id AND s.user_id = ANY($1::bigint[])
      AND (SELECT count(*) FROM locked) >= 0
    RETURNING s.user_id, s.seq - u.n AS base, u.n, u.first
), appended AS (
    SELECT b.user_id, b.base + i AS seq, ($4::int[])[b.first + i] AS k
    FROM bumped b, generate_series(1, b.n) AS i
), stored AS (
    INSERT INTO events (user_id, seq, type, at, data)
    SELECT user_id, seq, $5::jsonb ->> k, $7, $6::jsonb -> k FROM appended
)
-- also
SELECT user_id, seq, k FROM appended
"""
_EMIT_PARAMS = 7


class Appended(NamedTuple):
    user_id: int
    seq: int
    k: int  # the event's number in the call


def subscribed_jobs_sql(p: Params, pairs: Sequence[tuple[int, str]]) -> str:
    """A CTE of the append writing one job per (event number, subscribed job kind): the async
    handlers of an event exist if and only if it commits. The event's id is its first
    recipient's "user:seq", so a job is never written twice for one event."""
    return f"""
, subscribed_jobs AS (
    INSERT INTO jobs (kind, key, payload)
    SELECT s.kind, g.event_id, jsonb_build_object('event_id', g.event_id, 'type',
           $5::jsonb ->> s.k, 'at', $7::timestamptz, 'users', g.users, 'data', $6::jsonb -> s.k)
    FROM unnest({p([k for k, _ in pairs], "int[]")}, {p([kind for _, kind in pairs], "text[]")})
         AS s(k, kind)
    JOIN (
        SELECT k, (array_agg(user_id ORDER BY user_id))[1] || ':'
                  || (array_agg(seq ORDER BY user_id))[1] AS event_id,
               array_agg(user_id ORDER BY user_id) AS users
        FROM appended GROUP BY k
    ) g ON g.k = s.k
    ON CONFLICT (kind, key) DO NOTHING
)"""


async def append(
    db: Executor,
    runs: tuple[list[int], list[int], list[int], list[int]],
    types: bytes,
    data: bytes,
    at: datetime,
    subscribed: Sequence[tuple[int, str]] = (),
    also: Callable[[Params], str] | None = None,
) -> list[Appended]:
    """Append events (their types and data as JSON arrays, by event number) for the users of
    `runs` (user ids, their counts, where each one's run starts in the flat list of event
    numbers, that list), with the subscribed jobs and the caller's own CTEs (`also`, which read
    `appended(user_id, seq, k)`), in one statement."""
    p = Params(_EMIT_PARAMS + 1)
    ctes = (subscribed_jobs_sql(p, subscribed) if subscribed else "") + (
        also(p) if also is not None else ""
    )
    sql = EMIT.replace("-- also", ctes) if ctes else EMIT
    rows = await db.fetch(sql, *runs, types, data, at, *p.args)
    return [Appended(*r) for r in rows]


# Cumulative acks of several users: each one's mark moves forward only, never past its stream.
ACK = """
WITH wanted AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS t(user_id, seq)
), old AS (
    SELECT s.user_id, s.acked_seq FROM streams s JOIN wanted USING (user_id)
    WHERE s.user_id = ANY($1::bigint[])
    ORDER BY s.user_id FOR UPDATE OF s
)
UPDATE streams s SET acked_seq = w.seq, acked_at = now()
FROM wanted w JOIN old USING (user_id)
WHERE s.user_id = w.user_id AND w.seq > old.acked_seq AND w.seq <= s.seq
RETURNING s.user_id, old.acked_seq AS previous, s.acked_seq AS new
"""


class AckMove(NamedTuple):
    user_id: int
    previous: int
    new: int


async def ack(db: Executor, user_ids: list[int], seqs: list[int]) -> list[AckMove]:
    return [AckMove(*r) for r in await db.fetch(ACK, user_ids, seqs)]


# Each resuming (user, last_seq): the stream's current seq and the events after last_seq, unless
# more are missed than the replay limit; one row per event, or one with NULLs when none.
REPLAY = """
SELECT w.i, s.seq AS current, e.seq, e.type, e.at, e.data::text AS data
FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS w(user_id, last_seq, i)
LEFT JOIN streams s ON s.user_id = w.user_id
LEFT JOIN LATERAL (
    SELECT seq, type, at, data FROM events
    WHERE user_id = w.user_id AND seq > w.last_seq AND seq <= s.seq
      AND s.seq - w.last_seq <= $3
    ORDER BY seq
) e ON true
ORDER BY w.i, e.seq
"""


class ReplayRow(NamedTuple):
    i: int  # the request's number, from 1
    current: int | None
    seq: int | None
    type: str | None
    at: datetime | None
    data: str | None


async def replay(
    db: Executor, user_ids: list[int], last_seqs: list[int | None], limit: int
) -> list[ReplayRow]:
    return [ReplayRow(*r) for r in await db.fetch(REPLAY, user_ids, last_seqs, limit)]


async def lock(conn: Executor, user_ids: Sequence[int]) -> None:
    """Lock these people's streams, in id order (as the event append does), for the rest of the
    transaction."""
    await conn.execute(
        "SELECT 1 FROM streams WHERE user_id = ANY($1::bigint[]) ORDER BY user_id FOR UPDATE",
        sorted(set(user_ids)),
    )


async def head(db: Executor, user_id: int) -> int:
    """The user's last seq (0 before any event)."""
    return int(await db.fetchval("SELECT seq FROM streams WHERE user_id = $1", user_id) or 0)


class Stored(NamedTuple):
    seq: int
    type: str
    at: datetime
    data: str


async def between(db: Executor, user_id: int, after: int, upto: int) -> list[Stored]:
    rows = await db.fetch(
        "SELECT seq, type, at, data::text AS data FROM events"
        " WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
        user_id,
        after,
        upto,
    )
    return [Stored(*r) for r in rows]


async def prune_batch(db: Executor, before: datetime, limit: int = 5000) -> int:
    """Delete up to `limit` events older than `before`; how many went."""
    status = await db.execute(
        "DELETE FROM events WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM events WHERE at < $1 LIMIT $2))",
        before,
        limit,
    )
    return int(status.split()[-1])


async def heads(db: Executor, user_ids: Sequence[int]) -> dict[int, int]:
    """Each of these users' last seq, in one statement (the several-node sweep)."""
    rows = await db.fetch(
        "SELECT user_id, seq FROM streams WHERE user_id = ANY($1::bigint[])", list(user_ids)
    )
    return {r["user_id"]: r["seq"] for r in rows}


class Ranged(NamedTuple):
    user_id: int
    seq: int
    type: str
    at: datetime
    data: str


async def ranges(
    db: Executor, user_ids: Sequence[int], afters: Sequence[int], uptos: Sequence[int]
) -> list[Ranged]:
    """For each user, the events with `after < seq <= upto`, in (user, seq) order, in one
    statement (what another node committed, read on a hint or a sweep)."""
    rows = await db.fetch(
        "SELECT e.user_id, e.seq, e.type, e.at, e.data::text AS data"
        " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS r(user_id, after, upto)"
        " JOIN events e ON e.user_id = r.user_id AND e.seq > r.after AND e.seq <= r.upto"
        " ORDER BY e.user_id, e.seq",
        list(user_ids),
        list(afters),
        list(uptos),
    )
    return [Ranged(*r) for r in rows]
