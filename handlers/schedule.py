"""Schedule (日程): personal, department and leaders' calendars with visibility, invitations,
cancellation, and reminders at `starts_at - remind_before_s`: a durable job, so a restart in
between neither loses nor repeats one. At the reminder the owner and attendees get
`schedule.reminder`; those not online get one SMS instead (unless they turned SMS off). An
invitation is a to-do item until the entry is cancelled or its reminder comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from handlers import notify, todo
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input
from server.errors import AppError, bad_request, not_found
from server.events import Event, UserRef
from server.feature import Feature
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction, utcnow
from storage import directory as dq
from storage import schedule as q
from storage.records import User


class ScheduleInvited(Event):
    type = "schedule.invited"
    entry_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    from_: UserRef = msgspec.field(name="from")


class ScheduleCancelled(Event):
    type = "schedule.cancelled"
    entry_id: str
    title: str
    starts_at: datetime


class ScheduleReminder(Event):
    type = "schedule.reminder"
    entry_id: str
    title: str
    starts_at: datetime
    location: str


commands = CommandSet()
jobs = JobSet()

REMIND = "schedule.remind"
SMS_TOPIC = "schedule.sms"
MAX_SPAN = timedelta(days=62)  # the widest calendar one list call reads


def _utc(at: datetime, field: str) -> datetime:
    if at.tzinfo is None:
        raise bad_request(f"{field} needs a time zone", [{"field": field, "message": "add Z"}])
    return at.astimezone(UTC)


class Create(Input):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    starts_at: datetime
    client_msg_id: ClientMsgId
    ends_at: datetime | None = None
    location: Annotated[str, msgspec.Meta(max_length=200)] = ""
    attendees: Annotated[list[Id], msgspec.Meta(max_length=200)] = []
    remind_before_s: Annotated[int, msgspec.Meta(ge=0, le=7 * 86400)] = 900
    visibility: Literal["private", "department", "public"] = "department"


@commands("schedule.create", idempotent=True)
async def schedule_create(ctx: Ctx, p: Create) -> dict[str, Any]:
    starts = _utc(p.starts_at, "starts_at")
    ends = _utc(p.ends_at, "ends_at") if p.ends_at else starts + timedelta(hours=1)
    if ends < starts:
        raise bad_request("it ends before it starts", [{"field": "ends_at", "message": "early"}])
    attendees = [a for a in dict.fromkeys(int(x) for x in p.attendees) if a != ctx.user.id]
    if len(await dq.active_ids(ctx.db, attendees)) != len(attendees):
        raise bad_request("no such person", [{"field": "attendees", "message": "unknown"}])
    async with ctx.transaction() as tx:
        e = await q.create(
            tx.conn,
            owner_id=ctx.user.id,
            title=p.title.strip(),
            starts_at=starts,
            ends_at=ends,
            location=p.location.strip(),
            visibility=p.visibility,
            remind_before_s=p.remind_before_s,
            attendees=attendees,
        )
        await tx.emit(
            attendees,
            ScheduleInvited(
                entry_id=str(e.id),
                title=e.title,
                starts_at=e.starts_at,
                ends_at=e.ends_at,
                location=e.location,
                from_=UserRef(str(ctx.user.id), ctx.user.name),
            ),
        )
        await todo.add(
            tx,
            [
                todo.NewTodo(u, "schedule", e.id, e.title, ctx.user.id, due_at=e.starts_at)
                for u in attendees
            ],
        )
        remind_at = e.starts_at - timedelta(seconds=e.remind_before_s)
        if e.starts_at > utcnow():
            await tx.schedule(REMIND, str(e.id), max(remind_at, utcnow()), {"entry_id": e.id})
    return {"entry_id": str(e.id)}


class EntryRef(Input):
    entry_id: Id


@commands("schedule.cancel")
async def schedule_cancel(ctx: Ctx, p: EntryRef) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        e = await q.entry(tx.conn, int(p.entry_id), lock=True)
        if e is None or (e.owner_id != ctx.user.id and ctx.user.id not in e.attendees):
            raise not_found("no such entry")
        if e.owner_id != ctx.user.id:
            raise AppError("forbidden", "only its owner cancels an entry")
        if e.cancelled_at is None:
            await q.cancel(tx.conn, e.id)
            await tx.cancel(REMIND, str(e.id))
            await tx.emit(
                e.attendees,
                ScheduleCancelled(entry_id=str(e.id), title=e.title, starts_at=e.starts_at),
            )
            await todo.done(tx, "schedule", [e.id])
    return {"entry_id": p.entry_id, "cancelled": True}


class ListCalendar(Input):
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    user_id: Id | None = None


def _may_see(viewer: User, owner_department: int | None, e: q.Entry) -> bool:
    if viewer.id == e.owner_id or viewer.id in e.attendees or e.visibility == "public":
        return True
    return e.visibility == "department" and owner_department == viewer.department_id


@commands("schedule.list")
async def schedule_list(ctx: Ctx, p: ListCalendar) -> dict[str, Any]:
    """One's own calendar, or another's as its entries' visibility allows: a private entry (or
    a department one seen from elsewhere) shows as busy, without a title."""
    start, end = _utc(p.start, "from"), _utc(p.end, "to")
    if end <= start or end - start > MAX_SPAN:
        raise bad_request("from/to: a span of at most 62 days", [{"field": "to"}])
    whose = int(p.user_id) if p.user_id else ctx.user.id
    owner = await dq.get_user(ctx.db, whose)
    if owner is None:
        raise not_found("no such person")
    entries = await q.calendar(ctx.db, whose, start, end)
    owners = {u.id: u for u in await dq.users_by_ids(ctx.db, sorted({e.owner_id for e in entries}))}
    out = []
    for e in entries:
        dept = owners[e.owner_id].department_id if e.owner_id in owners else None
        base: dict[str, Any] = {
            "entry_id": str(e.id),
            "starts_at": e.starts_at,
            "ends_at": e.ends_at,
        }
        if _may_see(ctx.user, dept, e):
            base |= {
                "busy": False,
                "title": e.title,
                "location": e.location,
                "owner": {"id": str(e.owner_id), "name": e.owner_name},
                "visibility": e.visibility,
                "attendees": [str(a) for a in e.attendees],
            }
        else:
            base["busy"] = True
        out.append(base)
    return {"user_id": str(whose), "entries": out}


@jobs(REMIND)
async def schedule_remind(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]]
) -> None:
    for payload in payloads:
        e = await q.entry(tx.conn, int(payload["entry_id"]))
        if e is None or e.cancelled_at is not None:
            continue
        people = [e.owner_id, *e.attendees]
        await tx.emit(
            people,
            ScheduleReminder(
                entry_id=str(e.id), title=e.title, starts_at=e.starts_at, location=e.location
            ),
        )
        await todo.done(tx, "schedule", [e.id])
        local = e.starts_at.astimezone(ZoneInfo(services.config.timezone)).strftime("%m-%d %H:%M")
        await notify.text_offline(
            services,
            tx,
            people,
            f"【联络】日程提醒：{local}《{e.title}》{e.location}",
            topic=SMS_TOPIC,
            refs=[e.id],
        )


feature = Feature("schedule", commands=commands, jobs=jobs)
