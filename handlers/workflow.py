"""Approvals (审批): definitions as versioned data, instances run by the pure engine
(handlers/workflow_engine.py) under their row lock, a hash-chained trail, delegation (代签), and
effects as async handlers on the bus (an approved leave or trip sets the applicant's
whereabouts for its dates; a withdrawal undoes it).

Each action is one transaction: the instance is locked (`FOR UPDATE`), its tasks read, the engine
asked, and its changes written with the events they cause (`workflow.task` to new assignees,
`workflow.progress` to the applicant at every action, `workflow.finished` at the end). Two
approvers acting at once on an `any` step: the second finds its task cancelled (`conflict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from handlers import notify, presence, todo
from handlers.files import require_shareable
from handlers.workflow_engine import (
    Action,
    Changes,
    Flow,
    FlowError,
    Step,
    Task,
    TrailEntry,
    advance,
)
from server.auth import ROLES, require_admin
from server.commands import ClientMsgId, CommandSet, Ctx, Id, Input, Limit
from server.errors import AppError, bad_request, not_found
from server.events import Event, UserRef
from server.feature import Feature
from server.hashchain import chain_hash
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction, utcnow
from storage import directory as dq
from storage import workflow as q
from storage.directory import User


# --- events -------------------------------------------------------------------------------------
class WorkflowTask(Event):
    type = "workflow.task"
    task_id: str
    instance_id: str
    key: str
    title: str
    applicant: UserRef
    step: str


class WorkflowProgress(Event):
    type = "workflow.progress"
    instance_id: str
    state: str
    step: str
    actor: UserRef
    on_behalf_of: UserRef | None
    action: str
    comment: str
    at: datetime


class WorkflowFinished(Event):
    type = "workflow.finished"
    instance_id: str
    key: str
    state: str


class WorkflowUrged(Event):
    type = "workflow.urged"
    instance_id: str
    task_id: str
    title: str
    applicant: UserRef


commands = CommandSet()
jobs = JobSet()

URGE_EVERY = timedelta(minutes=10)
SMS_TOPIC = "workflow.sms"
DELEGATION_END = "workflow.delegation_end"
LEAVE_START = "workflow.leave_start"
# An approved request of these keys sets the applicant's whereabouts for its dates.
WHEREABOUTS = {"leave": "on_leave", "trip": "business_trip"}
ACTED_STATE = {
    "approve": "approved",
    "reject": "rejected",
    "return": "returned",
    "transfer": "transferred",
}


# --- definitions ----------------------------------------------------------------------------------
class FormField(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    type: Literal["text", "number", "date", "datetime", "user", "file"]
    required: bool = False


class Approvers(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["supervisor", "department_head", "role", "users", "picked"]
    level: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    role: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None
    user_ids: Annotated[list[Id], msgspec.Meta(max_length=50)] = []


class When(msgspec.Struct, forbid_unknown_fields=True):
    field: str
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
    value: str | int | float | list[str | int | float]


class StepSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    approvers: Approvers
    mode: Literal["sequential", "all", "any"] = "sequential"
    when: When | None = None
    on_empty: Literal["skip", "admin"] = "skip"


class DefinitionSpec(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    form: Annotated[list[FormField], msgspec.Meta(max_length=30)]
    steps: Annotated[list[StepSpec], msgspec.Meta(min_length=1, max_length=10)]
    version: int | None = None  # ignored: versions are numbered by the server


def _definition_view(d: q.Definition) -> dict[str, Any]:
    return {"key": d.key, "version": d.version, "name": d.name, "form": d.form, "steps": d.steps}


class Definitions(Input):
    pass


@commands("workflow.definitions")
async def workflow_definitions(ctx: Ctx, p: Definitions) -> dict[str, Any]:
    return {"definitions": [_definition_view(d) for d in await q.definitions(ctx.db)]}


class Define(Input):
    definition: DefinitionSpec


@commands("workflow.define")
async def workflow_define(ctx: Ctx, p: Define) -> dict[str, Any]:
    require_admin(ctx.user)
    spec = p.definition
    names = [f.name for f in spec.form]
    if len(set(names)) != len(names):
        raise bad_request("form field names repeat", [{"field": "definition.form"}])
    for i, s in enumerate(spec.steps):
        if s.approvers.kind == "role" and s.approvers.role not in ROLES:
            raise bad_request(
                f"a role step names one of the roles: {', '.join(ROLES)}",
                [{"field": f"definition.steps[{i}].approvers.role"}],
            )
        if s.approvers.kind == "users" and not s.approvers.user_ids:
            raise bad_request("a users step names them", [{"field": f"definition.steps[{i}]"}])
        if s.when is not None:
            field = next((f for f in spec.form if f.name == s.when.field), None)
            if field is None:
                raise bad_request(
                    f"`when` names no form field: {s.when.field}",
                    [{"field": f"definition.steps[{i}].when"}],
                )
            if not _condition_fits(field.type, s.when):
                raise bad_request(
                    f"`when` compares {s.when.field} ({field.type}) with a value that cannot match",
                    [{"field": f"definition.steps[{i}].when.value"}],
                )
    form = msgspec.to_builtins(spec.form)
    steps = [{k: v for k, v in msgspec.to_builtins(s).items() if v is not None} for s in spec.steps]
    async with ctx.transaction() as tx:
        version = await q.define(tx.conn, spec.key, spec.name, form, steps, ctx.user.id)
    return {"key": spec.key, "version": version}


def _condition_fits(kind: str, when: When) -> bool:
    """A condition whose value could ever match its field: `in` takes a list; a number field
    compares with numbers, any other with text; gt/gte/lt/lte need an ordered type."""
    values = when.value if isinstance(when.value, list) else [when.value]
    if (when.op == "in") != isinstance(when.value, list) or not values:
        return False
    numeric = kind == "number"
    if any(isinstance(v, int | float) != numeric for v in values):
        return False
    return when.op in ("eq", "ne", "in") or kind in ("number", "date", "datetime")


# --- forms ----------------------------------------------------------------------------------------
def _checked_form(d: q.Definition, form: dict[str, Any]) -> dict[str, Any]:
    """The form as the definition wants it: known fields, required ones present, each of its
    type (dates and times as ISO-8601 text, ids as id text)."""
    fields = {f["name"]: f for f in d.form}
    problems = [{"field": f"form.{k}", "message": "unknown field"} for k in form if k not in fields]
    for name, f in fields.items():
        value = form.get(name)
        if value is None or value == "":
            if f.get("required"):
                problems.append({"field": f"form.{name}", "message": "required"})
            continue
        if not _of_type(f["type"], value):
            problems.append({"field": f"form.{name}", "message": f"must be a {f['type']}"})
    if problems:
        raise bad_request("the form does not fit the definition", problems)
    return {k: v for k, v in form.items() if v is not None and v != ""}


def _of_type(kind: str, value: Any) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if not isinstance(value, str) or len(value) > 2000:
        return False
    try:
        if kind == "date":
            date.fromisoformat(value)
        elif kind == "datetime":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif kind in ("user", "file"):
            return value.isdigit() and len(value) <= 18
    except ValueError:
        return False
    return True


def _when(value: str) -> datetime:
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# --- the engine's view ------------------------------------------------------------------------------
async def _flow(
    db: Any, d: q.Definition, inst: q.Instance, rows: list[q.TaskRow], *, started: bool
) -> Flow:
    who = await q.approvers(db, inst.applicant_id, d.steps, inst.picked, d.key, utcnow())
    return Flow(
        steps=[
            Step(s["name"], s["mode"], s["approvers"], s.get("when"), s.get("on_empty", "skip"))
            for s in d.steps
        ],
        applicant=inst.applicant_id,
        form=inst.form,
        state=inst.state if started else None,  # type: ignore[arg-type]
        step=inst.step,
        round=inst.round,
        tasks=[
            Task(t.id, t.step, t.round, t.assignee_id, t.on_behalf_of, t.state, t.ord)  # type: ignore[arg-type]
            for t in rows
        ],
        candidates=who.candidates,
        admins=who.admins,
        delegations=who.delegations,
    )


def _step_name(d: q.Definition, step: int) -> str:
    if 0 <= step < len(d.steps):
        return str(d.steps[step]["name"])
    return "提交" if step < 0 else "完成"


def entry_hash(previous: str, row: q.TrailRow) -> str:
    """SHA-256 over the previous entry's hash and this entry, in a canonical JSON form."""
    entry = {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "actor": row.actor_id,
        "on_behalf_of": row.on_behalf_of,
        "action": row.action,
        "step": row.step,
        "comment": row.comment,
    }
    return chain_hash(previous, entry)


