"""The file library's SQL: folders, their ACL and effective permissions, documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from storage.pool import Executor

PERMS = ("read", "write", "manage")


def expand(perms: Sequence[str]) -> list[str]:
    """manage ⊃ write ⊃ read."""
    top = max((PERMS.index(p) for p in perms), default=-1)
    return list(PERMS[: top + 1])


class Folder(msgspec.Struct, frozen=True):
    id: int
    parent_id: int | None
    name: str
    inherit: bool
    created_by: int
    created_at: datetime


class Doc(msgspec.Struct, frozen=True):
    id: int
    folder_id: int
    file_id: int
    title: str
    added_by: int
    added_at: datetime
    name: str
    size: int
    content_type: str


class Entry(msgspec.Struct, frozen=True):
    kind: str
    principal: str
    perms: list[str]


_FOLDER = "id, parent_id, name, inherit, created_by, created_at"


async def create_folder(
    conn: asyncpg.Connection, parent_id: int | None, name: str, created_by: int
) -> Folder:
    row = await conn.fetchrow(
        f"INSERT INTO library_folders (parent_id, name, created_by) VALUES ($1, $2, $3)"
        f" RETURNING {_FOLDER}",
        parent_id,
        name,
        created_by,
    )
    return Folder(**dict(row))


async def folder(db: Executor, folder_id: int, *, lock: bool = False) -> Folder | None:
    row = await db.fetchrow(
        f"SELECT {_FOLDER} FROM library_folders WHERE id = $1 AND removed_at IS NULL"
        + (" FOR UPDATE" if lock else ""),
        folder_id,
    )
    return None if row is None else Folder(**dict(row))


async def may(db: Executor, user_id: int, folder_id: int, perm: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM library_effective e"
            " JOIN library_principals($1) p ON p.kind = e.kind AND p.principal = e.principal"
            " WHERE e.folder_id = $2 AND $3 = ANY(e.perms))",
            user_id,
            folder_id,
            perm,
        )
    )


async def set_acl(
    conn: asyncpg.Connection, folder_id: int, inherit: bool, entries: Sequence[Entry]
) -> None:
    await conn.execute("UPDATE library_folders SET inherit = $2 WHERE id = $1", folder_id, inherit)
    await conn.execute("DELETE FROM library_acl WHERE folder_id = $1", folder_id)
    await conn.execute(
        "INSERT INTO library_acl (folder_id, kind, principal, perms)"
        " SELECT $1, k, p, string_to_array(x, ',')"
        " FROM unnest($2::text[], $3::text[], $4::text[]) AS t(k, p, x)",
        folder_id,
        [e.kind for e in entries],
        [e.principal for e in entries],
        [",".join(expand(e.perms)) for e in entries],
    )


async def acl(db: Executor, folder_id: int) -> list[Entry]:
    rows = await db.fetch(
        "SELECT kind, principal, perms FROM library_acl WHERE folder_id = $1"
        " ORDER BY kind, principal",
        folder_id,
    )
    return [Entry(r["kind"], r["principal"], list(r["perms"])) for r in rows]


async def recompute(conn: asyncpg.Connection, folder_id: int) -> None:
    """Rewrite the effective permissions of the folder and everything below it: each folder's
    own entries, plus its parent's effective ones when it inherits (top-down, in memory: a
    subtree is a few folders)."""
    rows = await conn.fetch(
        """
        WITH RECURSIVE sub AS (
            SELECT id, parent_id, inherit, 0 AS depth FROM library_folders WHERE id = $1
            UNION ALL
            SELECT f.id, f.parent_id, f.inherit, s.depth + 1 FROM library_folders f
            JOIN sub s ON f.parent_id = s.id WHERE f.removed_at IS NULL AND s.depth < 50
        )
        SELECT id, parent_id, inherit, depth FROM sub ORDER BY depth, id
        """,
        folder_id,
    )
    ids = [r["id"] for r in rows]
    own: dict[int, dict[tuple[str, str], set[str]]] = {i: {} for i in ids}
    for r in await conn.fetch(
        "SELECT folder_id, kind, principal, perms FROM library_acl"
        " WHERE folder_id = ANY($1::bigint[])",
        ids,
    ):
        own[r["folder_id"]][(r["kind"], r["principal"])] = set(r["perms"])
    eff: dict[int, dict[tuple[str, str], set[str]]] = {}
    top = rows[0]
    if top["parent_id"] is not None and top["inherit"]:
        inherited: dict[tuple[str, str], set[str]] = {}
        for r in await conn.fetch(
            "SELECT kind, principal, perms FROM library_effective WHERE folder_id = $1",
            top["parent_id"],
        ):
            inherited[(r["kind"], r["principal"])] = set(r["perms"])
        eff[top["parent_id"]] = inherited
    for r in rows:
        mine = {k: set(v) for k, v in own[r["id"]].items()}
        if r["inherit"] and r["parent_id"] in eff:
            for k, v in eff[r["parent_id"]].items():
                mine.setdefault(k, set()).update(v)
        eff[r["id"]] = mine
    await conn.execute("DELETE FROM library_effective WHERE folder_id = ANY($1::bigint[])", ids)
    out = [(f, k, p, ",".join(sorted(v))) for f in ids for (k, p), v in eff[f].items()]
    await conn.execute(
        "INSERT INTO library_effective (folder_id, kind, principal, perms)"
        " SELECT f, k, p, string_to_array(x, ',')"
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(f, k, p, x)",
        [o[0] for o in out],
        [o[1] for o in out],
        [o[2] for o in out],
        [o[3] for o in out],
    )


async def is_below(db: Executor, folder_id: int, ancestor_id: int) -> bool:
    """Whether `folder_id` is `ancestor_id` or lies below it."""
    return bool(
        await db.fetchval(
            """
            WITH RECURSIVE up AS (
                SELECT id, parent_id, 0 AS n FROM library_folders WHERE id = $1
                UNION ALL
                SELECT f.id, f.parent_id, up.n + 1 FROM library_folders f
                JOIN up ON f.id = up.parent_id WHERE up.n < 50
            )
            SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)
            """,
            folder_id,
            ancestor_id,
        )
    )


async def move_folder(conn: asyncpg.Connection, folder_id: int, parent_id: int | None) -> None:
    await conn.execute(
        "UPDATE library_folders SET parent_id = $2 WHERE id = $1", folder_id, parent_id
    )


async def remove_folder(conn: asyncpg.Connection, folder_id: int) -> None:
    """The folder, its subfolders and every document in them, in one statement."""
    await conn.execute(
        """
        WITH RECURSIVE sub AS (
            SELECT id, 0 AS depth FROM library_folders WHERE id = $1
            UNION ALL
            SELECT f.id, s.depth + 1 FROM library_folders f
            JOIN sub s ON f.parent_id = s.id WHERE f.removed_at IS NULL AND s.depth < 50
        ), folders AS (
            UPDATE library_folders SET removed_at = now()
            WHERE id IN (SELECT id FROM sub) AND removed_at IS NULL
        )
        UPDATE library_docs SET removed_at = now()
        WHERE folder_id IN (SELECT id FROM sub) AND removed_at IS NULL
        """,
        folder_id,
    )


async def children(db: Executor, user_id: int, parent_id: int | None) -> list[Folder]:
    """The folders under `parent_id` (None: the top) the user may read."""
    rows = await db.fetch(
        f"SELECT {', '.join('f.' + c.strip() for c in _FOLDER.split(','))}"
        " FROM library_folders f WHERE f.removed_at IS NULL"
        " AND f.parent_id IS NOT DISTINCT FROM $2 AND EXISTS ("
        "   SELECT 1 FROM library_effective e"
        "   JOIN library_principals($1) p ON p.kind = e.kind AND p.principal = e.principal"
        "   WHERE e.folder_id = f.id AND 'read' = ANY(e.perms))"
        " ORDER BY f.name, f.id",
        user_id,
        parent_id,
    )
    return [Folder(**dict(r)) for r in rows]


_DOC = (
    "d.id, d.folder_id, d.file_id, d.title, d.added_by, d.added_at, f.name, f.size, f.content_type"
)


async def add_doc(
    conn: asyncpg.Connection,
    folder_id: int,
    file_id: int,
    title: str,
    added_by: int,
    search: str,
) -> Doc:
    """`search`: the title's tsvector literal (storage/text.py), searchable at once."""
    doc_id = await conn.fetchval(
        "INSERT INTO library_docs (folder_id, file_id, title, added_by, search)"
        " VALUES ($1, $2, $3, $4, $5::tsvector) RETURNING id",
        folder_id,
        file_id,
        title,
        added_by,
        search,
    )
    found = await doc(conn, doc_id)
    assert found is not None
    return found


