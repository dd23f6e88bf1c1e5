"""The archive's SQL: records and their files, code numbers, loans, destruction requests and the
destruction register (see migrations/0014_archive.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from storage.pool import Executor


class Record(msgspec.Struct, frozen=True):
    id: int
    code: str
    title: str
    fonds: str
    category: str
    year: int
    retention: str
    n: int
    document_id: int | None
    filed_by: int
    filed_by_name: str
    filed_at: datetime
    retention_ends_at: datetime | None
    state: str
    destroyed_at: datetime | None


class ArchiveFile(msgspec.Struct, frozen=True):
    file_id: int
    name: str
    size: int
    sha256: str  # hex


class Loan(msgspec.Struct, frozen=True):
    id: int
    archive_id: int
    borrower_id: int
    borrower_name: str
    instance_id: int
    days: float
    reason: str
    state: str
    created_at: datetime
    starts_at: datetime | None
    ends_at: datetime | None
    closed_at: datetime | None


class Destruction(msgspec.Struct, frozen=True):
    id: int
    requester_id: int
    instance_id: int
    reason: str
    state: str
    archive_ids: list[int]


class RegisterEntry(msgspec.Struct, frozen=True):
    seq: int
    at: datetime
    destruction_id: int
    instance_id: int
    archive_id: int
    code: str
    title: str
    retention: str
    files: list[dict[str, Any]]
    reason: str
    requester_id: int
    hash: str


class Unindexed(msgspec.Struct, frozen=True):
    id: int
    title: str
    code: str
    category: str
    number: str | None


# --- records -------------------------------------------------------------------------------------
_RECORD = (
    "r.id, r.code, r.title, r.fonds, r.category, r.year, r.retention, r.n, r.document_id,"
    " r.filed_by, u.name AS filed_by_name, r.filed_at, r.retention_ends_at, r.state,"
    " r.destroyed_at"
)
_FROM = "archive_records r JOIN users u ON u.id = r.filed_by"


def _record(r: asyncpg.Record) -> Record:
    return Record(**dict(r))


async def fonds(db: Executor) -> str:
    return str(await db.fetchval("SELECT fonds FROM archive_settings"))


async def lock_document(conn: asyncpg.Connection, document_id: int) -> None:
    """Filings of one document wait for each other (the first one's record is then found)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('archive_document:' || $1::bigint::text, 0))",
        document_id,
    )


async def by_document(db: Executor, document_id: int) -> Record | None:
    row = await db.fetchrow(f"SELECT {_RECORD} FROM {_FROM} WHERE r.document_id = $1", document_id)
    return None if row is None else _record(row)


# The gapless counters (an archive code's n, a document number's seq): table -> its key.
_SERIES = {
    "archive_counters": ("fonds", "category", "year", "retention"),
    "document_counters": ("prefix", "year"),
}


async def next_in_series(conn: asyncpg.Connection, table: str, *key: object) -> int:
    """The next number of the series `key` in a counter table. Its row stays locked until the
    caller's transaction ends, so the number is used in the same transaction or given back by
    its rollback (no gap, no repeat), and concurrent takers queue."""
    cols = _SERIES[table]
    assert len(key) == len(cols), key
    names = ", ".join(cols)
    values = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    return int(
        await conn.fetchval(
            f"INSERT INTO {table} ({names}, last) VALUES ({values}, 1) ON CONFLICT ({names})"
            f" DO UPDATE SET last = {table}.last + 1 RETURNING last",
            *key,
        )
    )


async def next_number(
    conn: asyncpg.Connection, fonds: str, category: str, year: int, retention: str
) -> int:
    """The next number of this code prefix."""
    return await next_in_series(conn, "archive_counters", fonds, category, year, retention)


