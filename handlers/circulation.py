"""Circulation (传阅): a document or notice to many people at once, no order among them; each
recipient goes unopened (未开封) → opened (已开封) → confirmed (确认完毕), and the sender watches
every change live. Reminders reach the unconfirmed (offline ones by SMS), automatically before
and at the deadline; an SMS carries a short code so `Y <code>` from the phone confirms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
import nh3

from handlers import notify, todo
from handlers.directory import checked_recipients, user_ref
from handlers.files import require_shareable
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, forbidden, not_found
from server.events import Event, UserRef
from server.feature import Feature
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction, utcnow
from storage import circulation as q
from storage import directory as dq
from storage.records import User


# --- events ---------------------------------------------------------------------------------------
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


commands = CommandSet()
jobs = JobSet()

REMIND_EVERY_S = 300  # the contract: at most once per 5 minutes per circulation
DEADLINE_SOON = "circulation.deadline_soon"
DEADLINE = "circulation.deadline"
SMS_TOPIC = "circulation.sms"
MAX_RECIPIENTS = 10_000

# What a circulation body may contain when shown: formatting, lists, tables, links.
ALLOWED_TAGS = {
    "p",
    "br",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "s",
    "sub",
    "sup",
    "h1",
    "h2",
    "h3",
    "h4",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "code",
    "hr",
    "a",
    "span",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}


def safe_html(body: str) -> str:
    """Sanitized on output, so a stored body can never run script in a reader's browser."""
    return nh3.clean(
        body,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def sms_code(circulation_id: int) -> str:
    """The short code an SMS carries: the id in base 36, unambiguous and short."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n, out = circulation_id, ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def parse_code(code: str) -> int | None:
    try:
        value = int(code, 36)
    except ValueError:
        return None
    return value if 0 < value < 2**62 else None


# --- creating -------------------------------------------------------------------------------------
class Create(Input):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    body: Annotated[str, msgspec.Meta(max_length=200_000)]
    client_msg_id: ClientMsgId
    to: Annotated[list[Id], msgspec.Meta(max_length=10_000)] = []
    departments: Annotated[list[Id], msgspec.Meta(max_length=200)] = []
    attachments: Annotated[list[Id], msgspec.Meta(max_length=50)] = []
    deadline: datetime | None = None


@commands("circulation.create", idempotent=True)
async def circulation_create(ctx: Ctx, p: Create) -> dict[str, Any]:
    title = p.title.strip()
    if not title:
        raise bad_request("the title is empty", [{"field": "title", "message": "empty"}])
    if p.deadline is not None and (p.deadline.tzinfo is None or p.deadline <= datetime.now(UTC)):
        raise bad_request(
            "the deadline must be a future time with a zone",
            [{"field": "deadline", "message": "invalid"}],
        )
    user_ids, dept_ids = await checked_recipients(ctx.db, p.to, p.departments)
    async with ctx.transaction() as tx:
        circulation_id, count = await create_circulation(
            ctx.services,
            tx,
            sender=ctx.user,
            title=title,
            body=p.body,
            user_ids=user_ids,
            department_ids=dept_ids,
            attachments=sorted({int(a) for a in p.attachments}),
            deadline=p.deadline.astimezone(UTC) if p.deadline else None,
        )
    return {"circulation_id": str(circulation_id), "recipients_count": count}


async def create_circulation(
    services: Services,
    tx: Transaction,
    *,
    sender: User,
    title: str,
    body: str,
    user_ids: list[int],
    department_ids: list[int],
    attachments: list[int],
    deadline: datetime | None,
    accepted: bool = False,
) -> tuple[int, int]:
    """Recipients expanded and frozen now; one transaction of set-based statements however many
    there are. Also used to circulate meeting minutes and issued documents.

    `accepted`: what is circulated was checked when it was accepted (an issued document, at
    `document.issue`, days before its approval ends): its files are attached as they are (the
    sender may no longer be able to share them) and there is no cap on its recipients."""
    recipients = await dq.expand_recipients(tx.conn, user_ids, department_ids, exclude=sender.id)
    if not recipients:
        raise bad_request("nobody to circulate to", [{"field": "to", "message": "no recipients"}])
    if not accepted and len(recipients) > MAX_RECIPIENTS:
        raise AppError("too_large", f"at most {MAX_RECIPIENTS} recipients")
    if accepted:
        file_ids = list(dict.fromkeys(attachments))
    else:
        file_ids = [f.id for f in await require_shareable(tx.conn, attachments, sender.id)]
    circulation_id, sent_at = await q.insert(
        tx.conn,
        sender_id=sender.id,
        title=title,
        body=body,
        departments=department_ids,
        deadline=deadline,
    )
    ids = [r.id for r in recipients]
    await q.insert_recipients(tx.conn, circulation_id, ids)
    if file_ids:
        await q.insert_attachments(tx.conn, circulation_id, file_ids)
    await tx.emit(
        ids,
        CirculationReceived(
            circulation_id=str(circulation_id),
            title=title,
            from_=user_ref(sender),
            deadline=deadline,
            sent_at=sent_at,
        ),
    )
    await todo.add(
        tx,
        [
            todo.NewTodo(u, "circulation", circulation_id, title, sender.id, due_at=deadline)
            for u in ids
        ],
    )
    if deadline is not None:
        payload = {"circulation_id": circulation_id}
        soon = deadline - timedelta(seconds=services.config.circulation_remind_before_s)
        if soon > sent_at:
            await tx.schedule(DEADLINE_SOON, str(circulation_id), soon, payload)
        await tx.schedule(DEADLINE, str(circulation_id), deadline, payload)
    return circulation_id, len(ids)


# --- reading and confirming -------------------------------------------------------------------
async def _visible(ctx: Ctx, circulation_id: str) -> tuple[q.Circulation, q.RecipientRow | None]:
    """The circulation and my row in it; strangers get not_found, as if it did not exist."""
    c = await q.get(ctx.db, int(circulation_id))
    if c is None:
        raise not_found("no such circulation")
    mine = await q.my_row(ctx.db, c.id, ctx.user.id)
    if mine is None and c.sender_id != ctx.user.id:
        raise not_found("no such circulation")
    return c, mine


def _recalled(c: q.Circulation, mine: q.RecipientRow | None) -> None:
    if c.recalled_at is not None and mine is not None:
        raise AppError(
            "conflict", "this circulation was recalled", {"recalled_at": c.recalled_at.isoformat()}
        )


async def _tell_sender(tx: Transaction, c: q.Circulation, changes: list[q.Change]) -> None:
    """Each change goes to the sender, and to the recipient's own stream so their other tabs
    follow (as a page's read receipt does)."""
    items = []
    for ch in changes:
        event = CirculationStatus(
            circulation_id=str(c.id),
            user_id=str(ch.user_id),
            state=ch.state,
            at=ch.at,
            comment=ch.comment,
        )
        items += [(c.sender_id, event), (ch.user_id, event)]
    await tx.emit_each(items)


class Open(Input):
    circulation_id: Id


@commands("circulation.open")
async def circulation_open(ctx: Ctx, p: Open) -> dict[str, Any]:
    c, mine = await _visible(ctx, p.circulation_id)
    _recalled(c, mine)
    if mine is not None and mine.state == "unopened":
        async with ctx.transaction() as tx:
            change = await q.open_(tx.conn, c.id, ctx.user.id)
            if change is not None:  # another tab may have opened it a moment ago
                await _tell_sender(tx, c, [change])
        mine = await q.my_row(ctx.db, c.id, ctx.user.id)
    return {
        "circulation_id": str(c.id),
        "title": c.title,
        "body": safe_html(c.body),
        "from": {"id": str(c.sender_id), "name": c.sender_name},
        "deadline": c.deadline,
        "sent_at": c.created_at,
        "attachments": await q.attachments_of(ctx.db, c.id),
        "recipients_count": c.recipients_count,
        "recalled": c.recalled_at is not None,
        "my_state": mine.state if mine else None,
        "my_comment": mine.comment if mine else None,
        "my_opened_at": mine.opened_at if mine else None,
        "my_confirmed_at": mine.confirmed_at if mine else None,
    }


class Confirm(Input):
    circulation_id: Id
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


@commands("circulation.confirm")
async def circulation_confirm(ctx: Ctx, p: Confirm) -> dict[str, Any]:
    c, mine = await _visible(ctx, p.circulation_id)
    if mine is None:
        raise forbidden("only recipients confirm")
    _recalled(c, mine)
    comment = (p.comment or "").strip() or None
    async with ctx.transaction() as tx:
        await confirm_for(tx, c, ctx.user.id, comment)
    row = await q.my_row(ctx.db, c.id, ctx.user.id)
    assert row is not None
    return {"state": row.state, "confirmed_at": row.confirmed_at, "comment": row.comment}


async def confirm_for(tx: Transaction, c: q.Circulation, user_id: int, comment: str | None) -> bool:
    """Confirming an unopened circulation opens it first: the sender hears both. Confirming twice
    changes nothing."""
    await tx.lock_users([c.sender_id, user_id])
    opened = await q.open_(tx.conn, c.id, user_id)
    confirmed = await q.confirm(tx.conn, c.id, user_id, comment)
    await _tell_sender(tx, c, [ch for ch in (opened, confirmed) if ch is not None])
    if confirmed is not None:
        await todo.done(tx, "circulation", [c.id], [user_id])
    return confirmed is not None


# --- the sender's view --------------------------------------------------------------------------
class Status(Input):
    circulation_id: Id


@commands("circulation.status")
async def circulation_status(ctx: Ctx, p: Status) -> dict[str, Any]:
    c, mine = await _visible(ctx, p.circulation_id)
    _recalled(c, mine)
    rows = await q.recipients(ctx.db, c.id)
    counts = {"unopened": 0, "opened": 0, "confirmed": 0}
    for r in rows:
        counts[r.state] += 1
    allowed = None
    if c.last_reminded_at is not None:
        allowed = c.last_reminded_at + timedelta(seconds=REMIND_EVERY_S)
        allowed = allowed if allowed > utcnow() else None
    return {
        "circulation_id": str(c.id),
        "counts": counts,
        "recipients": [
            {
                "user_id": str(r.user_id),
                "name": r.name,
                "state": r.state,
                "opened_at": r.opened_at,
                "confirmed_at": r.confirmed_at,
                "comment": r.comment,
            }
            for r in rows
        ],
        "remind_allowed_at": allowed,
    }


class ListBox(Input):
    box: Literal["inbox", "sent"]
    state: Literal["unopened", "opened", "confirmed"] | None = None
    before: Id | None = None
    limit: Limit = 50


@commands("circulation.list")
async def circulation_list(ctx: Ctx, p: ListBox) -> dict[str, Any]:
    items = await q.listing(
        ctx.db,
        user_id=ctx.user.id,
        box=p.box,
        state=p.state,
        before=int(p.before) if p.before else None,
        limit=p.limit,
    )
    out = []
    for it in items:
        item: dict[str, Any] = {
            "circulation_id": str(it.id),
            "title": it.title,
            "from": {"id": str(it.sender_id), "name": it.sender_name},
            "deadline": it.deadline,
            "sent_at": it.created_at,
            "recalled": it.recalled_at is not None,
        }
        if p.box == "inbox":
            item["my_state"] = it.my_state
        else:
            item["counts"] = {
                "unopened": it.unopened,
                "opened": it.opened,
                "confirmed": it.confirmed,
            }
        out.append(item)
    return {"circulations": out}


async def _sender_only(ctx: Ctx, circulation_id: str) -> q.Circulation:
    c, _ = await _visible(ctx, circulation_id)
    if c.sender_id != ctx.user.id:
        raise forbidden("only the sender may do this")
    if c.recalled_at is not None:
        raise AppError("conflict", "this circulation was recalled")
    return c


# --- reminders -------------------------------------------------------------------------------------
class Remind(Input):
    circulation_id: Id


@commands("circulation.remind")
async def circulation_remind(ctx: Ctx, p: Remind) -> dict[str, Any]:
    c = await _sender_only(ctx, p.circulation_id)
    async with ctx.transaction() as tx:
        busy_until = await q.claim_remind(tx.conn, c.id, REMIND_EVERY_S)
        if busy_until is not None:
            wait = max(1, int((busy_until - utcnow()).total_seconds() + 0.999))
            raise AppError(
                "rate_limited",
                "reminded less than 5 minutes ago",
                {"retry_after_s": wait, "remind_allowed_at": busy_until.isoformat()},
            )
        reminded, sms = await remind_unconfirmed(ctx.services, tx, c)
    return {
        "reminded": reminded,
        "sms": sms,
        "remind_allowed_at": utcnow() + timedelta(seconds=REMIND_EVERY_S),
    }


async def remind_unconfirmed(
    services: Services, tx: Transaction, c: q.Circulation
) -> tuple[int, int]:
    """`circulation.reminder` to every unconfirmed recipient; an SMS to those offline (active,
    with a phone, not opted out of SMS) carrying the code that confirms it by reply."""
    people = await q.unconfirmed(tx.conn, c.id)
    if not people:
        return 0, 0
    sender = UserRef(str(c.sender_id), c.sender_name)
    await tx.emit(
        [u.user_id for u in people],
        CirculationReminder(
            circulation_id=str(c.id), title=c.title, from_=sender, deadline=c.deadline
        ),
    )
    texted = await notify.text_offline(
        services,
        tx,
        [u.user_id for u in people],
        f"【联络】{c.sender_name}请您阅办传阅《{c.title}》，回复 Y {sms_code(c.id)} 确认",
        topic=SMS_TOPIC,
        refs=[c.id],
    )
    return len(people), texted


@jobs(DEADLINE_SOON)
async def deadline_soon(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]]
) -> None:
    for payload in payloads:
        c = await q.get(tx.conn, int(payload["circulation_id"]))
        if c is not None and c.recalled_at is None:
            await remind_unconfirmed(services, tx, c)


