"""The archive (档案): filed records, loans, appraisal and destruction.

- Filing: an archivist (or an administrator) files files they may read (`archive.file`), and
  approved documents are filed by the documents module (`file_document`, once per document).
  Each record gets a code `<fonds>-<category>·<year>-<retention>-<n>` (档号, after DA/T 22:
  `J001-文书·2026-D30-0001`), n gapless per (fonds, category, year, retention) from a counter
  row raised in the filing's transaction, and keeps each file's name and SHA-256 as filed.
- The catalogue is open to all staff (`archive.search`, `archive.list`), so anyone can find a
  record and ask to borrow it; search cuts Chinese as the library does (storage/text.py) over
  each record's title, code, category and document number, best match first. A record's
  details and files (`archive.get`, `archive.files`, the download route) only to archivists and
  administrators, and while it is kept to its filer and a borrower whose approved loan is
  running: anyone else gets `forbidden`. A borrower reads the files and cannot attach them
  anywhere else (they would outlive the loan there).
- Loans: `archive.borrow` starts the `archive_borrow` approval; an async handler of
  `workflow.finished` starts the loan (approved) or closes it (rejected, withdrawn); a job ends
  it when its days are up (`archive.loan_ended`), after which its files are refused.
- Appraisal: a record of 10 or 30 years gets a job at the end of its retention (counted from
  1 January after its year); the archivists then get a to-do (kind `document`), closed when the
  record is destroyed or kept longer (`archive.appraise`).
- Destruction: `archive.destroy` starts the `archive_destroy` approval; once approved the records
  are marked destroyed (their files no longer readable through the archive) and each gets an
  entry in the destruction register, a hash chain checked by `archive.verify_register`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from handlers import todo
from handlers import workflow as wf
from handlers.files import require_shareable
from server.commands import CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, forbidden, not_found
from server.events import Event
from server.feature import Feature
from server.hashchain import chain_hash
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction, utcnow
from storage import archive as q
from storage import documents as docq
from storage import text as textq
from storage import todo as tq
from storage.records import User

commands = CommandSet()
jobs = JobSet()

LOAN_END = "archive.loan_end"
REINDEX = "archive.reindex"
APPRAISAL = "archive.appraisal"
RETENTION_YEARS = {"Y": None, "D30": 30, "D10": 10}
DEFAULT_CATEGORY = "文书"
# The appraisal item's to-do kind: an archive record is a document in the inbox's terms, and
# unlike a `notice` it is closed by the archive when the appraisal is decided, not by hand.
TODO_KIND = "document"
# A job due a moment from now is run now (its row's time and ours differ by clock reads).
SLACK = timedelta(seconds=1)

Retention = Literal["Y", "D30", "D10"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
# A category is part of the code: no separators, no spaces.
Category = Annotated[str, msgspec.Meta(pattern=r"^[^\s\-·]{1,20}$")]
Days = Annotated[float, msgspec.Meta(gt=0, le=365)]


# --- events ----------------------------------------------------------------------------------------
class ArchiveFiled(Event):
    type = "archive.filed"
    archive_id: str
    code: str
    title: str
    document_id: str | None


class ArchiveLoanStarted(Event):
    type = "archive.loan_started"
    archive_id: str
    loan_id: str
    code: str
    title: str
    ends_at: datetime


class ArchiveLoanEnded(Event):
    type = "archive.loan_ended"
    archive_id: str
    loan_id: str
    code: str
    title: str
    reason: str  # "expired" | "destroyed"


class ArchiveDestroyed(Event):
    type = "archive.destroyed"
    destruction_id: str
    archive_ids: list[str]
    codes: list[str]


# --- who may do what -------------------------------------------------------------------------------
def is_archivist(user: User) -> bool:
    return "archivist" in user.roles or user.is_admin


def _require_archivist(user: User) -> None:
    if not is_archivist(user):
        raise forbidden("archivists only")


async def _may_open(db: Any, user: User, rec: q.Record) -> bool:
    """An archivist; while the record is kept, its filer or a borrower whose approved loan
    runs. A destroyed record is nobody else's to open, its filer's neither."""
    if is_archivist(user):
        return True
    if rec.state != "kept":
        return False
    return rec.filed_by == user.id or await q.running_loan(db, rec.id, user.id) is not None


async def _openable(ctx: Ctx, archive_id: str) -> q.Record:
    rec = await q.record(ctx.db, int(archive_id))
    if rec is None:
        raise not_found("no such record")
    if not await _may_open(ctx.db, ctx.user, rec):
        raise forbidden("borrow this record to read it")
    return rec


# --- codes and retention ---------------------------------------------------------------------------
def code_of(fonds: str, category: str, year: int, retention: str, n: int) -> str:
    return f"{fonds}-{category}·{year}-{retention}-{n:04d}"


def retention_end(year: int, retention: str, tz: str) -> datetime | None:
    """The end of a retention period, counted in whole years from 1 January after the record's
    year (local time); None for a permanent record."""
    years = RETENTION_YEARS[retention]
    if years is None:
        return None
    return datetime(year + years + 1, 1, 1, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_year(services: Services) -> int:
    """This year where the organisation is (a document's number, a record's 年度)."""
    return utcnow().astimezone(ZoneInfo(services.config.timezone)).year


def _ref(user_id: int, name: str) -> dict[str, str]:
    return {"id": str(user_id), "name": name}


# --- filing ----------------------------------------------------------------------------------------
async def _file(
    services: Services,
    tx: Transaction,
    *,
    title: str,
    files: list[q.ArchiveFile],
    filed_by: int,
    category: str,
    retention: str,
    year: int,
    document_id: int | None,
    number: str | None,
) -> q.Record:
    fonds = await q.fonds(tx.conn)
    n = await q.next_number(tx.conn, fonds, category, year, retention)
    ends = retention_end(year, retention, services.config.timezone)
    code = code_of(fonds, category, year, retention, n)
    rec = await q.insert(
        tx.conn,
        code=code,
        title=title,
        fonds=fonds,
        category=category,
        year=year,
        retention=retention,
        n=n,
        document_id=document_id,
        filed_by=filed_by,
        retention_ends_at=ends,
        files=files,
        search=search_vector(title, code, category, number),
    )
    if ends is not None:
        await tx.schedule(APPRAISAL, str(rec.id), ends, {"archive_id": rec.id})
    await tx.emit(
        [filed_by],
        ArchiveFiled(
            archive_id=str(rec.id),
            code=rec.code,
            title=rec.title,
            document_id=str(document_id) if document_id is not None else None,
        ),
    )
    return rec


def search_vector(title: str, code: str, category: str, number: str | None) -> str:
    """What the catalogue search finds a record by: its title and document number first, then
    its code, then its category (which the code repeats)."""
    return textq.document_vector([(title, "A"), (number or "", "A"), (code, "B"), (category, "C")])


async def file_document(
    services: Services,
    tx: Transaction,
    *,
    document_id: int,
    title: str,
    file_ids: list[int],
    filed_by: int,
    year: int | None,
    category: str = "文书",
    retention: str = "D30",
) -> tuple[int, str]:
    """File an approved document (公文) in the caller's transaction (a command's or a job's)
    under its number's year (`year`; None: this year); returns (archive_id, code). Once per
    document: a second call returns the first record. The caller vouches that the files belong
    to the document; nobody's read permission is checked."""
    if retention not in RETENTION_YEARS:
        raise bad_request("retention is Y, D30 or D10", [{"field": "retention"}])
    await q.lock_document(tx.conn, document_id)
    existing = await q.by_document(tx.conn, document_id)
    if existing is not None:
        return existing.id, existing.code
    ids = list(dict.fromkeys(file_ids))
    files = await q.uploaded(tx.conn, ids)
    if len(files) != len(ids):
        raise not_found("no such file")
    doc = await docq.get(tx.conn, document_id)
    rec = await _file(
        services,
        tx,
        title=title,
        files=files,
        filed_by=filed_by,
        category=category,
        retention=retention,
        year=year if year is not None else local_year(services),
        document_id=document_id,
        number=doc.number if doc else None,
    )
    return rec.id, rec.code