async def insert(
    conn: asyncpg.Connection,
    *,
    code: str,
    title: str,
    fonds: str,
    category: str,
    year: int,
    retention: str,
    n: int,
    document_id: int | None,
    filed_by: int,
    retention_ends_at: datetime | None,
    files: Sequence[ArchiveFile],
    search: str,
) -> Record:
    """The record and its files, in one statement; `search` is its catalogue vector (a
    tsvector literal, storage/text.py)."""
    row = await conn.fetchrow(
        f"""
        WITH r AS (
            INSERT INTO archive_records (code, title, fonds, category, year, retention, n,
                                         document_id, filed_by, retention_ends_at, search)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $15::tsvector)
            RETURNING *
        ), f AS (
            INSERT INTO archive_files (archive_id, file_id, ord, name, size, sha256)
            SELECT r.id, x.file_id, x.ord, x.name, x.size, x.sha256
            FROM r, unnest($11::bigint[], $12::text[], $13::bigint[], $14::text[])
                WITH ORDINALITY AS x(file_id, name, size, sha256, ord)
        )
        SELECT {_RECORD} FROM r JOIN users u ON u.id = r.filed_by
        """,
        code,
        title,
        fonds,
        category,
        year,
        retention,
        n,
        document_id,
        filed_by,
        retention_ends_at,
        [f.file_id for f in files],
        [f.name for f in files],
        [f.size for f in files],
        [f.sha256 for f in files],
        search,
    )
    return _record(row)


async def record(db: Executor, archive_id: int, *, lock: bool = False) -> Record | None:
    lock_sql = " FOR UPDATE OF r" if lock else ""
    row = await db.fetchrow(f"SELECT {_RECORD} FROM {_FROM} WHERE r.id = $1{lock_sql}", archive_id)
    return None if row is None else _record(row)


async def records_locked(conn: asyncpg.Connection, archive_ids: Sequence[int]) -> list[Record]:
    """These records, locked in id order (two requests naming the same records queue)."""
    rows = await conn.fetch(
        f"SELECT {_RECORD} FROM {_FROM} WHERE r.id = ANY($1::bigint[]) ORDER BY r.id"
        " FOR UPDATE OF r",
        list(archive_ids),
    )
    return [_record(r) for r in rows]


async def files_of(db: Executor, archive_id: int) -> list[ArchiveFile]:
    rows = await db.fetch(
        "SELECT file_id, name, size, sha256 FROM archive_files WHERE archive_id = $1 ORDER BY ord",
        archive_id,
    )
    return [ArchiveFile(**dict(r)) for r in rows]


async def files_of_many(db: Executor, archive_ids: Sequence[int]) -> dict[int, list[ArchiveFile]]:
    """Each record's files, in one query."""
    rows = await db.fetch(
        "SELECT archive_id, file_id, name, size, sha256 FROM archive_files"
        " WHERE archive_id = ANY($1::bigint[]) ORDER BY archive_id, ord",
        list(archive_ids),
    )
    out: dict[int, list[ArchiveFile]] = {}
    for r in rows:
        out.setdefault(r["archive_id"], []).append(
            ArchiveFile(r["file_id"], r["name"], r["size"], r["sha256"])
        )
    return out


async def uploaded(db: Executor, file_ids: Sequence[int]) -> list[ArchiveFile]:
    """These files as stored (name, size, SHA-256), whoever may read them, in the order given."""
    rows = await db.fetch(
        "SELECT f.id AS file_id, f.name, f.size, encode(f.sha256, 'hex') AS sha256"
        " FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, ord) JOIN files f ON f.id = x.id"
        " ORDER BY x.ord",
        list(file_ids),
    )
    return [ArchiveFile(**dict(r)) for r in rows]


async def search(
    db: Executor, tsquery: str | None, *, destroyed_too: bool, before: int | None, limit: int
) -> list[Record]:
    """Records whose catalogue vector (title, code, document number, category) matches
    `tsquery` (storage/text.py's `search_query`), best first then newest; None: all, newest
    first."""
    rows = await db.fetch(
        f"""
        SELECT {_RECORD} FROM {_FROM}
        WHERE ($1 OR r.state = 'kept') AND ($2::bigint IS NULL OR r.id < $2)
          AND ($3::tsquery IS NULL OR r.search @@ $3::tsquery)
        ORDER BY CASE WHEN $3::tsquery IS NULL THEN 0 ELSE ts_rank(r.search, $3::tsquery) END DESC,
                 r.id DESC
        LIMIT $4
        """,
        destroyed_too,
        before,
        tsquery,
        limit,
    )
    return [_record(r) for r in rows]


