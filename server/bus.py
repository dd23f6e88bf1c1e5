"""The bus: rings the doorbell after commit.

It carries committed durable events to the live sockets of their users, ephemeral and control
messages (presence, board deltas, session revocations) to every node, and feeds the async handlers
subscribed by event type. This in-process implementation serves one process; a Redis one fills the
same interface for several (only `_transmit` differs), so handlers never know which they have.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Committed:
    """A durable event as committed for one user; `data` is its JSON text."""

    user_id: int
    seq: int
    type: str
    at: datetime
    data: bytes


Listener = Callable[[dict[str, Any]], Awaitable[None]]
Subscriber = Callable[[list[Committed]], Awaitable[None]]

EVENTS = "events"  # the bus message kind carrying committed durable events


class Bus:
    def __init__(self, node_id: str | None = None) -> None:
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def on(self, kind: str, listener: Listener) -> None:
        """Run `listener` for every message of `kind` published by any node."""
        self._listeners[kind].append(listener)

    def subscribe(self, event_type: str, subscriber: Subscriber) -> None:
        """An async handler: runs after commit for the events of `event_type` committed here."""
        self._subscribers[event_type].append(subscriber)

    async def publish(self, kind: str, msg: dict[str, Any]) -> None:
        await self._transmit(kind, msg)

    async def committed(self, events: list[Committed]) -> None:
        if not events:
            return
        await self._transmit(EVENTS, {"events": events})
        self._run_subscribers(events)

    async def _transmit(self, kind: str, msg: dict[str, Any]) -> None:
        await self._dispatch(kind, msg)

    async def _dispatch(self, kind: str, msg: dict[str, Any]) -> None:
        for listener in self._listeners.get(kind, ()):
            try:
                await listener(msg)
            except Exception:
                log.exception("bus listener failed", extra={"kind": kind})

    def _run_subscribers(self, events: list[Committed]) -> None:
        by_type: dict[str, list[Committed]] = defaultdict(list)
        for ev in events:
            if ev.type in self._subscribers:
                by_type[ev.type].append(ev)
        for event_type, batch in by_type.items():
            for subscriber in self._subscribers[event_type]:
                task = asyncio.create_task(self._guarded(subscriber, batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(subscriber: Subscriber, batch: list[Committed]) -> None:
        try:
            await subscriber(batch)
        except Exception:
            log.exception("async handler failed", extra={"handler": repr(subscriber)})
