"""Pager queries: messages, recipients and their receipts, history, preferences, SMS and e-mail
bookkeeping. Every fan-out is one statement over arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, time

import asyncpg
import msgspec

from storage import idempotency as idem
from storage import jobs
from storage.pool import Executor, Params


class Receipt(msgspec.Struct, frozen=True):
    """One recipient's state changed: the sender is told."""

    message_id: int
    sender_id: int
    user_id: int
    state: str
    at: datetime


class ReceiptRow(msgspec.Struct, frozen=True):
    user_id: int
    name: str
    delivered_at: datetime | None
    read_at: datetime | None
    sms_state: str | None
    sms_at: datetime | None
    emailed_at: datetime | None


class Message(msgspec.Struct, frozen=True):
    id: int
    sender_id: int
    sender_name: str
    body: str
    priority: str
    reply_to: int | None
    departments: list[int]
    via: str
    sent_at: datetime
    my_read_at: datetime | None  # None also when the viewer sent it
    received: bool  # the viewer is a recipient


class Summary(msgspec.Struct, frozen=True):
    message_id: int
    total: int
    delivered: int
    read: int
    first: list[tuple[int, str]]  # the first recipients by id, for a "to" line


class Prefs(msgspec.Struct, frozen=True):
    sms_fallback: str
    quiet_start: time | None
    quiet_end: time | None


class SmsCandidate(msgspec.Struct, frozen=True):
    message_id: int
    user_id: int
    phone: str
    urgent: bool
    quiet_start: time | None
    quiet_end: time | None


class Pending(msgspec.Struct, frozen=True):
    message_id: int
    sender_name: str
    body: str
    priority: str


class NewPage(msgspec.Struct, frozen=True):
    id: int  # from `PAGE_IDS`
    sender_id: int
    body: str
    priority: str
    reply_to: int | None
    departments: list[int]
    via: str
    attachments: list[int]


PAGE_IDS = "pager_messages"  # the table whose ids `storage.ids.IdBlocks` hands out for pages


def page_writes(
    pages: Sequence[NewPage],
    sent_at: datetime,
    *,
    claims: tuple[Sequence[idem.Key], Sequence[bytes]] | None,
    sms_timers: Sequence[jobs.Due],
    email_check: tuple[str, list[int], datetime] | None,
) -> Callable[[Params], str]:
    """What rides in the append of a batch's pager.message events, event k being `pages[k]`'s,
    so that the whole fan-out is one statement, one round trip: the senders' idempotency keys
    with their answers (`claims`; the statement fails as a whole on a key claimed before), the
    pages with their attachments and a recipient row naming each appended seq, the SMS timers
    and the e-mail check (kind, users, when)."""

    def ctes(p: Params) -> str:
        out = f", claims AS ({idem.insert_sql(p, *claims)})" if claims is not None else ""
        out += page_rows(p, pages, sent_at)
        if sms_timers:
            out += f", sms_timers AS ({jobs.upsert_sql(p, sms_timers)})"
        if email_check is not None:
            out += f", email_timers AS ({jobs.per_user_sql(p, *email_check)})"
        return out

    return ctes


def page_rows(p: Params, pages: Sequence[NewPage], sent_at: datetime) -> str:
    """CTEs for an event append's statement (`Transaction.emit_many(also=...)`) whose event k is
    `pages[k]`'s pager.message: the pages, their attachments, and a recipient row for each
    appended event, naming its seq."""
    ids = p([x.id for x in pages], "bigint[]")
    return f"""
    , pages AS (
        INSERT INTO pager_messages
            (id, sender_id, body, priority, reply_to, departments, via, sent_at)
        OVERRIDING SYSTEM VALUE
        SELECT id, sender_id, body, priority, reply_to, departments::bigint[], via,
               {p(sent_at, "timestamptz")}
        FROM unnest({ids},
                    {p([x.sender_id for x in pages], "bigint[]")},
                    {p([x.body for x in pages], "text[]")},
                    {p([x.priority for x in pages], "text[]")},
                    {p([x.reply_to for x in pages], "bigint[]")},
                    {p(_array_texts([x.departments for x in pages]), "text[]")},
                    {p([x.via for x in pages], "text[]")})
            AS t(id, sender_id, body, priority, reply_to, departments, via)
    ), page_files AS (
        INSERT INTO pager_attachments (message_id, file_id)
        SELECT * FROM unnest({p([x.id for x in pages for _ in x.attachments], "bigint[]")},
                             {p([f for x in pages for f in x.attachments], "bigint[]")})
    ), page_recipients AS (
        INSERT INTO pager_recipients (message_id, user_id, seq)
        SELECT ({ids})[a.k + 1], a.user_id, a.seq
        FROM appended a
    )
    """


