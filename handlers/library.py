"""The file library (文件库): folders with permissions for people, departments (and those below
them) and roles, inherited from the parent unless cut; every list and download checks the
effective permissions kept in `library_effective`, which the transaction that changes an ACL or
moves a folder rewrites for the whole subtree (no walk up the tree per request).

read: see the folder, its documents and download them; write: add, move and remove documents
and make subfolders; manage: change the folder's permissions, move or remove it. Whoever makes
a folder manages it.

Search (`library.search`): titles are searchable from the moment `library.add` commits; the
text of .txt, .docx and .pdf files follows from the committed `library.added` event, through
the `library.extract` job (handlers/extract.py parses in a child process, storage/text.py cuts
Chinese into bigrams), which tells the adder `library.indexed` once the text is searchable. A
file that cannot be read leaves its title searchable and its error in `extract_error`."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec

from handlers import extract as ex
from handlers.files import require_shareable
from server.commands import CommandSet, Ctx, Id, Input
from server.errors import AppError, bad_request, forbidden, not_found
from server.events import Event
from server.feature import Feature
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction
from storage import directory as dq
from storage import library as q
from storage import text as tq
from storage.pool import Executor


# --- events -------------------------------------------------------------------------------------
class LibraryAdded(Event):
    """To the adder: a document is in the library (its title searchable already)."""

    type = "library.added"
    doc_id: str
    folder_id: str
    title: str


class LibraryIndexed(Event):
    """To the adder: the document's text is searchable (or could not be read: title only)."""

    type = "library.indexed"
    doc_id: str


log = logging.getLogger(__name__)
commands = CommandSet()
jobs = JobSet()

EXTRACT = "library.extract"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Perm = Annotated[str, msgspec.Meta(pattern="^(read|write|manage)$")]


async def _folder(ctx: Ctx, folder_id: str, perm: str, *, lock: bool = False) -> q.Folder:
    """The folder, if the caller may `perm` it; one they may not even read does not exist."""
    f = await q.folder(ctx.db, int(folder_id), lock=lock)
    if f is None or not await q.may(ctx.db, ctx.user.id, f.id, "read"):
        raise not_found("no such folder")
    if perm != "read" and not await q.may(ctx.db, ctx.user.id, f.id, perm):
        raise forbidden(f"you may not {perm} this folder")
    return f


def _folder_view(f: q.Folder) -> dict[str, Any]:
    return {
        "folder_id": str(f.id),
        "parent_id": str(f.parent_id) if f.parent_id else None,
        "name": f.name,
        "inherit": f.inherit,
    }


def _doc_view(d: q.Doc) -> dict[str, Any]:
    return {
        "doc_id": str(d.id),
        "folder_id": str(d.folder_id),
        "title": d.title,
        "file": {
            "file_id": str(d.file_id),
            "name": d.name,
            "size": d.size,
            "content_type": d.content_type,
        },
        "added_by": str(d.added_by),
        "added_at": d.added_at,
    }


class FolderCreate(Input):
    name: Name
    parent_id: Id | None = None


@commands("library.folder.create")
async def folder_create(ctx: Ctx, p: FolderCreate) -> dict[str, Any]:
    if not p.name.strip() or "/" in p.name:
        raise bad_request("a folder needs a name without '/'", [{"field": "name"}])
    parent = await _folder(ctx, p.parent_id, "write") if p.parent_id else None
    async with ctx.transaction() as tx:
        f = await q.create_folder(
            tx.conn, parent.id if parent else None, p.name.strip(), ctx.user.id
        )
        await q.set_acl(tx.conn, f.id, True, [q.Entry("user", str(ctx.user.id), ["manage"])])
        await q.recompute(tx.conn, f.id)
    return {"folder_id": str(f.id)}


class AclEntry(msgspec.Struct, forbid_unknown_fields=True):
    perms: Annotated[list[Perm], msgspec.Meta(min_length=1, max_length=3)]
    user_id: Id | None = None
    department_id: Id | None = None
    role: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None


class AclSet(Input):
    folder_id: Id
    inherit: bool
    entries: Annotated[list[AclEntry], msgspec.Meta(max_length=200)]


def _principal(i: int, e: AclEntry) -> tuple[str, str]:
    named = [
        (k, v)
        for k, v in (("user", e.user_id), ("department", e.department_id), ("role", e.role))
        if v is not None
    ]
    if len(named) != 1:
        raise bad_request(
            "an entry names one user_id, department_id or role",
            [{"field": f"entries[{i}]", "message": "one principal"}],
        )
    return named[0]