async def _apply(
    services: Services,
    tx: Transaction,
    d: q.Definition,
    inst: q.Instance,
    rows: list[q.TaskRow],
    ch: Changes,
    acted: tuple[int, int, str] | None = None,
    form: dict[str, Any] | None = None,
) -> list[q.TaskRow]:
    """Write the engine's changes (to the instance whose tasks were `rows`), the trail and the
    events they cause."""
    closing = [t for t in rows if t.id in ch.close]
    await tx.lock_users(
        [inst.applicant_id, *(t.assignee_id for t in closing), *(n.assignee for n in ch.open)]
    )
    await q.update_instance(
        tx.conn,
        inst.id,
        state=ch.state,
        step=ch.step,
        round_=ch.round,
        finished=ch.finished,
        form=form,
    )
    await q.close_tasks(tx.conn, ch.close, acted)
    opened = await q.open_tasks(
        tx.conn, inst.id, [(n.step, n.round, n.order, n.assignee, n.on_behalf_of) for n in ch.open]
    )
    await todo.done(tx, "approval", list(ch.close))
    seq, previous = await q.last_hash(tx.conn, inst.id)
    at = utcnow()
    entries = []
    for e in ch.trail:
        seq += 1
        row = q.TrailRow(seq, at, e.actor, e.on_behalf_of, e.action, e.step, e.comment, "")
        previous = entry_hash(previous, row)
        entries.append(msgspec.structs.replace(row, hash=previous))
    await q.append_trail(tx.conn, inst.id, entries)

    people = {inst.applicant_id} | {e.actor for e in ch.trail}
    people |= {e.on_behalf_of for e in ch.trail if e.on_behalf_of is not None}
    names = {u.id: u for u in await dq.users_by_ids(tx.conn, sorted(people))}

    def ref(user_id: int) -> UserRef:
        u = names.get(user_id)
        return UserRef(str(user_id), u.name if u else "")

    await _tell_assignees(tx, d, inst, opened, ref(inst.applicant_id))
    for r in entries:
        await tx.emit(
            [inst.applicant_id],
            WorkflowProgress(
                instance_id=str(inst.id),
                state=ch.state,
                step=_step_name(d, r.step),
                actor=ref(r.actor_id),
                on_behalf_of=ref(r.on_behalf_of) if r.on_behalf_of is not None else None,
                action=r.action,
                comment=r.comment,
                at=r.at,
            ),
        )
    if ch.finished:
        await tx.emit(
            [inst.applicant_id],
            WorkflowFinished(instance_id=str(inst.id), key=inst.key, state=ch.state),
        )
    return opened


