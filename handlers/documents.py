"""Official documents (公文): issuing (发文) and receiving (收文).

An issued document runs the `document_issue` approval (核稿 → 审核 → 签发). Once approved, a
pipeline of async handlers on the bus follows, each step its own job subscribed to the previous
step's committed event and each done once (its column is NULL until then; the job locks the
document and looks first):

    workflow.finished (approved) → number → document.numbered
    document.numbered → circulate to the recipients, with receipts → document.circulated
    document.circulated → file into the archive → document.filed

A job's work and the deletion of its job commit together, and the next step's job is written
by the statement that appends the event it follows, so a process killed anywhere between
them leaves either the step undone (its job still there, taken over when its lease runs out) or
done with the next one waiting: nothing twice, nothing lost. The number is the next of the
document's prefix (代字) and year, from a counter row moved in the statement that stores it.

A received document is registered (登记) into the `document_receive` approval (登记审核 →
领导批示). Its handling (the contract's `handle` step, 承办) is the stage after the leader's
批示: a task (交办) per handling department, assigned to its leaders, with the 批示 in its
body; the document is `handled` when every part is done. The handling departments are proposed
at registration (拟办) and may be changed while the approval runs (`document.route`) by whoever
holds one of its open tasks (the leader, with the 批示). Without any, it is a document for
reading only (阅件), handled at the 批示.

The drafter (registrar) follows live: every state change is a durable event to them. A step
that can never be done (its job dead after its tries) leaves the document `failed`, with the
step and the error, and the drafter is told (`document.updated`), so nothing stops in silence.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from handlers import archive, circulation, tasks, workflow
from handlers.directory import checked_recipients
from handlers.files import require_shareable
from server.auth import require_admin
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, forbidden, not_found
from server.events import Event
from server.feature import Feature
from server.jobs import DeadHook, JobSet
from server.services import Services
from server.stream import Transaction, utcnow
from storage import directory as dq
from storage import documents as q
from storage import workflow as wq

log = logging.getLogger(__name__)

ISSUE_KEY = "document_issue"
RECEIVE_KEY = "document_receive"
MAX_FILES = 20
MAX_RECIPIENTS = circulation.MAX_RECIPIENTS
MAX_DEPARTMENTS = 200

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PrefixText = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
FileIds = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=MAX_FILES)]
DepartmentIds = Annotated[list[Id], msgspec.Meta(max_length=MAX_DEPARTMENTS)]


# --- events ---------------------------------------------------------------------------------------
class DocumentUpdated(Event):
    """A state change without an event of its own: approving, rejected, withdrawn (an issue);
    approving, handling, handled, rejected, withdrawn (a received one); failed (either), with
    the step that could not be done (approval, circulate, file, handled)."""

    type = "document.updated"
    document_id: str
    kind: str
    title: str
    state: str
    at: datetime
    failed_step: str | None = None


class DocumentNumbered(Event):
    type = "document.numbered"
    document_id: str
    title: str
    number: str
    state: str
    at: datetime


class DocumentCirculated(Event):
    type = "document.circulated"
    document_id: str
    number: str
    circulation_id: str | None  # None: nobody was left to send it to
    recipients_count: int
    state: str
    at: datetime


class DocumentFiled(Event):
    type = "document.filed"
    document_id: str
    number: str
    archive_id: str
    code: str
    state: str
    at: datetime


commands = CommandSet()
jobs = JobSet()


# --- issuing --------------------------------------------------------------------------------------
class Issue(Input):
    title: Title
    file_ids: FileIds
    client_msg_id: ClientMsgId
    to: Annotated[list[Id], msgspec.Meta(max_length=MAX_RECIPIENTS)] = []
    departments: DepartmentIds = []
    signer: Id | None = None  # who signs (签发); else the step goes to an administrator
    prefix: PrefixText | None = None  # one the administrator configured; else the department's


def _title(text: str) -> str:
    title = text.strip()
    if not title:
        raise bad_request("the title is empty", [{"field": "title", "message": "empty"}])
    return title


async def _shareable_files(ctx: Ctx, ids: list[str]) -> list[int]:
    return [f.id for f in await require_shareable(ctx.db, ids, ctx.user.id)]


async def _active(ctx: Ctx, user_id: str | None, field: str) -> list[int]:
    if user_id is None:
        return []
    if not await dq.active_ids(ctx.db, [int(user_id)]):
        raise bad_request("no such person", [{"field": field, "message": "unknown"}])
    return [int(user_id)]


async def _departments(ctx: Ctx, ids: list[str]) -> list[int]:
    dept_ids = sorted({int(i) for i in ids})
    if dept_ids and len(await dq.existing_ids(ctx.db, "departments", dept_ids)) != len(dept_ids):
        raise not_found("no such department")
    return dept_ids


@commands("document.issue", idempotent=True)
async def document_issue(ctx: Ctx, p: Issue) -> dict[str, Any]:
    """Start the approval of a document to issue; numbering, circulating and filing follow it."""
    title = _title(p.title)
    file_ids = await _shareable_files(ctx, p.file_ids)
    user_ids, dept_ids = await checked_recipients(ctx.db, p.to, p.departments)
    reach = await dq.expand_recipients(ctx.db, user_ids, dept_ids, exclude=ctx.user.id)
    if not reach:
        raise bad_request("nobody to send it to", [{"field": "to", "message": "no recipients"}])
    if len(reach) > MAX_RECIPIENTS:
        raise AppError("too_large", f"at most {MAX_RECIPIENTS} recipients")
    signer = await _active(ctx, p.signer, "signer")
    prefix = await _prefix(ctx, p.prefix)
    async with ctx.transaction() as tx:
        inst, _, _ = await workflow.start(
            ctx.services,
            tx,
            ctx.user,
            ISSUE_KEY,
            {"title": title, "file": str(file_ids[0])},
            signer,
            title=f"发文：{title}",
            files=file_ids,
            must_pick=False,
        )
        document_id = await q.create(
            tx.conn,
            kind="issue",
            title=title,
            drafter_id=ctx.user.id,
            department_id=ctx.user.department_id,
            to_users=user_ids,
            to_departments=dept_ids,
            from_org=None,
            prefix=prefix,
            instance_id=inst.id,
            file_ids=file_ids,
        )
        await _updated(tx, document_id, "issue", title, ctx.user.id, "approving")
    return {
        "document_id": str(document_id),
        "instance_id": str(inst.id),
        "state": "approving",
        "prefix": prefix,
    }


def may_choose_prefix(user: Any) -> bool:
    """Who issues under another department's prefix (代字): an administrator, a document
    officer (文书); anyone else under their own department's (or its nearest ancestor's)."""
    return bool(user.is_admin or "document_officer" in user.roles)


async def _prefix(ctx: Ctx, chosen: str | None) -> str:
    own = await q.prefix_for(ctx.db, ctx.user.department_id)
    if chosen is None or chosen.strip() == own:
        return own
    prefix = chosen.strip()
    if not await q.prefix_known(ctx.db, prefix):
        raise bad_request(
            "no such prefix: an administrator configures them",
            [{"field": "prefix", "message": "unknown"}],
        )
    if not may_choose_prefix(ctx.user):
        raise forbidden(f"your department issues under {own}")
    return prefix


# --- receiving ------------------------------------------------------------------------------------
class Receive(Input):
    title: Title
    file_ids: FileIds
    from_org: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    departments: DepartmentIds = []  # the handling departments proposed (拟办)
    leader: Id | None = None  # who gives the 批示; else the step goes to an administrator
    client_msg_id: ClientMsgId | None = None


@commands("document.receive", idempotent=True)
async def document_receive(ctx: Ctx, p: Receive) -> dict[str, Any]:
    """Register an incoming document (登记) into its approval: 登记审核, then the leader's 批示;
    the handling departments' tasks follow."""
    title = _title(p.title)
    from_org = p.from_org.strip()
    if not from_org:
        raise bad_request("who sent it?", [{"field": "from_org", "message": "empty"}])
    file_ids = await _shareable_files(ctx, p.file_ids)
    dept_ids = await _departments(ctx, p.departments)
    leader = await _active(ctx, p.leader, "leader")
    async with ctx.transaction() as tx:
        inst, _, _ = await workflow.start(
            ctx.services,
            tx,
            ctx.user,
            RECEIVE_KEY,
            {"title": title, "from_org": from_org, "file": str(file_ids[0])},
            leader,
            title=f"收文：{title}（{from_org}）",
            files=file_ids,
            must_pick=False,
        )
        document_id = await q.create(
            tx.conn,
            kind="receive",
            title=title,
            drafter_id=ctx.user.id,
            department_id=ctx.user.department_id,
            to_users=[],
            to_departments=dept_ids,
            from_org=from_org,
            prefix=None,
            instance_id=inst.id,
            file_ids=file_ids,
        )
        await _updated(tx, document_id, "receive", title, ctx.user.id, "approving")
    return {"document_id": str(document_id), "instance_id": str(inst.id), "state": "approving"}