def _array_texts(lists: Sequence[Sequence[int]]) -> list[str]:
    # PostgreSQL arrays of arrays must be rectangular: each list goes as array text.
    return ["{" + ",".join(map(str, x)) + "}" for x in lists]


async def attachments_of(
    db: Executor, message_ids: Sequence[int]
) -> dict[int, list[dict[str, object]]]:
    rows = await db.fetch(
        "SELECT a.message_id, f.id, f.name, f.size, f.content_type FROM pager_attachments a"
        " JOIN files f ON f.id = a.file_id WHERE a.message_id = ANY($1::bigint[]) ORDER BY f.id",
        list(message_ids),
    )
    out: dict[int, list[dict[str, object]]] = {}
    for r in rows:
        out.setdefault(r["message_id"], []).append(
            {
                "file_id": str(r["id"]),
                "name": r["name"],
                "size": r["size"],
                "content_type": r["content_type"],
            }
        )
    return out


def _receipts(rows: list[asyncpg.Record], state: str, at_col: str) -> list[Receipt]:
    return [Receipt(r["message_id"], r["sender_id"], r["user_id"], state, r[at_col]) for r in rows]


async def mark_delivered(
    conn: asyncpg.Connection, acks: Sequence[tuple[int, int, int]]
) -> list[Receipt]:
    """Each (user, after, upto): the user acknowledged their stream up to `upto`, so their pages
    in (after, upto] arrived. Each user's pages are found by their own range of the
    undelivered index (a lateral subquery, fenced by OFFSET 0): joined as a whole, PostgreSQL
    read that partial index from end to end, and between vacuums it holds an entry for every
    page delivered since (24,254 read for 18 rows, 3-20 ms a call at 500 pages/s)."""
    rows = await conn.fetch(
        """
        UPDATE pager_recipients r SET delivered_at = now()
        FROM pager_messages m, (
            SELECT x.message_id, x.user_id
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS a(user_id, after, upto)
            CROSS JOIN LATERAL (
                SELECT message_id, user_id FROM pager_recipients
                WHERE user_id = a.user_id AND seq > a.after AND seq <= a.upto
                  AND delivered_at IS NULL
                OFFSET 0
            ) x
        ) t
        WHERE r.message_id = t.message_id AND r.user_id = t.user_id AND r.delivered_at IS NULL
          AND m.id = r.message_id
        RETURNING r.message_id, m.sender_id, r.user_id, r.delivered_at
        """,
        [a[0] for a in acks],
        [a[1] for a in acks],
        [a[2] for a in acks],
    )
    return _receipts(rows, "delivered", "delivered_at")


async def acked_undelivered(db: Executor, limit: int = 500) -> list[tuple[int, int, int]]:
    """(user, 0, acked seq) for users whose acknowledged stream covers pages not marked delivered
    (an ack whose marking failed after it committed), for `mark_delivered`."""
    rows = await db.fetch(
        """
        SELECT s.user_id, s.acked_seq FROM streams s
        WHERE s.acked_seq > 0 AND EXISTS (
            SELECT 1 FROM pager_recipients r
            WHERE r.user_id = s.user_id AND r.delivered_at IS NULL AND r.seq <= s.acked_seq
        )
        ORDER BY s.user_id LIMIT $1
        """,
        limit,
    )
    return [(r["user_id"], 0, r["acked_seq"]) for r in rows]


