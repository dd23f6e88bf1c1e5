"""The events' common ground: the `Event` base every pushed event derives from, the shapes several
domains share, and the plumbing's own events. Each domain declares its events in its handlers
module (Zulip's event_types.py, split by domain); every `Event` subclass with a `type` is
collected as it is declared (`declared_events`), and two with one `type` are refused.

Durable events get a per-user `seq` and are replayed on resume; ephemeral ones (`durable = False`)
carry `seq: null` and are never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec

_DECLARED: dict[str, type[Event]] = {}


class Event(msgspec.Struct, kw_only=True, omit_defaults=False):
    type: ClassVar[str]
    durable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("type")
        if declared is not None:
            other = _DECLARED.get(declared)
            assert other is None or other.__qualname__ == cls.__qualname__, (
                f"event type {declared!r} declared twice: {other} and {cls}"
            )
            _DECLARED[declared] = cls


def declared_events() -> list[type[Event]]:
    """Every event type declared so far (a domain's, once its module is imported)."""
    return list(_DECLARED.values())


class UserRef(msgspec.Struct):
    id: str
    name: str


class WhereaboutsView(msgspec.Struct):
    status: str
    note: str
    location: str
    until: datetime | None
    set_by: UserRef | None
    set_at: datetime | None


class SyncReady(Event):
    type = "sync.ready"
    durable = False
    seq: int


class SyncReset(Event):
    type = "sync.reset"
    durable = False
    seq: int


class PresenceChanged(Event):
    type = "presence.changed"
    durable = False
    user_id: str
    presence: str
    last_seen: datetime | None


class Attachment(msgspec.Struct):
    file_id: str
    name: str
    size: int
    content_type: str