class Route(Input):
    document_id: Id
    departments: DepartmentIds


@commands("document.route")
async def document_route(ctx: Ctx, p: Route) -> dict[str, Any]:
    """Set a received document's handling departments while its approval runs: its registrar,
    whoever holds one of its open tasks (the leader giving the 批示), or an administrator."""
    dept_ids = await _departments(ctx, p.departments)
    async with ctx.transaction() as tx:
        doc = await q.get(tx.conn, int(p.document_id), lock=True)
        if doc is None or not await _may_see(ctx, doc):
            raise not_found("no such document")
        open_ = {
            u
            for t in await wq.tasks(tx.conn, doc.instance_id)
            if t.state == "open"
            for u in (t.assignee_id, t.on_behalf_of)
        }
        if not (doc.drafter_id == ctx.user.id or ctx.user.id in open_ or ctx.user.is_admin):
            raise AppError("forbidden", "only the registrar or a current approver routes it")
        if doc.kind != "receive" or doc.state != "approving":
            raise AppError("conflict", "only a received document in approval is routed")
        await q.set_departments(tx.conn, doc.id, dept_ids)
    return {"document_id": p.document_id, "departments": [str(d) for d in dept_ids]}


# --- prefixes -------------------------------------------------------------------------------------
class SetPrefix(Input):
    prefix: PrefixText | None  # None clears a department's own (its ancestors' then applies)
    department_id: Id | None = None  # None: the default for every department without one


