"""Chat-room meetings (寻呼对话) that end with minutes (会议纪要).

Participants talk in turns; one order for everyone (the transcript's). The chair marks decisions
and action items as they come and may hand the chair on. Closing produces minutes: who attended
(with join and leave times) and who did not, decisions, actions, the transcript. They are stored,
rendered as Markdown (handlers/minutes.py), optionally circulated with read receipts, and each
action reaches its assignee as a durable event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from handlers import tasks
from handlers.circulation import create_circulation
from handlers.directory import user_ref
from handlers.minutes import minutes_html, minutes_markdown
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, forbidden, not_found
from server.events import Event, UserRef
from server.feature import Feature
from server.http import authenticate
from server.hub import Connection
from server.keys import SERVICES
from server.services import Services
from server.stream import Transaction
from storage import directory as dq
from storage import meetings as q


# --- events ---------------------------------------------------------------------------------------
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


commands = CommandSet()
routes = web.RouteTableDef()

RECENT = 200  # messages handed to someone joining


def room(meeting_id: int) -> str:
    return f"meeting:{meeting_id}"


async def _meeting(ctx: Ctx, meeting_id: str) -> q.Meeting:
    """Only participants may see a meeting at all; anyone else gets not_found."""
    m = await q.get(ctx.db, int(meeting_id))
    if m is None or not await q.is_participant(ctx.db, m.id, ctx.user.id):
        raise not_found("no such meeting")
    return m


def _chair_only(ctx: Ctx, m: q.Meeting) -> None:
    if m.chair_id != ctx.user.id:
        raise forbidden("only the chair may do this")


def _open_only(m: q.Meeting) -> None:
    if m.closed_at is not None:
        raise AppError("conflict", "the meeting is closed")


def meeting_view(m: q.Meeting, people: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "meeting_id": str(m.id),
        "title": m.title,
        "agenda": m.agenda,
        "chair": {"id": str(m.chair_id), "name": m.chair_name},
        "starts_at": m.starts_at,
        "created_at": m.created_at,
        "closed_at": m.closed_at,
        "participants": [{"id": str(i), "name": n} for i, n in people],
        "circulation_id": str(m.circulation_id) if m.circulation_id else None,
    }


async def _to_participants(tx: Transaction, meeting_id: int, event: Event) -> None:
    """A durable event for every participant, in the room or not (they catch up on resume)."""
    await tx.emit([u for u, _ in await q.participants(tx.conn, meeting_id)], event)


def said_view(meeting_id: int, s: q.Said) -> dict[str, Any]:
    return {
        "meeting_id": str(meeting_id),
        "message_id": str(s.id),
        "from": {"id": str(s.sender_id), "name": s.sender_name},
        "body": s.body,
        "at": s.at,
    }


# --- creating, joining, leaving ---------------------------------------------------------------
class Create(Input):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    participants: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=500)]
    agenda: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    starts_at: datetime | None = None
    client_msg_id: ClientMsgId | None = None


@commands("meeting.create", idempotent=True)
async def meeting_create(ctx: Ctx, p: Create) -> dict[str, Any]:
    title = p.title.strip()
    if not title:
        raise bad_request("the title is empty", [{"field": "title", "message": "empty"}])
    if p.starts_at is not None and p.starts_at.tzinfo is None:
        raise bad_request(
            "starts_at needs a time zone", [{"field": "starts_at", "message": "add Z"}]
        )
    people = sorted({int(i) for i in p.participants} | {ctx.user.id})
    if len(await dq.existing_ids(ctx.db, "users", people)) != len(people):
        raise not_found("no such user")
    async with ctx.transaction() as tx:
        meeting_id = await q.create(
            tx.conn,
            title=title,
            agenda=p.agenda.strip(),
            creator=ctx.user.id,
            starts_at=p.starts_at,
            participants=people,
        )
        await tx.emit(
            [u for u in people if u != ctx.user.id],
            MeetingInvited(
                meeting_id=str(meeting_id),
                title=title,
                agenda=p.agenda.strip(),
                chair=user_ref(ctx.user),
                starts_at=p.starts_at,
            ),
        )
    return {"meeting_id": str(meeting_id)}


class MeetingRef(Input):
    meeting_id: Id


@commands("meeting.join")
async def meeting_join(ctx: Ctx, p: MeetingRef) -> dict[str, Any]:
    m = await _meeting(ctx, p.meeting_id)
    hub = ctx.services.hub
    if ctx.conn is not None and m.closed_at is None:
        first_tab = ctx.user.id not in await hub.room_users(room(m.id))
        await hub.join_room(ctx.conn, room(m.id))
        if first_tab:
            await q.enter(ctx.db, m.id, ctx.user.id)
            await hub.to_topic(
                room(m.id),
                MeetingPresence(meeting_id=str(m.id), user_id=str(ctx.user.id), present=True),
            )
    people = await q.participants(ctx.db, m.id)
    return {
        "meeting": meeting_view(m, people),
        "messages": [said_view(m.id, s) for s in await q.transcript(ctx.db, m.id, RECENT)],
        "marks": [_mark_view(m.id, k) for k in await q.marks(ctx.db, m.id)],
        "present": [str(u) for u in sorted(await hub.room_users(room(m.id)))],
    }


@commands("meeting.leave")
async def meeting_leave(ctx: Ctx, p: MeetingRef) -> dict[str, Any]:
    m = await _meeting(ctx, p.meeting_id)
    if ctx.conn is not None:
        await ctx.services.hub.leave_room(ctx.conn, room(m.id))
        await _left(ctx.services, ctx.user.id, m.id)
    return {"meeting_id": p.meeting_id}


async def _left(services: Services, user_id: int, meeting_id: int) -> None:
    """The user's last tab left the room: their stay ends and the room hears it."""
    if user_id in await services.hub.room_users(room(meeting_id)):
        return
    await q.leave(services.pool, meeting_id, user_id)
    await services.hub.to_topic(
        room(meeting_id),
        MeetingPresence(meeting_id=str(meeting_id), user_id=str(user_id), present=False),
    )


