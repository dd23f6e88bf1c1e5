"""Tasks (交办): assigned to several people with a due time and urgency. Each assignee reports
progress in percent with notes and completes their part, or hands it on (never to someone who
already had it); the assigner sees every part change live (`task.updated`). At the due time the
unfinished assignees and the assigner get `task.overdue`, and assignees who are not online an
SMS. Each open part is an item in its assignee's to-do inbox. A meeting's action is a task too
(`create_task` from handlers/meetings.py), its to-do kind `meeting_action`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from handlers import notify, todo
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, not_found
from server.events import Event, UserRef
from server.feature import Feature
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction
from storage import directory as dq
from storage import tasks as q
from storage.records import User


# --- events -------------------------------------------------------------------------------------
class TaskAssigned(Event):
    type = "task.assigned"
    task_id: str
    title: str
    from_: UserRef = msgspec.field(name="from")
    urgency: str
    due_at: datetime | None


class TaskUpdated(Event):
    type = "task.updated"
    task_id: str
    user_id: str
    state: str
    percent: int
    note: str
    at: datetime


class TaskOverdue(Event):
    type = "task.overdue"
    task_id: str
    title: str
    due_at: datetime
    unfinished: list[UserRef]


commands = CommandSet()
jobs = JobSet()

OVERDUE = "task.overdue"
SMS_TOPIC = "task.sms"
UNFINISHED = ("open", "in_progress")


def _todo_kind(t: q.TaskRecord) -> str:
    return "meeting_action" if t.source == "meeting" else "task"


async def create_task(
    tx: Transaction,
    assigner: User,
    *,
    title: str,
    body: str,
    assignees: list[int],
    urgency: str,
    due_at: datetime | None,
    source: str = "task",
    meeting_mark_id: int | None = None,
) -> int:
    """A task in the caller's transaction: its parts, the assignees' events and to-do items, and
    the overdue reminder."""
    task_id = await q.create(
        tx.conn,
        assigner_id=assigner.id,
        title=title,
        body=body,
        urgency=urgency,
        due_at=due_at,
        assignees=assignees,
        source=source,
        meeting_mark_id=meeting_mark_id,
    )
    t = await q.task(tx.conn, task_id)
    assert t is not None
    await _assigned(tx, t, assignees)
    if due_at is not None:
        await tx.schedule(OVERDUE, str(task_id), due_at, {"task_id": task_id})
    return task_id


async def _assigned(tx: Transaction, t: q.TaskRecord, users: list[int]) -> None:
    await tx.emit(
        users,
        TaskAssigned(
            task_id=str(t.id),
            title=t.title,
            from_=UserRef(str(t.assigner_id), t.assigner_name),
            urgency=t.urgency,
            due_at=t.due_at,
        ),
    )
    await todo.add(
        tx,
        [
            todo.NewTodo(u, _todo_kind(t), t.id, t.title, t.assigner_id, t.urgency, t.due_at)
            for u in users
        ],
    )


class Assign(Input):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    assignees: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=100)]
    client_msg_id: ClientMsgId
    body: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    due_at: datetime | None = None
    urgency: Literal["normal", "urgent"] = "normal"


@commands("task.assign", idempotent=True)
async def task_assign(ctx: Ctx, p: Assign) -> dict[str, Any]:
    people = list(dict.fromkeys(int(a) for a in p.assignees))
    if len(await dq.active_ids(ctx.db, people)) != len(people):
        raise bad_request("no such person", [{"field": "assignees", "message": "unknown"}])
    if p.due_at is not None and p.due_at.tzinfo is None:
        raise bad_request("due_at needs a time zone", [{"field": "due_at", "message": "add Z"}])
    if not p.title.strip():
        raise bad_request("the task needs a title", [{"field": "title", "message": "empty"}])
    async with ctx.transaction() as tx:
        task_id = await create_task(
            tx,
            ctx.user,
            title=p.title.strip(),
            body=p.body,
            assignees=people,
            urgency=p.urgency,
            due_at=p.due_at.astimezone(UTC) if p.due_at else None,
        )
    return {"task_id": str(task_id)}


class Progress(Input):
    task_id: Id
    percent: Annotated[int, msgspec.Meta(ge=0, le=100)]
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


async def _my_part(tx: Transaction, ctx: Ctx, task_id: str) -> tuple[q.TaskRecord, q.Part]:
    t = await q.task(tx.conn, int(task_id))
    if t is not None:  # the people this change may write to, before anything else
        await tx.lock_users([t.assigner_id, ctx.user.id])
    parts = await q.parts(tx.conn, int(task_id), lock=True) if t else []
    mine = next((x for x in parts if x.user_id == ctx.user.id), None)
    if t is None or mine is None:
        raise not_found("no such task")
    if mine.state not in UNFINISHED:
        raise AppError("conflict", f"your part is {mine.state}")
    return t, mine


async def _updated(tx: Transaction, t: q.TaskRecord, part: q.Part) -> None:
    """The assigner hears of the part's change, and so do the assignee's other tabs."""
    await tx.emit(
        {t.assigner_id, part.user_id},
        TaskUpdated(
            task_id=str(t.id),
            user_id=str(part.user_id),
            state=part.state,
            percent=part.percent,
            note=part.note,
            at=part.updated_at,
        ),
    )


@commands("task.progress")
async def task_progress(ctx: Ctx, p: Progress) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        t, _ = await _my_part(tx, ctx, p.task_id)
        part = await q.update_part(
            tx.conn, t.id, ctx.user.id, state="in_progress", percent=p.percent, note=p.note
        )
        await _updated(tx, t, part)
    return _part_view(part)


class Complete(Input):
    task_id: Id
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


@commands("task.complete")
async def task_complete(ctx: Ctx, p: Complete) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        t, _ = await _my_part(tx, ctx, p.task_id)
        part = await q.update_part(
            tx.conn, t.id, ctx.user.id, state="done", percent=100, note=p.note
        )
        await todo.done(tx, _todo_kind(t), [t.id], [ctx.user.id])
        await _updated(tx, t, part)
    return _part_view(part)


class Reassign(Input):
    task_id: Id
    to: Id


@commands("task.reassign")
async def task_reassign(ctx: Ctx, p: Reassign) -> dict[str, Any]:
    """Hand my part on: never to someone who already had this task."""
    to = int(p.to)
    if not await dq.active_ids(ctx.db, [to]):
        raise bad_request("no such person", [{"field": "to", "message": "unknown"}])
    async with ctx.transaction() as tx:
        found = await q.task(tx.conn, int(p.task_id))
        if found is not None:  # everyone this writes to, at once: the new one too
            await tx.lock_users([found.assigner_id, ctx.user.id, to])
        t, mine = await _my_part(tx, ctx, p.task_id)
        if to in {x.user_id for x in await q.parts(tx.conn, t.id)}:
            raise AppError("conflict", "they already had this task")
        part = await q.update_part(
            tx.conn,
            t.id,
            ctx.user.id,
            state="handed_on",
            percent=mine.percent,
            note=mine.note,
            handed_to=to,
        )
        await q.add_part(tx.conn, t.id, to)
        await todo.done(tx, _todo_kind(t), [t.id], [ctx.user.id])
        await _assigned(tx, t, [to])
        await _updated(tx, t, part)
    return _part_view(part)


class TaskRef(Input):
    task_id: Id


def _part_view(x: q.Part) -> dict[str, Any]:
    return {
        "user_id": str(x.user_id),
        "name": x.name,
        "state": x.state,
        "percent": x.percent,
        "note": x.note,
        "handed_to": str(x.handed_to) if x.handed_to else None,
        "updated_at": x.updated_at,
    }


def _task_view(t: q.TaskRecord, parts: list[q.Part]) -> dict[str, Any]:
    return {
        "task_id": str(t.id),
        "title": t.title,
        "body": t.body,
        "from": {"id": str(t.assigner_id), "name": t.assigner_name},
        "urgency": t.urgency,
        "due_at": t.due_at,
        "source": t.source,
        "created_at": t.created_at,
        "assignees": [_part_view(x) for x in parts],
    }


@commands("task.get")
async def task_get(ctx: Ctx, p: TaskRef) -> dict[str, Any]:
    t = await q.task(ctx.db, int(p.task_id))
    parts = await q.parts(ctx.db, int(p.task_id)) if t else []
    if t is None or (
        t.assigner_id != ctx.user.id and ctx.user.id not in {x.user_id for x in parts}
    ):
        raise not_found("no such task")
    return {"task": _task_view(t, parts)}


class TaskList(Input):
    box: Literal["mine", "assigned"] = "mine"
    before: Id | None = None
    limit: Limit = 50


@commands("task.list")
async def task_list(ctx: Ctx, p: TaskList) -> dict[str, Any]:
    before = int(p.before) if p.before else None
    load = q.mine if p.box == "mine" else q.assigned_by
    found = await load(ctx.db, ctx.user.id, before, p.limit)
    parts = await q.parts_of(ctx.db, [t.id for t in found])
    return {"tasks": [_task_view(t, parts[t.id]) for t in found]}


@jobs(OVERDUE)
async def task_overdue(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    """At the due time: the unfinished assignees and the assigner are told; assignees who are
    not online get an SMS (their SMS preference applies)."""
    for payload in payloads:
        t = await q.task(tx.conn, int(payload["task_id"]))
        if t is None or t.due_at is None:
            continue
        late = [x for x in await q.parts(tx.conn, t.id) if x.state in UNFINISHED]
        if not late:
            continue
        await tx.emit(
            {t.assigner_id, *(x.user_id for x in late)},
            TaskOverdue(
                task_id=str(t.id),
                title=t.title,
                due_at=t.due_at,
                unfinished=[UserRef(str(x.user_id), x.name) for x in late],
            ),
        )
        await notify.text_offline(
            services,
            tx,
            [x.user_id for x in late],
            f"【联络】{t.assigner_name}交办的《{t.title}》已到期，请尽快办理",
            topic=SMS_TOPIC,
            refs=[t.id],
        )


feature = Feature("tasks", commands=commands, jobs=jobs)