class FileRecord(Input):
    title: Title
    file_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=50)]
    retention: Retention
    category: Category = DEFAULT_CATEGORY
    document_id: Id | None = None
    year: Annotated[int, msgspec.Meta(ge=1900, le=9999)] | None = None  # 年度, back-filing


@commands("archive.file")
async def archive_file(ctx: Ctx, p: FileRecord) -> dict[str, Any]:
    _require_archivist(ctx.user)
    title = p.title.strip()
    if not title:
        raise bad_request("a record needs a title", [{"field": "title"}])
    ids = [int(i) for i in p.file_ids]
    if len(set(ids)) != len(ids):
        raise bad_request("a file is named twice", [{"field": "file_ids"}])
    year = p.year if p.year is not None else local_year(ctx.services)
    if year > local_year(ctx.services):
        raise bad_request("the year is in the future", [{"field": "year"}])
    async with ctx.transaction() as tx:
        await require_shareable(tx.conn, ids, ctx.user.id)
        doc = None
        if p.document_id is not None:
            doc = await _document_to_file(tx, int(p.document_id), ids)
            if p.year is not None and p.year != doc.year:
                raise bad_request(
                    "a document is filed under its number's year", [{"field": "year"}]
                )
            year = doc.year or year
        rec = await _file(
            ctx.services,
            tx,
            title=title,
            files=await q.uploaded(tx.conn, ids),
            filed_by=ctx.user.id,
            category=p.category,
            retention=p.retention,
            year=year,
            document_id=doc.id if doc else None,
            number=doc.number if doc else None,
        )
        files = await q.files_of(tx.conn, rec.id)
    return {"archive_id": str(rec.id), "code": rec.code, "files": [_file_view(f) for f in files]}


