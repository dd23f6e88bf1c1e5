"""Everything a handler can reach, built once per app by create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    import socketio

    from server.auth import Auth
    from server.bus import Bus
    from server.commands import Registry
    from server.config import Config
    from server.hub import Hub
    from server.limits import RateLimiter
    from server.metrics import Metrics
    from server.stream import Stream
    from server.timers import Timers


@dataclass(slots=True)
class Services:
    config: Config
    pool: asyncpg.Pool
    bus: Bus
    stream: Stream
    auth: Auth
    hub: Hub
    timers: Timers
    registry: Registry
    limiter: RateLimiter
    metrics: Metrics
    sio: socketio.AsyncServer
