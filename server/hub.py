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
from server.cluster import warn_throttled
from server.events import Event, PresenceChanged, SyncReady, SyncReset
from server.stream import Stream, utcnow
from storage.directory import touch_last_seen

if TYPE_CHECKING:
    import socketio

    from server.cluster import Cluster, Reaped
    from server.metrics import Metrics

log = logging.getLogger(__name__)

TOPIC = "topic"  # bus message kind: an ephemeral frame for the subscribers of a topic
USERS = "users"  # bus message kind: an ephemeral frame for all connections of some users
GAP_WAIT_S = 0.25  # how long an out-of-order push waits for the one before it
CATCH_UP_CHUNK = 1000  # events per user read at once when another node's commits are fetched

_encode = msgspec.json.encode


def _iso(at: datetime) -> bytes:
    return _encode(at)


ROOM_PREFIXES = ("meeting:",)  # topics whose membership is shared across nodes


def _merge(a: str, b: str) -> str:
    """Presence from two views: online beats idle beats offline."""
    order = ("offline", "idle", "online")
    return a if order.index(a) >= order.index(b) else b


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
        # With several nodes (server/cluster.py): presence and meeting rooms across them.
        self.cluster: Cluster | None = None
        # Users with sockets here -> the highest seq another node told us was committed.
        self.known_head: dict[int, int] = {}
        self._wanted: dict[int, int] = {}
        self._drainer: asyncio.Task[None] | None = None
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
        if conn.user_id not in self.by_user:
            self.known_head.pop(conn.user_id, None)
        self.metrics.connections.set(len(self.by_sid))
        self.last_seen[conn.user_id] = utcnow()
        await self._presence_moved(conn, before)
        await self._rooms_left(conn)
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
        """Presence as this node sees it (all there is with one process)."""
        return {u: self.presence(u) for u in user_ids}

    async def presence_anywhere(self, user_ids: Iterable[int]) -> dict[int, str]:
        """Presence across every node: what an SMS fallback or a board must go by."""
        ids = list(user_ids)
        local = self.presence_of(ids)
        if self.cluster is None:
            return local
        try:
            shared = await self.cluster.presence_of(ids)
        except Exception as exc:
            warn_throttled(log, "cluster presence unavailable, answering from here: %r", exc)
            return local
        return {u: _merge(local[u], shared[u]) for u in ids}

    async def is_offline(self, user_id: int) -> bool:
        return (await self.presence_anywhere([user_id]))[user_id] == "offline"

    async def connections_anywhere(self, user_ids: list[int]) -> list[int]:
        """Each user's sockets on every node (the per-user cap holds across them)."""
        here = [self.count_for(u) for u in user_ids]
        if self.cluster is None:
            return here
        try:
            elsewhere = await self.cluster.connections_elsewhere(user_ids)
        except Exception as exc:
            warn_throttled(log, "cluster socket counts unavailable, counting here: %r", exc)
            return here
        return [a + b for a, b in zip(here, elsewhere, strict=True)]

    async def _presence_moved(self, conn: Connection, before: str) -> None:
        after = self.presence(conn.user_id)
        if self.cluster is not None:  # the socket count moved, at least
            try:
                await self.cluster.set_presence(
                    conn.user_id, after, conn.department_id, self.count_for(conn.user_id)
                )
            except Exception as exc:
                self.cluster.resync = True  # rewritten whole by the next heartbeat
                warn_throttled(log, "cluster presence not recorded: %r", exc)
        if after == before:
            return
        if self.cluster is not None:
            after = (await self.presence_anywhere([conn.user_id]))[conn.user_id]
        if conn.department_id is None:
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

    # -- rooms: topics whose membership counts across nodes (a meeting's presence) ---------
    async def join_room(self, conn: Connection, topic: str) -> None:
        self.subscribe(conn, topic)
        if self.cluster is not None:
            try:
                await self.cluster.joined(topic, conn.user_id)
            except Exception as exc:
                self.cluster.resync = True
                warn_throttled(log, "room membership not recorded: %r", exc)

    async def leave_room(self, conn: Connection, topic: str) -> None:
        self.unsubscribe(conn, topic)
        await self._left_here(topic, conn.user_id)

    async def _left_here(self, topic: str, user_id: int) -> None:
        if self.cluster is None or user_id in self.users_in(topic):
            return
        try:
            await self.cluster.left(topic, user_id)
        except Exception as exc:
            self.cluster.resync = True
            warn_throttled(log, "room membership not cleared: %r", exc)

    async def _rooms_left(self, conn: Connection) -> None:
        for topic in conn.topics:
            if topic.startswith(ROOM_PREFIXES):
                await self._left_here(topic, conn.user_id)

    async def room_users(self, topic: str) -> set[int]:
        """Who is in the room on any node."""
        here = self.users_in(topic)
        if self.cluster is None:
            return here
        try:
            return here | await self.cluster.users_in(topic)
        except Exception as exc:
            warn_throttled(log, "room membership unavailable, answering from here: %r", exc)
            return here

    def local_rooms(self) -> dict[str, set[int]]:
        return {t: self.users_in(t) for t in self.subscribers if t.startswith(ROOM_PREFIXES)}

    def local_presence(self) -> dict[int, tuple[str, int | None, int]]:
        out: dict[int, tuple[str, int | None, int]] = {}
        for user_id, conns in self.by_user.items():
            department = next(iter(conns.values())).department_id if conns else None
            out[user_id] = (self.presence(user_id), department, len(conns))
        return out

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
        # Another node committed for this user while the replay was read: fetch it now.
        head = self.known_head.get(conn.user_id, 0)
        if head > conn.sent_seq:
            self.hinted({conn.user_id: head})

    # -- several nodes: hints and the sweep ------------------------------------------------
    def hinted(self, heads: dict[int, int]) -> None:
        """Another node committed events up to these seqs: fetch what our sockets lack from
        PostgreSQL and push it in order. Hints arriving meanwhile are merged into the next read."""
        for user_id, head in heads.items():
            if user_id not in self.by_user:
                continue
            if head > self.known_head.get(user_id, 0):
                self.known_head[user_id] = head
            if head > self._wanted.get(user_id, 0):
                self._wanted[user_id] = head
        if self._wanted and (self._drainer is None or self._drainer.done()):
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._wanted:
            wanted, self._wanted = self._wanted, {}
            try:
                await self.catch_up(wanted)
            except Exception:
                log.exception("catching up from the database failed; the sweep will retry")
                return

    async def catch_up(self, heads: dict[int, int]) -> None:
        """Push, to the live sockets of these users, every event up to their head that a socket
        has not had, read from PostgreSQL in seq order: a stale or repeated hint reads nothing."""
        while True:
            ranges: dict[int, tuple[int, int]] = {}
            for user_id, head in heads.items():
                conns = [c for c in self.by_user.get(user_id, {}).values() if c.ready]
                if not conns:
                    continue
                low = min(c.sent_seq for c in conns)
                if head > low:
                    ranges[user_id] = (low, min(head, low + CATCH_UP_CHUNK))
            if not ranges:
                return
            for ev in await self.stream.fetch_ranges(ranges):
                for conn in list(self.by_user.get(ev.user_id, {}).values()):
                    if conn.ready:
                        await self._deliver(conn, ev)
            if all(upto >= heads[u] for u, (_, upto) in ranges.items()):
                return

    async def sweep(self) -> None:
        """Compare the heads of the users with sockets here against what was pushed: a lost
        hint (Redis down, a dropped publish) is found here, one statement for all of them."""
        users = list(self.by_user)
        if not users:
            return
        heads = {}
        for i in range(0, len(users), 10_000):
            heads.update(await self.stream.heads(users[i : i + 10_000]))
        behind = {
            u: h
            for u, h in heads.items()
            if any(c.ready and c.sent_seq < h for c in self.by_user.get(u, {}).values())
        }
        if behind:
            log.debug("sweep: %d users behind", len(behind))
            self.hinted(behind)

    async def heartbeat(self) -> None:
        """Refresh this node's lease, and take the users and rooms of a node whose lease
        expired offline (server/cluster.py)."""
        if self.cluster is None:
            return
        try:
            dead = await self.cluster.heartbeat(self.local_presence, self.local_rooms)
        except Exception as exc:
            warn_throttled(log, "node lease not refreshed: %r", exc)
            return
        for node in dead:
            reaped = await self.cluster.reap(node)
            if reaped is not None:
                await self._reaped(reaped)

    async def _reaped(self, reaped: Reaped) -> None:
        now = await self.presence_anywhere(list(reaped.users))
        gone = [u for u in reaped.users if now[u] == "offline"]
        try:  # last seen about now, as a disconnect would have recorded
            await touch_last_seen(self.stream.pool, gone)
        except Exception:
            log.exception("last seen of a dead node's users not recorded")
        for user_id, department_id in reaped.users.items():
            if now[user_id] == "offline" and department_id is not None:
                seen = self.last_seen.get(user_id, utcnow())
                await self.to_topic(
                    board_topic(department_id),
                    PresenceChanged(user_id=str(user_id), presence="offline", last_seen=seen),
                )
        # The dead node's room stays end as a disconnect would have ended them.
        for topic, user_id in reaped.rooms:
            ghost = Connection(
                sid="", eio_sid="", user_id=user_id, department_id=None, session_id="",
                token_exp=0, topics={topic},
            )  # fmt: skip
            for hook in self.on_disconnect:
                try:
                    await hook(ghost)
                except Exception:
                    log.exception("disconnect hook failed for a dead node's room stay")