async def _tell_assignees(
    tx: Transaction, d: q.Definition, inst: q.Instance, tasks: list[q.TaskRow], applicant: UserRef
) -> None:
    """Tasks now held by their assignees: a to-do item and `workflow.task` each."""
    await todo.add(
        tx,
        [
            todo.NewTodo(t.assignee_id, "approval", t.id, inst.title, inst.applicant_id)
            for t in tasks
        ],
    )
    await tx.emit_each(
        [
            (
                t.assignee_id,
                WorkflowTask(
                    task_id=str(t.id),
                    instance_id=str(inst.id),
                    key=inst.key,
                    title=inst.title,
                    applicant=applicant,
                    step=_step_name(d, t.step),
                ),
            )
            for t in tasks
        ]
    )


def _flow_error(err: FlowError) -> AppError:
    return AppError(err.code, err.message)


# --- start, act, withdraw, resubmit ------------------------------------------------------------------
class Start(Input):
    key: Annotated[str, msgspec.Meta(max_length=40)]
    form: dict[str, Any]
    client_msg_id: ClientMsgId
    picked: Annotated[list[Id], msgspec.Meta(max_length=20)] = []


@commands("workflow.start", idempotent=True)
async def workflow_start(ctx: Ctx, p: Start) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        inst, state, opened = await start(
            ctx.services, tx, ctx.user, p.key, p.form, [int(i) for i in p.picked]
        )
    return {
        "instance_id": str(inst.id),
        "state": state,
        "tasks": [{"task_id": str(t.id), "assignee": str(t.assignee_id)} for t in opened],
    }