@commands("document.prefix.set")
async def document_prefix_set(ctx: Ctx, p: SetPrefix) -> dict[str, Any]:
    require_admin(ctx.user)
    prefix = p.prefix.strip() if p.prefix is not None else None
    if prefix is not None and (not prefix or any(c in prefix for c in "〔〕[]")):
        raise bad_request("a prefix is a few characters, no brackets", [{"field": "prefix"}])
    dept = int(p.department_id) if p.department_id else None
    if dept is None and prefix is None:
        raise bad_request("the default prefix can be changed, not cleared", [{"field": "prefix"}])
    if dept is not None and not await dq.department_exists(ctx.db, dept):
        raise not_found("no such department")
    async with ctx.transaction() as tx:
        await q.set_prefix(tx.conn, dept, prefix, ctx.user.id)
    return {"department_id": p.department_id, "prefix": prefix}


class NoInput(Input):
    pass


@commands("document.prefixes")
async def document_prefixes(ctx: Ctx, p: NoInput) -> dict[str, Any]:
    """The configured prefixes, and the one that applies to the caller's department."""
    return {
        "prefixes": [
            {
                "department_id": str(x.department_id) if x.department_id else None,
                "prefix": x.prefix,
            }
            for x in await q.prefixes(ctx.db)
        ],
        "mine": await q.prefix_for(ctx.db, ctx.user.department_id),
    }


# --- reading --------------------------------------------------------------------------------------
class DocumentRef(Input):
    document_id: Id


async def _may_see(ctx: Ctx, doc: q.Document) -> bool:
    return ctx.user.is_admin or await q.may_see(ctx.db, doc.id, ctx.user.id)


