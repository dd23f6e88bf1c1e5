"""One declaration per feature: everything a handlers module adds to the server, in one object.

A handlers module ends with `feature = Feature("pager", commands=..., jobs=..., ...)`, naming its
commands, its job kinds (timers, its own deferred work, and the async handlers it subscribes to
committed events), its outbox topics, HTTP routes, stream-ack hooks, inbound-SMS readers,
disconnect hooks and periodic chores. Its events are the `Event` classes its module declares,
collected automatically. `create_app` takes the list of features and wires each part where it
belongs; adding a domain is a handlers module, a storage module, a migration and one entry in
that list.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.commands import CommandSet
from server.events import Event, declared_events
from server.jobs import JobSet
from server.outbox import OutboxSet

if TYPE_CHECKING:
    from server.hub import Connection
    from server.services import InboundSms, Services
    from server.stream import AckHook

DisconnectHook = Callable[["Services", "Connection"], Awaitable[None]]
Chore = Callable[["Services"], Awaitable[Any]]


@dataclass(frozen=True)
class Feature:
    name: str
    commands: CommandSet = field(default_factory=CommandSet)
    jobs: JobSet = field(default_factory=JobSet)
    outbox: OutboxSet = field(default_factory=OutboxSet)
    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    # Run after acks commit, each in a transaction of its own, with the acks that moved.
    ack_hooks: tuple[AckHook, ...] = ()
    # (order, reader): an inbound SMS is offered to the readers lowest order first.
    inbound_sms: tuple[tuple[int, InboundSms], ...] = ()
    # Run after a socket is gone (its topics still listed).
    on_disconnect: tuple[DisconnectHook, ...] = ()
    # (every seconds, chore): periodic work of the feature's own.
    chores: tuple[tuple[float, Chore], ...] = ()
    # The module whose Event classes are this feature's events (the caller's, by default).
    module: str = field(default_factory=lambda: sys._getframe(2).f_globals["__name__"])

    @property
    def events(self) -> list[type[Event]]:
        """The events this feature's module declares."""
        return [cls for cls in declared_events() if cls.__module__ == self.module]
