"""The bus over Redis, for several processes and nodes on one PostgreSQL.

PostgreSQL is the log, Redis the doorbell. After a commit this node pushes to its own sockets as
the in-process bus does, then publishes only a *hint*: `{user_id: head seq}` for the users the
commit wrote to. Every other node with sockets for those users reads the events from PostgreSQL
in seq order and pushes them (server/hub.py `hinted`); a periodic sweep of the users' head seqs
bounds the delay of a hint that was lost. Ephemeral and control messages (presence and board
deltas, meeting presence, session revocations) go over the same channel whole.

Every message is a JSON object `{node, kind, msg}`; a node ignores its own (it dispatched them
locally already), and a message that does not parse is logged and dropped, never fatal.

The subscription is watched: every `ping_s` this node publishes on a channel of its own and
expects to hear it back within `ping_timeout_s`. A silent subscription (a listener that died, a
connection that hung) is torn down and rebuilt, `healthy()` is false meanwhile (so `/readyz`
answers 503), and once it hears itself again the `recovered` hooks run (a sweep). While Redis is
down commands still commit; publishes fail quietly (counted) and the sweep delivers later.

python-socketio's Redis manager is not used: its listener can die silently and it drops a
publish after one retry with no way to recover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.bus import EVENTS, Bus, Committed

if TYPE_CHECKING:
    from server.metrics import Metrics

log = logging.getLogger(__name__)

HINT = "hint"  # the wire kind of a durable-event hint: {"heads": {user_id: seq}}
PREFIX = "liaison"
MAX_QUEUED = 10_000  # ephemeral messages waiting for Redis; past it the oldest are dropped
PROTOCOL = 2  # RESP2, pinned: pub/sub behaviour must not change with the server's default

_encode = msgspec.json.encode
_decode = msgspec.json.Decoder(dict[str, Any])


def connect(url: str, *, timeout_s: float = 2.0) -> aioredis.Redis:
    """A client that fails fast (no retries, short timeouts): PostgreSQL is the truth, so a
    Redis that does not answer is reported and worked around, never waited for."""
    return aioredis.Redis.from_url(
        url,
        protocol=PROTOCOL,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


class RedisBus(Bus):
    def __init__(
        self,
        url: str,
        *,
        node_id: str | None = None,
        ping_s: float = 1.0,
        ping_timeout_s: float = 3.0,
        prefix: str = PREFIX,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(node_id)
        self.metrics = metrics
        self.url = url
        self.ping_s = ping_s
        self.ping_timeout_s = ping_timeout_s
        self.channel = f"{prefix}:bus"
        self.ping_channel = f"{prefix}:ping:{self.node_id}"
        self.redis = connect(url)
        # The subscription has a connection of its own, without a read timeout: it waits.
        self._sub_redis = aioredis.Redis.from_url(
            url, protocol=PROTOCOL, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        # Called with {user_id: head seq} from another node's commit (set up by the hub).
        self.on_hint: Callable[[dict[int, int]], None] | None = None
        # Run when the subscription works again after it did not (the hub's sweep).
        self.recovered: list[Callable[[], Awaitable[None]]] = []
        self.publish_failures = 0
        self.dropped = 0
        self.rebuilds = 0
        self._healthy = False
        self._last_pong = 0.0
        self._rebuilt_at = 0.0
        self._queue: list[bytes] = []
        self._heads: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._last_warning: dict[str, float] = {}

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._last_pong = self._rebuilt_at = time.monotonic()
        self._listener = asyncio.create_task(self._listen())
        self._tasks = [
            asyncio.create_task(self._publisher()),
            asyncio.create_task(self._liveness()),
        ]
        # Ready as soon as the subscription hears itself (not waited for: Redis may be down,
        # and the node still serves what PostgreSQL holds).
        deadline = time.monotonic() + 3
        while not self._healthy and time.monotonic() < deadline:
            await self._ping()
            await asyncio.sleep(0.05)

    async def healthy(self) -> bool:
        return self._healthy

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self._flush()
        for client in (self.redis, self._sub_redis):
            with contextlib.suppress(Exception):
                await client.aclose()

    # -- sending -------------------------------------------------------------------------------
    async def _transmit(self, kind: str, msg: dict[str, Any]) -> None:
        await self._dispatch(kind, msg)  # this node's sockets first, as with one process
        if kind == EVENTS:
            events: list[Committed] = msg["events"]
            for ev in events:
                if ev.seq > self._heads.get(ev.user_id, 0):
                    self._heads[ev.user_id] = ev.seq
        else:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.pop(0)
                self.dropped += 1
            self._queue.append(_encode({"node": self.node_id, "kind": kind, "msg": msg}))
        self._wake.set()

    async def _publisher(self) -> None:
        """Publishes what is waiting, all of it in one pipelined round trip: the commit that
        rang never waits for Redis, and hints of commits close together go out as one."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        messages, self._queue = self._queue, []
        heads, self._heads = self._heads, {}
        if heads:
            hint = {"heads": {str(u): s for u, s in heads.items()}}
            messages.append(_encode({"node": self.node_id, "kind": HINT, "msg": hint}))
        if not messages:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for m in messages:
                    pipe.publish(self.channel, m)
                await pipe.execute()
        except Exception as exc:
            # Lost: ephemeral messages are best effort, and a hint's events are in PostgreSQL,
            # where the other nodes' sweep finds them.
            self.publish_failures += len(messages)
            if self.metrics is not None:
                self.metrics.bus_publish_failures.inc(len(messages))
            self._warn("bus publish failed (%d messages): %r", len(messages), exc)

    def _warn(self, text: str, *args: Any) -> None:
        """At most one of each kind every 5 s: an outage is news once, not per message."""
        now = time.monotonic()
        if now - self._last_warning.get(text, -10.0) > 5:
            self._last_warning[text] = now
            log.warning(text, *args)

    # -- receiving -----------------------------------------------------------------------------
    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._sub_redis.pubsub()
            try:
                await pubsub.subscribe(self.channel, self.ping_channel)
                backoff = 0.1
                while True:
                    m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if m is not None:
                        await self._received(m["channel"], m["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._healthy = False
                self._warn("bus subscription lost: %r; reconnecting", exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _received(self, channel: bytes, data: bytes) -> None:
        if channel.decode() == self.ping_channel:
            self._pong()
            return
        try:
            envelope = _decode.decode(data)
            node, kind, msg = envelope["node"], envelope["kind"], envelope["msg"]
            if node == self.node_id:
                return  # dispatched locally when sent
            if kind == HINT:
                heads = {int(u): int(s) for u, s in msg["heads"].items()}
                if self.on_hint is not None:
                    self.on_hint(heads)
                return
            if not isinstance(msg, dict):
                raise TypeError("msg is not an object")
        except Exception:
            log.warning("bad bus message dropped: %r", data[:200])
            return
        await self._dispatch(kind, msg)

    # -- liveness ------------------------------------------------------------------------------
    async def _ping(self) -> None:
        try:
            await self.redis.publish(self.ping_channel, b"ping")
        except Exception as exc:
            self._warn("bus ping failed: %r", exc)

    def _pong(self) -> None:
        self._last_pong = time.monotonic()
        if not self._healthy:
            self._healthy = True
            log.info("bus subscription live")
            for hook in self.recovered:
                asyncio.get_running_loop().create_task(self._run_hook(hook))

    async def _run_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except Exception:
            log.exception("bus recovery hook failed")

    async def _liveness(self) -> None:
        while True:
            await asyncio.sleep(self.ping_s)
            await self._ping()
            now = time.monotonic()
            if now - self._last_pong <= self.ping_timeout_s:
                continue
            if self._healthy:
                log.warning("bus subscription silent for %.1f s", now - self._last_pong)
            self._healthy = False
            if now - self._rebuilt_at > self.ping_timeout_s:
                self._rebuild()

    def _rebuild(self) -> None:
        """Tear the listener down and start a new one: a hung connection never errors."""
        self.rebuilds += 1
        if self.metrics is not None:
            self.metrics.bus_rebuilds.inc()
        self._rebuilt_at = time.monotonic()
        if self._listener is not None:
            self._listener.cancel()
        self._listener = asyncio.create_task(self._listen())