async def unindexed(conn: asyncpg.Connection, limit: int) -> list[Unindexed]:
    """Records without a catalogue vector yet (filed before it existed), locked."""
    rows = await conn.fetch(
        "SELECT r.id, r.title, r.code, r.category, d.number FROM archive_records r"
        " LEFT JOIN documents d ON d.id = r.document_id WHERE r.search IS NULL"
        " ORDER BY r.id LIMIT $1 FOR UPDATE OF r SKIP LOCKED",
        limit,
    )
    return [Unindexed(**dict(r)) for r in rows]


async def set_search(conn: asyncpg.Connection, vectors: Sequence[tuple[int, str]]) -> None:
    await conn.execute(
        "UPDATE archive_records r SET search = x.v::tsvector"
        " FROM unnest($1::bigint[], $2::text[]) AS x(id, v) WHERE r.id = x.id",
        [i for i, _ in vectors],
        [v for _, v in vectors],
    )


async def cancel_jobs(conn: asyncpg.Connection, kind: str, keys: Sequence[str]) -> None:
    """Drop these jobs of a kind in one statement (the records' appraisals, at destruction);
    the set-based form of `Transaction.cancel`."""
    await conn.execute(
        "DELETE FROM jobs WHERE kind = $1 AND key = ANY($2::text[])", kind, list(keys)
    )


async def set_retention(
    conn: asyncpg.Connection, archive_id: int, retention: str, ends_at: datetime | None
) -> None:
    await conn.execute(
        "UPDATE archive_records SET retention = $2, retention_ends_at = $3 WHERE id = $1",
        archive_id,
        retention,
        ends_at,
    )


async def mark_destroyed(conn: asyncpg.Connection, archive_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE archive_records SET state = 'destroyed', destroyed_at = now()"
        " WHERE id = ANY($1::bigint[]) AND state = 'kept'",
        list(archive_ids),
    )


async def archivists(db: Executor) -> list[int]:
    """The active archivists; the administrators where there are none."""
    rows = await db.fetch(
        "SELECT id FROM users WHERE deactivated_at IS NULL AND ('archivist' = ANY(roles)"
        "   OR ('admin' = ANY(roles) AND NOT EXISTS (SELECT 1 FROM users a"
        "       WHERE 'archivist' = ANY(a.roles) AND a.deactivated_at IS NULL)))"
        " ORDER BY id"
    )
    return [r["id"] for r in rows]


# --- loans ---------------------------------------------------------------------------------------
_LOAN = (
    "l.id, l.archive_id, l.borrower_id, u.name AS borrower_name, l.instance_id, l.days,"
    " l.reason, l.state, l.created_at, l.starts_at, l.ends_at, l.closed_at"
)
_LOAN_FROM = "archive_loans l JOIN users u ON u.id = l.borrower_id"


def _loan(r: asyncpg.Record) -> Loan:
    d = dict(r)
    d["days"] = float(d["days"])
    return Loan(**d)


async def create_loan(
    conn: asyncpg.Connection,
    archive_id: int,
    borrower_id: int,
    instance_id: int,
    days: float,
    reason: str,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO archive_loans (archive_id, borrower_id, instance_id, days, reason)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            archive_id,
            borrower_id,
            instance_id,
            Decimal(repr(days)),
            reason,
        )
    )


async def open_loan(db: Executor, archive_id: int, borrower_id: int) -> Loan | None:
    """The person's pending or active loan of this record."""
    row = await db.fetchrow(
        f"SELECT {_LOAN} FROM {_LOAN_FROM} WHERE l.archive_id = $1 AND l.borrower_id = $2"
        " AND l.state IN ('pending', 'active')",
        archive_id,
        borrower_id,
    )
    return None if row is None else _loan(row)