async def start(
    services: Services,
    tx: Transaction,
    applicant: User,
    key: str,
    form: dict[str, Any],
    picked: list[int],
    *,
    title: str | None = None,
    files: Sequence[int] = (),
    must_pick: bool = True,
) -> tuple[q.Instance, str, list[q.TaskRow]]:
    """Start an instance of the newest `key` for `applicant` in the caller's transaction (the
    command, or another domain's: a document's issue, an archive loan). The form's files and
    `files` must be the applicant's to read; those who get a task may then read them too.
    `must_pick=False`: a `picked` step with nobody picked goes by its `on_empty` rule."""
    d = await q.definition(tx.conn, key)
    if d is None:
        raise not_found("no such definition")
    form = _checked_form(d, form)
    if must_pick and not picked and any(s["approvers"]["kind"] == "picked" for s in d.steps):
        raise bad_request("pick who approves", [{"field": "picked", "message": "required"}])
    if len(await dq.active_ids(tx.conn, picked)) != len(set(picked)):
        raise bad_request("no such person to pick", [{"field": "picked"}])
    inst = await q.create_instance(
        tx.conn, d, applicant.id, title or f"{applicant.name}的{d.name}申请", form, picked
    )
    await _attach_files(tx, d, inst, form, files)
    flow = await _flow(tx.conn, d, inst, [], started=False)
    ch = advance(flow, Action("start", applicant.id))
    opened = await _apply(services, tx, d, inst, [], ch)
    return inst, ch.state, opened


async def _attach_files(
    tx: Transaction,
    d: q.Definition,
    inst: q.Instance,
    form: dict[str, Any],
    files: Sequence[int] = (),
) -> None:
    """Record the files an instance carries (its form's file fields, and `files`), once the
    applicant is found to be allowed to share them: its approvers may then download them."""
    ids = {int(form[f["name"]]) for f in d.form if f["type"] == "file" and f["name"] in form}
    ids |= set(files)
    if not ids:
        return
    await require_shareable(tx.conn, sorted(ids), inst.applicant_id)
    await q.attach_files(tx.conn, inst.id, sorted(ids))


class Act(Input):
    task_id: Id
    action: Literal["approve", "reject", "return", "transfer"]
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    to: Id | None = None


@commands("workflow.act")
async def workflow_act(ctx: Ctx, p: Act) -> dict[str, Any]:
    found = await q.task(ctx.db, int(p.task_id))
    if found is None or ctx.user.id not in (found.assignee_id, found.on_behalf_of):
        raise not_found("no such task")
    if p.action == "transfer":
        if p.to is None:
            raise bad_request("transfer needs `to`", [{"field": "to", "message": "required"}])
        if not await dq.active_ids(ctx.db, [int(p.to)]):
            raise bad_request("no such person", [{"field": "to"}])
    async with ctx.transaction() as tx:
        inst = await q.instance(tx.conn, found.instance_id, lock=True)
        assert inst is not None
        rows = await q.tasks(tx.conn, inst.id)
        mine = next(t for t in rows if t.id == found.id)
        if mine.state == ACTED_STATE[p.action] and mine.acted_by == ctx.user.id:
            return _summary(inst, rows)  # a retry of this very action: no second effect
        d = await q.definition(tx.conn, inst.key, inst.version)
        assert d is not None
        flow = await _flow(tx.conn, d, inst, rows, started=True)
        action = Action(
            p.action,
            ctx.user.id,
            task_id=found.id,
            to=int(p.to) if p.to else None,
            comment=p.comment,
        )
        try:
            ch = advance(flow, action)
        except FlowError as err:
            raise _flow_error(err) from None
        await _apply(ctx.services, tx, d, inst, rows, ch, acted=(found.id, ctx.user.id, p.comment))
        after = await q.instance(tx.conn, inst.id)
        assert after is not None
        return _summary(after, await q.tasks(tx.conn, inst.id))