@commands("library.acl.set")
async def acl_set(ctx: Ctx, p: AclSet) -> dict[str, Any]:
    entries = [q.Entry(*_principal(i, e), list(e.perms)) for i, e in enumerate(p.entries)]
    if len({(e.kind, e.principal) for e in entries}) != len(entries):
        raise bad_request("a principal is named twice", [{"field": "entries"}])
    users = [int(e.principal) for e in entries if e.kind == "user"]
    depts = [int(e.principal) for e in entries if e.kind == "department"]
    if users and len(await dq.existing_ids(ctx.db, "users", users)) != len(set(users)):
        raise bad_request("no such person", [{"field": "entries", "message": "user_id"}])
    if depts and len(await dq.existing_ids(ctx.db, "departments", depts)) != len(set(depts)):
        raise bad_request("no such department", [{"field": "entries", "message": "department_id"}])
    async with ctx.transaction() as tx:
        f = await _folder(ctx, p.folder_id, "manage", lock=True)
        if not entries and (f.parent_id is None or not p.inherit):
            raise AppError(
                "conflict", "with no entries and nothing inherited, nobody could open it"
            )
        await q.set_acl(tx.conn, f.id, p.inherit, entries)
        await q.recompute(tx.conn, f.id)
    return {"folder_id": p.folder_id, "inherit": p.inherit, "entries": len(entries)}


class FolderRef(Input):
    folder_id: Id


@commands("library.acl.get")
async def acl_get(ctx: Ctx, p: FolderRef) -> dict[str, Any]:
    f = await _folder(ctx, p.folder_id, "manage")
    keys = {"user": "user_id", "department": "department_id", "role": "role"}
    return {
        "folder_id": p.folder_id,
        "inherit": f.inherit,
        "entries": [
            {keys[e.kind]: e.principal, "perms": e.perms} for e in await q.acl(ctx.db, f.id)
        ],
    }


class ListFolder(Input):
    folder_id: Id | None = None  # None: the top folders the caller may read


@commands("library.list")
async def library_list(ctx: Ctx, p: ListFolder) -> dict[str, Any]:
    parent = await _folder(ctx, p.folder_id, "read") if p.folder_id else None
    folders = await q.children(ctx.db, ctx.user.id, parent.id if parent else None)
    out: dict[str, Any] = {
        "folder": _folder_view(parent) if parent else None,
        "folders": [_folder_view(f) for f in folders],
        "docs": [],
    }
    if parent is not None:
        out["docs"] = [_doc_view(d) for d in await q.docs(ctx.db, parent.id)]
        out["may"] = [perm for perm in q.PERMS if await q.may(ctx.db, ctx.user.id, parent.id, perm)]
    return out


class Add(Input):
    folder_id: Id
    file_id: Id
    title: Annotated[str, msgspec.Meta(max_length=200)] | None = None


@commands("library.add")
async def library_add(ctx: Ctx, p: Add) -> dict[str, Any]:
    f = await _folder(ctx, p.folder_id, "write")
    files = await require_shareable(ctx.db, [p.file_id], ctx.user.id)
    title = (p.title or "").strip() or files[0].name
    search = tq.document_vector([(title, "A")])
    async with ctx.transaction() as tx:
        d = await q.add_doc(tx.conn, f.id, files[0].id, title, ctx.user.id, search)
        await tx.emit(
            [ctx.user.id], LibraryAdded(doc_id=str(d.id), folder_id=str(f.id), title=title)
        )
    return {"doc_id": str(d.id)}


async def _writable_doc(ctx: Ctx, conn: Executor, doc_id: str) -> q.Doc:
    """The document, if the caller may write its folder; one they may not read does not
    exist."""
    d = await q.doc(conn, int(doc_id))
    if d is None or not await q.may(conn, ctx.user.id, d.folder_id, "read"):
        raise not_found("no such document")
    await _folder(ctx, str(d.folder_id), "write")
    return d


class Move(Input):
    to: Id | None = None  # the destination folder (None: the top, for a folder)
    doc_id: Id | None = None
    folder_id: Id | None = None


