"""Notification: the preferences (`prefs.set`, `prefs.get`: SMS fallback and quiet hours) and the
pager's SMS / e-mail fallback policy for recipients a page did not reach.

The policy, per recipient with a phone: not delivered within LIAISON_SMS_OFFLINE_GRACE_S, or an
urgent page still unread after LIAISON_SMS_URGENT_UNREAD_S, gets an SMS unless read meanwhile; at
most one SMS per person per LIAISON_SMS_DIGEST_S, later pages merged into one digest; non-urgent
SMS wait out the person's quiet hours. Someone offline with unread pages gets a digest e-mail, at
most one per LIAISON_EMAIL_DIGEST_S. Every wait is a durable timer (a page sent arms the first ones,
in handlers/pager.py) and every SMS or e-mail an outbox row written in the deciding transaction, so
a restart neither loses nor repeats one; the pages' senders see the outcome as receipts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from handlers.pager import EMAIL_CHECK, SMS_OFFLINE, SMS_URGENT, emit_receipts
from server.commands import CommandSet, Ctx, Input
from server.feature import Feature
from server.jobs import JobSet
from server.outbox import OutboxRow, OutboxSet, enqueue
from server.services import Services
from server.sms import fit_sms
from server.stream import Transaction, utcnow
from storage import directory as dq
from storage import pager as q

commands = CommandSet()
jobs = JobSet()
outbox = OutboxSet()

SMS_FLUSH = "pager.sms_flush"  # timer per person: send the merged digest
SMS_TOPIC = "pager.sms"
EMAIL_TOPIC = "pager.email"


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


@jobs(SMS_OFFLINE)
async def sms_offline(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    await _sms_for_pages(services, tx, payloads, urgent_check=False)


@jobs(SMS_URGENT)
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
        await tx.schedule(SMS_FLUSH, str(user_id), due, {"user_id": user_id})


async def may_text_now(services: Services, tx: Transaction, user_ids: list[int]) -> list[int]:
    """Those of these people a non-page SMS (an urge) may go to now, under the same rules as
    pages: not in their quiet hours, and none sent to them within the digest window. For each
    one returned, the window starts now (the caller enqueues the SMS in this transaction)."""
    tz = ZoneInfo(services.config.timezone)
    window = timedelta(seconds=services.config.sms_digest_s)
    allowed = []
    for user_id in sorted(set(user_ids)):
        sent_at, pending, _ = await q.lock_notify_state(tx.conn, user_id)
        start, end = await q.quiet_hours(tx.conn, user_id)
        if _in_quiet(utcnow(), start, end, tz) is not None:
            continue
        if sent_at is not None and utcnow() - sent_at < window:
            continue
        await q.sms_sent_now(tx.conn, user_id, still_pending=pending)
        allowed.append(user_id)
    return allowed


async def text_offline(
    services: Services,
    tx: Transaction,
    user_ids: list[int],
    text: str,
    *,
    topic: str,
    refs: list[int],
    pager_rules: bool = False,
) -> int:
    """One SMS each, in the caller's transaction, to those of these people who are not online,
    have a phone and have not turned SMS off (with `pager_rules` also: not in their quiet hours,
    none within the digest window). Returns how many were texted."""
    targets = await dq.sms_targets(tx.conn, user_ids)
    presence = await services.hub.presence_anywhere(s.user_id for s in targets)
    offline = [s for s in targets if presence[s.user_id] == "offline"]
    if pager_rules:
        allowed = set(await may_text_now(services, tx, [s.user_id for s in offline]))
        offline = [s for s in offline if s.user_id in allowed]
    body = fit_sms(text)
    for s in offline:
        await enqueue(
            tx, kind="sms", topic=topic, user_id=s.user_id, address=s.phone, body=body, refs=refs
        )
    return len(offline)


@jobs(SMS_FLUSH)
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
        await tx.schedule(SMS_FLUSH, str(user_id), due, {"user_id": user_id})
    if not pages:
        await q.set_sms_pending(tx.conn, user_id, held)
        return
    ids = [pg.message_id for pg in pages]
    await enqueue(
        tx,
        kind="sms",
        topic=SMS_TOPIC,
        user_id=user_id,
        address=phone,
        body=sms_text(pages),
        refs=ids,
    )
    await q.set_sms_state(tx.conn, user_id, ids, "queued")
    await q.sms_sent_now(tx.conn, user_id, still_pending=held)


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
@jobs(EMAIL_CHECK)
async def email_check(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        await _email_check(services, tx, int(payload["user_id"]))


async def _email_check(services: Services, tx: Transaction, user_id: int) -> None:
    """Offline for LIAISON_EMAIL_OFFLINE_S with unread pages: one digest e-mail, at most one per
    LIAISON_EMAIL_DIGEST_S. Someone online reads them in the browser and gets none."""
    cfg = services.config
    if not await services.hub.is_offline(user_id):
        # Reading in the browser now; if they leave with pages still unread, look again later.
        if await q.unread_not_emailed(tx.conn, user_id):
            due = utcnow() + timedelta(seconds=cfg.email_offline_s)
            await tx.schedule(EMAIL_CHECK, str(user_id), due, {"user_id": user_id})
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
        await tx.schedule(EMAIL_CHECK, str(user_id), due, {"user_id": user_id})
        return
    lines = [
        f"- {pg.sender_name}{'（紧急）' if pg.priority == 'urgent' else ''}: {pg.body}"
        for pg in pages
    ]
    body = f"您有 {len(pages)} 条未读寻呼 / You have {len(pages)} unread pages:\n\n" + "\n".join(
        lines
    )
    await enqueue(
        tx,
        kind="email",
        topic=EMAIL_TOPIC,
        user_id=user_id,
        address=email,
        subject=f"【联络】{len(pages)} 条未读寻呼",
        body=body,
        refs=[pg.message_id for pg in pages],
    )
    await q.email_sent_now(tx.conn, user_id)


@outbox.sent(EMAIL_TOPIC)
async def email_sent(services: Services, tx: Transaction, row: OutboxRow) -> None:
    assert row.user_id is not None
    await emit_receipts(tx, await q.mark_emailed(tx.conn, row.user_id, row.refs))


feature = Feature("notify", commands=commands, jobs=jobs, outbox=outbox)