async def doc(db: Executor, doc_id: int) -> Doc | None:
    row = await db.fetchrow(
        f"SELECT {_DOC} FROM library_docs d JOIN files f ON f.id = d.file_id"
        " WHERE d.id = $1 AND d.removed_at IS NULL",
        doc_id,
    )
    return None if row is None else Doc(**dict(row))


async def docs(db: Executor, folder_id: int) -> list[Doc]:
    rows = await db.fetch(
        f"SELECT {_DOC} FROM library_docs d JOIN files f ON f.id = d.file_id"
        " WHERE d.folder_id = $1 AND d.removed_at IS NULL ORDER BY d.title, d.id",
        folder_id,
    )
    return [Doc(**dict(r)) for r in rows]


async def move_doc(conn: asyncpg.Connection, doc_id: int, folder_id: int) -> None:
    await conn.execute("UPDATE library_docs SET folder_id = $2 WHERE id = $1", doc_id, folder_id)


async def remove_doc(conn: asyncpg.Connection, doc_id: int) -> None:
    await conn.execute("UPDATE library_docs SET removed_at = now() WHERE id = $1", doc_id)


# --- search -----------------------------------------------------------------------------------
class Source(msgspec.Struct, frozen=True):
    """What text extraction reads of a document."""

    doc_id: int
    title: str
    name: str
    content_type: str
    size: int
    added_by: int
    indexed: bool
    data: bytes  # at most the `max_bytes` asked for
    truncated: bool