@commands("library.move")
async def library_move(ctx: Ctx, p: Move) -> dict[str, Any]:
    if (p.doc_id is None) == (p.folder_id is None):
        raise bad_request("move a doc_id or a folder_id", [{"field": "doc_id"}])
    async with ctx.transaction() as tx:
        if p.doc_id is not None:
            d = await _writable_doc(ctx, tx.conn, p.doc_id)
            if p.to is None:
                raise bad_request("a document goes into a folder", [{"field": "to"}])
            dest = await _folder(ctx, p.to, "write")
            await q.move_doc(tx.conn, d.id, dest.id)
            return {"doc_id": p.doc_id, "folder_id": str(dest.id)}
        assert p.folder_id is not None
        f = await _folder(ctx, p.folder_id, "manage", lock=True)
        dest_id = None
        if p.to is not None:
            dest = await _folder(ctx, p.to, "write")
            if await q.is_below(tx.conn, dest.id, f.id):
                raise AppError("conflict", "a folder cannot go inside itself")
            dest_id = dest.id
        await q.move_folder(tx.conn, f.id, dest_id)
        await q.recompute(tx.conn, f.id)
        return {"folder_id": p.folder_id, "parent_id": p.to}


class Remove(Input):
    doc_id: Id | None = None
    folder_id: Id | None = None


@commands("library.remove")
async def library_remove(ctx: Ctx, p: Remove) -> dict[str, Any]:
    if (p.doc_id is None) == (p.folder_id is None):
        raise bad_request("remove a doc_id or a folder_id", [{"field": "doc_id"}])
    async with ctx.transaction() as tx:
        if p.doc_id is not None:
            d = await _writable_doc(ctx, tx.conn, p.doc_id)
            await q.remove_doc(tx.conn, d.id)
            return {"doc_id": p.doc_id, "removed": True}
        assert p.folder_id is not None
        f = await _folder(ctx, p.folder_id, "manage", lock=True)
        await q.remove_folder(tx.conn, f.id)
        return {"folder_id": p.folder_id, "removed": True}


# --- search -------------------------------------------------------------------------------------
MAX_QUERY = 100


class Search(Input):
    query: Annotated[str, msgspec.Meta(max_length=MAX_QUERY)]
    folder_id: Id | None = None  # within this folder and those below it
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 20


@commands("library.search")
async def library_search(ctx: Ctx, p: Search) -> dict[str, Any]:
    """Titles and text, Chinese included, best first (a title hit above a text hit), only in
    folders the caller may read; each hit's `snippet` is HTML: the text around the first
    match, escaped, matches in <mark>."""
    query = tq.search_query(p.query)
    if query is None:
        raise bad_request(
            "type letters, digits or Chinese characters to search for",
            [{"field": "query", "message": "nothing to search for"}],
        )
    root = await _folder(ctx, p.folder_id, "read") if p.folder_id else None
    hits = await q.search(
        ctx.db,
        ctx.user.id,
        query.tsquery,
        query.needles,
        root_id=root.id if root else None,
        limit=p.limit,
    )
    return {
        "hits": [
            {
                "doc_id": str(h.id),
                "title": h.title,
                "folder_id": str(h.folder_id),
                "snippet": _snippet(h, query),
            }
            for h in hits
        ]
    }


def _snippet(h: q.Hit, query: tq.Query) -> str:
    """Around the match in the text; the title, marked, when only the title matched."""
    if not tq.matches(h.excerpt, query) and tq.matches(h.title, query):
        return tq.snippet(h.title, query, at_start=True)
    return tq.snippet(h.excerpt, query)


async def _indexed(
    tx: Transaction, doc_id: int, body: str | None, vector: str, error: str | None
) -> None:
    adder = await q.set_indexed(tx.conn, doc_id, body, vector, error)
    if adder is not None:
        await tx.emit([adder], LibraryIndexed(doc_id=str(doc_id)))


async def _gave_up(services: Services, tx: Transaction, ev: dict[str, Any], error: str) -> None:
    """Tries spent (the database, not the file, failed each time): the title stays searchable
    and the adder is not left waiting."""
    doc_id = int(ev["data"]["doc_id"])
    src = await q.source(tx.conn, doc_id, 0)
    if src is not None and not src.indexed:
        vector = tq.document_vector([(src.title, "A")])
        await _indexed(tx, doc_id, None, vector, f"gave up: {error}"[:500])


@jobs.on("library.added", EXTRACT, batch=1, max_attempts=4, on_dead=_gave_up, slow=True)
async def index_text(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    """Extract a new document's text and make it searchable, then tell the adder. Idempotent:
    a second run finds it indexed and does nothing (no second event)."""
    for ev in events:
        doc_id = int(ev["data"]["doc_id"])
        src = await q.source(tx.conn, doc_id, ex.MAX_READ)
        if src is None or src.indexed:
            continue
        kind = ex.kind_of(src.name, src.content_type)
        got = await ex.extract(kind, src.title, src.data, src.truncated)
        if got.error:
            log.info("library doc %s: title only: %s", doc_id, got.error)
        await _indexed(tx, doc_id, got.text, got.vector, got.error)


feature = Feature("library", commands=commands, jobs=jobs)
