"""The to-do inbox (待办): everything a person must act on, in one list with live counts.

Each module adds and closes its own items inside the transaction that makes the change
(`add`, `done`): a circulation received or confirmed or recalled, an approval task opened or
closed. Every change is a durable event to the owner carrying the new counts
(`todo.added {item, counts}`, `todo.done {todo_id, kind, ref_id, counts}`), so a client never
recounts. The counts are exact under concurrency: the owners' streams are locked first
(`Transaction.lock_users`), so each count sees every change committed before it. A change that
touches several people locks them all at its start, so these locks never cross.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from server.commands import CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, not_found
from server.events import Event, UserRef
from server.feature import Feature
from server.stream import Transaction
from storage import todo as q
from storage.todo import NewTodo

__all__ = ["NewTodo", "add", "done", "feature"]

Kind = Literal[
    "approval", "task", "circulation", "meeting_action", "schedule", "document", "notice"
]


class TodoItem(msgspec.Struct):
    todo_id: str
    kind: str
    ref_id: str
    title: str
    from_: UserRef | None = msgspec.field(name="from")
    urgency: str
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None


class TodoCounts(msgspec.Struct):
    open: int
    urgent: int
    overdue: int
    by_kind: dict[str, int]


class TodoAdded(Event):
    type = "todo.added"
    item: TodoItem
    counts: TodoCounts


class TodoDone(Event):
    type = "todo.done"
    todo_id: str
    kind: str
    ref_id: str
    counts: TodoCounts


def item_view(t: q.Todo) -> TodoItem:
    return TodoItem(
        todo_id=str(t.id),
        kind=t.kind,
        ref_id=str(t.ref_id),
        title=t.title,
        from_=UserRef(str(t.from_id), t.from_name or "") if t.from_id is not None else None,
        urgency=t.urgency,
        due_at=t.due_at,
        created_at=t.created_at,
        done_at=t.done_at,
    )


def counts_view(c: q.Counts) -> TodoCounts:
    return TodoCounts(open=c.open, urgent=c.urgent, overdue=c.overdue, by_kind=dict(c.by_kind))


async def add(tx: Transaction, items: Sequence[NewTodo]) -> None:
    """Add these items, in the caller's transaction; each owner gets `todo.added`."""
    if not items:
        return
    await tx.lock_users(i.user_id for i in items)
    added = await q.add(tx.conn, items)
    await _tell(tx, added, done=False)


async def done(
    tx: Transaction, kind: str, ref_ids: Sequence[int], user_ids: Sequence[int] | None = None
) -> None:
    """Close the open items of these refs (for these people only, when given); each owner gets
    `todo.done`."""
    if not ref_ids:
        return
    owners = list(user_ids) if user_ids is not None else await q.owners(tx.conn, kind, ref_ids)
    if not owners:
        return
    await tx.lock_users(owners)
    closed = await q.close(tx.conn, kind, ref_ids, user_ids)
    await _tell(tx, closed, done=True)


async def _tell(tx: Transaction, changed: list[q.Todo], *, done: bool) -> None:
    """One event per changed item, each with its owner's counts after all of them (so the last
    event a person gets carries the count that stands)."""
    if not changed:
        return
    counts = await q.counts(tx.conn, [t.user_id for t in changed])
    events: list[tuple[int, Event]] = []
    for t in changed:
        c = counts_view(counts[t.user_id])
        if done:
            events.append(
                (
                    t.user_id,
                    TodoDone(todo_id=str(t.id), kind=t.kind, ref_id=str(t.ref_id), counts=c),
                )
            )
        else:
            events.append((t.user_id, TodoAdded(item=item_view(t), counts=c)))
    await tx.emit_each(events)


commands = CommandSet()


class TodoList(Input):
    kind: Kind | None = None
    state: Literal["open", "done"] = "open"
    before: Id | None = None
    limit: Limit = 50


@commands("todo.list")
async def todo_list(ctx: Ctx, p: TodoList) -> dict[str, Any]:
    found = await q.items(
        ctx.db,
        ctx.user.id,
        kind=p.kind,
        done=p.state == "done",
        before=int(p.before) if p.before else None,
        limit=p.limit,
    )
    counts = (await q.counts(ctx.db, [ctx.user.id]))[ctx.user.id]
    return {
        "items": [msgspec.to_builtins(item_view(t)) for t in found],
        "counts": msgspec.to_builtins(counts_view(counts)),
    }


class Dismiss(Input):
    todo_id: Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,17}$")]


@commands("todo.dismiss")
async def todo_dismiss(ctx: Ctx, p: Dismiss) -> dict[str, Any]:
    """Only a notice is closed by hand; every other item closes with what it is about."""
    t = await q.get(ctx.db, int(p.todo_id))
    if t is None or t.user_id != ctx.user.id:
        raise not_found("no such item")
    if t.kind != "notice":
        raise AppError("conflict", f"a {t.kind} item closes when it is done, not by hand")
    async with ctx.transaction() as tx:
        await done(tx, "notice", [t.ref_id], [ctx.user.id])
    return {"todo_id": p.todo_id, "done": True}


feature = Feature("todo", commands=commands)
