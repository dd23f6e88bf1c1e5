"""Every pushed event, declared once (Zulip's event_types.py): the `type` string is fixed per class.

Durable events get a per-user `seq` and are replayed on resume; ephemeral ones (`durable = False`)
carry `seq: null` and are never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec


class Event(msgspec.Struct, kw_only=True, omit_defaults=False):
    type: ClassVar[str]
    durable: ClassVar[bool] = True


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


# --- sync (plumbing) -------------------------------------------------------------------------
class SyncReady(Event):
    type = "sync.ready"
    durable = False
    seq: int


class SyncReset(Event):
    type = "sync.reset"
    durable = False
    seq: int


# --- presence and whereabouts ----------------------------------------------------------------
class PresenceChanged(Event):
    type = "presence.changed"
    durable = False
    user_id: str
    presence: str
    last_seen: datetime | None


class WhereaboutsChanged(Event):
    type = "whereabouts.changed"
    durable = False
    user_id: str
    whereabouts: WhereaboutsView
    reason: str  # "set" | "expired"


class NotesWaiting(Event):
    """A board row's count of unread notes changed (not in the contract's list; ephemeral)."""

    type = "notes.waiting"
    durable = False
    user_id: str
    notes_waiting: int


class NoteReceived(Event):
    type = "note.received"
    note_id: str
    from_: UserRef = msgspec.field(name="from")
    body: str
    at: datetime


# --- pager -----------------------------------------------------------------------------------
class Attachment(msgspec.Struct):
    file_id: str
    name: str
    size: int
    content_type: str


class PagerMessage(Event):
    type = "pager.message"
    message_id: str
    from_: UserRef = msgspec.field(name="from")
    body: str
    priority: str
    attachments: list[Attachment]
    reply_to: str | None
    sent_at: datetime
    via: str  # "web" or "sms" (a reply sent from a phone)


class PagerReceipt(Event):
    type = "pager.receipt"
    message_id: str
    user_id: str
    state: str  # delivered, read, sms_sent, sms_failed, emailed
    at: datetime


# --- circulation -----------------------------------------------------------------------------
class CirculationReceived(Event):
    type = "circulation.received"
    circulation_id: str
    title: str
    from_: UserRef = msgspec.field(name="from")
    deadline: datetime | None
    sent_at: datetime


class CirculationStatus(Event, omit_defaults=True):
    type = "circulation.status"
    circulation_id: str
    user_id: str
    state: str  # opened, confirmed
    at: datetime
    comment: str | None = None


class CirculationReminder(Event):
    type = "circulation.reminder"
    circulation_id: str
    title: str
    from_: UserRef = msgspec.field(name="from")
    deadline: datetime | None


class CirculationRecalled(Event):
    type = "circulation.recalled"
    circulation_id: str


class CirculationOverdue(Event):
    """The deadline passed (not in the contract's list: the issue asks for it)."""

    type = "circulation.overdue"
    circulation_id: str
    unconfirmed: list[UserRef]


# --- meetings --------------------------------------------------------------------------------
class MeetingInvited(Event):
    type = "meeting.invited"
    meeting_id: str
    title: str
    agenda: str
    chair: UserRef
    starts_at: datetime | None


class MeetingMessage(Event):
    type = "meeting.message"
    meeting_id: str
    message_id: str
    from_: UserRef = msgspec.field(name="from")
    body: str
    at: datetime


class MeetingPresence(Event):
    type = "meeting.presence"
    durable = False
    meeting_id: str
    user_id: str
    present: bool


class MeetingMarked(Event):
    type = "meeting.marked"
    meeting_id: str
    message_id: str
    mark_id: str
    kind: str  # decision, action
    body: str
    assignee: UserRef | None
    due: datetime | None


class MeetingActionAssigned(Event):
    """An action item for the assignee: the to-do inbox will collect these."""

    type = "meeting.action_assigned"
    meeting_id: str
    meeting_title: str
    message_id: str
    mark_id: str
    body: str
    due: datetime | None
    assigned_by: UserRef


class MeetingChair(Event):
    """The chair was handed over (not in the contract's list; the handover needs telling)."""

    type = "meeting.chair"
    meeting_id: str
    chair: UserRef


class MeetingClosed(Event):
    type = "meeting.closed"
    meeting_id: str


ALL_EVENTS: tuple[type[Event], ...] = (
    SyncReady,
    SyncReset,
    PresenceChanged,
    WhereaboutsChanged,
    NotesWaiting,
    NoteReceived,
    PagerMessage,
    PagerReceipt,
    CirculationReceived,
    CirculationStatus,
    CirculationReminder,
    CirculationRecalled,
    CirculationOverdue,
    MeetingInvited,
    MeetingMessage,
    MeetingPresence,
    MeetingMarked,
    MeetingActionAssigned,
    MeetingChair,
    MeetingClosed,
)
