"""What the nodes share through Redis besides the bus: who is alive, who is online where, who is
in which meeting room, and the per-user command rate. Used only with LIAISON_REDIS_URL; one
process without Redis keeps all of this in memory (server/hub.py, server/limits.py).

Each node holds a lease, a key `node:{id}` with a TTL it refreshes every third of it, and lists
its own users in `presence:{id}` (user -> "online|department" or "idle|department") and its
meeting-room members in `room:{topic}` (field "{node}|{user}"). A user is online anywhere when a
live node lists them. A node that dies stops refreshing its lease; once it has expired, the
first survivor to notice takes a reaper lock, clears the dead node's entries and reports whose
presence or room membership went with it, so their boards and rooms hear it. Their SMS
fallback then fires as for anyone offline, since lookups only believe live nodes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from server.limits import RateLimiter

log = logging.getLogger(__name__)
_warned: dict[str, float] = {}


def warn_throttled(logger: logging.Logger, text: str, *args: object) -> None:
    """At most one warning of each text every 5 s: an outage is news once, not per call."""
    now = time.monotonic()
    if now - _warned.get(text, -10.0) > 5:
        _warned[text] = now
        logger.warning(text, *args)


class Unavailable(ConnectionError):
    """Redis failed a moment ago; not tried again yet."""


class Breaker:
    """After a Redis call fails, calls skip Redis for `pause_s` and fall back to this node's
    own view: across a network partition every call would otherwise wait out its timeout."""

    def __init__(self, pause_s: float = 2.0) -> None:
        self.pause_s = pause_s
        self.open_until = 0.0

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise Unavailable("Redis is unavailable")

    def failed(self) -> None:
        self.open_until = time.monotonic() + self.pause_s

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        self.check()
        try:
            yield
        except Unavailable:
            raise
        except Exception:
            self.failed()
            raise


@dataclass(slots=True)
class Reaped:
    """What a dead node took with it: users it listed, and (topic, user) room memberships."""

    node: str
    users: dict[int, int | None] = field(default_factory=dict)  # user -> department
    rooms: list[tuple[str, int]] = field(default_factory=list)


class Cluster:
    def __init__(
        self, redis: aioredis.Redis, node_id: str, *, lease_s: float = 10.0, prefix: str = "liaison"
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.lease_s = lease_s
        self.prefix = prefix
        # Refreshed by each heartbeat. A node not yet seen counts as alive (it has just
        # started), a node seen without its lease as dead.
        self.live: set[str] = {node_id}
        self.dead: set[str] = set()
        self.resync = True  # rewrite this node's lists at the next heartbeat
        self.breaker = Breaker()
        self._beats = 0

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- leases --------------------------------------------------------------------------------
    async def heartbeat(
        self,
        presence: Callable[[], dict[int, tuple[str, int | None, int]]],
        rooms: Callable[[], dict[str, set[int]]],
    ) -> list[str]:
        """Refresh this node's lease (and, after a failure and every tenth time, its lists);
        learn the live nodes; return the nodes whose lease has expired."""
        self._beats += 1
        resync, self.resync = self.resync or self._beats % 10 == 0, False
        try:
            if resync:
                await self._resync(presence(), rooms())
            dead = await self._lease()
        except Exception:
            self.resync = True
            self.breaker.failed()
            raise
        self.breaker.open_until = 0.0
        return dead

    async def _lease(self) -> list[str]:
        me = self.node_id
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._k("node", me), b"1", px=int(self.lease_s * 1000))
            pipe.sadd(self._k("nodes"), me)
            pipe.smembers(self._k("nodes"))
            *_, members = await pipe.execute()
        nodes = sorted(_s(n) for n in members)
        async with self.redis.pipeline(transaction=False) as pipe:
            for n in nodes:
                pipe.exists(self._k("node", n))
            alive = await pipe.execute()
        self.live = {n for n, a in zip(nodes, alive, strict=True) if a} | {me}
        self.dead = {n for n in nodes if n not in self.live}
        return sorted(self.dead)

    async def _resync(
        self, presence: dict[int, tuple[str, int | None, int]], rooms: dict[str, set[int]]
    ) -> None:
        """Make this node's lists say what its sockets say (writes may have failed, or Redis
        restarted empty), without clearing them first: lookups meanwhile stay right."""
        me = self.node_id
        key = self._k("presence", me)
        listed = {int(_s(u)) for u in await self.redis.hkeys(key)}
        had = {_s(t) for t in await self.redis.smembers(self._k("rooms", me))}
        topics = sorted(had | set(rooms))
        async with self.redis.pipeline(transaction=False) as pipe:
            gone = listed - set(presence)
            if gone:
                pipe.hdel(key, *(str(u) for u in gone))
            if presence:
                pipe.hset(key, mapping={str(u): _state(*v) for u, v in presence.items()})
            for topic in topics:
                pipe.hkeys(self._k("room", topic))
            answers = await pipe.execute()
        fields = answers[len(answers) - len(topics) :]
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic, names in zip(topics, fields, strict=True):
                mine = {_s(f) for f in names if _s(f).startswith(f"{me}|")}
                want = {f"{me}|{u}" for u in rooms.get(topic, ())}
                if mine - want:
                    pipe.hdel(self._k("room", topic), *(mine - want))
                for f in sorted(want - mine):
                    pipe.hset(self._k("room", topic), f, b"1")
            pipe.delete(self._k("rooms", me))
            if rooms:
                pipe.sadd(self._k("rooms", me), *rooms)
            await pipe.execute()

    async def leave(self) -> None:
        """A clean stop: drop the lease and the lists at once instead of waiting it out."""
        await self._clear(self.node_id)
        await self.redis.delete(self._k("node", self.node_id))

    async def reap(self, node: str) -> Reaped | None:
        """Clear a dead node's entries, if this node is the one to do it."""
        got = await self.redis.set(self._k("reap", node), self.node_id, nx=True, ex=60)
        if not got:
            return None
        reaped = Reaped(node)
        listed = await self.redis.hgetall(self._k("presence", node))
        for u, v in listed.items():
            dept = _s(v).split("|")[1]
            reaped.users[int(u)] = int(dept) if dept else None
        reaped.rooms = await self._clear(node)
        log.info(
            "node %s is gone: %d users, %d room stays cleared",
            node,
            len(reaped.users),
            len(reaped.rooms),
        )
        return reaped

    async def _clear(self, node: str) -> list[tuple[str, int]]:
        """Remove a node's lists (its own fields only: a room is shared); returns the room
        memberships removed."""
        removed: list[tuple[str, int]] = []
        topics = [_s(t) for t in await self.redis.smembers(self._k("rooms", node))]
        for topic in topics:
            fields = await self.redis.hkeys(self._k("room", topic))
            mine = [f for f in fields if _s(f).startswith(f"{node}|")]
            if mine:
                await self.redis.hdel(self._k("room", topic), *mine)
                removed += [(topic, int(_s(f).split("|", 1)[1])) for f in mine]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._k("presence", node), self._k("rooms", node))
            pipe.srem(self._k("nodes"), node)
            await pipe.execute()
        return removed

    # -- presence ------------------------------------------------------------------------------
    async def set_presence(
        self, user_id: int, state: str, department_id: int | None, sockets: int
    ) -> None:
        """This node's view of one user: "online", "idle", or "offline" (none of its tabs),
        and how many sockets they have here."""
        key = self._k("presence", self.node_id)
        async with self.breaker.guard():
            if state == "offline":
                await self.redis.hdel(key, str(user_id))
            else:
                await self.redis.hset(key, str(user_id), _state(state, department_id, sockets))

    async def presence_of(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = [str(u) for u in user_ids]
        out = dict.fromkeys((int(u) for u in ids), "offline")
        if not ids:
            return out
        async with self.breaker.guard():
            return await self._presence_of(ids, out)

    async def _presence_of(self, ids: list[str], out: dict[int, str]) -> dict[int, str]:
        for _, values in await self._listed(ids):
            for u, v in zip(ids, values, strict=True):
                if v is None:
                    continue
                state = _s(v).split("|")[0]
                if state == "online" or out[int(u)] == "offline":
                    out[int(u)] = state
        return out

    async def connections_elsewhere(self, user_ids: list[int]) -> list[int]:
        """How many sockets each user has on the other live nodes."""
        ids = [str(u) for u in user_ids]
        counts = [0] * len(ids)
        async with self.breaker.guard():
            listed = await self._listed(ids)
        for node, values in listed:
            if node == self.node_id:
                continue
            for i, v in enumerate(values):
                if v is not None:
                    parts = _s(v).split("|")
                    counts[i] += int(parts[2]) if len(parts) > 2 and parts[2] else 1
        return counts

    async def _listed(self, ids: list[str]) -> list[tuple[str, list[bytes | None]]]:
        """What each live node lists for these users (one round trip; two when a node has
        started since this one's last heartbeat)."""
        known = sorted(self.live)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(self._k("nodes"))
            for n in known:
                pipe.hmget(self._k("presence", n), ids)
            members, *answers = await pipe.execute()
        new = sorted({_s(n) for n in members} - self.live - self.dead)
        if new:
            async with self.redis.pipeline(transaction=False) as pipe:
                for n in new:
                    pipe.hmget(self._k("presence", n), ids)
                answers += await pipe.execute()
        return list(zip([*known, *new], answers, strict=True))

    # -- meeting rooms -------------------------------------------------------------------------
    async def joined(self, topic: str, user_id: int) -> None:
        async with self.breaker.guard(), self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._k("room", topic), f"{self.node_id}|{user_id}", b"1")
            pipe.sadd(self._k("rooms", self.node_id), topic)
            await pipe.execute()

    async def left(self, topic: str, user_id: int) -> None:
        async with self.breaker.guard():
            await self.redis.hdel(self._k("room", topic), f"{self.node_id}|{user_id}")

    async def users_in(self, topic: str) -> set[int]:
        async with self.breaker.guard():
            fields = await self.redis.hkeys(self._k("room", topic))
        found = set()
        for f in fields:
            node, _, user = _s(f).partition("|")
            if node not in self.dead:
                found.add(int(user))
        return found


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _state(state: str, department_id: int | None, sockets: int) -> str:
    """A node's entry for a user: "state|department|sockets"."""
    return f"{state}|{department_id if department_id is not None else ''}|{sockets}"


# A token bucket per user in Redis, refilled by Redis's own clock (the nodes' may disagree).
_BUCKET = """
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter(RateLimiter):
    """The contract's per-user rate, held across nodes. While Redis does not answer, each node
    limits on its own (the in-process buckets) rather than refuse everyone or no one."""

    def __init__(
        self,
        redis: aioredis.Redis,
        rate_per_s: float,
        burst: int,
        *,
        breaker: Breaker | None = None,
        prefix: str = "liaison",
    ) -> None:
        super().__init__(rate_per_s, burst)
        self.redis = redis
        self.prefix = prefix
        self.breaker = breaker or Breaker()
        self._script = redis.register_script(_BUCKET)

    async def acquire(self, key: int) -> float:
        try:
            async with self.breaker.guard():
                wait = await self._script(
                    keys=[f"{self.prefix}:rate:{key}"], args=[self.rate, self.burst]
                )
            return float(wait)
        except Exception as exc:
            warn_throttled(log, "shared rate limit unavailable, limiting per node: %r", exc)
            return self.take(key)
