"""Everything a handler can reach, built once per app by create_app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from server.batch import Batcher
from storage.ids import IdBlocks

if TYPE_CHECKING:
    import socketio

    from server.auth import Auth
    from server.bus import Bus
    from server.commands import Registry
    from server.config import Config
    from server.hub import Hub
    from server.jobs import Jobs
    from server.limits import RateLimiter
    from server.metrics import Metrics
    from server.outbox import Outbox
    from server.stream import Stream


@dataclass(slots=True)
class Services:
    config: Config
    pool: asyncpg.Pool
    bus: Bus
    stream: Stream
    auth: Auth
    hub: Hub
    jobs: Jobs
    registry: Registry
    limiter: RateLimiter
    metrics: Metrics
    sio: socketio.AsyncServer
    outbox: Outbox
    # Readers of inbound SMS (user_id, text, sms_id) -> answer or None, asked in order.
    inbound_sms: list[InboundSms] = field(default_factory=list)
    _batchers: dict[Any, Batcher[Any, Any]] = field(default_factory=dict)
    _ids: dict[str, IdBlocks] = field(default_factory=dict)

    def ids(self, table: str) -> IdBlocks:
        """This app's ids handed out ahead for `table`'s rows."""
        blocks = self._ids.get(table)
        if blocks is None:
            blocks = self._ids[table] = IdBlocks(table)
        return blocks

    def batcher(self, run: Callable[[Services, list[T]], Awaitable[Sequence[R]]]) -> Batcher[T, R]:
        """This app's one `Batcher` for `run(services, items)`: callers at about the same moment
        share a run."""
        b = self._batchers.get(run)
        if b is None:
            b = self._batchers[run] = Batcher(partial(run, self))
        return b


T = TypeVar("T")
R = TypeVar("R")
InboundSms = Callable[["Services", int, str, str], Awaitable[dict[str, Any] | None]]
