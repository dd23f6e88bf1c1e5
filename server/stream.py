"""The durable event stream: per-user gapless sequences, written in the state change's transaction,
rung on the bus only after commit (Zulip's send_event_on_commit), replayed on resume.

Only this module appends durable events; handlers call `tx.emit`, never the socket layer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import msgspec

from server.batch import Batcher
from server.bus import Bus, Committed
from server.events import Event
from storage import jobs
from storage import stream as sq
from storage.pool import Params, retrying

log = logging.getLogger(__name__)

_encode = msgspec.json.encode


class Ack(NamedTuple):
    """A user's acknowledged seq moved from `previous` to `new`."""

    user_id: int
    previous: int
    new: int


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Transaction:
    """One PostgreSQL transaction plus what to do once it has committed: what a handler may do
    to the world goes through it (append durable events, set or cancel jobs, run something
    after commit), and the stream pushes the events and wakes the job worker itself."""

    conn: asyncpg.Connection
    events: list[Committed] = field(default_factory=list)
    _after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # event type -> the job kinds subscribed to it (written with the events)
    subscribers: dict[str, list[str]] = field(default_factory=dict)
    jobs_due: datetime | None = None  # the earliest job this transaction set
    published: list[tuple[str, Event]] = field(default_factory=list)

    def publish(self, topic: str, event: Event) -> None:
        """An ephemeral event for the subscribers of `topic` (a board, a meeting room), on every
        node, once this transaction commits."""
        assert not event.durable, f"{event.type} is durable: use emit"
        self.published.append((topic, event))

    async def lock_users(self, user_ids: Iterable[int]) -> None:
        """Lock the streams of everyone this transaction will write to, in id order, before
        anything else: a change that appends or counts for several people one after the other
        would otherwise take their locks in its own order, and two such changes crossing (A
        approves for B while B approves for A) deadlock."""
        await sq.lock(self.conn, list(user_ids))

    async def schedule(
        self, kind: str, key: str, run_at: datetime, payload: dict[str, Any]
    ) -> None:
        """Set (or move) the job `kind/key` to run at `run_at`, if this transaction commits."""
        await self.schedule_many([jobs.Due(kind, key, run_at, payload)])

    async def schedule_many(self, due: Sequence[jobs.Due]) -> None:
        if due:
            await jobs.upsert(self.conn, due)
            self.job_set(min(d.due_at for d in due))

    async def cancel(self, kind: str, key: str) -> None:
        await jobs.cancel(self.conn, kind, key)

    def job_set(self, run_at: datetime) -> None:
        """A job due at `run_at` was written here (by the caller's own SQL): the worker is woken
        for it after commit."""
        if self.jobs_due is None or run_at < self.jobs_due:
            self.jobs_due = run_at

    async def emit(self, user_ids: Iterable[int], event: Event) -> dict[int, int]:
        """Append one durable event for each user; returns {user_id: seq}."""
        return (await self.emit_many([(user_ids, event)]))[0]

    async def emit_each(self, items: Sequence[tuple[int, Event]]) -> list[int | None]:
        """Append a different event per item (a user may repeat); returns each item's seq."""
        seqs = await self.emit_many([((user_id,), ev) for user_id, ev in items])
        return [s.get(user_id) for (user_id, _), s in zip(items, seqs, strict=True)]

    async def emit_many(
        self,
        groups: Sequence[tuple[Iterable[int], Event]],
        also: Callable[[Params], str] | None = None,
    ) -> list[dict[int, int]]:
        """Append each event for its users, in list order; returns each group's {user_id: seq}
        (a user without a stream gets none). `also(p)` returns more CTEs (", name AS (...)")
        for the same statement, which read `appended(user_id, seq, k)` (k: the group's index)
        and take their parameters from `p`."""
        for _, ev in groups:
            assert ev.durable, f"{ev.type} is ephemeral: use after_commit"
        runs: dict[int, list[int]] = {}  # user -> the numbers of its events, in list order
        for k, (ids, _) in enumerate(groups):
            for user_id in set(ids):
                runs.setdefault(user_id, []).append(k)
        out: list[dict[int, int]] = [{} for _ in groups]
        if not runs and also is None:
            return out
        users = sorted(runs)
        counts: list[int] = []
        firsts: list[int] = []
        flat: list[int] = []
        for user_id in users:
            firsts.append(len(flat))
            counts.append(len(runs[user_id]))
            flat.extend(runs[user_id])
        at = utcnow()
        encoded = [_encode(ev) for _, ev in groups]
        subscribed = [
            (k, kind)
            for k, (_, ev) in enumerate(groups)
            for kind in self.subscribers.get(ev.type, ())
        ]
        if subscribed:
            self.job_set(at)
        rows = await sq.append(
            self.conn,
            (users, counts, firsts, flat),
            _encode([ev.type for _, ev in groups]),
            b"[" + b",".join(encoded) + b"]",
            at,
            subscribed,
            also,
        )
        for user_id, seq, k in rows:
            out[k][user_id] = seq
        # Pushed in list order, each user's in seq order.
        for (_, ev), data, mine in zip(groups, encoded, out, strict=True):
            for user_id in sorted(mine):
                self.events.append(Committed(user_id, mine[user_id], ev.type, at, data))
        return out

    def after_commit(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` (an ephemeral push, say) only if and after the transaction commits."""
        self._after.append(fn)


AckHook = Callable[[Transaction, list[Ack]], Awaitable[None]]


@dataclass(slots=True, frozen=True)
class Replay:
    """What a resuming connection gets: the missed events, or None when it must reset."""

    current: int
    events: list[Committed] | None


class Stream:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, *, replay_limit: int = 1000) -> None:
        self.pool = pool
        self.bus = bus
        self.replay_limit = replay_limit
        # Called after an ack batch committed, in a transaction of their own, with the users
        # whose acknowledged seq moved forward.
        self.ack_hooks: list[AckHook] = []
        # event type -> the job kinds subscribed to it; set up by the job worker
        self.subscribers: dict[str, list[str]] = {}
        # Sends an ephemeral event to a topic's subscribers; set up by the hub.
        self.to_topic: Callable[[str, Event], Awaitable[None]] | None = None
        # Called after a commit that set jobs, with the earliest one's due time.
        self.jobs_set: Callable[[datetime], None] | None = None
        self._replays: Batcher[tuple[int, int | None], Replay] = Batcher(self._replay_many)
        self._acks: Batcher[tuple[int, int], tuple[int, int] | None] = Batcher(self._ack_many)

    @asynccontextmanager
    async def transaction(self, *, one_statement: bool = False) -> AsyncIterator[Transaction]:
        """A transaction whose events are pushed once it has committed. With `one_statement` the
        caller writes with a single statement, which PostgreSQL runs and commits as a transaction
        of its own: no BEGIN and COMMIT round trips (two of a page's four)."""
        async with self.pool.acquire() as conn:
            tx = Transaction(conn, subscribers=self.subscribers)
            async with nullcontext() if one_statement else conn.transaction():
                yield tx
        # Committed: only now may anything be pushed.
        if tx.jobs_due is not None and self.jobs_set is not None:
            self.jobs_set(tx.jobs_due)
        await self.bus.committed(tx.events)
        if self.to_topic is not None:
            for topic, event in tx.published:
                await self.to_topic(topic, event)
        for fn in tx._after:
            try:
                await fn()
            except Exception:
                log.exception("after-commit hook failed")

    async def replay(self, user_id: int, last_seq: int | None) -> Replay:
        """The user's current seq and, when `last_seq` is given and within the replay limit and
        retention, the events after it (else `events` is None). Resumes arriving together are
        answered by one statement (a reconnect storm is thousands at once)."""
        return await self._replays((user_id, last_seq))

    async def _replay_many(self, items: list[tuple[int, int | None]]) -> list[Replay]:
        rows = await sq.replay(
            self.pool, [u for u, _ in items], [s for _, s in items], self.replay_limit
        )
        currents = [0] * len(items)
        missed: list[list[Committed]] = [[] for _ in items]
        for r in rows:
            i = r.i - 1
            currents[i] = int(r.current or 0)
            if r.seq is not None:
                assert r.type is not None and r.at is not None and r.data is not None
                missed[i].append(Committed(items[i][0], r.seq, r.type, r.at, r.data.encode()))
        out = []
        for (_, last_seq), current, events in zip(items, currents, missed, strict=True):
            # Too far behind, from the future, or some were pruned past retention: reset.
            resumable = (
                last_seq is not None
                and 0 <= last_seq <= current
                and current - last_seq <= self.replay_limit
                and len(events) == current - last_seq
            )
            out.append(Replay(current, events if resumable else None))
        return out

    async def head(self, user_id: int) -> int:
        """The user's last seq (0 before any event)."""
        return await sq.head(self.pool, user_id)

    async def fetch_range(self, user_id: int, after: int, upto: int) -> list[Committed]:
        rows = await sq.between(self.pool, user_id, after, upto)
        return [Committed(user_id, r.seq, r.type, r.at, r.data.encode()) for r in rows]

    async def heads(self, user_ids: list[int]) -> dict[int, int]:
        """These users' last seqs (a user without a stream is left out)."""
        return await sq.heads(self.pool, user_ids)

    async def fetch_ranges(self, ranges: dict[int, tuple[int, int]]) -> list[Committed]:
        """For each user, the events in (after, upto], in (user, seq) order: one statement."""
        users = list(ranges)
        rows = await sq.ranges(
            self.pool, users, [ranges[u][0] for u in users], [ranges[u][1] for u in users]
        )
        return [Committed(r.user_id, r.seq, r.type, r.at, r.data.encode()) for r in rows]

    async def ack(self, user_id: int, seq: int) -> tuple[int, int] | None:
        """Record a cumulative ack; returns (previous, new) when it moved forward.

        Acks arriving together are one statement (see `Batcher`), and the ack hooks (pager
        delivery receipts) run once for the whole batch, each in a transaction of its own after
        the acks committed: a hook locks other users' streams (the senders' for their receipts),
        and doing that while holding the acking users' rows deadlocks against a page sent to
        both."""
        return await self._acks((user_id, seq))

    async def _ack_many(self, items: list[tuple[int, int]]) -> list[tuple[int, int] | None]:
        highest: dict[int, int] = {}
        for user_id, seq in items:
            highest[user_id] = max(seq, highest.get(user_id, seq))
        # Cumulative and forward-only: running it again after a lost connection is harmless.
        rows = await retrying(
            lambda: sq.ack(self.pool, list(highest), list(highest.values())), "ack"
        )
        moves = [Ack(*r) for r in rows]
        if moves:
            await self.run_ack_hooks(moves)
        moved = {m.user_id: (m.previous, m.new) for m in moves}
        return [
            moved[user_id] if seq == highest[user_id] and user_id in moved else None
            for user_id, seq in items
        ]

    async def run_ack_hooks(self, moves: list[Ack]) -> None:
        """The ack hooks for these moves, each in a transaction of its own, retried while the
        database fails passingly. What still fails is not lost: a hook's work is derived from
        the acknowledged seqs, which are committed, and `ack_sweeps` redo it later."""
        for hook in self.ack_hooks:

            async def run(hook: AckHook = hook) -> None:
                async with self.transaction() as tx:
                    await hook(tx, moves)

            try:
                await retrying(run, "ack hook")
            except Exception:
                log.exception("ack hook failed; its sweep will redo it")

    async def prune(self, retention: timedelta) -> int:
        """Delete events older than the retention, in batches so no lock is held for long."""
        total = 0
        while True:
            n = await sq.prune_batch(self.pool, utcnow() - retention)
            total += n
            if n < 5000:
                return total