async def running_loan(db: Executor, archive_id: int, borrower_id: int) -> Loan | None:
    """The person's approved loan of this record whose time is not up."""
    row = await db.fetchrow(
        f"SELECT {_LOAN} FROM {_LOAN_FROM} WHERE l.archive_id = $1 AND l.borrower_id = $2"
        " AND l.state = 'active' AND l.ends_at > now()",
        archive_id,
        borrower_id,
    )
    return None if row is None else _loan(row)


async def running_loan_ids(db: Executor, borrower_id: int, archive_ids: Sequence[int]) -> set[int]:
    """Those of these records the person has an approved loan of whose time is not up."""
    rows = await db.fetch(
        "SELECT archive_id FROM archive_loans WHERE borrower_id = $1"
        " AND archive_id = ANY($2::bigint[]) AND state = 'active' AND ends_at > now()",
        borrower_id,
        list(archive_ids),
    )
    return {r["archive_id"] for r in rows}


async def loan_by_instance(
    conn: asyncpg.Connection, instance_id: int, *, lock: bool = True
) -> Loan | None:
    row = await conn.fetchrow(
        f"SELECT {_LOAN} FROM {_LOAN_FROM} WHERE l.instance_id = $1"
        + (" FOR UPDATE OF l" if lock else ""),
        instance_id,
    )
    return None if row is None else _loan(row)


async def loan(conn: asyncpg.Connection, loan_id: int) -> Loan | None:
    row = await conn.fetchrow(
        f"SELECT {_LOAN} FROM {_LOAN_FROM} WHERE l.id = $1 FOR UPDATE OF l", loan_id
    )
    return None if row is None else _loan(row)


async def loans_of(
    db: Executor, *, archive_id: int | None = None, borrower_id: int | None = None, limit: int = 100
) -> list[Loan]:
    rows = await db.fetch(
        f"SELECT {_LOAN} FROM {_LOAN_FROM}"
        " WHERE ($1::bigint IS NULL OR l.archive_id = $1)"
        " AND ($2::bigint IS NULL OR l.borrower_id = $2) ORDER BY l.id DESC LIMIT $3",
        archive_id,
        borrower_id,
        limit,
    )
    return [_loan(r) for r in rows]


async def activate_loan(conn: asyncpg.Connection, loan_id: int) -> Loan:
    """Approved: the loan runs from now for its days."""
    row = await conn.fetchrow(
        f"""
        WITH l AS (
            UPDATE archive_loans SET state = 'active', starts_at = now(),
                ends_at = now() + days * interval '1 day'
            WHERE id = $1 RETURNING *
        )
        SELECT {_LOAN} FROM l JOIN users u ON u.id = l.borrower_id
        """,
        loan_id,
    )
    return _loan(row)


async def close_loans(conn: asyncpg.Connection, loan_ids: Sequence[int], state: str) -> None:
    await conn.execute(
        "UPDATE archive_loans SET state = $2, closed_at = now() WHERE id = ANY($1::bigint[])",
        list(loan_ids),
        state,
    )


async def active_loans_of_records(
    conn: asyncpg.Connection, archive_ids: Sequence[int]
) -> list[Loan]:
    rows = await conn.fetch(
        f"SELECT {_LOAN} FROM {_LOAN_FROM} WHERE l.archive_id = ANY($1::bigint[])"
        " AND l.state = 'active' ORDER BY l.id FOR UPDATE OF l",
        list(archive_ids),
    )
    return [_loan(r) for r in rows]