async def _document_to_file(
    tx: Transaction, document_id: int, file_ids: list[int]
) -> docq.Document:
    """A document an archivist files by hand (before its pipeline does: it then finds this
    record): it exists, is not filed yet, has its number, and the files are its own."""
    await q.lock_document(tx.conn, document_id)
    doc = await docq.get(tx.conn, document_id)
    if doc is None:
        raise not_found("no such document")
    existing = await q.by_document(tx.conn, document_id)
    if existing is not None:
        raise AppError(
            "conflict",
            f"the document is filed already as {existing.code}",
            {"archive_id": str(existing.id), "code": existing.code},
        )
    if doc.kind != "issue" or doc.number is None:
        raise AppError("conflict", "only an issued document with its number is filed")
    own = {f.file_id for f in await docq.files(tx.conn, doc.id)}
    if not set(file_ids) <= own:
        raise bad_request(
            "the files are not the document's", [{"field": "file_ids", "message": "foreign"}]
        )
    return doc


# --- reading ---------------------------------------------------------------------------------------
def _file_view(f: q.ArchiveFile) -> dict[str, Any]:
    return {"file_id": str(f.file_id), "name": f.name, "size": f.size, "sha256": f.sha256}


def _summary(rec: q.Record) -> dict[str, Any]:
    return {
        "archive_id": str(rec.id),
        "code": rec.code,
        "title": rec.title,
        "fonds": rec.fonds,
        "category": rec.category,
        "year": rec.year,
        "retention": rec.retention,
        "document_id": str(rec.document_id) if rec.document_id is not None else None,
        "filed_by": _ref(rec.filed_by, rec.filed_by_name),
        "filed_at": rec.filed_at,
        "retention_ends_at": rec.retention_ends_at,
        "state": rec.state,
        "destroyed_at": rec.destroyed_at,
    }


def _loan_view(loan: q.Loan) -> dict[str, Any]:
    return {
        "loan_id": str(loan.id),
        "archive_id": str(loan.archive_id),
        "borrower": _ref(loan.borrower_id, loan.borrower_name),
        "instance_id": str(loan.instance_id),
        "days": loan.days,
        "reason": loan.reason,
        "state": loan.state,
        "created_at": loan.created_at,
        "starts_at": loan.starts_at,
        "ends_at": loan.ends_at,
        "closed_at": loan.closed_at,
    }


class RecordRef(Input):
    archive_id: Id


@commands("archive.get")
async def archive_get(ctx: Ctx, p: RecordRef) -> dict[str, Any]:
    """The record with its files and loans (an archivist sees every loan, anyone else their
    own)."""
    rec = await _openable(ctx, p.archive_id)
    files = await q.files_of(ctx.db, rec.id)
    borrower = None if is_archivist(ctx.user) else ctx.user.id
    loans = await q.loans_of(ctx.db, archive_id=rec.id, borrower_id=borrower)
    return {
        "record": {
            **_summary(rec),
            "files": [_file_view(f) for f in files],
            "loans": [_loan_view(loan) for loan in loans],
        }
    }