async def mark_read(
    conn: asyncpg.Connection, user_id: int, message_ids: Sequence[int]
) -> list[Receipt]:
    """Read implies delivered: a page read before its ack gets both receipts, delivered first."""
    rows = await conn.fetch(
        """
        WITH target AS (
            SELECT message_id, delivered_at IS NULL AS was_undelivered FROM pager_recipients
            WHERE user_id = $1 AND message_id = ANY($2::bigint[]) AND read_at IS NULL
            FOR UPDATE
        )
        UPDATE pager_recipients r
        SET read_at = now(), delivered_at = coalesce(r.delivered_at, now())
        FROM target t, pager_messages m
        WHERE r.user_id = $1 AND r.message_id = t.message_id AND m.id = r.message_id
        RETURNING r.message_id, m.sender_id, r.user_id, r.read_at, r.delivered_at,
                  t.was_undelivered
        """,
        user_id,
        list(message_ids),
    )
    receipts: list[Receipt] = []
    for r in rows:
        if r["was_undelivered"]:
            receipts.append(
                Receipt(
                    r["message_id"], r["sender_id"], r["user_id"], "delivered", r["delivered_at"]
                )
            )
        receipts.append(
            Receipt(r["message_id"], r["sender_id"], r["user_id"], "read", r["read_at"])
        )
    return receipts


async def sender_of(db: Executor, message_id: int) -> int | None:
    return await db.fetchval("SELECT sender_id FROM pager_messages WHERE id = $1", message_id)


async def visible(db: Executor, message_id: int, user_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pager_messages WHERE id = $1 AND sender_id = $2)"
            " OR EXISTS (SELECT 1 FROM pager_recipients WHERE message_id = $1 AND user_id = $2)",
            message_id,
            user_id,
        )
    )


async def receipts(db: Executor, message_id: int) -> list[ReceiptRow]:
    rows = await db.fetch(
        "SELECT r.user_id, u.name, r.delivered_at, r.read_at, r.sms_state, r.sms_at, r.emailed_at"
        " FROM pager_recipients r JOIN users u ON u.id = r.user_id"
        " WHERE r.message_id = $1 ORDER BY r.user_id",
        message_id,
    )
    return [ReceiptRow(**dict(r)) for r in rows]


async def history(
    db: Executor,
    *,
    viewer: int,
    peer: int | None,
    query: str | None,
    before: int | None,
    limit: int,
) -> list[Message]:
    like = None
    if query:
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await db.fetch(
        """
        WITH mine AS (
            SELECT id AS message_id FROM pager_messages
            WHERE sender_id = $1 AND ($4::bigint IS NULL OR id < $4)
            UNION
            SELECT message_id FROM pager_recipients
            WHERE user_id = $1 AND ($4::bigint IS NULL OR message_id < $4)
        )
        SELECT m.id, m.sender_id, s.name AS sender_name, m.body, m.priority, m.reply_to,
               m.departments, m.via, m.sent_at, r.read_at AS my_read_at,
               (r.user_id IS NOT NULL) AS received
        FROM mine JOIN pager_messages m ON m.id = mine.message_id
        JOIN users s ON s.id = m.sender_id
        LEFT JOIN pager_recipients r ON r.message_id = m.id AND r.user_id = $1
        WHERE ($2::bigint IS NULL
               OR (m.sender_id = $2 AND r.user_id IS NOT NULL)
               OR (m.sender_id = $1 AND EXISTS (
                   SELECT 1 FROM pager_recipients p WHERE p.message_id = m.id AND p.user_id = $2)))
          AND ($3::text IS NULL OR m.body ILIKE $3)
        ORDER BY m.id DESC
        LIMIT $5
        """,
        viewer,
        peer,
        like,
        before,
        limit,
    )
    return [
        Message(
            r["id"],
            r["sender_id"],
            r["sender_name"],
            r["body"],
            r["priority"],
            r["reply_to"],
            list(r["departments"]),
            r["via"],
            r["sent_at"],
            r["my_read_at"],
            r["received"],
        )
        for r in rows
    ]


async def summaries(
    db: Executor, message_ids: Sequence[int], first: int = 20
) -> dict[int, Summary]:
    rows = await db.fetch(
        """
        SELECT r.message_id, count(*) AS total, count(r.delivered_at) AS delivered,
               count(r.read_at) AS read,
               (array_agg(r.user_id ORDER BY r.user_id))[1:$2] AS ids,
               (array_agg(u.name ORDER BY r.user_id))[1:$2] AS names
        FROM pager_recipients r JOIN users u ON u.id = r.user_id
        WHERE r.message_id = ANY($1::bigint[]) GROUP BY r.message_id
        """,
        list(message_ids),
        first,
    )
    return {
        r["message_id"]: Summary(
            r["message_id"],
            r["total"],
            r["delivered"],
            r["read"],
            list(zip(r["ids"], r["names"], strict=True)),
        )
        for r in rows
    }