def _summary(inst: q.Instance, rows: list[q.TaskRow]) -> dict[str, Any]:
    return {
        "instance_id": str(inst.id),
        "state": inst.state,
        "tasks": [
            {"task_id": str(t.id), "assignee": str(t.assignee_id)}
            for t in rows
            if t.state == "open"
        ],
    }


class InstanceRef(Input):
    instance_id: Id


async def _locked_own(tx: Transaction, ctx: Ctx, instance_id: str) -> q.Instance:
    inst = await q.instance(tx.conn, int(instance_id), lock=True)
    if inst is None or inst.applicant_id != ctx.user.id:
        raise not_found("no such request")
    return inst


@commands("workflow.withdraw")
async def workflow_withdraw(ctx: Ctx, p: InstanceRef) -> dict[str, Any]:
    """The applicant takes the request back while it runs; an approved leave or trip can be
    withdrawn too until it ends (销假), which undoes its whereabouts."""
    async with ctx.transaction() as tx:
        inst = await _locked_own(tx, ctx, p.instance_id)
        rows = await q.tasks(tx.conn, inst.id)
        d = await q.definition(tx.conn, inst.key, inst.version)
        assert d is not None
        if inst.state == "approved":
            if inst.key not in WHEREABOUTS or _when(str(inst.form["end"])) <= utcnow():
                raise AppError("conflict", "an approved request cannot be withdrawn")
            ch = Changes("withdrawn", inst.step, inst.round)
            ch.trail.append(TrailEntry(ctx.user.id, None, "withdraw", inst.step, ""))
        else:
            try:
                ch = advance(
                    await _flow(tx.conn, d, inst, rows, started=True),
                    Action("withdraw", ctx.user.id),
                )
            except FlowError as err:
                raise _flow_error(err) from None
        await _apply(ctx.services, tx, d, inst, rows, ch)
    return {"instance_id": p.instance_id, "state": "withdrawn"}


class Resubmit(Input):
    instance_id: Id
    form: dict[str, Any] | None = None


@commands("workflow.resubmit")
async def workflow_resubmit(ctx: Ctx, p: Resubmit) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        inst = await _locked_own(tx, ctx, p.instance_id)
        d = await q.definition(tx.conn, inst.key, inst.version)
        assert d is not None
        form = _checked_form(d, p.form) if p.form is not None else None
        if form is not None:
            await _attach_files(tx, d, inst, form)
        current = msgspec.structs.replace(inst, form=form) if form is not None else inst
        rows = await q.tasks(tx.conn, inst.id)
        try:
            ch = advance(
                await _flow(tx.conn, d, current, rows, started=True),
                Action("resubmit", ctx.user.id),
            )
        except FlowError as err:
            raise _flow_error(err) from None
        opened = await _apply(ctx.services, tx, d, inst, rows, ch, form=form)
    return {
        "instance_id": p.instance_id,
        "state": ch.state,
        "tasks": [{"task_id": str(t.id), "assignee": str(t.assignee_id)} for t in opened],
    }


