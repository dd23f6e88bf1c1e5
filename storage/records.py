"""Typed records the storage layer hands to handlers (never raw rows)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class User(msgspec.Struct, frozen=True):
    id: int
    account: str
    name: str
    department_id: int | None
    title: str
    phone: str | None
    email: str | None
    roles: tuple[str, ...]
    supervisor_id: int | None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_leader(self) -> bool:
        return "leader" in self.roles


class Department(msgspec.Struct, frozen=True):
    id: int
    key: str
    name: str
    parent_id: int | None


class Whereabouts(msgspec.Struct, frozen=True):
    user_id: int
    status: str
    note: str
    location: str
    until: datetime | None
    set_by: int | None
    set_by_name: str | None
    set_at: datetime | None


class BoardMember(msgspec.Struct, frozen=True):
    user: User
    whereabouts: Whereabouts
    notes_waiting: int
    last_seen: datetime | None


class Note(msgspec.Struct, frozen=True):
    id: int
    from_id: int
    from_name: str
    to_id: int
    to_name: str
    body: str
    at: datetime
    read_at: datetime | None


class SessionRow(msgspec.Struct, frozen=True):
    id: str
    user_id: int
    revoked_at: datetime | None
