"""Pager (网络寻呼): pages to people and departments, their receipts (delivered, read, and the
SMS and e-mail states the fallback reports), history, and replies typed on a phone.

A page sent arms the SMS / e-mail fallback timers in its own statement; handlers/notify.py says
what they do when they fall due, and holds the preferences the fallback reads."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import msgspec

from handlers.directory import resolved_recipients, user_ref
from handlers.files import require_shareable
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, forbidden, not_found
from server.events import Attachment, Event, UserRef
from server.feature import Feature
from server.services import Services
from server.stream import Ack, Transaction, utcnow
from storage import directory as dq
from storage import idempotency as idem
from storage import pager as q
from storage.files import FileRecord
from storage.jobs import Due
from storage.records import User


# --- events ---------------------------------------------------------------------------------------
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


log = logging.getLogger(__name__)

commands = CommandSet()

# The fallback's timers a page arms (their handlers are handlers/notify.py's).
SMS_OFFLINE = "pager.sms_offline"  # timer per batch of pages: who has not been reached at all
SMS_URGENT = "pager.sms_urgent"  # timer per batch of urgent pages: who has not read them
EMAIL_CHECK = "pager.email"  # timer per person: a digest e-mail if still offline and unread
MAX_RECIPIENTS = 10_000

Body = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


# --- sending ------------------------------------------------------------------------------------
class Send(Input):
    body: Body
    client_msg_id: ClientMsgId
    to: Annotated[list[Id], msgspec.Meta(max_length=1000)] = []
    departments: Annotated[list[Id], msgspec.Meta(max_length=100)] = []
    priority: Literal["normal", "urgent"] = "normal"
    attachments: Annotated[list[Id], msgspec.Meta(max_length=20)] = []
    reply_to: Id | None = None


@commands("pager.send", idempotent=True, claims_key=True)
async def pager_send(ctx: Ctx, p: Send) -> dict[str, Any]:
    reply_to = int(p.reply_to) if p.reply_to else None
    if reply_to is not None and not await q.visible(ctx.db, reply_to, ctx.user.id):
        raise not_found("no such message to reply to")
    page = await checked_page(
        ctx.services,
        idem.Key(ctx.user.id, "pager.send", p.client_msg_id),
        sender=ctx.user,
        to=p.to,
        departments=p.departments,
        body=p.body,
        priority=p.priority,
        attachments=p.attachments,
        reply_to=reply_to,
        via="web",
    )
    return await send(ctx.services, page)


@dataclass(frozen=True, slots=True)
class Page:
    """A page checked and ready to go: recipients expanded, attachments readable."""

    key: idem.Key  # its create's idempotency key
    sender: UserRef
    recipients: list[dq.Recipient]
    departments: list[int]
    body: str
    priority: str
    files: list[FileRecord]
    reply_to: int | None
    via: str


async def checked_page(
    services: Services,
    key: idem.Key,
    *,
    sender: User,
    to: list[str],
    departments: list[str],
    body: str,
    priority: str,
    attachments: list[str],
    reply_to: int | None,
    via: str,
) -> Page:
    body = body.strip()
    if not body:
        raise bad_request("the page is empty", [{"field": "body", "message": "empty"}])
    dept_ids, recipients = await resolved_recipients(services, to, departments, sender.id)
    if not recipients:
        raise bad_request("nobody to page", [{"field": "to", "message": "no recipients"}])
    if len(recipients) > MAX_RECIPIENTS:
        raise AppError("too_large", f"at most {MAX_RECIPIENTS} recipients per page")
    file_ids = sorted({int(a) for a in attachments})
    files = await require_shareable(services.pool, file_ids, sender.id)
    return Page(key, user_ref(sender), recipients, dept_ids, body, priority, files, reply_to, via)


async def send(services: Services, page: Page) -> dict[str, Any]:
    """Send a checked page (or, for a key sent before, answer as the first time did). Pages sent
    at about the same moment share one transaction of set-based statements."""
    outcome = await services.batcher(_send_batch)(page)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def _send_batch(
    services: Services, pages: list[Page]
) -> Sequence[dict[str, Any] | Exception]:
    try:
        return await _send_together(services, pages)
    except Exception:
        if len(pages) == 1:
            raise
        log.warning("a batch of %d pages failed: sending each alone", len(pages), exc_info=True)
    out: list[dict[str, Any] | Exception] = []
    for page in pages:
        try:
            out += await _send_together(services, [page])
        except Exception as exc:  # this page's own failure, answered to its sender alone
            out.append(exc)
    return out


async def _send_together(services: Services, pages: list[Page]) -> list[dict[str, Any]]:
    """Claim every page's key with its answer, push each page to its recipients, store the pages
    and set their SMS and e-mail timers, all in one statement that PostgreSQL commits on its
    own. Should a key have been claimed before (a client's retry), that statement fails as a
    whole and the pages go again in a transaction that claims only the keys still free."""
    first: dict[idem.Key, Page] = {}
    for page in pages:
        first.setdefault(page.key, page)  # the same key twice: the later one gets the answer
    unique = list(first.values())
    keys = [p.key for p in unique]
    ids = await services.ids(q.PAGE_IDS).take(services.pool, len(unique))
    sent_at = utcnow()
    online = await services.hub.presence_anywhere(
        {r.id for p in unique if p.via != "sms" for r in p.recipients}
    )
    answers = [_answer(p, i, sent_at, online) for p, i in zip(unique, ids, strict=True)]
    encoded = [msgspec.json.encode(a) for a in answers]
    pairs = list(zip(unique, ids, strict=True))
    try:
        async with services.stream.transaction(one_statement=True) as tx:
            await _store(services, tx, pairs, sent_at, (keys, encoded))
        claimed = [True] * len(unique)
    except asyncpg.UniqueViolationError as exc:
        if not idem.claimed_before(exc):
            raise
        async with services.stream.transaction() as tx:
            claimed = await idem.claim(tx.conn, keys, encoded)
            new = [pair for pair, c in zip(pairs, claimed, strict=True) if c]
            if new:
                await _store(services, tx, new, sent_at)
    sent_before = [k for k, c in zip(keys, claimed, strict=True) if not c]
    replays = await idem.answers(services.pool, sent_before) if sent_before else {}
    result = {k: a if c else replays[k] for k, a, c in zip(keys, answers, claimed, strict=True)}
    return [result[p.key] for p in pages]


async def _store(
    services: Services,
    tx: Transaction,
    pages: list[tuple[Page, int]],
    sent_at: datetime,
    claims: tuple[list[idem.Key], list[bytes]] | None = None,
) -> None:
    """One statement: each page's pager.message to its recipients, the pages and their
    recipients, the SMS and e-mail timers, and the idempotency keys with their answers."""
    rows = [
        q.NewPage(
            i,
            int(p.sender.id),
            p.body,
            p.priority,
            p.reply_to,
            p.departments,
            p.via,
            [f.id for f in p.files],
        )
        for p, i in pages
    ]
    sms_timers, email_check = _fallback_timers(services, pages, sent_at)
    wake = [d.due_at for d in sms_timers] + ([email_check[2]] if email_check else [])
    if wake:
        tx.job_set(min(wake))
    await tx.emit_many(
        [([r.id for r in p.recipients], _message(p, i, sent_at)) for p, i in pages],
        also=q.page_writes(
            rows, sent_at, claims=claims, sms_timers=sms_timers, email_check=email_check
        ),
    )


def _answer(
    page: Page, message_id: int, sent_at: datetime, presence: dict[int, str]
) -> dict[str, Any]:
    if page.via == "sms":
        return {"message_id": str(message_id), "reply_to": str(page.reply_to)}
    return {
        "message_id": str(message_id),
        "sent_at": sent_at,
        "recipients": [
            {"user_id": str(r.id), "online": presence[r.id] != "offline"} for r in page.recipients
        ],
    }


def _message(page: Page, message_id: int, sent_at: datetime) -> PagerMessage:
    return PagerMessage(
        message_id=str(message_id),
        from_=page.sender,
        body=page.body,
        priority=page.priority,
        attachments=[Attachment(str(f.id), f.name, f.size, f.content_type) for f in page.files],
        reply_to=str(page.reply_to) if page.reply_to else None,
        sent_at=sent_at,
        via=page.via,
    )


def _fallback_timers(
    services: Services, pages: list[tuple[Page, int]], sent_at: datetime
) -> tuple[list[Due], tuple[str, list[int], datetime] | None]:
    """The new pages' SMS timers and their recipients' e-mail check (handlers/notify.py runs
    them). The pages of a batch fall due together: one timer of each kind for all of them (keyed
    by the first page), not one per page."""
    cfg = services.config
    texted = [i for page, i in pages if any(r.phone for r in page.recipients)]
    urgent = [i for page, i in pages if page.priority == "urgent" and i in texted]
    due: list[Due] = []
    for kind, ids, after in (
        (SMS_OFFLINE, texted, cfg.sms_offline_grace_s),
        (SMS_URGENT, urgent, cfg.sms_urgent_unread_s),
    ):
        if ids:
            when = sent_at + timedelta(seconds=after)
            due.append(Due(kind, str(ids[0]), when, {"message_ids": ids}))
    emails = sorted({r.id for page, _ in pages for r in page.recipients if r.email})
    if services.outbox.mailer is None or not emails:
        return due, None
    return due, (EMAIL_CHECK, emails, sent_at + timedelta(seconds=cfg.email_offline_s))


# --- receipts -----------------------------------------------------------------------------------
async def emit_receipts(tx: Transaction, receipts: list[q.Receipt]) -> None:
    await tx.emit_each(
        [
            (
                r.sender_id,
                PagerReceipt(
                    message_id=str(r.message_id), user_id=str(r.user_id), state=r.state, at=r.at
                ),
            )
            for r in receipts
        ]
    )


async def delivered_on_ack(tx: Transaction, acks: list[Ack]) -> None:
    """A stream ack hook: pages whose event the user acknowledged are delivered."""
    await emit_receipts(tx, await q.mark_delivered(tx.conn, acks))


async def deliver_acked(services: Services) -> int:
    """The delivery marks and receipts of pages acknowledged by an ack whose hook failed (the
    database went between the two commits, or the process died): derived from the committed
    acknowledged seqs, so none is skipped for good. Run at start and periodically."""
    done = 0
    while acks := await q.acked_undelivered(services.pool):
        async with services.stream.transaction() as tx:
            await delivered_on_ack(tx, [Ack(*a) for a in acks])
        done += len(acks)
        if len(acks) < 500:
            break
    return done


class Read(Input):
    message_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=100)]


@commands("pager.read")
async def pager_read(ctx: Ctx, p: Read) -> dict[str, Any]:
    """Mark pages read. The senders get `read` receipts (after `delivered` if the page had not
    been acknowledged yet), and so does the reader, so their other tabs can update."""
    async with ctx.transaction() as tx:
        receipts = await q.mark_read(tx.conn, ctx.user.id, [int(i) for i in p.message_ids])
        # The reader's other tabs learn it too: the same receipt, in the reader's own stream.
        mine = [r for r in receipts if r.state == "read"]
        await emit_receipts(
            tx, receipts + [msgspec.structs.replace(r, sender_id=ctx.user.id) for r in mine]
        )
    return {"read": sorted({str(r.message_id) for r in receipts if r.state == "read"})}


class Receipts(Input):
    message_id: Id


@commands("pager.receipts")
async def pager_receipts(ctx: Ctx, p: Receipts) -> dict[str, Any]:
    if await q.sender_of(ctx.db, int(p.message_id)) != ctx.user.id:
        raise not_found("no such message")  # recipients and strangers alike
    rows = await q.receipts(ctx.db, int(p.message_id))
    return {
        "message_id": p.message_id,
        "recipients": [
            {
                "user_id": str(r.user_id),
                "name": r.name,
                "delivered_at": r.delivered_at,
                "read_at": r.read_at,
                "sms": {"state": r.sms_state, "at": r.sms_at} if r.sms_state else None,
                "emailed_at": r.emailed_at,
            }
            for r in rows
        ],
    }


# --- history ------------------------------------------------------------------------------------
class History(Input):
    peer: Id | None = None
    query: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    as_user: Id | None = None
    before: Id | None = None
    limit: Limit = 50


@commands("pager.history")
async def pager_history(ctx: Ctx, p: History) -> dict[str, Any]:
    viewer = ctx.user.id
    if p.as_user is not None and int(p.as_user) != ctx.user.id:
        viewer = int(p.as_user)
        if await dq.get_user(ctx.db, viewer) is None:
            raise not_found("no such user")
        if not await dq.may_act_for(ctx.db, ctx.user.id, viewer, delegates=False):
            raise forbidden("only the user's leader may read their pages")
        await dq.audit(
            ctx.db,
            ctx.user.id,
            "pager.history.as_user",
            viewer,
            {"peer": p.peer, "query": p.query, "before": p.before},
        )
    query = p.query.strip() if p.query else None
    messages = await q.history(
        ctx.db,
        viewer=viewer,
        peer=int(p.peer) if p.peer else None,
        query=query or None,
        before=int(p.before) if p.before else None,
        limit=p.limit,
    )
    ids = [m.id for m in messages]
    summaries = await q.summaries(ctx.db, ids)
    attachments = await q.attachments_of(ctx.db, ids)
    dept_names = await q.department_names(
        ctx.db, sorted({d for m in messages for d in m.departments})
    )
    out = []
    for m in messages:
        s = summaries.get(m.id)
        item: dict[str, Any] = {
            "message_id": str(m.id),
            "from": {"id": str(m.sender_id), "name": m.sender_name},
            "to": [{"id": str(i), "name": n} for i, n in (s.first if s else [])],
            "recipients_count": s.total if s else 0,
            "departments": [{"id": str(d), "name": dept_names.get(d, "")} for d in m.departments],
            "body": m.body,
            "priority": m.priority,
            "attachments": attachments.get(m.id, []),
            "reply_to": str(m.reply_to) if m.reply_to else None,
            "sent_at": m.sent_at,
            "via": m.via,
        }
        if m.received:
            item["my_state"] = "read" if m.my_read_at else "unread"
        if m.sender_id == viewer and s:
            item["receipts_summary"] = {"total": s.total, "delivered": s.delivered, "read": s.read}
        out.append(item)
    return {"messages": out}


# --- replies by SMS ------------------------------------------------------------------------------
async def reply_by_sms(
    services: Services, user_id: int, text: str, sms_id: str
) -> dict[str, Any] | None:
    """The default reading of an inbound SMS: a reply to the last page that came by SMS."""
    replied = await q.last_paged_by_sms(services.pool, user_id)
    if replied is None or not text:
        return None
    sender = await q.sender_of(services.pool, replied)
    user = await dq.get_user(services.pool, user_id)
    assert sender is not None and user is not None
    page = await checked_page(
        services,
        idem.Key(user_id, "sms.inbound", sms_id),  # a gateway's retry: the first answer
        sender=user,
        to=[str(sender)],
        departments=[],
        body=text[:5000],
        priority="normal",
        attachments=[],
        reply_to=replied,
        via="sms",
    )
    return await send(services, page)


feature = Feature(
    "pager",
    commands=commands,
    ack_hooks=(delivered_on_ack,),
    inbound_sms=((20, reply_by_sms),),  # after a circulation's `Y <code>`
    chores=((10.0, deliver_acked),),
)
