"""Presence and whereabouts (人员去向) and the message board (留言).

Whereabouts is durable state; its changes reach board watchers as ephemeral deltas. A return time
(`until`) is a durable timer, so it expires on time even across a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from handlers.directory import user_ref, whereabouts_view
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, not_found
from server.events import Event, UserRef, WhereaboutsView
from server.feature import Feature
from server.hub import board_topic
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction
from storage import directory as dq
from storage import presence as q
from storage.records import User, Whereabouts


# --- events ---------------------------------------------------------------------------------------
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


commands = CommandSet()
jobs = JobSet()

Status = Literal[
    "in_office", "in_meeting", "business_trip", "on_leave", "out", "remote", "off_duty"
]
EXPIRE = "whereabouts.expire"
MAX_AHEAD = timedelta(days=366)


class WhereaboutsSet(Input):
    status: Status
    note: Annotated[str, msgspec.Meta(max_length=200)] = ""
    location: Annotated[str, msgspec.Meta(max_length=200)] = ""
    until: datetime | None = None
    for_user: Id | None = None


async def _target(ctx: Ctx, for_user: str | None) -> User:
    if for_user is None or int(for_user) == ctx.user.id:
        return ctx.user
    target = await dq.get_user(ctx.db, int(for_user))
    if target is None:
        raise not_found("no such user")
    if not await dq.may_act_for(ctx.db, ctx.user.id, target.id):
        raise AppError("forbidden", "only the user's leader or a delegate may do this")
    return target


def _check_until(until: datetime | None) -> datetime | None:
    if until is None:
        return None
    if until.tzinfo is None:
        raise bad_request("until needs a time zone", [{"field": "until", "message": "add Z"}])
    now = datetime.now(UTC)
    if until <= now:
        raise bad_request("until is in the past", [{"field": "until", "message": "in the past"}])
    if until > now + MAX_AHEAD:
        raise bad_request("until is too far ahead", [{"field": "until", "message": "over a year"}])
    return until.astimezone(UTC)


async def _announce(
    services: Services, tx: Transaction, user: User, w: Whereabouts, reason: str
) -> None:
    if user.department_id is None:
        return
    event = WhereaboutsChanged(user_id=str(user.id), whereabouts=whereabouts_view(w), reason=reason)
    tx.publish(board_topic(user.department_id), event)


@commands("whereabouts.set")
async def whereabouts_set(ctx: Ctx, p: WhereaboutsSet) -> dict[str, Any]:
    target = await _target(ctx, p.for_user)
    until = _check_until(p.until)
    async with ctx.transaction() as tx:
        w = await set_whereabouts_for(
            ctx.services,
            tx,
            target,
            status=p.status,
            note=p.note.strip(),
            location=p.location.strip(),
            until=until,
            set_by=ctx.user.id,
        )
    return {"user_id": str(target.id), "whereabouts": whereabouts_view(w)}


async def set_whereabouts_for(
    services: Services,
    tx: Transaction,
    target: User,
    *,
    status: str,
    note: str,
    location: str,
    until: datetime | None,
    set_by: int,
) -> Whereabouts:
    """Set someone's whereabouts (until a time, when given), live on their department's board;
    also for other features (an approved leave)."""
    w = await q.set_whereabouts(
        tx.conn,
        user_id=target.id,
        status=status,
        note=note,
        location=location,
        until=until,
        set_by=set_by,
    )
    if until is not None and status != q.DEFAULT_STATUS:
        payload = {"user_id": target.id, "until": until.isoformat()}
        await tx.schedule(EXPIRE, str(target.id), until, payload)
    else:
        await tx.cancel(EXPIRE, str(target.id))
    await _announce(services, tx, target, w, "set")
    return w


async def clear_whereabouts_set_as(
    services: Services, tx: Transaction, target: User, marker: str
) -> None:
    """Back in the office, if the current whereabouts is the one whose note carries `marker`
    (a withdrawn leave undoes its own whereabouts, not one set since)."""
    current = (await q.whereabouts_of(tx.conn, [target.id])).get(target.id)
    if current is None or marker not in current.note:
        return
    await set_whereabouts_for(
        services,
        tx,
        target,
        status=q.DEFAULT_STATUS,
        note="",
        location="",
        until=None,
        set_by=target.id,
    )


@jobs(EXPIRE)
async def whereabouts_expire(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]]
) -> None:
    for payload in payloads:
        until = datetime.fromisoformat(payload["until"])
        w = await q.expire_whereabouts(tx.conn, int(payload["user_id"]), until)
        if w is None:  # changed since; that change owns the timer now
            continue
        user = await dq.get_user(tx.conn, w.user_id)
        if user is not None:
            await _announce(services, tx, user, w, "expired")


class Board(Input):
    department_id: Id


@commands("whereabouts.board")
async def whereabouts_board(ctx: Ctx, p: Board) -> dict[str, Any]:
    department_id = int(p.department_id)
    if not await dq.department_exists(ctx.db, department_id):
        raise not_found("no such department")
    # Subscribed before the read: a change committed once the read has begun is pushed here
    # (pushes go out after commit), one committed before it is in the answer. Subscribed
    # after, a change committed between the read and the subscription was in neither.
    if ctx.conn is not None:
        ctx.services.hub.subscribe(ctx.conn, board_topic(department_id))
    members = await q.board(ctx.db, department_id)
    hub = ctx.services.hub
    presence = await hub.presence_anywhere(m.user.id for m in members)
    return {
        "department_id": p.department_id,
        "members": [
            {
                "user": {
                    "id": str(m.user.id),
                    "name": m.user.name,
                    "title": m.user.title,
                    "department_id": str(m.user.department_id),
                    "phone": m.user.phone,
                },
                "presence": presence[m.user.id],
                "last_seen": hub.last_seen.get(m.user.id, m.last_seen),
                "whereabouts": whereabouts_view(m.whereabouts),
                "notes_waiting": m.notes_waiting,
            }
            for m in members
        ],
    }


class Unwatch(Input):
    department_id: Id


@commands("whereabouts.unwatch")
async def whereabouts_unwatch(ctx: Ctx, p: Unwatch) -> dict[str, Any]:
    if ctx.conn is not None:
        ctx.services.hub.unsubscribe(ctx.conn, board_topic(int(p.department_id)))
    return {"department_id": p.department_id}


# --- message board ---------------------------------------------------------------------------
class NotesLeave(Input):
    to: Id
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    client_msg_id: ClientMsgId | None = None


@commands("notes.leave", idempotent=True)
async def notes_leave(ctx: Ctx, p: NotesLeave) -> dict[str, Any]:
    body = p.body.strip()
    if not body:
        raise bad_request("the note is empty", [{"field": "body", "message": "empty"}])
    to = await dq.get_user(ctx.db, int(p.to))
    if to is None:
        raise not_found("no such user")
    async with ctx.transaction() as tx:
        note = await q.leave_note(tx.conn, ctx.user.id, to.id, body)
        await tx.emit(
            [to.id],
            NoteReceived(
                note_id=str(note.id), from_=user_ref(ctx.user), body=note.body, at=note.at
            ),
        )
        waiting = await q.notes_waiting(tx.conn, to.id)
        _announce_waiting(ctx.services, tx, to, waiting)
    return {"note_id": str(note.id)}


def _announce_waiting(services: Services, tx: Transaction, user: User, waiting: int) -> None:
    if user.department_id is None:
        return
    event = NotesWaiting(user_id=str(user.id), notes_waiting=waiting)
    tx.publish(board_topic(user.department_id), event)


class NotesList(Input):
    before: Id | None = None
    limit: Limit = 50


@commands("notes.list")
async def notes_list(ctx: Ctx, p: NotesList) -> dict[str, Any]:
    notes = await q.notes_for(ctx.db, ctx.user.id, int(p.before) if p.before else None, p.limit)
    return {
        "notes": [
            {
                "id": str(n.id),
                "from": {"id": str(n.from_id), "name": n.from_name},
                "body": n.body,
                "at": n.at,
                "read_at": n.read_at,
            }
            for n in notes
        ],
        "notes_waiting": await q.notes_waiting(ctx.db, ctx.user.id),
    }


class NotesRead(Input):
    note_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=100)]


@commands("notes.read")
async def notes_read(ctx: Ctx, p: NotesRead) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        changed, waiting = await q.mark_notes_read(
            tx.conn, ctx.user.id, [int(i) for i in p.note_ids]
        )
        if changed:
            _announce_waiting(ctx.services, tx, ctx.user, waiting)
    return {"notes_waiting": waiting}


# --- delegates ---------------------------------------------------------------------------------
class DelegatesSet(Input):
    """Who besides my leaders may set my whereabouts (a secretary, say); replaces the list."""

    user_ids: Annotated[list[Id], msgspec.Meta(max_length=20)]


@commands("delegates.set")
async def delegates_set(ctx: Ctx, p: DelegatesSet) -> dict[str, Any]:
    ids = sorted({int(i) for i in p.user_ids} - {ctx.user.id})
    if len(await dq.users_by_ids(ctx.db, ids)) != len(ids):
        raise not_found("no such user")
    async with ctx.transaction() as tx:
        await q.set_delegates(tx.conn, ctx.user.id, ids)
    return await delegates_list(ctx, DelegatesList())


class DelegatesList(Input):
    pass


@commands("delegates.list")
async def delegates_list(ctx: Ctx, p: DelegatesList) -> dict[str, Any]:
    rows = await q.delegates_of(ctx.db, ctx.user.id)
    return {"delegates": [{"id": str(i), "name": n} for i, n in rows]}


feature = Feature("presence", commands=commands, jobs=jobs)