@commands("workflow.urge")
async def workflow_urge(ctx: Ctx, p: InstanceRef) -> dict[str, Any]:
    """The open tasks' assignees get `workflow.urged`, and an SMS when they are offline (with a
    phone, SMS not turned off, not in their quiet hours, no SMS within the digest window); once
    per 10 minutes per request."""
    async with ctx.transaction() as tx:
        inst = await _locked_own(tx, ctx, p.instance_id)
        if inst.state != "running":
            raise AppError("conflict", f"the request is {inst.state}")
        if inst.urged_at is not None and utcnow() - inst.urged_at < URGE_EVERY:
            wait = URGE_EVERY - (utcnow() - inst.urged_at)
            raise AppError(
                "rate_limited",
                "urged a moment ago",
                {"retry_after_s": max(1, int(wait.total_seconds()))},
            )
        await q.mark_urged(tx.conn, inst.id)
        open_ = [t for t in await q.tasks(tx.conn, inst.id) if t.state == "open"]
        applicant = UserRef(str(ctx.user.id), ctx.user.name)
        await tx.emit_each(
            [
                (
                    t.assignee_id,
                    WorkflowUrged(
                        instance_id=str(inst.id),
                        task_id=str(t.id),
                        title=inst.title,
                        applicant=applicant,
                    ),
                )
                for t in open_
            ]
        )
        # The pager's rules: quiet hours and at most one SMS per person per digest window.
        texted = await notify.text_offline(
            ctx.services,
            tx,
            [t.assignee_id for t in open_],
            f"【联络】{ctx.user.name}催办：请尽快审批《{inst.title}》",
            topic=SMS_TOPIC,
            refs=[inst.id],
            pager_rules=True,
        )
    return {"urged": len(open_), "texted": texted}


# --- reading -------------------------------------------------------------------------------------------
@commands("workflow.get")
async def workflow_get(ctx: Ctx, p: InstanceRef) -> dict[str, Any]:
    inst = await q.instance(ctx.db, int(p.instance_id))
    allowed = inst is not None and (
        inst.applicant_id == ctx.user.id
        or "admin" in ctx.user.roles
        or await q.had_task(ctx.db, inst.id, ctx.user.id)
    )
    if inst is None or not allowed:
        raise not_found("no such request")
    d = await q.definition(ctx.db, inst.key, inst.version)
    assert d is not None
    rows = await q.tasks(ctx.db, inst.id)
    trail = await q.trail(ctx.db, inst.id)
    ids = {inst.applicant_id} | {t.assignee_id for t in rows} | {e.actor_id for e in trail}
    ids |= {t.on_behalf_of for t in rows if t.on_behalf_of} | {
        e.on_behalf_of for e in trail if e.on_behalf_of
    }
    names = {u.id: u.name for u in await dq.users_by_ids(ctx.db, sorted(ids))}

    def ref(user_id: int | None) -> dict[str, str] | None:
        return None if user_id is None else {"id": str(user_id), "name": names.get(user_id, "")}

    return {
        "instance": {
            "instance_id": str(inst.id),
            "key": inst.key,
            "version": inst.version,
            "title": inst.title,
            "applicant": ref(inst.applicant_id),
            "form": inst.form,
            "state": inst.state,
            "step": _step_name(d, inst.step),
            "steps": [s["name"] for s in d.steps],
            "form_fields": d.form,  # the fields of the version this request keeps
            "created_at": inst.created_at,
            "finished_at": inst.finished_at,
            "tasks": [
                {
                    "task_id": str(t.id),
                    "step": _step_name(d, t.step),
                    "round": t.round,
                    "assignee": ref(t.assignee_id),
                    "on_behalf_of": ref(t.on_behalf_of),
                    "state": t.state,
                    "acted_at": t.acted_at,
                    "comment": t.comment,
                }
                for t in rows
            ],
            "trail": [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": ref(e.actor_id),
                    "on_behalf_of": ref(e.on_behalf_of),
                    "action": e.action,
                    "step": _step_name(d, e.step),
                    "comment": e.comment,
                    "hash": e.hash,
                }
                for e in trail
            ],
        }
    }


class ListRequests(Input):
    box: Literal["mine", "todo", "done"] = "mine"
    before: Id | None = None
    limit: Limit = 50


