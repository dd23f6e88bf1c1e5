"""The live connections of this node: delivery of pushes in sequence order, topic subscriptions
(a department's board, a meeting room) for ephemeral events, and presence computed from
connections across tabs (and, with Redis, across nodes)."""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from server.bus import EVENTS, Bus, Committed
from server.events import Event, PresenceChanged, SyncReady, SyncReset
from server.stream import Stream, utcnow

if TYPE_CHECKING:
    import socketio

    from server.metrics import Metrics

log = logging.getLogger(__name__)

TOPIC = "topic"  # bus message kind: an ephemeral frame for the subscribers of a topic
USERS = "users"  # bus message kind: an ephemeral frame for all connections of some users
GAP_WAIT_S = 0.25  # how long an out-of-order push waits for the one before it

_encode = msgspec.json.encode


def _iso(at: datetime) -> bytes:
    return _encode(at)


def board_topic(department_id: int) -> str:
    return f"board:{department_id}"


def durable_frame(ev: Committed) -> str:
    """The Socket.IO EVENT packet for a durable event, spliced without re-encoding its data."""
    return (
        b'2["event",{"seq":%d,"type":%b,"at":%b,"data":%b}]'
        % (ev.seq, _encode(ev.type), _iso(ev.at), ev.data)
    ).decode()


def ephemeral_frame(event: Event) -> str:
    return (
        b'2["event",{"seq":null,"type":%b,"at":%b,"data":%b}]'
        % (_encode(event.type), _iso(utcnow()), _encode(event))
    ).decode()


