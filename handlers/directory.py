"""Directory: departments, people, search (Chinese names, pinyin and initials too), and who the
recipients named by a page or a circulation are. The organisation is imported by
handlers/admin.py."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pypinyin import Style, lazy_pinyin

from server.commands import CommandSet, Ctx, Id, Input, Limit
from server.errors import bad_request, not_found
from server.events import UserRef, WhereaboutsView
from server.feature import Feature
from server.services import Services
from storage import directory as q
from storage import presence as pq
from storage.records import User, Whereabouts

commands = CommandSet()


def user_ref(user: User) -> UserRef:
    return UserRef(str(user.id), user.name)


def whereabouts_view(w: Whereabouts) -> WhereaboutsView:
    set_by = UserRef(str(w.set_by), w.set_by_name or "") if w.set_by is not None else None
    return WhereaboutsView(w.status, w.note, w.location, w.until, set_by, w.set_at)


def search_text(name: str, account: str, phone: str | None, email: str | None) -> str:
    """What directory search matches: the name, its pinyin with and without spaces and its
    initials (so 'wangming', 'wang ming' and 'wm' all find 王明), account, phone and e-mail."""
    syllables = lazy_pinyin(name, errors="ignore")
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore"))
    parts = [
        name,
        account,
        "".join(syllables),
        " ".join(syllables),
        initials,
        phone or "",
        email or "",
    ]
    return " | ".join(p for p in parts if p).lower()


# --- commands ------------------------------------------------------------------------------
class Departments(Input):
    pass


@commands("directory.departments")
async def departments(ctx: Ctx, p: Departments) -> dict[str, Any]:
    rows = await q.departments(ctx.db)
    return {
        "departments": [
            {
                "id": str(d.id),
                "name": d.name,
                "parent_id": str(d.parent_id) if d.parent_id else None,
            }
            for d in rows
        ]
    }


class Users(Input):
    department_id: Id | None = None
    query: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    before: Id | None = None
    limit: Limit = 100


@commands("directory.users")
async def users(ctx: Ctx, p: Users) -> dict[str, Any]:
    found = await q.search_users(
        ctx.db,
        department_id=int(p.department_id) if p.department_id else None,
        query=p.query,
        before=int(p.before) if p.before else None,
        limit=p.limit,
    )
    presence = await ctx.services.hub.presence_anywhere(u.id for u in found)
    wheres = await pq.whereabouts_of(ctx.db, [u.id for u in found])
    return {
        "users": [
            {
                "id": str(u.id),
                "account": u.account,
                "name": u.name,
                "department_id": str(u.department_id) if u.department_id else None,
                "title": u.title,
                "phone": u.phone,
                "email": u.email,
                "presence": presence[u.id],
                "whereabouts": whereabouts_view(wheres[u.id]),
            }
            for u in found
        ]
    }


def _named(to: list[str], departments: list[str]) -> tuple[list[int], list[int]]:
    user_ids = sorted({int(i) for i in to})
    dept_ids = sorted({int(i) for i in departments})
    if not user_ids and not dept_ids:
        raise bad_request(
            "no recipients", [{"field": "to", "message": "name people or departments"}]
        )
    return user_ids, dept_ids


async def _check_departments(db: Any, dept_ids: list[int]) -> None:
    if dept_ids and len(await q.existing_ids(db, "departments", dept_ids)) != len(dept_ids):
        raise not_found("no such department")


async def checked_recipients(
    db: Any, to: list[str], departments: list[str]
) -> tuple[list[int], list[int]]:
    """People and departments named as recipients: at least one, and all of them real."""
    user_ids, dept_ids = _named(to, departments)
    if user_ids and len(await q.existing_ids(db, "users", user_ids)) != len(user_ids):
        raise not_found("no such user")
    await _check_departments(db, dept_ids)
    return user_ids, dept_ids


async def resolved_recipients(
    services: Services, to: list[str], departments: list[str], sender: int
) -> tuple[list[int], list[q.Recipient]]:
    """`checked_recipients`'s departments, and who the recipients are: the people named and
    everyone in the departments (and those below), but the sender; whether the people named
    exist is answered by the same query, shared by every send at about the same moment."""
    user_ids, dept_ids = _named(to, departments)
    await _check_departments(services.pool, dept_ids)
    recipients = await services.batcher(_expand_batch)((user_ids, dept_ids, sender))
    found = {r.id for r in recipients} | {sender}
    if any(u not in found for u in user_ids):
        raise not_found("no such user")
    return dept_ids, recipients


async def _expand_batch(
    services: Services, requests: list[tuple[list[int], list[int], int]]
) -> list[list[q.Recipient]]:
    return await q.expand_many(services.pool, requests)


feature = Feature("directory", commands=commands)