async def department_names(db: Executor, ids: Sequence[int]) -> dict[int, str]:
    rows = await db.fetch(
        "SELECT id, name FROM departments WHERE id = ANY($1::bigint[])", list(ids)
    )
    return {r["id"]: r["name"] for r in rows}


# --- preferences -------------------------------------------------------------------------------
async def get_prefs(db: Executor, user_id: int) -> Prefs:
    row = await db.fetchrow(
        "SELECT sms_fallback, quiet_start, quiet_end FROM prefs WHERE user_id = $1", user_id
    )
    if row is None:
        return Prefs("offline", None, None)
    return Prefs(row["sms_fallback"], row["quiet_start"], row["quiet_end"])


async def set_prefs(db: Executor, user_id: int, prefs: Prefs) -> None:
    await db.execute(
        "INSERT INTO prefs (user_id, sms_fallback, quiet_start, quiet_end) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id) DO UPDATE SET sms_fallback = EXCLUDED.sms_fallback,"
        " quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end",
        user_id,
        prefs.sms_fallback,
        prefs.quiet_start,
        prefs.quiet_end,
    )


# --- SMS and e-mail ------------------------------------------------------------------------------
async def sms_candidates(
    conn: asyncpg.Connection, message_ids: Sequence[int], *, urgent_check: bool
) -> list[SmsCandidate]:
    """Recipients of these pages who should get an SMS now: with a phone, not opted out, no SMS
    yet, and not reached: undelivered (the offline check) or unread (the urgent check). By page
    in the order given, then by person. Undelivered is read from the recipient's acknowledged
    seq, not only from the delivery mark, which an ack's own transaction writes after it: a
    page its recipient acknowledged is never texted, whatever failed in between.

    Each page's recipients are read by its key (a lateral subquery, kept apart by OFFSET 0):
    asked for undelivered rows across pages, the planner took the partial index of undelivered
    rows, whose entries for rows delivered since stay until a vacuum (15,000 entries read for
    50 rows, up to 270 ms, in a load test), or, on stale statistics, read the whole table."""
    rows = await conn.fetch(
        """
        SELECT r.message_id, r.user_id, u.phone, m.priority = 'urgent' AS urgent,
               p.quiet_start, p.quiet_end
        FROM unnest($1::bigint[]) WITH ORDINALITY AS w(message_id, i)
        CROSS JOIN LATERAL (
            SELECT * FROM pager_recipients WHERE message_id = w.message_id OFFSET 0
        ) r
        JOIN pager_messages m ON m.id = r.message_id
        JOIN users u ON u.id = r.user_id
        JOIN streams st ON st.user_id = r.user_id
        LEFT JOIN prefs p ON p.user_id = r.user_id
        WHERE u.phone IS NOT NULL AND r.sms_state IS NULL
          AND r.read_at IS NULL
          AND CASE WHEN $2 THEN coalesce(p.sms_fallback, 'offline') IN ('offline', 'urgent')
                   ELSE r.delivered_at IS NULL AND r.seq > st.acked_seq
                        AND (coalesce(p.sms_fallback, 'offline') = 'offline'
                             OR (p.sms_fallback = 'urgent' AND m.priority = 'urgent'))
              END
        ORDER BY w.i, r.user_id
        """,
        list(message_ids),
        urgent_check,
    )
    return [
        SmsCandidate(
            r["message_id"], r["user_id"], r["phone"], r["urgent"], r["quiet_start"], r["quiet_end"]
        )
        for r in rows
    ]


async def lock_notify_state(
    conn: asyncpg.Connection, user_id: int
) -> tuple[datetime | None, list[int], datetime | None]:
    await conn.execute(
        "INSERT INTO notify_state (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id
    )
    row = await conn.fetchrow(
        "SELECT sms_sent_at, sms_pending, email_sent_at FROM notify_state WHERE user_id = $1 FOR UPDATE",
        user_id,
    )
    return row["sms_sent_at"], list(row["sms_pending"]), row["email_sent_at"]