@jobs(DEADLINE)
async def deadline_passed(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]]
) -> None:
    """Once when it passes: the unconfirmed are reminded, and the sender learns who they are."""
    for payload in payloads:
        c = await q.get(tx.conn, int(payload["circulation_id"]))
        if c is None or c.recalled_at is not None:
            continue
        people = await q.unconfirmed(tx.conn, c.id)
        await remind_unconfirmed(services, tx, c)
        await tx.emit(
            [c.sender_id],
            CirculationOverdue(
                circulation_id=str(c.id),
                unconfirmed=[UserRef(str(u.user_id), u.name) for u in people],
            ),
        )


# --- recall ------------------------------------------------------------------------------------------
class Recall(Input):
    circulation_id: Id


@commands("circulation.recall")
async def circulation_recall(ctx: Ctx, p: Recall) -> dict[str, Any]:
    c = await _sender_only(ctx, p.circulation_id)
    async with ctx.transaction() as tx:
        if await q.carries_document(tx.conn, c.id):
            # An issued document's delivery (发文) is a record of what was sent to whom: it stays.
            raise AppError("conflict", "this circulation delivers an issued document")
        if await q.recall(tx.conn, c.id):
            await tx.emit(
                await q.recipient_ids(tx.conn, c.id), CirculationRecalled(circulation_id=str(c.id))
            )
            await tx.cancel(DEADLINE_SOON, str(c.id))
            await tx.cancel(DEADLINE, str(c.id))
            await todo.done(tx, "circulation", [c.id])
    return {"recalled": True}


# --- confirmation by SMS -------------------------------------------------------------------------
_CONFIRM = re.compile(r"^\s*[Yy]\s+([0-9A-Za-z]{1,12})(?:\s+(.+))?\s*$", re.DOTALL)


async def confirm_by_sms(
    services: Services, user_id: int, text: str, sms_id: str
) -> dict[str, Any] | None:
    """`Y <code> [comment]` from a recipient's phone confirms, exactly as the web does. Anything
    else is not for us (the pager reads it as a reply)."""
    m = _CONFIRM.match(text)
    if m is None:
        return None
    circulation_id = parse_code(m.group(1))
    if circulation_id is None or not await q.by_code_for(services.pool, circulation_id, user_id):
        return None
    c = await q.get(services.pool, circulation_id)
    assert c is not None
    comment = (m.group(2) or "").strip() or None
    async with services.stream.transaction() as tx:
        changed = await confirm_for(tx, c, user_id, comment)
    return {"circulation_id": str(c.id), "state": "confirmed", "changed": changed}


feature = Feature("circulation", commands=commands, jobs=jobs, inbound_sms=((10, confirm_by_sms),))
