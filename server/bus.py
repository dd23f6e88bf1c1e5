"""The bus: rings the doorbell after commit.

It carries committed durable events to the live sockets of their users, and ephemeral and control
messages (presence, board deltas, session revocations) to every node. (The async handlers of
committed events are jobs, written with the events: server/jobs.py.) This in-process
implementation serves one process; a Redis one fills the same interface for several (only
`_transmit` differs), so handlers never know which they have.
"""

from __future__ import annotations

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

EVENTS = "events"  # the bus message kind carrying committed durable events


class Bus:
    def __init__(self, node_id: str | None = None) -> None:
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def stop(self) -> None:
        return None

    def on(self, kind: str, listener: Listener) -> None:
        """Run `listener` for every message of `kind` published by any node."""
        self._listeners[kind].append(listener)

    async def publish(self, kind: str, msg: dict[str, Any]) -> None:
        await self._transmit(kind, msg)

    async def committed(self, events: list[Committed]) -> None:
        if not events:
            return
        await self._transmit(EVENTS, {"events": events})

    async def _transmit(self, kind: str, msg: dict[str, Any]) -> None:
        await self._dispatch(kind, msg)

    async def _dispatch(self, kind: str, msg: dict[str, Any]) -> None:
        for listener in self._listeners.get(kind, ()):
            try:
                await listener(msg)
            except Exception:
                log.exception("bus listener failed", extra={"kind": kind})