async def leave_on_disconnect(services: Services, conn: Connection) -> None:
    """A disconnect of the last tab leaves the room too."""
    for topic in conn.topics:
        if topic.startswith("meeting:"):
            await _left(services, conn.user_id, int(topic.split(":", 1)[1]))


class ListMeetings(Input):
    state: Literal["open", "closed"] | None = None
    before: Id | None = None
    limit: Limit = 50


@commands("meeting.list")
async def meeting_list(ctx: Ctx, p: ListMeetings) -> dict[str, Any]:
    open_only = None if p.state is None else p.state == "open"
    found = await q.mine(
        ctx.db, ctx.user.id, open_only, int(p.before) if p.before else None, p.limit
    )
    return {
        "meetings": [
            {
                "meeting_id": str(m.id),
                "title": m.title,
                "chair": {"id": str(m.chair_id), "name": m.chair_name},
                "starts_at": m.starts_at,
                "created_at": m.created_at,
                "closed_at": m.closed_at,
            }
            for m in found
        ]
    }


# --- talking and marking ------------------------------------------------------------------------
class Say(Input):
    meeting_id: Id
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
    client_msg_id: ClientMsgId


@commands("meeting.say", idempotent=True)
async def meeting_say(ctx: Ctx, p: Say) -> dict[str, Any]:
    body = p.body.strip()
    if not body:
        raise bad_request("nothing said", [{"field": "body", "message": "empty"}])
    await _meeting(ctx, p.meeting_id)
    async with ctx.transaction() as tx:
        m = await q.get(tx.conn, int(p.meeting_id), lock=True)
        assert m is not None
        _open_only(m)
        said = await q.say(tx.conn, m.id, ctx.user.id, body)
        await _to_participants(
            tx,
            m.id,
            MeetingMessage(
                meeting_id=str(m.id),
                message_id=str(said.id),
                from_=user_ref(ctx.user),
                body=body,
                at=said.at,
            ),
        )
    return {"message_id": str(said.id)}


class MarkIn(Input):
    meeting_id: Id
    message_id: Id
    kind: Literal["decision", "action"]
    assignee: Id | None = None
    due: datetime | None = None