async def set_sms_pending(conn: asyncpg.Connection, user_id: int, pending: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE notify_state SET sms_pending = $2 WHERE user_id = $1", user_id, sorted(set(pending))
    )


async def sms_sent_now(
    conn: asyncpg.Connection, user_id: int, still_pending: Sequence[int] = ()
) -> None:
    await conn.execute(
        "UPDATE notify_state SET sms_sent_at = now(), sms_pending = $2 WHERE user_id = $1",
        user_id,
        sorted(still_pending),
    )


async def still_unread(
    conn: asyncpg.Connection, user_id: int, message_ids: Sequence[int]
) -> list[Pending]:
    rows = await conn.fetch(
        "SELECT m.id, s.name, m.body, m.priority FROM pager_recipients r"
        " JOIN pager_messages m ON m.id = r.message_id JOIN users s ON s.id = m.sender_id"
        " WHERE r.user_id = $1 AND r.message_id = ANY($2::bigint[]) AND r.read_at IS NULL"
        " AND r.sms_state IS NULL ORDER BY m.id",
        user_id,
        list(message_ids),
    )
    return [Pending(r["id"], r["name"], r["body"], r["priority"]) for r in rows]


async def set_sms_state(
    conn: asyncpg.Connection, user_id: int, message_ids: Sequence[int], state: str
) -> list[Receipt]:
    rows = await conn.fetch(
        """
        UPDATE pager_recipients r SET sms_state = $3, sms_at = now()
        FROM pager_messages m
        WHERE r.user_id = $1 AND r.message_id = ANY($2::bigint[]) AND m.id = r.message_id
        RETURNING r.message_id, m.sender_id, r.user_id, r.sms_at
        """,
        user_id,
        list(message_ids),
        state,
    )
    return _receipts(rows, {"sent": "sms_sent", "failed": "sms_failed"}.get(state, state), "sms_at")


async def unread_not_emailed(conn: asyncpg.Connection, user_id: int) -> list[Pending]:
    rows = await conn.fetch(
        "SELECT m.id, s.name, m.body, m.priority FROM pager_recipients r"
        " JOIN pager_messages m ON m.id = r.message_id JOIN users s ON s.id = m.sender_id"
        " WHERE r.user_id = $1 AND r.read_at IS NULL AND r.emailed_at IS NULL ORDER BY m.id",
        user_id,
    )
    return [Pending(r["id"], r["name"], r["body"], r["priority"]) for r in rows]


async def mark_emailed(
    conn: asyncpg.Connection, user_id: int, message_ids: Sequence[int]
) -> list[Receipt]:
    rows = await conn.fetch(
        """
        UPDATE pager_recipients r SET emailed_at = now()
        FROM pager_messages m
        WHERE r.user_id = $1 AND r.message_id = ANY($2::bigint[]) AND m.id = r.message_id
        RETURNING r.message_id, m.sender_id, r.user_id, r.emailed_at
        """,
        user_id,
        list(message_ids),
    )
    return _receipts(rows, "emailed", "emailed_at")


async def email_sent_now(conn: asyncpg.Connection, user_id: int) -> None:
    await conn.execute("UPDATE notify_state SET email_sent_at = now() WHERE user_id = $1", user_id)


async def quiet_hours(db: Executor, user_id: int) -> tuple[time | None, time | None]:
    row = await db.fetchrow("SELECT quiet_start, quiet_end FROM prefs WHERE user_id = $1", user_id)
    return (row["quiet_start"], row["quiet_end"]) if row else (None, None)


async def user_contact(
    db: Executor, user_id: int
) -> tuple[str | None, str | None, datetime | None]:
    row = await db.fetchrow("SELECT phone, email, last_seen FROM users WHERE id = $1", user_id)
    return (row["phone"], row["email"], row["last_seen"]) if row else (None, None, None)


async def last_paged_by_sms(db: Executor, user_id: int) -> int | None:
    """The newest page that reached this person by SMS."""
    refs = await db.fetchval(
        "SELECT refs FROM outbox"
        " WHERE user_id = $1 AND kind = 'sms' AND topic = 'pager.sms' AND state = 'sent'"
        " ORDER BY sent_at DESC LIMIT 1",
        user_id,
    )
    return max(refs) if refs else None