def _row(doc: q.Document) -> dict[str, Any]:
    return {
        "document_id": str(doc.id),
        "kind": doc.kind,
        "title": doc.title,
        "number": doc.number,
        "state": doc.state,
        "drafter": {"id": str(doc.drafter_id), "name": doc.drafter_name},
        "from_org": doc.from_org,
        "instance_id": str(doc.instance_id),
        "created_at": doc.created_at,
        "updated_at": doc.updated_at,
    }


@commands("document.get")
async def document_get(ctx: Ctx, p: DocumentRef) -> dict[str, Any]:
    doc = await q.get(ctx.db, int(p.document_id))
    if doc is None or not await _may_see(ctx, doc):
        raise not_found("no such document")
    receipts = await q.receipts(ctx.db, doc.circulation_id) if doc.circulation_id else None
    handling = await q.handling(ctx.db, doc.id)
    return {
        "document": {
            **_row(doc),
            "prefix": doc.prefix,
            "year": doc.year,
            "seq": doc.seq,
            "files": [
                {
                    "file_id": str(f.file_id),
                    "name": f.name,
                    "size": f.size,
                    "content_type": f.content_type,
                }
                for f in await q.files(ctx.db, doc.id)
            ],
            "recipients": {
                "users": [str(u) for u in doc.to_users],
                "departments": [str(d) for d in doc.to_departments],
            },
            "circulation_id": str(doc.circulation_id) if doc.circulation_id else None,
            "receipts": msgspec.to_builtins(receipts) if receipts else None,
            "archive_id": str(doc.archive_id) if doc.archive_id else None,
            "archive_code": doc.archive_code,
            "instruction": doc.instruction,
            "handling": [
                {
                    "department_id": str(h.department_id),
                    "department": h.department_name,
                    "task_id": str(h.task_id),
                    "done": all(x.state in ("done", "handed_on") for x in h.parts),
                    "assignees": [
                        {
                            "user_id": str(x.user_id),
                            "name": x.name,
                            "state": x.state,
                            "percent": x.percent,
                            "note": x.note,
                        }
                        for x in h.parts
                    ],
                }
                for h in handling
            ],
            "failure": (
                {"step": doc.failed_step, "error": doc.failure, "at": doc.failed_at}
                if doc.failed_at
                else None
            ),
            "numbered_at": doc.numbered_at,
            "circulated_at": doc.circulated_at,
            "filed_at": doc.filed_at,
            "handled_at": doc.handled_at,
        }
    }


class ListDocuments(Input):
    box: Literal["mine", "drafts", "incoming", "todo"] = "mine"
    before: Id | None = None
    limit: Limit = 50


@commands("document.list")
async def document_list(ctx: Ctx, p: ListDocuments) -> dict[str, Any]:
    """mine: drafted or registered by me; drafts: my issues still in approval; incoming:
    circulated to me, or received ones I handle; todo: waiting on me (an open approval task or
    an unfinished handling task)."""
    found = await q.listing(
        ctx.db, ctx.user.id, p.box, int(p.before) if p.before else None, p.limit
    )
    return {"items": [_row(d) for d in found]}


# --- the pipeline on the bus ----------------------------------------------------------------------
async def _updated(
    tx: Transaction, document_id: int, kind: str, title: str, drafter_id: int, state: str
) -> None:
    await tx.emit(
        [drafter_id],
        DocumentUpdated(
            document_id=str(document_id), kind=kind, title=title, state=state, at=utcnow()
        ),
    )


# Each pipeline step, and the state its document waits in for it.
STEP_FROM = {
    "approval": "approving",
    "circulate": "numbered",
    "file": "circulated",
    "handled": "handling",
}


async def _fail(tx: Transaction, doc: q.Document, step: str, error: str) -> None:
    log.error("document %s: the %s step failed for good: %s", doc.id, step, error)
    if await q.mark_failed(tx.conn, doc.id, STEP_FROM[step], step, error):
        await tx.emit(
            [doc.drafter_id],
            DocumentUpdated(
                document_id=str(doc.id),
                kind=doc.kind,
                title=doc.title,
                state="failed",
                at=utcnow(),
                failed_step=step,
            ),
        )