@dataclass(eq=False, slots=True)
class Connection:
    sid: str
    eio_sid: str
    user_id: int
    department_id: int | None
    session_id: str
    token_exp: float
    idle: bool = False
    topics: set[str] = field(default_factory=set)
    sent_seq: int = 0  # the last durable seq written to this socket
    ready: bool = False  # resume finished; until then live pushes are held
    held: list[tuple[int, Committed]] = field(default_factory=list)  # heap by seq
    gap_task: asyncio.Task[None] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Hub:
    def __init__(
        self, sio: socketio.AsyncServer, stream: Stream, bus: Bus, metrics: Metrics
    ) -> None:
        self.sio = sio
        self.stream = stream
        self.bus = bus
        self.metrics = metrics
        self.by_sid: dict[str, Connection] = {}
        self.by_user: dict[int, dict[str, Connection]] = defaultdict(dict)
        self.subscribers: dict[str, set[Connection]] = defaultdict(set)
        # Run after a connection is gone (its topics still listed): a meeting room, say, is left.
        self.on_disconnect: list[Callable[[Connection], Awaitable[None]]] = []
        self.last_seen: dict[int, datetime] = {}
        stream.to_topic = self.to_topic
        bus.on(EVENTS, self._on_events)
        bus.on(TOPIC, self._on_topic)
        bus.on(USERS, self._on_users)

    # -- registry --------------------------------------------------------------------------
    def count_for(self, user_id: int) -> int:
        return len(self.by_user.get(user_id, ()))

    async def add(self, conn: Connection) -> None:
        before = self.presence(conn.user_id)
        self.by_sid[conn.sid] = conn
        self.by_user[conn.user_id][conn.sid] = conn
        self.metrics.connections.set(len(self.by_sid))
        await self._presence_moved(conn, before)

    async def remove(self, sid: str) -> Connection | None:
        conn = self.by_sid.pop(sid, None)
        if conn is None:
            return None
        before = self.presence(conn.user_id)
        mine = self.by_user.get(conn.user_id)
        if mine is not None:
            mine.pop(sid, None)
            if not mine:
                del self.by_user[conn.user_id]
        for topic in conn.topics:
            self.subscribers[topic].discard(conn)
            if not self.subscribers[topic]:
                del self.subscribers[topic]
        if conn.gap_task:
            conn.gap_task.cancel()
        self.metrics.connections.set(len(self.by_sid))
        self.last_seen[conn.user_id] = utcnow()
        await self._presence_moved(conn, before)
        for hook in self.on_disconnect:
            try:
                await hook(conn)
            except Exception:
                log.exception("disconnect hook failed")
        return conn

    async def drop(self, conn: Connection) -> None:
        """Disconnect a socket from the server's side, transport and all: python-socketio only
        leaves the namespace and trusts the client to close, which a hostile one need not."""
        await self.sio.disconnect(conn.sid)
        await self.sio.eio.disconnect(conn.eio_sid)

    async def set_idle(self, conn: Connection, idle: bool) -> None:
        before = self.presence(conn.user_id)
        conn.idle = idle
        self.last_seen[conn.user_id] = utcnow()
        await self._presence_moved(conn, before)

    # -- presence --------------------------------------------------------------------------
    def presence(self, user_id: int) -> str:
        conns = self.by_user.get(user_id)
        if not conns:
            return "offline"
        return "idle" if all(c.idle for c in conns.values()) else "online"

    def presence_of(self, user_ids: Iterable[int]) -> dict[int, str]:
        return {u: self.presence(u) for u in user_ids}

    async def _presence_moved(self, conn: Connection, before: str) -> None:
        after = self.presence(conn.user_id)
        if after == before or conn.department_id is None:
            return
        seen = self.last_seen.get(conn.user_id)
        await self.to_topic(
            board_topic(conn.department_id),
            PresenceChanged(user_id=str(conn.user_id), presence=after, last_seen=seen),
        )

    # -- topics ----------------------------------------------------------------------------
    def subscribe(self, conn: Connection, topic: str) -> None:
        conn.topics.add(topic)
        self.subscribers[topic].add(conn)

    def unsubscribe(self, conn: Connection, topic: str) -> None:
        conn.topics.discard(topic)
        subs = self.subscribers.get(topic)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subscribers[topic]

    def close_topic(self, topic: str) -> None:
        """Unsubscribe every connection of this node from the topic (a meeting room closed)."""
        for conn in list(self.subscribers.get(topic, ())):
            self.unsubscribe(conn, topic)

    def users_in(self, topic: str) -> set[int]:
        """Who has a connection subscribed to the topic on this node."""
        return {c.user_id for c in self.subscribers.get(topic, ())}

    async def to_topic(self, topic: str, event: Event) -> None:
        """An ephemeral event for every connection subscribed to the topic, on every node."""
        await self.bus.publish(TOPIC, {"topic": topic, "frame": ephemeral_frame(event)})

    async def to_users(self, user_ids: Iterable[int], event: Event) -> None:
        """An ephemeral event for every connection of these users, on every node."""
        await self.bus.publish(USERS, {"user_ids": list(user_ids), "frame": ephemeral_frame(event)})

    async def _on_topic(self, msg: dict[str, Any]) -> None:
        conns = list(self.subscribers.get(msg["topic"], ()))
        await self._send_all(conns, msg["frame"])

    async def _on_users(self, msg: dict[str, Any]) -> None:
        conns = [c for u in msg["user_ids"] for c in self.by_user.get(int(u), {}).values()]
        await self._send_all(conns, msg["frame"])

    async def _send_all(self, conns: list[Connection], frame: str) -> None:
        for conn in conns:
            await self._write(conn, frame)
        self.metrics.pushed_ephemeral.inc(len(conns))

    async def send_to(self, conn: Connection, event: Event) -> None:
        await self._write(conn, ephemeral_frame(event))

    async def _write(self, conn: Connection, frame: str) -> None:
        try:
            await self.sio.eio.send(conn.eio_sid, frame)
        except Exception:  # the socket went away meanwhile
            log.debug("write to closed socket %s", conn.sid)

    # -- durable delivery ------------------------------------------------------------------
    async def _on_events(self, msg: dict[str, Any]) -> None:
        events: list[Committed] = msg["events"]
        for ev in events:
            for conn in list(self.by_user.get(ev.user_id, {}).values()):
                await self._deliver(conn, ev)

    async def _deliver(self, conn: Connection, ev: Committed) -> None:
        if not conn.ready or ev.seq > conn.sent_seq + 1:
            if ev.seq > conn.sent_seq:
                heapq.heappush(conn.held, (ev.seq, ev))
            if conn.ready:
                self._await_gap(conn)
            return
        if ev.seq <= conn.sent_seq:
            return  # already sent (replayed, or a duplicate doorbell)
        await self._send_durable(conn, ev)
        await self._flush_held(conn)

    async def _send_durable(self, conn: Connection, ev: Committed) -> None:
        conn.sent_seq = ev.seq
        await self._write(conn, durable_frame(ev))
        self.metrics.pushed_durable.inc()

    async def _flush_held(self, conn: Connection) -> None:
        while conn.held and conn.held[0][0] <= conn.sent_seq + 1:
            _, ev = heapq.heappop(conn.held)
            if ev.seq == conn.sent_seq + 1:
                await self._send_durable(conn, ev)

    def _await_gap(self, conn: Connection) -> None:
        """A later event arrived first (two commits racing to the bus): give the earlier one a
        moment, then read the gap from the database, which holds every committed event."""
        if conn.gap_task is None or conn.gap_task.done():
            conn.gap_task = asyncio.create_task(self._fill_gap(conn))

    async def _fill_gap(self, conn: Connection) -> None:
        await asyncio.sleep(GAP_WAIT_S)
        if not conn.held or conn.sid not in self.by_sid:
            return
        upto = conn.held[0][0] - 1
        if upto > conn.sent_seq:
            for ev in await self.stream.fetch_range(conn.user_id, conn.sent_seq, upto):
                if ev.seq == conn.sent_seq + 1:
                    await self._send_durable(conn, ev)
        await self._flush_held(conn)

    async def resume(self, conn: Connection, last_seq: int | None) -> None:
        """Replay what the connection missed (or tell it to reset), then go live.

        Pushes committed meanwhile are held on the connection and go out after the replay, so
        the client sees one gapless sequence whichever way the race went."""
        replay = await self.stream.replay(conn.user_id, last_seq)
        if conn.sid not in self.by_sid:
            return  # gone while we read
        if replay.events is None:
            conn.sent_seq = seq = replay.current
            await self.send_to(conn, SyncReady(seq=seq) if last_seq is None else SyncReset(seq=seq))
            await self._go_live(conn)
            return
        conn.sent_seq = replay.current - len(replay.events)
        for ev in replay.events:
            await self._send_durable(conn, ev)
        await self._go_live(conn)
        await self.send_to(conn, SyncReady(seq=conn.sent_seq))

    async def _go_live(self, conn: Connection) -> None:
        conn.ready = True
        await self._flush_held(conn)
        if conn.held:
            await self._fill_gap(conn)