def _row(inst: q.Instance, task: q.TaskRow | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "instance_id": str(inst.id),
        "key": inst.key,
        "title": inst.title,
        "state": inst.state,
        "applicant_id": str(inst.applicant_id),
        "created_at": inst.created_at,
        "updated_at": inst.updated_at,
    }
    if task is not None:
        out["task"] = {"task_id": str(task.id), "state": task.state, "acted_at": task.acted_at}
    return out


@commands("workflow.list")
async def workflow_list(ctx: Ctx, p: ListRequests) -> dict[str, Any]:
    before = int(p.before) if p.before else None
    if p.box == "mine":
        return {"items": [_row(i) for i in await q.mine(ctx.db, ctx.user.id, before, p.limit)]}
    pairs = await q.with_tasks_of(ctx.db, ctx.user.id, p.box == "todo", before, p.limit)
    return {"items": [_row(i, t) for i, t in pairs]}


@commands("workflow.verify")
async def workflow_verify(ctx: Ctx, p: InstanceRef) -> dict[str, Any]:
    """Recompute the trail's chain: an entry edited in the database no longer matches."""
    await workflow_get(ctx, p)  # the same people may check it
    previous = ""
    entries = await q.trail(ctx.db, int(p.instance_id))
    for e in entries:
        expected = entry_hash(previous, e)
        if e.hash != expected:
            return {"intact": False, "entries": len(entries), "broken_at": e.seq}
        previous = e.hash
    return {"intact": True, "entries": len(entries)}


# --- delegation (代签) ---------------------------------------------------------------------------------
class Grant(Input):
    to: Id
    ends_at: datetime
    starts_at: datetime | None = None
    keys: (
        Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=20)]
        | None
    ) = None


@commands("delegation.grant")
async def delegation_grant(ctx: Ctx, p: Grant) -> dict[str, Any]:
    to = int(p.to)
    starts = p.starts_at or utcnow()
    if starts.tzinfo is None or p.ends_at.tzinfo is None:
        raise bad_request("times need a time zone", [{"field": "ends_at"}])
    if to == ctx.user.id:
        raise bad_request("delegate to someone else", [{"field": "to"}])
    if p.ends_at <= starts or p.ends_at <= utcnow():
        raise bad_request(
            "the delegation must end after it starts, in the future", [{"field": "ends_at"}]
        )
    if not await dq.active_ids(ctx.db, [to]):
        raise bad_request("no such person", [{"field": "to"}])
    if await q.delegates_back(ctx.db, ctx.user.id, to, starts, p.ends_at):
        raise AppError("conflict", "they delegate to you in that time: a cycle")
    async with ctx.transaction() as tx:
        g = await q.grant(tx.conn, ctx.user.id, to, starts, p.ends_at, p.keys)
        await tx.schedule(DELEGATION_END, str(g.id), g.ends_at, {"delegation_id": g.id})
    return {"delegation_id": str(g.id)}


class DelegationRef(Input):
    delegation_id: Id


@commands("delegation.revoke")
async def delegation_revoke(ctx: Ctx, p: DelegationRef) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        g = await q.delegation(tx.conn, int(p.delegation_id), lock=True)
        if g is None or g.grantor_id != ctx.user.id:
            raise not_found("no such delegation")
        if g.revoked_at is None:
            await q.revoke(tx.conn, g.id)
            # The delegate's open tasks for the grantor go back, on the bus, at once.
            await tx.schedule(DELEGATION_END, str(g.id), utcnow(), {"delegation_id": g.id})
    return {"delegation_id": p.delegation_id, "revoked": True}


class NoInput(Input):
    pass