async def source(db: Executor, doc_id: int, max_bytes: int) -> Source | None:
    """The document's file (its first `max_bytes`), None if it is gone."""
    row = await db.fetchrow(
        "SELECT d.id, d.title, f.name, f.content_type, f.size, d.added_by,"
        " d.indexed_at IS NOT NULL AS indexed, substring(b.data FROM 1 FOR $2) AS data"
        " FROM library_docs d JOIN files f ON f.id = d.file_id JOIN blobs b ON b.sha256 = f.sha256"
        " WHERE d.id = $1 AND d.removed_at IS NULL",
        doc_id,
        max_bytes,
    )
    if row is None:
        return None
    return Source(
        row["id"],
        row["title"],
        row["name"],
        row["content_type"],
        row["size"],
        row["added_by"],
        row["indexed"],
        bytes(row["data"]),
        row["size"] > max_bytes,
    )


async def set_indexed(
    conn: asyncpg.Connection, doc_id: int, body: str | None, search: str, error: str | None
) -> int | None:
    """Store the extracted text and the full vector, once: returns whom to tell (the adder),
    None if it was done already or the document is gone (a second run, a concurrent one:
    the row lock makes it wait and then find it done)."""
    return await conn.fetchval(
        "UPDATE library_docs SET body = $2, search = $3::tsvector, extract_error = $4,"
        " indexed_at = now()"
        " WHERE id = $1 AND indexed_at IS NULL AND removed_at IS NULL RETURNING added_by",
        doc_id,
        body,
        search,
        error,
    )


class Hit(msgspec.Struct, frozen=True):
    id: int
    title: str
    folder_id: int
    rank: float
    excerpt: str  # the stretch of the text around the first needle found (or its start)


SNIPPET_WINDOW = 240  # characters of text fetched around the match, for the snippet
SNIPPET_LEAD = 80


async def search(
    db: Executor,
    user_id: int,
    tsquery: str,
    needles: Sequence[str],
    *,
    root_id: int | None,
    limit: int,
) -> list[Hit]:
    """Documents matching `tsquery` in folders the user may read (below `root_id`, if given),
    best first; permissions are joined in, never filtered afterwards."""
    scope = (
        """, sub AS (
            SELECT id, 0 AS depth FROM library_folders WHERE id = $5 AND removed_at IS NULL
            UNION ALL
            SELECT f.id, s.depth + 1 FROM library_folders f
            JOIN sub s ON f.parent_id = s.id WHERE f.removed_at IS NULL AND s.depth < 50
        )"""
        if root_id is not None
        else ""
    )
    within = " AND d.folder_id IN (SELECT id FROM sub)" if root_id is not None else ""
    rows = await db.fetch(
        f"""
        WITH RECURSIVE readable AS (
            SELECT DISTINCT e.folder_id FROM library_effective e
            JOIN library_principals($1) p ON p.kind = e.kind AND p.principal = e.principal
            WHERE 'read' = ANY(e.perms)
        ){scope}, top AS (
            SELECT d.id, d.title, d.folder_id, ts_rank(d.search, $2::tsquery) AS rank
            FROM library_docs d
            WHERE d.removed_at IS NULL AND d.search @@ $2::tsquery
              AND d.folder_id IN (SELECT folder_id FROM readable){within}
            ORDER BY rank DESC, d.id DESC
            LIMIT $3
        )
        SELECT top.id, top.title, top.folder_id, top.rank,
               coalesce(substr(d.body, greatest(1, m.at - {SNIPPET_LEAD}), {SNIPPET_WINDOW}), '')
               AS excerpt
        FROM top JOIN library_docs d ON d.id = top.id
        LEFT JOIN LATERAL (
            SELECT min(p) AS at FROM unnest($4::text[]) AS n, strpos(lower(d.body), n) AS p
            WHERE p > 0
        ) m ON true
        ORDER BY top.rank DESC, top.id DESC
        """,
        user_id,
        tsquery,
        limit,
        list(needles),
        *([root_id] if root_id is not None else []),
    )
    return [Hit(**dict(r)) for r in rows]