def _mark_view(meeting_id: int, k: q.Mark) -> dict[str, Any]:
    return {
        "mark_id": str(k.id),
        "message_id": str(k.message_id),
        "kind": k.kind,
        "assignee": {"id": str(k.assignee_id), "name": k.assignee_name} if k.assignee_id else None,
        "due": k.due,
        "at": k.at,
    }


@commands("meeting.mark")
async def meeting_mark(ctx: Ctx, p: MarkIn) -> dict[str, Any]:
    m = await _meeting(ctx, p.meeting_id)
    _chair_only(ctx, m)
    _open_only(m)
    said = await q.message(ctx.db, m.id, int(p.message_id))
    if said is None:
        raise not_found("no such message in this meeting")
    assignee = int(p.assignee) if p.assignee else None
    if p.kind == "decision" and (assignee is not None or p.due is not None):
        raise bad_request(
            "a decision has no assignee or due date",
            [{"field": "assignee", "message": "actions only"}],
        )
    if assignee is not None and not await q.is_participant(ctx.db, m.id, assignee):
        raise bad_request(
            "the assignee must be a participant",
            [{"field": "assignee", "message": "not a participant"}],
        )
    if p.due is not None and p.due.tzinfo is None:
        raise bad_request("due needs a time zone", [{"field": "due", "message": "add Z"}])
    async with ctx.transaction() as tx:
        mark = await q.add_mark(
            tx.conn,
            meeting_id=m.id,
            message_id=said.id,
            kind=p.kind,
            assignee_id=assignee,
            due=p.due,
            marked_by=ctx.user.id,
        )
        assignee_ref = UserRef(str(assignee), mark.assignee_name or "") if assignee else None
        await _to_participants(
            tx,
            m.id,
            MeetingMarked(
                meeting_id=str(m.id),
                message_id=str(said.id),
                mark_id=str(mark.id),
                kind=p.kind,
                body=said.body,
                assignee=assignee_ref,
                due=p.due,
            ),
        )
        if assignee is not None:
            # A meeting's action is a task too: progress, completion and overdue reminders.
            await tasks.create_task(
                tx,
                ctx.user,
                title=f"{m.title}：{said.body}"[:200],
                body=said.body,
                assignees=[assignee],
                urgency="normal",
                due_at=p.due,
                source="meeting",
                meeting_mark_id=mark.id,
            )
            await tx.emit(
                [assignee],
                MeetingActionAssigned(
                    meeting_id=str(m.id),
                    meeting_title=m.title,
                    message_id=str(said.id),
                    mark_id=str(mark.id),
                    body=said.body,
                    due=p.due,
                    assigned_by=user_ref(ctx.user),
                ),
            )
    return _mark_view(m.id, mark)


class Handover(Input):
    meeting_id: Id
    to: Id


@commands("meeting.handover")
async def meeting_handover(ctx: Ctx, p: Handover) -> dict[str, Any]:
    m = await _meeting(ctx, p.meeting_id)
    _chair_only(ctx, m)
    _open_only(m)
    to = int(p.to)
    if not await q.is_participant(ctx.db, m.id, to):
        raise bad_request(
            "the new chair must be a participant", [{"field": "to", "message": "not a participant"}]
        )
    new_chair = await dq.get_user(ctx.db, to)
    assert new_chair is not None
    async with ctx.transaction() as tx:
        await q.set_chair(tx.conn, m.id, to)
        await _to_participants(
            tx, m.id, MeetingChair(meeting_id=str(m.id), chair=user_ref(new_chair))
        )
    return {"meeting_id": p.meeting_id, "chair": {"id": str(to), "name": new_chair.name}}


# --- closing and minutes --------------------------------------------------------------------------
class Close(Input):
    meeting_id: Id
    summary: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None
    circulate: bool = False