@commands("archive.files")
async def archive_files(ctx: Ctx, p: RecordRef) -> dict[str, Any]:
    rec = await _openable(ctx, p.archive_id)
    return {"files": [_file_view(f) for f in await q.files_of(ctx.db, rec.id)]}


class Search(Input):
    query: Annotated[str, msgspec.Meta(max_length=200)] = ""
    before: Id | None = None
    limit: Limit = 50


async def _catalogue(ctx: Ctx, query: str, before: str | None, limit: int) -> list[dict[str, Any]]:
    if len(query.split()) > 10:
        raise bad_request("at most 10 search terms", [{"field": "query"}])
    tsquery = None
    if query.strip():
        parsed = textq.search_query(query)
        if parsed is None:  # punctuation only: nothing can match
            return []
        tsquery = parsed.tsquery
    archivist = is_archivist(ctx.user)
    found = await q.search(
        ctx.db,
        tsquery,
        destroyed_too=archivist,
        before=int(before) if before else None,
        limit=limit,
    )
    lent = (
        set() if archivist else await q.running_loan_ids(ctx.db, ctx.user.id, [r.id for r in found])
    )
    return [
        {
            **_summary(rec),
            "may_open": archivist
            or (rec.state == "kept" and (rec.filed_by == ctx.user.id or rec.id in lent)),
        }
        for rec in found
    ]


@commands("archive.search")
async def archive_search(ctx: Ctx, p: Search) -> dict[str, Any]:
    """The catalogue, open to all staff (to find what to borrow): records whose title, code,
    category or document number hold every term (Chinese cut as in the library: one or two
    characters find a word), best match first, then newest; destroyed ones for archivists
    only. An empty query lists newest first (`before` pages by id)."""
    return {"hits": await _catalogue(ctx, p.query, p.before, p.limit)}


class ListRecords(Input):
    before: Id | None = None
    limit: Limit = 50


@commands("archive.list")
async def archive_list(ctx: Ctx, p: ListRecords) -> dict[str, Any]:
    return {"records": await _catalogue(ctx, "", p.before, p.limit)}


# --- loans -----------------------------------------------------------------------------------------
class Borrow(Input):
    archive_id: Id
    reason: Reason
    days: Days


@commands("archive.borrow")
async def archive_borrow(ctx: Ctx, p: Borrow) -> dict[str, Any]:
    """Ask to borrow a record: the `archive_borrow` approval starts (the applicant's supervisor,
    then an archivist); the loan runs from its approval for `days`."""
    if not p.reason.strip():
        raise bad_request("give a reason", [{"field": "reason"}])
    days: int | float = int(p.days) if p.days == int(p.days) else p.days
    async with ctx.transaction() as tx:
        rec = await q.record(tx.conn, int(p.archive_id), lock=True)
        if rec is None:
            raise not_found("no such record")
        if rec.state != "kept":
            raise AppError("conflict", "the record was destroyed")
        if is_archivist(ctx.user):
            raise AppError("conflict", "archivists read the archive without a loan")
        mine = await q.open_loan(tx.conn, rec.id, ctx.user.id)
        if mine is not None:
            raise AppError(
                "conflict",
                f"you have a {mine.state} loan of this record",
                {"loan_id": str(mine.id), "instance_id": str(mine.instance_id)},
            )
        inst, _, _ = await wf.start(
            ctx.services,
            tx,
            ctx.user,
            "archive_borrow",
            {"archive": f"{rec.code}《{rec.title}》", "days": days, "reason": p.reason},
            [],
            title=f"{ctx.user.name}借阅档案《{rec.title}》",
            must_pick=False,
        )
        loan_id = await q.create_loan(tx.conn, rec.id, ctx.user.id, inst.id, p.days, p.reason)
    return {"loan_id": str(loan_id), "instance_id": str(inst.id), "state": "pending"}


class Loans(Input):
    all: bool = False  # every loan (archivists); otherwise the caller's own
    limit: Limit = 50


