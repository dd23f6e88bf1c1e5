"""Files: contents stored once by sha256, one row per upload, and who may read them."""

from __future__ import annotations

import asyncpg
import msgspec

from storage.pool import Executor


class FileRecord(msgspec.Struct, frozen=True):
    id: int
    name: str
    size: int
    sha256: bytes
    content_type: str
    uploader_id: int


async def store(
    conn: asyncpg.Connection,
    *,
    sha256: bytes,
    data: bytes,
    name: str,
    content_type: str,
    uploader_id: int,
) -> FileRecord:
    await conn.execute(
        "INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        sha256,
        len(data),
        data,
    )
    file_id = await conn.fetchval(
        "INSERT INTO files (sha256, name, size, content_type, uploader_id)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        sha256,
        name,
        len(data),
        content_type,
        uploader_id,
    )
    return FileRecord(file_id, name, len(data), sha256, content_type, uploader_id)


_COLS = "f.id, f.name, f.size, f.sha256, f.content_type, f.uploader_id"


def _record(r: asyncpg.Record) -> FileRecord:
    return FileRecord(
        r["id"], r["name"], r["size"], r["sha256"], r["content_type"], r["uploader_id"]
    )


# Who may share a file (attach it to a page, a circulation, an approval, a document, a library
# folder or an archive record): its uploader, whoever sent or received it in a page, and the
# sender and recipients of a circulation carrying it (until it is recalled), whoever had a task
# on an approval carrying it, whoever handles a received document carrying it, whoever may read a
# library folder holding it, and for a record kept in the archive its archivists and
# administrators. Each domain adds its branch here, so the rule lives in one query.
_SHAREABLE = """
    f.uploader_id = $2
    OR EXISTS (
        SELECT 1 FROM pager_attachments a
        JOIN pager_messages m ON m.id = a.message_id
        WHERE a.file_id = f.id
          AND (m.sender_id = $2 OR EXISTS (
              SELECT 1 FROM pager_recipients r WHERE r.message_id = m.id AND r.user_id = $2))
    )
    OR EXISTS (
        SELECT 1 FROM circulation_attachments a
        JOIN circulations c ON c.id = a.circulation_id
        WHERE a.file_id = f.id
          AND (c.sender_id = $2 OR (c.recalled_at IS NULL AND EXISTS (
              SELECT 1 FROM circulation_recipients r
              WHERE r.circulation_id = c.id AND r.user_id = $2)))
    )
    OR EXISTS (
        SELECT 1 FROM workflow_files w
        JOIN workflow_tasks t ON t.instance_id = w.instance_id
        WHERE w.file_id = f.id AND $2 IN (t.assignee_id, t.on_behalf_of)
    )
    OR EXISTS (
        SELECT 1 FROM document_files x
        JOIN document_tasks t ON t.document_id = x.document_id
        JOIN task_assignees p ON p.task_id = t.task_id
        WHERE x.file_id = f.id AND p.user_id = $2
    )
    OR EXISTS (
        SELECT 1 FROM library_docs d
        JOIN library_effective e ON e.folder_id = d.folder_id AND 'read' = ANY(e.perms)
        JOIN library_principals($2) p ON p.kind = e.kind AND p.principal = e.principal
        WHERE d.file_id = f.id AND d.removed_at IS NULL
    )
    OR EXISTS (
        SELECT 1 FROM archive_files af
        JOIN archive_records ar ON ar.id = af.archive_id AND ar.state = 'kept'
        JOIN users au ON au.id = $2 AND ('archivist' = ANY(au.roles) OR 'admin' = ANY(au.roles))
        WHERE af.file_id = f.id
    )
"""
# Who may read it: those who may share it, and the borrower of a kept archive record while an
# approved loan runs. A borrower reads, and does not pass it on: attached elsewhere, the file
# would stay readable there after the loan ends.
_READABLE = (
    _SHAREABLE
    + """
    OR EXISTS (
        SELECT 1 FROM archive_files af
        JOIN archive_records ar ON ar.id = af.archive_id AND ar.state = 'kept'
        JOIN archive_loans al ON al.archive_id = ar.id
        WHERE af.file_id = f.id AND al.borrower_id = $2
          AND al.state = 'active' AND al.ends_at > now()
    )
"""
)


async def readable(db: Executor, file_id: int, user_id: int) -> FileRecord | None:
    row = await db.fetchrow(
        f"SELECT {_COLS} FROM files f WHERE f.id = $1 AND ({_READABLE})", file_id, user_id
    )
    return _record(row) if row else None


async def readable_many(db: Executor, file_ids: list[int], user_id: int) -> list[FileRecord]:
    rows = await db.fetch(
        f"SELECT {_COLS} FROM files f WHERE f.id = ANY($1::bigint[]) AND ({_READABLE})"
        " ORDER BY f.id",
        file_ids,
        user_id,
    )
    return [_record(r) for r in rows]


async def shareable_many(db: Executor, file_ids: list[int], user_id: int) -> list[FileRecord]:
    """Those of these files the person may attach elsewhere (readable, not only on loan)."""
    rows = await db.fetch(
        f"SELECT {_COLS} FROM files f WHERE f.id = ANY($1::bigint[]) AND ({_SHAREABLE})",
        file_ids,
        user_id,
    )
    return [_record(r) for r in rows]


async def content(db: Executor, sha256: bytes) -> bytes:
    return bytes(await db.fetchval("SELECT data FROM blobs WHERE sha256 = $1", sha256))
