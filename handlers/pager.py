"""Pager (网络寻呼): pages to people and departments with receipts, history, preferences, and the
SMS / e-mail fallback policy for recipients who were not reached.

The policy, per recipient with a phone: not delivered within LIAISON_SMS_OFFLINE_GRACE_S, or an
urgent page still unread after LIAISON_SMS_URGENT_UNREAD_S, gets an SMS unless read meanwhile; at
most one SMS per person per LIAISON_SMS_DIGEST_S, later pages merged into one digest; non-urgent
SMS wait out the person's quiet hours. Every wait is a durable timer and every SMS an outbox row
written in the deciding transaction, so a restart neither loses nor repeats one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from aiohttp import web

from handlers.directory import resolved_recipients, user_ref
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, forbidden, not_found, ok
from server.events import Attachment, PagerMessage, PagerReceipt, UserRef
from server.http import envelope_response, read_body
from server.keys import SERVICES
from server.outbox import OutboxRow, OutboxSet, enqueue
from server.services import Services
from server.sms import fit_sms, verify
from server.stream import Ack, Transaction, utcnow
from server.timers import Due, TimerSet, per_user_sql, schedule, upsert_sql
from storage import directory as dq
from storage import files as fq
from storage import idempotency as idem
from storage import pager as q
from storage.files import FileRecord
from storage.pool import Params
from storage.records import User

log = logging.getLogger(__name__)

commands = CommandSet()
timers = TimerSet()
outbox = OutboxSet()
routes = web.RouteTableDef()

SMS_OFFLINE = "pager.sms_offline"  # timer per batch of pages: who has not been reached at all
SMS_URGENT = "pager.sms_urgent"  # timer per batch of urgent pages: who has not read them
SMS_FLUSH = "pager.sms_flush"  # timer per person: send the merged digest
EMAIL_CHECK = "pager.email"  # timer per person: a digest e-mail if still offline and unread
SMS_TOPIC = "pager.sms"
EMAIL_TOPIC = "pager.email"
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
    files = await fq.readable_many(services.pool, file_ids, sender.id) if file_ids else []
    if len(files) != len(file_ids):
        raise not_found("no such file")
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
    answers = [_answer(services, p, i, sent_at) for p, i in zip(unique, ids, strict=True)]
    encoded = [msgspec.json.encode(a) for a in answers]
    pairs = list(zip(unique, ids, strict=True))
    try:
        async with services.stream.transaction(one_statement=True) as tx:
            await _store(services, tx, pairs, sent_at, lambda p: idem.insert_sql(p, keys, encoded))
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
    claim: Callable[[Params], str] | None = None,
) -> None:
    """One statement: each page's pager.message to its recipients, the pages and their
    recipients, the SMS and e-mail timers, and (`claim`) the idempotency keys."""
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

    def ctes(params: Params) -> str:
        claims = f", claims AS ({claim(params)})" if claim is not None else ""
        return (
            claims
            + q.page_rows(params, rows, sent_at)
            + _fallback_timers(services, tx, params, pages, sent_at)
        )

    await tx.emit_many(
        [([r.id for r in p.recipients], _message(p, i, sent_at)) for p, i in pages], also=ctes
    )


def _answer(services: Services, page: Page, message_id: int, sent_at: datetime) -> dict[str, Any]:
    if page.via == "sms":
        return {"message_id": str(message_id), "reply_to": str(page.reply_to)}
    hub = services.hub
    return {
        "message_id": str(message_id),
        "sent_at": sent_at,
        "recipients": [
            {"user_id": str(r.id), "online": hub.presence(r.id) != "offline"}
            for r in page.recipients
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
    services: Services,
    tx: Transaction,
    params: Params,
    pages: list[tuple[Page, int]],
    sent_at: datetime,
) -> str:
    """CTEs setting the new pages' SMS timers and their recipients' e-mail checks, armed to wake
    the timer worker once the transaction commits."""
    cfg = services.config
    # The pages of a batch fall due together: one timer of each kind for all of them (keyed by
    # the first page), not one per page.
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
    ctes = ""
    wake = [d.due_at for d in due]
    if due:
        ctes += f", sms_timers AS ({upsert_sql(params, due)})"
    emails = sorted({r.id for page, _ in pages for r in page.recipients if r.email})
    if services.outbox.mailer is not None and emails:
        wake.append(sent_at + timedelta(seconds=cfg.email_offline_s))
        ctes += f", email_timers AS ({per_user_sql(params, EMAIL_CHECK, emails, wake[-1])})"
    if wake:
        services.timers.wake_after_commit(tx, min(wake))
    return ctes


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
        await q.audit(
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


# --- preferences ---------------------------------------------------------------------------------
HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class QuietHours(msgspec.Struct, forbid_unknown_fields=True):
    start: HHMM
    end: HHMM


class PrefsSet(Input):
    """Only the fields given change; `quiet_hours: null` clears them."""

    sms_fallback: Literal["offline", "urgent", "off"] | msgspec.UnsetType = msgspec.UNSET
    quiet_hours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET


def _prefs_view(prefs: q.Prefs) -> dict[str, Any]:
    quiet = None
    if prefs.quiet_start is not None and prefs.quiet_end is not None:
        quiet = {
            "start": prefs.quiet_start.strftime("%H:%M"),
            "end": prefs.quiet_end.strftime("%H:%M"),
        }
    return {"sms_fallback": prefs.sms_fallback, "quiet_hours": quiet}


@commands("prefs.set")
async def prefs_set(ctx: Ctx, p: PrefsSet) -> dict[str, Any]:
    current = await q.get_prefs(ctx.db, ctx.user.id)
    start, end = current.quiet_start, current.quiet_end
    if p.quiet_hours is not msgspec.UNSET:
        start = time.fromisoformat(p.quiet_hours.start) if p.quiet_hours else None
        end = time.fromisoformat(p.quiet_hours.end) if p.quiet_hours else None
    fallback = current.sms_fallback if p.sms_fallback is msgspec.UNSET else p.sms_fallback
    prefs = q.Prefs(fallback, start, end)
    await q.set_prefs(ctx.db, ctx.user.id, prefs)
    return _prefs_view(prefs)


class PrefsGet(Input):
    pass


@commands("prefs.get")
async def prefs_get(ctx: Ctx, p: PrefsGet) -> dict[str, Any]:
    return _prefs_view(await q.get_prefs(ctx.db, ctx.user.id))


# --- SMS policy ----------------------------------------------------------------------------------
def _in_quiet(now: datetime, start: time | None, end: time | None, tz: ZoneInfo) -> datetime | None:
    """When the quiet hours covering `now` end, or None if now is not quiet."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    quiet = (start <= t < end) if start < end else (t >= start or t < end)
    if not quiet:
        return None
    end_at = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_at <= local:
        end_at += timedelta(days=1)
    return end_at.astimezone(UTC)