@commands("archive.loans")
async def archive_loans(ctx: Ctx, p: Loans) -> dict[str, Any]:
    if p.all:
        _require_archivist(ctx.user)
    found = await q.loans_of(ctx.db, borrower_id=None if p.all else ctx.user.id, limit=p.limit)
    return {"loans": [_loan_view(loan) for loan in found]}


@jobs.on("workflow.finished", "archive.loans")
async def loans_decided(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    """An `archive_borrow` approval ended: approved, the loan runs from now for its days (a job
    ends it); otherwise it is refused. Idempotent: only a pending loan changes."""
    for ev in events:
        data = ev["data"]
        if data["key"] != "archive_borrow":
            continue
        found = await q.loan_by_instance(tx.conn, int(data["instance_id"]), lock=False)
        if found is None or found.state != "pending":
            continue
        # The record, then the loan: the order `_destroy` locks them in, so a destruction and
        # an approval of a loan of the same record queue, and the later sees the earlier.
        rec = await q.record(tx.conn, found.archive_id, lock=True)
        loan = await q.loan_by_instance(tx.conn, int(data["instance_id"]))
        if loan is None or loan.state != "pending":
            continue
        if data["state"] != "approved" or rec is None or rec.state != "kept":
            await q.close_loans(tx.conn, [loan.id], "refused")
            continue
        loan = await q.activate_loan(tx.conn, loan.id)
        assert loan.ends_at is not None
        await tx.schedule(LOAN_END, str(loan.id), loan.ends_at, {"loan_id": loan.id})
        await tx.emit(
            [loan.borrower_id],
            ArchiveLoanStarted(
                archive_id=str(rec.id),
                loan_id=str(loan.id),
                code=rec.code,
                title=rec.title,
                ends_at=loan.ends_at,
            ),
        )


@jobs(LOAN_END)
async def loan_ends(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    """A loan's time is up: it ends and the borrower is told. (Its files were refused from its
    end already: the read rule checks the time.)"""
    for payload in payloads:
        loan = await q.loan(tx.conn, int(payload["loan_id"]))
        if loan is None or loan.state != "active" or loan.ends_at is None:
            continue
        if loan.ends_at > utcnow() + SLACK:
            await tx.schedule(LOAN_END, str(loan.id), loan.ends_at, payload)
            continue
        rec = await q.record(tx.conn, loan.archive_id)
        assert rec is not None
        await q.close_loans(tx.conn, [loan.id], "ended")
        await tx.emit([loan.borrower_id], _loan_ended(rec, loan, "expired"))


def _loan_ended(rec: q.Record, loan: q.Loan, reason: str) -> ArchiveLoanEnded:
    return ArchiveLoanEnded(
        archive_id=str(rec.id), loan_id=str(loan.id), code=rec.code, title=rec.title, reason=reason
    )


# --- appraisal ---------------------------------------------------------------------------------------
@jobs(APPRAISAL)
async def retention_ends(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]]
) -> None:
    """A record's retention is over: each archivist gets an appraisal to-do (keep it longer with
    `archive.appraise`, or ask to destroy it with `archive.destroy`)."""
    for payload in payloads:
        rec = await q.record(tx.conn, int(payload["archive_id"]), lock=True)
        if rec is None or rec.state != "kept" or rec.retention_ends_at is None:
            continue
        if rec.retention_ends_at > utcnow() + SLACK:
            await tx.schedule(APPRAISAL, str(rec.id), rec.retention_ends_at, payload)
            continue
        title = f"档案到期鉴定：{rec.code}《{rec.title}》"
        await todo.add(
            tx, [todo.NewTodo(u, TODO_KIND, rec.id, title) for u in await q.archivists(tx.conn)]
        )


class Appraise(Input):
    archive_id: Id
    retention: Retention
    decision: Literal["keep"] = "keep"