@commands("delegation.list")
async def delegation_list(ctx: Ctx, p: NoInput) -> dict[str, Any]:
    now = utcnow()
    found = await q.delegations_of(ctx.db, ctx.user.id)
    ids = sorted({g.grantor_id for g in found} | {g.delegate_id for g in found})
    names = {u.id: u.name for u in await dq.users_by_ids(ctx.db, ids)}
    return {
        "delegations": [
            {
                "delegation_id": str(g.id),
                "grantor_id": str(g.grantor_id),
                "delegate_id": str(g.delegate_id),
                "grantor": {"id": str(g.grantor_id), "name": names.get(g.grantor_id, "")},
                "delegate": {"id": str(g.delegate_id), "name": names.get(g.delegate_id, "")},
                "starts_at": g.starts_at,
                "ends_at": g.ends_at,
                "keys": g.keys,
                "active": g.revoked_at is None and g.starts_at <= now < g.ends_at,
                "revoked_at": g.revoked_at,
            }
            for g in found
        ]
    }


@jobs(DELEGATION_END)
async def delegation_end(
    services: Services, tx: Transaction, payloads: list[dict[str, Any]]
) -> None:
    """A delegation revoked or run out: the delegate's open tasks held for the grantor return to
    the grantor, who is told of each as of a new task."""
    for payload in payloads:
        g = await q.delegation(tx.conn, int(payload["delegation_id"]))
        if g is None:
            continue
        await tx.lock_users([g.grantor_id, g.delegate_id])
        moved = await q.move_open_tasks(tx.conn, g.grantor_id, g.delegate_id)
        await todo.done(tx, "approval", [t.id for t in moved], [g.delegate_id])
        for t in moved:
            inst = await q.instance(tx.conn, t.instance_id)
            d = inst and await q.definition(tx.conn, inst.key, inst.version)
            if inst is None or not d:
                continue
            applicant = await dq.get_user(tx.conn, inst.applicant_id)
            name = applicant.name if applicant else ""
            await _tell_assignees(tx, d, inst, [t], UserRef(str(inst.applicant_id), name))


# --- effects on the bus ----------------------------------------------------------------------------
def _marker(instance_id: int) -> str:
    return f"审批#{instance_id}"


@jobs.on("workflow.finished", "workflow.whereabouts")
async def whereabouts_effect(
    services: Services, tx: Transaction, events: list[dict[str, Any]]
) -> None:
    """An approved leave (trip) puts the applicant on leave (on a trip) from its start until its
    end, live on the board; withdrawn later, it is undone. Idempotent: run twice, it sets the
    same whereabouts and schedules the same job."""
    for ev in events:
        data = ev["data"]
        if data["key"] not in WHEREABOUTS:
            continue
        inst = await q.instance(tx.conn, int(data["instance_id"]))
        if inst is None:
            continue
        start, end = _when(str(inst.form["start"])), _when(str(inst.form["end"]))
        if data["state"] == "approved" and end > utcnow():
            if start <= utcnow():
                await _set_whereabouts(services, tx, inst)
            else:
                await tx.schedule(LEAVE_START, str(inst.id), start, {"instance_id": inst.id})
        elif data["state"] == "withdrawn":
            await tx.cancel(LEAVE_START, str(inst.id))
            user = await dq.get_user(tx.conn, inst.applicant_id)
            if user is not None:
                await presence.clear_whereabouts_set_as(services, tx, user, _marker(inst.id))


@jobs(LEAVE_START)
async def leave_starts(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        inst = await q.instance(tx.conn, int(payload["instance_id"]))
        if inst is not None and inst.state == "approved":
            await _set_whereabouts(services, tx, inst)


async def _set_whereabouts(services: Services, tx: Transaction, inst: q.Instance) -> None:
    user = await dq.get_user(tx.conn, inst.applicant_id)
    if user is None:
        return
    note = str(inst.form.get("type") or inst.form.get("destination") or "")
    await presence.set_whereabouts_for(
        services,
        tx,
        user,
        status=WHEREABOUTS[inst.key],
        note=f"{note}（{_marker(inst.id)}）" if note else _marker(inst.id),
        location=str(inst.form.get("destination", "")),
        until=_when(str(inst.form["end"])),
        set_by=inst.applicant_id,
    )


feature = Feature("workflow", commands=commands, jobs=jobs)