@timers(SMS_OFFLINE)
async def sms_offline(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    await _sms_for_pages(services, tx, payloads, urgent_check=False)


@timers(SMS_URGENT)
async def sms_urgent(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    await _sms_for_pages(services, tx, payloads, urgent_check=True)


async def _sms_for_pages(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]], *, urgent_check: bool
) -> None:
    tz = ZoneInfo(services.config.timezone)
    # A batch's pages ({message_ids}); a timer set before batches had them, one page each.
    message_ids = [int(i) for p in payloads for i in p.get("message_ids", [p.get("message_id")])]
    for c in await q.sms_candidates(tx.conn, message_ids, urgent_check=urgent_check):
        if urgent_check and not c.urgent:
            continue
        quiet_end = None if c.urgent else _in_quiet(utcnow(), c.quiet_start, c.quiet_end, tz)
        await _want_sms(services, tx, c.user_id, c.message_id, hold_until=quiet_end)


async def _want_sms(
    services: Services,
    tx: Transaction,
    user_id: int,
    message_id: int,
    *,
    hold_until: datetime | None,
) -> None:
    """Queue a page for this person's next SMS: now, or when the digest window or quiet hours end."""
    sent_at, pending, _ = await q.lock_notify_state(tx.conn, user_id)
    await q.set_sms_pending(tx.conn, user_id, [*pending, message_id])
    window_end = sent_at + timedelta(seconds=services.config.sms_digest_s) if sent_at else None
    due = max([t for t in (hold_until, window_end) if t is not None], default=None)
    if due is None or due <= utcnow():
        await _flush_sms(services, tx, user_id)
    else:
        await schedule(tx.conn, SMS_FLUSH, str(user_id), due, {"user_id": user_id})