@commands("archive.appraise")
async def archive_appraise(ctx: Ctx, p: Appraise) -> dict[str, Any]:
    """Keep a record longer: its retention changes (its code, once given, does not) and its
    appraisal to-do closes. Destroying it is `archive.destroy`."""
    _require_archivist(ctx.user)
    async with ctx.transaction() as tx:
        rec = await q.record(tx.conn, int(p.archive_id), lock=True)
        if rec is None:
            raise not_found("no such record")
        if rec.state != "kept":
            raise AppError("conflict", "the record was destroyed")
        ends = retention_end(rec.year, p.retention, ctx.services.config.timezone)
        if ends is not None and ends <= utcnow():
            raise bad_request(
                "that retention is over too: choose a longer one", [{"field": "retention"}]
            )
        await q.set_retention(tx.conn, rec.id, p.retention, ends)
        if ends is None:
            await tx.cancel(APPRAISAL, str(rec.id))
        else:
            await tx.schedule(APPRAISAL, str(rec.id), ends, {"archive_id": rec.id})
        await todo.done(tx, TODO_KIND, [rec.id])
    return {"archive_id": p.archive_id, "retention": p.retention, "retention_ends_at": ends}


# --- destruction and its register --------------------------------------------------------------------
class Destroy(Input):
    archive_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=100)]
    reason: Reason


@commands("archive.destroy")
async def archive_destroy(ctx: Ctx, p: Destroy) -> dict[str, Any]:
    """Ask to destroy records: the `archive_destroy` approval starts (another archivist, then the
    requester's department head); approved, the records are destroyed and registered."""
    _require_archivist(ctx.user)
    if not p.reason.strip():
        raise bad_request("give a reason", [{"field": "reason"}])
    ids = [int(i) for i in p.archive_ids]
    if len(set(ids)) != len(ids):
        raise bad_request("a record is named twice", [{"field": "archive_ids"}])
    async with ctx.transaction() as tx:
        recs = await q.records_locked(tx.conn, ids)
        missing = sorted(set(ids) - {r.id for r in recs})
        if missing:
            raise AppError(
                "not_found", "no such record", {"archive_ids": [str(i) for i in missing]}
            )
        gone = [r.code for r in recs if r.state != "kept"]
        if gone:
            raise AppError("conflict", f"destroyed already: {'、'.join(gone)}")
        pending = await q.pending_destruction_of(tx.conn, ids)
        if pending:
            raise AppError(
                "conflict",
                "a destruction of these records is being approved",
                {"archive_ids": [str(i) for i in pending]},
            )
        codes = "、".join(r.code for r in recs)
        if len(codes) > 1900:
            codes = codes[:1900].rsplit("、", 1)[0] + f"等{len(recs)}件"
        inst, _, _ = await wf.start(
            ctx.services,
            tx,
            ctx.user,
            "archive_destroy",
            {"archives": codes, "count": len(recs), "reason": p.reason},
            [],
            title=f"{ctx.user.name}申请销毁档案{len(recs)}件",
            must_pick=False,
        )
        destruction_id = await q.create_destruction(tx.conn, ctx.user.id, inst.id, p.reason, ids)
    return {
        "destruction_id": str(destruction_id),
        "instance_id": str(inst.id),
        "state": "pending",
    }


def register_hash(previous: str, e: q.RegisterEntry) -> str:
    """The register entry's link in its chain (server/hashchain.py, as the approvals' trail)."""
    entry = {
        "seq": e.seq,
        "at": e.at.astimezone(UTC).isoformat(),
        "destruction_id": e.destruction_id,
        "instance_id": e.instance_id,
        "archive_id": e.archive_id,
        "code": e.code,
        "title": e.title,
        "retention": e.retention,
        "files": e.files,
        "reason": e.reason,
        "requester_id": e.requester_id,
    }
    return chain_hash(previous, entry)


@jobs.on("workflow.finished", "archive.destructions")
async def destruction_decided(
    services: Services, tx: Transaction, events: list[dict[str, Any]]
) -> None:
    """An `archive_destroy` approval ended: approved, its records are destroyed (loans on them
    end, appraisal to-dos close) and entered in the register; otherwise the request is closed
    and the records stay. Idempotent: only a pending request changes."""
    for ev in events:
        data = ev["data"]
        if data["key"] != "archive_destroy":
            continue
        d = await q.destruction_by_instance(tx.conn, int(data["instance_id"]))
        if d is None or d.state != "pending":
            continue
        if data["state"] != "approved":
            await q.decide_destruction(tx.conn, d.id, "refused")
            continue
        await _destroy(tx, d)