@commands("meeting.close")
async def meeting_close(ctx: Ctx, p: Close) -> dict[str, Any]:
    m = await _meeting(ctx, p.meeting_id)
    _chair_only(ctx, m)
    async with ctx.transaction() as tx:
        locked = await q.get(tx.conn, m.id, lock=True)
        assert locked is not None
        _open_only(locked)
        await q.close_stays(tx.conn, m.id)
        summary = (p.summary or "").strip() or None
        closed_at = await q.close(tx.conn, m.id, summary, b"{}")
        minutes = await build_minutes(tx.conn, locked, closed_at, summary)
        circulation_id = None
        people = [u for u, _ in await q.participants(tx.conn, m.id)]
        if p.circulate:
            circulation_id, _ = await create_circulation(
                ctx.services,
                tx,
                sender=ctx.user,
                title=f"会议纪要：{m.title}",
                body=minutes_html(minutes),
                user_ids=[u for u in people if u != ctx.user.id],
                department_ids=[],
                attachments=[],
                deadline=None,
            )
            minutes["circulation_id"] = str(circulation_id)
        await q.set_minutes(tx.conn, m.id, msgspec.json.encode(minutes), circulation_id)
        await tx.emit(people, MeetingClosed(meeting_id=str(m.id)))
    ctx.services.hub.close_topic(room(m.id))
    return {"minutes": minutes}


async def build_minutes(
    db: Any, m: q.Meeting, closed_at: datetime, summary: str | None
) -> dict[str, Any]:
    people = await q.participants(db, m.id)
    stays = await q.stays(db, m.id)
    said = await q.transcript(db, m.id)
    marks = await q.marks(db, m.id)
    by_id = {s.id: s for s in said}
    attended = {s.user_id for s in stays}
    # When it actually began: the first arrival; the scheduled time only if nobody came.
    started = stays[0].joined_at if stays else (m.starts_at or m.created_at)
    return {
        "meeting_id": str(m.id),
        "title": m.title,
        "agenda": m.agenda,
        "chair": {"id": str(m.chair_id), "name": m.chair_name},
        "started_at": started,
        "ended_at": closed_at,
        "attendees": [
            {
                "id": str(s.user_id),
                "name": s.name,
                "joined_at": s.joined_at,
                "left_at": s.left_at or closed_at,
            }
            for s in stays
        ],
        "absentees": [{"id": str(i), "name": n} for i, n in people if i not in attended],
        "decisions": [
            {
                "mark_id": str(k.id),
                "message_id": str(k.message_id),
                "body": by_id[k.message_id].body,
                "by": by_id[k.message_id].sender_name,
            }
            for k in marks
            if k.kind == "decision"
        ],
        "actions": [
            {
                "mark_id": str(k.id),
                "message_id": str(k.message_id),
                "body": by_id[k.message_id].body,
                "assignee": {"id": str(k.assignee_id), "name": k.assignee_name}
                if k.assignee_id
                else None,
                "due": k.due,
            }
            for k in marks
            if k.kind == "action"
        ],
        "transcript": [said_view(m.id, s) for s in said],
        "summary": summary,
        "circulation_id": None,
    }


@commands("meeting.minutes")
async def meeting_minutes(ctx: Ctx, p: MeetingRef) -> dict[str, Any]:
    m = await _meeting(ctx, p.meeting_id)
    if m.closed_at is None:
        raise AppError("conflict", "the meeting is still open: minutes come when it closes")
    minutes = await q.minutes(ctx.db, m.id)
    assert isinstance(minutes, dict)
    return {"minutes": minutes, "markdown": minutes_markdown(minutes)}


@routes.get("/api/v1/meetings/{meeting_id}/minutes.md")
async def minutes_md(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user, _ = await authenticate(request)
    raw = request.match_info["meeting_id"]
    m = await q.get(services.pool, int(raw)) if raw.isdigit() and len(raw) < 19 else None
    if m is None or not await q.is_participant(services.pool, m.id, user.id):
        raise not_found("no such meeting")
    if m.closed_at is None:
        raise AppError("conflict", "the meeting is still open")
    minutes = await q.minutes(services.pool, m.id)
    assert isinstance(minutes, dict)
    return web.Response(
        text=minutes_markdown(minutes),
        content_type="text/markdown",
        charset="utf-8",
        headers={"Content-Disposition": f"inline; filename=minutes-{m.id}.md"},
    )


feature = Feature(
    "meetings", commands=commands, routes=routes, on_disconnect=(leave_on_disconnect,)
)