@timers(SMS_FLUSH)
async def sms_flush(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        await _flush_sms(services, tx, int(payload["user_id"]))


async def _flush_sms(services: Services, tx: Transaction, user_id: int) -> None:
    sent_at, pending, _ = await q.lock_notify_state(tx.conn, user_id)
    pages = await q.still_unread(tx.conn, user_id, pending)  # read meanwhile: no SMS
    phone, _, _ = await q.user_contact(tx.conn, user_id)
    if not pages or phone is None:
        await q.set_sms_pending(tx.conn, user_id, [])
        return
    # In quiet hours only urgent pages go now; the others keep waiting for the quiet to end.
    start, end = await q.quiet_hours(tx.conn, user_id)
    quiet_end = _in_quiet(utcnow(), start, end, ZoneInfo(services.config.timezone))
    held = [pg.message_id for pg in pages if quiet_end is not None and pg.priority != "urgent"]
    pages = [pg for pg in pages if pg.message_id not in held]
    if held:
        assert quiet_end is not None
        # Not before the quiet ends, nor inside the digest window of the SMS sent last (or now).
        last = utcnow() if pages else sent_at
        window_end = last + timedelta(seconds=services.config.sms_digest_s) if last else quiet_end
        due = max(quiet_end, window_end)
        await schedule(tx.conn, SMS_FLUSH, str(user_id), due, {"user_id": user_id})
    if not pages:
        await q.set_sms_pending(tx.conn, user_id, held)
        return
    ids = [pg.message_id for pg in pages]
    await enqueue(
        tx.conn,
        kind="sms",
        topic=SMS_TOPIC,
        user_id=user_id,
        address=phone,
        body=sms_text(pages),
        refs=ids,
    )
    await q.set_sms_state(tx.conn, user_id, ids, "queued")
    await q.sms_sent_now(tx.conn, user_id, still_pending=held)
    services.outbox.wake_after_commit(tx)


def sms_text(pages: list[q.Pending]) -> str:
    """One SMS: a single page in full, or a digest naming each sender, cut to fit."""
    if len(pages) == 1:
        pg = pages[0]
        mark = "[紧急]" if pg.priority == "urgent" else ""
        return fit_sms(f"【联络】{mark}{pg.sender_name}: {pg.body}")
    urgent = "含紧急 " if any(pg.priority == "urgent" for pg in pages) else ""
    parts = "; ".join(f"{pg.sender_name}: {pg.body}" for pg in pages)
    return fit_sms(f"【联络】{len(pages)}条未读寻呼 {urgent}{parts}")


@outbox.sent(SMS_TOPIC)
async def sms_sent(services: Services, tx: Transaction, row: OutboxRow) -> None:
    assert row.user_id is not None
    await emit_receipts(tx, await q.set_sms_state(tx.conn, row.user_id, row.refs, "sent"))


@outbox.failed(SMS_TOPIC)
async def sms_failed(services: Services, tx: Transaction, row: OutboxRow) -> None:
    assert row.user_id is not None
    await emit_receipts(tx, await q.set_sms_state(tx.conn, row.user_id, row.refs, "failed"))


# --- e-mail digest -------------------------------------------------------------------------------
@timers(EMAIL_CHECK)
async def email_check(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        await _email_check(services, tx, int(payload["user_id"]))


async def _email_check(services: Services, tx: Transaction, user_id: int) -> None:
    """Offline for LIAISON_EMAIL_OFFLINE_S with unread pages: one digest e-mail, at most one per
    LIAISON_EMAIL_DIGEST_S. Someone online reads them in the browser and gets none."""
    cfg = services.config
    if services.hub.presence(user_id) != "offline":
        # Reading in the browser now; if they leave with pages still unread, look again later.
        if await q.unread_not_emailed(tx.conn, user_id):
            due = utcnow() + timedelta(seconds=cfg.email_offline_s)
            await schedule(tx.conn, EMAIL_CHECK, str(user_id), due, {"user_id": user_id})
        return
    pages = await q.unread_not_emailed(tx.conn, user_id)
    _, email, last_seen = await q.user_contact(tx.conn, user_id)
    if not pages or email is None:
        return
    now = utcnow()
    _, _, email_sent_at = await q.lock_notify_state(tx.conn, user_id)
    waits = [now]
    if last_seen is not None:
        waits.append(last_seen + timedelta(seconds=cfg.email_offline_s))
    if email_sent_at is not None:
        waits.append(email_sent_at + timedelta(seconds=cfg.email_digest_s))
    due = max(waits)
    if due > now:
        await schedule(tx.conn, EMAIL_CHECK, str(user_id), due, {"user_id": user_id})
        return
    lines = [
        f"- {pg.sender_name}{'（紧急）' if pg.priority == 'urgent' else ''}: {pg.body}"
        for pg in pages
    ]
    body = f"您有 {len(pages)} 条未读寻呼 / You have {len(pages)} unread pages:\n\n" + "\n".join(
        lines
    )
    await enqueue(
        tx.conn,
        kind="email",
        topic=EMAIL_TOPIC,
        user_id=user_id,
        address=email,
        subject=f"【联络】{len(pages)} 条未读寻呼",
        body=body,
        refs=[pg.message_id for pg in pages],
    )
    await q.email_sent_now(tx.conn, user_id)
    services.outbox.wake_after_commit(tx)


@outbox.sent(EMAIL_TOPIC)
async def email_sent(services: Services, tx: Transaction, row: OutboxRow) -> None:
    assert row.user_id is not None
    await emit_receipts(tx, await q.mark_emailed(tx.conn, row.user_id, row.refs))


# --- inbound SMS ---------------------------------------------------------------------------------
class Inbound(msgspec.Struct, forbid_unknown_fields=False):
    from_: Annotated[str, msgspec.Meta(max_length=32)] = msgspec.field(name="from")
    text: Annotated[str, msgspec.Meta(max_length=2000)]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


@routes.post("/api/v1/sms/inbound")
async def sms_inbound(request: web.Request) -> web.Response:
    """A reply typed on a phone: it answers the page that last reached that phone by SMS."""
    services = request.app[SERVICES]
    # Unsigned until checked: read no more than a frame, whatever the request claims.
    raw = await read_body(request, services.config.max_frame_bytes)
    if not verify(
        services.config.resolved_sms_secret(), raw, request.headers.get("X-Liaison-Signature")
    ):
        raise AppError("unauthorized", "bad signature")
    try:
        msg = msgspec.json.decode(raw, type=Inbound)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise bad_request("invalid inbound SMS", [{"field": "", "message": str(exc)}]) from None
    user_id = await q.user_by_phone(services.pool, msg.from_.strip())
    if user_id is None:
        raise not_found("no user has this phone")
    for handler in services.inbound_sms:
        answer = await handler(services, user_id, msg.text.strip(), msg.id)
        if answer is not None:
            return envelope_response(ok(answer))
    raise not_found("nothing to reply to")


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