# --- destruction -----------------------------------------------------------------------------------
async def pending_destruction_of(conn: asyncpg.Connection, archive_ids: Sequence[int]) -> list[int]:
    """Those of these records already named by a pending destruction request."""
    rows = await conn.fetch(
        "SELECT DISTINCT i.archive_id FROM archive_destruction_items i"
        " JOIN archive_destructions d ON d.id = i.destruction_id"
        " WHERE i.archive_id = ANY($1::bigint[]) AND d.state = 'pending' ORDER BY 1",
        list(archive_ids),
    )
    return [r["archive_id"] for r in rows]


async def create_destruction(
    conn: asyncpg.Connection,
    requester_id: int,
    instance_id: int,
    reason: str,
    archive_ids: Sequence[int],
) -> int:
    return int(
        await conn.fetchval(
            """
            WITH d AS (
                INSERT INTO archive_destructions (requester_id, instance_id, reason)
                VALUES ($1, $2, $3) RETURNING id
            ), i AS (
                INSERT INTO archive_destruction_items (destruction_id, archive_id)
                SELECT d.id, x FROM d, unnest($4::bigint[]) AS x
            )
            SELECT id FROM d
            """,
            requester_id,
            instance_id,
            reason,
            list(archive_ids),
        )
    )


async def destruction_by_instance(conn: asyncpg.Connection, instance_id: int) -> Destruction | None:
    row = await conn.fetchrow(
        "SELECT d.id, d.requester_id, d.instance_id, d.reason, d.state,"
        " array(SELECT archive_id FROM archive_destruction_items i"
        "       WHERE i.destruction_id = d.id ORDER BY archive_id) AS archive_ids"
        " FROM archive_destructions d WHERE d.instance_id = $1 FOR UPDATE OF d",
        instance_id,
    )
    return None if row is None else Destruction(**dict(row))


async def decide_destruction(conn: asyncpg.Connection, destruction_id: int, state: str) -> None:
    await conn.execute(
        "UPDATE archive_destructions SET state = $2, decided_at = now() WHERE id = $1",
        destruction_id,
        state,
    )


# --- the register ------------------------------------------------------------------------------------
async def lock_register(conn: asyncpg.Connection) -> tuple[int, str]:
    """Take the register's lock (until the transaction ends); its last seq and hash."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('archive_register', 0))")
    row = await conn.fetchrow("SELECT seq, hash FROM archive_register ORDER BY seq DESC LIMIT 1")
    return (0, "") if row is None else (row["seq"], row["hash"])


async def append_register(conn: asyncpg.Connection, entries: Sequence[RegisterEntry]) -> None:
    await conn.execute(
        "INSERT INTO archive_register (seq, at, destruction_id, instance_id, archive_id, code,"
        " title, retention, files, reason, requester_id, hash)"
        " SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::bigint[], $4::bigint[],"
        " $5::bigint[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::text[],"
        " $11::bigint[], $12::text[])",
        [e.seq for e in entries],
        [e.at for e in entries],
        [e.destruction_id for e in entries],
        [e.instance_id for e in entries],
        [e.archive_id for e in entries],
        [e.code for e in entries],
        [e.title for e in entries],
        [e.retention for e in entries],
        [msgspec.json.encode(e.files) for e in entries],  # pre-encoded: not a 2-D array
        [e.reason for e in entries],
        [e.requester_id for e in entries],
        [e.hash for e in entries],
    )


_ENTRY = (
    "seq, at, destruction_id, instance_id, archive_id, code, title, retention, files, reason,"
    " requester_id, hash"
)


async def register(db: Executor) -> list[RegisterEntry]:
    """Every entry, oldest first."""
    rows = await db.fetch(f"SELECT {_ENTRY} FROM archive_register ORDER BY seq")
    return [RegisterEntry(**dict(r)) for r in rows]


async def register_page(db: Executor, *, before: int | None, limit: int) -> list[RegisterEntry]:
    """Entries before seq `before`, newest first."""
    rows = await db.fetch(
        f"SELECT {_ENTRY} FROM archive_register WHERE $1::int IS NULL OR seq < $1"
        " ORDER BY seq DESC LIMIT $2",
        before,
        limit,
    )
    return [RegisterEntry(**dict(r)) for r in rows]