async def _document_of(tx: Transaction, data: dict[str, Any]) -> q.Document | None:
    """The document a pipeline job's event is about (locked), if any."""
    if "document_id" in data:
        return await q.get(tx.conn, int(data["document_id"]), lock=True)
    if data.get("key") in (ISSUE_KEY, RECEIVE_KEY):
        return await q.by_instance(tx.conn, int(data["instance_id"]), lock=True)
    if "task_id" in data:
        document_id = await q.by_task(tx.conn, int(data["task_id"]))
        return None if document_id is None else await q.get(tx.conn, document_id, lock=True)
    return None


def _dead(step: str) -> DeadHook:
    """A pipeline job dead after its tries: its document is `failed` and the drafter told."""

    async def hook(
        services: Services, tx: Transaction, payload: dict[str, Any], error: str
    ) -> None:
        doc = await _document_of(tx, payload.get("data") or {})
        if doc is None:
            log.error("a %s job died, not about a document: %s", step, error)
            return
        await tx.lock_users([doc.drafter_id])
        await _fail(tx, doc, step, error)

    return hook


@jobs.on("workflow.finished", "document.approval_end", batch=1, on_dead=_dead("approval"))
async def approval_end(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    """A document's approval ended: approved, an issue is numbered and a received one goes to
    its handling departments; rejected or withdrawn, the document follows. Only while it is
    `approving`, under its row lock: run again, it does nothing."""
    for ev in events:
        data = ev["data"]
        if data["key"] not in (ISSUE_KEY, RECEIVE_KEY):
            continue
        doc = await q.by_instance(tx.conn, int(data["instance_id"]), lock=True)
        if doc is None or doc.state != "approving":
            continue
        if data["state"] == "approved" and doc.kind == "issue":
            await _number(services, tx, doc)
        elif data["state"] == "approved":
            await _hand_out(tx, doc)
        elif data["state"] in ("rejected", "withdrawn"):
            await q.set_state(tx.conn, doc.id, data["state"])
            await _updated(tx, doc.id, doc.kind, doc.title, doc.drafter_id, data["state"])


async def _number(services: Services, tx: Transaction, doc: q.Document) -> None:
    year = archive.local_year(services)
    got = await q.number(tx.conn, doc.id, year)
    if got is None:
        return
    _, number = got
    await tx.emit(
        [doc.drafter_id],
        DocumentNumbered(
            document_id=str(doc.id), title=doc.title, number=number, state="numbered", at=utcnow()
        ),
    )


def _titled(doc: q.Document) -> str:
    return f"{doc.title}（{doc.number}）"


@jobs.on("document.numbered", "document.circulate", batch=1, on_dead=_dead("circulate"))
async def circulate(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    """A numbered document goes to its recipients as a circulation with receipts, its files
    attached, the drafter as its sender; once. What was accepted at issue goes as it is: the
    files checked then (the drafter may no longer be able to share them days later), every
    recipient (no cap)."""
    for ev in events:
        doc = await q.get(tx.conn, int(ev["data"]["document_id"]), lock=True)
        if doc is None or doc.number is None or doc.circulated_at is not None:
            continue
        sender = await q.person(tx.conn, doc.drafter_id)
        assert sender is not None
        reach = await dq.expand_recipients(
            tx.conn, doc.to_users, doc.to_departments, exclude=doc.drafter_id
        )
        # Everyone this writes to, first (the recipients' events and to-dos, the drafter's).
        await tx.lock_users([doc.drafter_id, *(r.id for r in reach)])
        circulation_id: int | None = None
        count = 0
        if reach:  # (everyone named may have left since it was issued)
            files = [f.file_id for f in await q.files(tx.conn, doc.id)]
            circulation_id, count = await circulation.create_circulation(
                services,
                tx,
                sender=sender,
                title=_titled(doc),
                body=f"<p>文号：{doc.number}</p><p>请阅附件，阅后确认。</p>",
                user_ids=doc.to_users,
                department_ids=doc.to_departments,
                attachments=files,
                deadline=None,
                accepted=True,
            )
        await q.mark_circulated(tx.conn, doc.id, circulation_id)
        await tx.emit(
            [doc.drafter_id],
            DocumentCirculated(
                document_id=str(doc.id),
                number=str(doc.number),
                circulation_id=str(circulation_id) if circulation_id else None,
                recipients_count=count,
                state="circulated",
                at=utcnow(),
            ),
        )


@jobs.on("document.circulated", "document.file", batch=1, on_dead=_dead("file"))
async def file_away(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    """A circulated document is filed into the archive (文书, kept 30 years), under its number's
    year (a document numbered on 31 December is that year's, filed on 2 January or not); once."""
    for ev in events:
        doc = await q.get(tx.conn, int(ev["data"]["document_id"]), lock=True)
        if doc is None or doc.number is None or doc.archive_id is not None:
            continue
        archive_id, code = await archive.file_document(
            services,
            tx,
            document_id=doc.id,
            title=_titled(doc),
            file_ids=[f.file_id for f in await q.files(tx.conn, doc.id)],
            filed_by=doc.drafter_id,
            year=doc.year,
        )
        await q.mark_filed(tx.conn, doc.id, archive_id, code)
        await tx.emit(
            [doc.drafter_id],
            DocumentFiled(
                document_id=str(doc.id),
                number=str(doc.number),
                archive_id=str(archive_id),
                code=code,
                state="filed",
                at=utcnow(),
            ),
        )


async def _hand_out(tx: Transaction, doc: q.Document) -> None:
    """The leader's 批示 is in: each handling department gets a task, assigned to its leaders
    (else its nearest ancestor's, else the administrators), the 批示 in its body, from the
    leader who gave it."""
    approved = [t for t in await wq.tasks(tx.conn, doc.instance_id) if t.state == "approved"]
    last = max(approved, key=lambda t: (t.step, t.acted_at or t.created_at), default=None)
    instruction = (last.comment or "") if last else ""
    leader_id = (last.acted_by or last.assignee_id) if last else doc.drafter_id
    leader = await q.person(tx.conn, leader_id) or await q.person(tx.conn, doc.drafter_id)
    assert leader is not None
    tasked = await q.tasked_departments(tx.conn, doc.id)
    todo_depts = [d for d in doc.to_departments if d not in tasked]
    heads = await q.heads(tx.conn, todo_depts)
    await tx.lock_users([doc.drafter_id, leader.id, *(u for ids in heads.values() for u in ids)])
    body = "\n".join(
        [
            f"来文单位：{doc.from_org}",
            f"来文标题：{doc.title}",
            f"领导批示（{leader.name}）：{instruction or '请办理'}",
            f"公文编号：{doc.id}（document.get 可查看原文）",
        ]
    )
    made = 0
    for dept in todo_depts:
        if not heads.get(dept):
            continue  # nobody at all to hand it to (no leader, no administrator)
        task_id = await tasks.create_task(
            tx,
            leader,
            title=f"办理：{doc.title}",
            body=body,
            assignees=heads[dept],
            urgency="normal",
            due_at=None,
        )
        await q.add_task(tx.conn, doc.id, dept, task_id)
        made += 1
    handled = made == 0
    await q.mark_handling(tx.conn, doc.id, instruction, handled)
    state = "handled" if handled else "handling"
    await _updated(tx, doc.id, doc.kind, doc.title, doc.drafter_id, state)


@jobs.on("task.updated", "document.task_updated", batch=1, on_dead=_dead("handled"))
async def task_updated(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    """A handling task's part done: once every part of every handling task is, the received
    document is handled."""
    for ev in events:
        if ev["data"]["state"] != "done":
            continue
        document_id = await q.by_task(tx.conn, int(ev["data"]["task_id"]))
        if document_id is None:
            continue
        doc = await q.get(tx.conn, document_id, lock=True)
        if doc is not None and await q.mark_handled(tx.conn, doc.id):
            await _updated(tx, doc.id, doc.kind, doc.title, doc.drafter_id, "handled")


feature = Feature("documents", commands=commands, jobs=jobs)