async def _destroy(tx: Transaction, d: q.Destruction) -> None:
    recs = [r for r in await q.records_locked(tx.conn, d.archive_ids) if r.state == "kept"]
    ids = [r.id for r in recs]
    loans = await q.active_loans_of_records(tx.conn, ids)
    owners = await tq.owners(tx.conn, TODO_KIND, ids)
    await tx.lock_users([d.requester_id, *owners, *(loan.borrower_id for loan in loans)])
    await q.mark_destroyed(tx.conn, ids)
    await q.decide_destruction(tx.conn, d.id, "approved")

    seq, previous = await q.lock_register(tx.conn)
    at = utcnow()
    entries = []
    files_of = await q.files_of_many(tx.conn, ids)
    for rec in recs:
        seq += 1
        files = [{"name": f.name, "sha256": f.sha256} for f in files_of.get(rec.id, [])]
        entry = q.RegisterEntry(
            seq=seq,
            at=at,
            destruction_id=d.id,
            instance_id=d.instance_id,
            archive_id=rec.id,
            code=rec.code,
            title=rec.title,
            retention=rec.retention,
            files=files,
            reason=d.reason,
            requester_id=d.requester_id,
            hash="",
        )
        previous = register_hash(previous, entry)
        entries.append(msgspec.structs.replace(entry, hash=previous))
    await q.append_register(tx.conn, entries)

    await q.cancel_jobs(tx.conn, APPRAISAL, [str(i) for i in ids])
    await todo.done(tx, TODO_KIND, ids)
    if loans:
        await q.close_loans(tx.conn, [loan.id for loan in loans], "ended")
        by_id = {r.id: r for r in recs}
        await tx.emit_each(
            [
                (loan.borrower_id, _loan_ended(by_id[loan.archive_id], loan, "destroyed"))
                for loan in loans
            ]
        )
    await tx.emit(
        [d.requester_id],
        ArchiveDestroyed(
            destruction_id=str(d.id),
            archive_ids=[str(i) for i in ids],
            codes=[r.code for r in recs],
        ),
    )


class RegisterPage(Input):
    before: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None  # a seq (int4)
    limit: Limit = 50


@commands("archive.register")
async def archive_register(ctx: Ctx, p: RegisterPage) -> dict[str, Any]:
    """The destruction register (销毁清册), newest first."""
    _require_archivist(ctx.user)
    found = await q.register_page(ctx.db, before=p.before, limit=p.limit)
    # Deactivated requesters too: the register names whoever asked, whether or not still here.
    names = {
        u.id: u.name for u in await docq.people(ctx.db, sorted({e.requester_id for e in found}))
    }
    return {
        "entries": [
            {
                "seq": e.seq,
                "at": e.at,
                "destruction_id": str(e.destruction_id),
                "instance_id": str(e.instance_id),
                "archive_id": str(e.archive_id),
                "code": e.code,
                "title": e.title,
                "retention": e.retention,
                "files": e.files,
                "reason": e.reason,
                "requester": _ref(e.requester_id, names.get(e.requester_id, "")),
                "hash": e.hash,
            }
            for e in found
        ]
    }


class NoInput(Input):
    pass


@commands("archive.verify_register")
async def archive_verify_register(ctx: Ctx, p: NoInput) -> dict[str, Any]:
    """Recompute the register's chain: an entry edited or removed in the database no longer
    matches (`broken_at`: the first seq that does not)."""
    _require_archivist(ctx.user)
    entries = await q.register(ctx.db)
    previous = ""
    for expected_seq, e in enumerate(entries, start=1):
        if e.seq != expected_seq:
            return {"intact": False, "entries": len(entries), "broken_at": expected_seq}
        if e.hash != register_hash(previous, e):
            return {"intact": False, "entries": len(entries), "broken_at": e.seq}
        previous = e.hash
    return {"intact": True, "entries": len(entries)}


REINDEX_BATCH = 500


@jobs(REINDEX)
async def reindex(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    """Records filed before the catalogue had its search vector get one (a batch a run, set
    by the migration that added it; it runs again while some are left)."""
    todo_ = await q.unindexed(tx.conn, REINDEX_BATCH)
    await q.set_search(
        tx.conn,
        [(r.id, search_vector(r.title, r.code, r.category, r.number)) for r in todo_],
    )
    if len(todo_) == REINDEX_BATCH:
        await tx.schedule(REINDEX, "backfill", utcnow(), {})


feature = Feature("archive", commands=commands, jobs=jobs)
