"""The approval engine: a small, pure state machine.

`advance(flow, action)` takes an instance as it stands (its definition, its state, its tasks, who
may approve each step, the delegations in force) and one action, and returns the changes: tasks
to open and close, the instance's new state, and the trail entries. It reads nothing and writes
nothing, so it is tested as a table (tests/test_workflow_engine.py); handlers/workflow.py loads the
flow under the instance's row lock, calls it, and writes what it says in the same transaction.

Rules (the open-source engines' users' most common complaints, each a test):
- A step applies only if its `when` matches the form. Its approvers are resolved at start; an
  approver who is the applicant, or already approved an earlier step, is skipped; a step left
  with nobody is skipped (`on_empty: "skip"`) or goes to the administrators (`"admin"`), so no
  instance is ever stuck waiting on no one.
- `sequential`: one approver after the other; `all` (会签): every approver; `any` (或签): the first.
  A reject ends the instance and cancels the step's other open tasks; in `any`, the first approve
  cancels the others.
- `return` sends the instance back to the applicant and cancels every open task; a resubmit
  starts again from the first step in a new round, so no task of an older round stays open.
- The applicant may withdraw while the instance runs; open tasks are cancelled.
- `transfer` hands the acting task to someone else, on the same step and round.
- A task created for someone who has delegated (代签) this definition goes to their delegate, on
  their behalf (one hop: a delegate's own delegation does not pass it on); the grantor keeps the
  right to act on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Mode = Literal["sequential", "all", "any"]
State = Literal["running", "approved", "rejected", "withdrawn", "returned"]
TaskState = Literal["open", "approved", "rejected", "returned", "transferred", "cancelled"]
ActionName = Literal["start", "approve", "reject", "return", "transfer", "withdraw", "resubmit"]

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in")


class FlowError(Exception):
    """An action that does not fit the instance: `code` is the contract's error code."""

    def __init__(self, code: Literal["conflict", "forbidden", "bad_request"], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    mode: Mode
    approvers: dict[str, Any]
    when: dict[str, Any] | None = None
    on_empty: Literal["skip", "admin"] = "skip"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    step: int
    round: int
    assignee: int
    on_behalf_of: int | None
    state: TaskState
    order: int = 0  # position among the step's approvers (sequential mode)


@dataclass(frozen=True, slots=True)
class Flow:
    """An instance as the engine sees it."""

    steps: list[Step]
    applicant: int
    form: dict[str, Any]
    state: State | None  # None before start
    step: int  # the current step (-1 before the first, len(steps) once past the last)
    round: int
    tasks: list[Task] = field(default_factory=list)
    # resolved approvers of each step, in order (before the skip rules)
    candidates: list[list[int]] = field(default_factory=list)
    admins: list[int] = field(default_factory=list)
    delegations: dict[int, int] = field(default_factory=dict)  # grantor -> delegate, in force


@dataclass(frozen=True, slots=True)
class Action:
    name: ActionName
    actor: int
    task_id: int | None = None
    to: int | None = None  # transfer
    comment: str = ""


@dataclass(frozen=True, slots=True)
class NewTask:
    step: int
    round: int
    assignee: int
    on_behalf_of: int | None
    order: int


@dataclass(frozen=True, slots=True)
class TrailEntry:
    actor: int
    on_behalf_of: int | None
    action: str
    step: int
    comment: str


@dataclass(slots=True)
class Changes:
    state: State
    step: int
    round: int
    open: list[NewTask] = field(default_factory=list)
    close: dict[int, TaskState] = field(default_factory=dict)  # task id -> new state
    trail: list[TrailEntry] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in ("approved", "rejected", "withdrawn")


# --- conditions -------------------------------------------------------------------------------
def matches(when: dict[str, Any] | None, form: dict[str, Any]) -> bool:
    """Whether a step's `when` holds for the form: a fixed operator set, never code. A missing
    field or values that do not compare (a number against text) do not match."""
    if when is None:
        return True
    value = form.get(when["field"])
    expected = when["value"]
    op = when["op"]
    if value is None:
        return False
    try:
        if op == "eq":
            return bool(value == expected)
        if op == "ne":
            return bool(value != expected)
        if op == "in":
            return isinstance(expected, list) and value in expected
        if isinstance(value, bool) or isinstance(expected, bool):
            return False
        if op == "gt":
            return bool(value > expected)
        if op == "gte":
            return bool(value >= expected)
        if op == "lt":
            return bool(value < expected)
        if op == "lte":
            return bool(value <= expected)
    except TypeError:
        return False
    raise ValueError(f"unknown operator {op!r}")


# --- the machine --------------------------------------------------------------------------------
def advance(flow: Flow, action: Action) -> Changes:
    """The changes `action` makes to `flow`; raises FlowError when it does not fit."""
    handler = _ACTIONS[action.name]
    return handler(flow, action)


def _start(flow: Flow, action: Action) -> Changes:
    if flow.state is not None:
        raise FlowError("conflict", "already started")
    ch = Changes("running", -1, 1)
    ch.trail.append(TrailEntry(action.actor, None, "start", -1, action.comment))
    _enter_next(flow, ch, after=-1)
    return ch


def _resubmit(flow: Flow, action: Action) -> Changes:
    if flow.state != "returned":
        raise FlowError("conflict", "only a returned request can be resubmitted")
    if action.actor != flow.applicant:
        raise FlowError("forbidden", "only the applicant resubmits")
    ch = Changes("running", -1, flow.round + 1)
    ch.trail.append(TrailEntry(action.actor, None, "resubmit", -1, action.comment))
    _enter_next(replace(flow, tasks=[]), ch, after=-1)
    return ch


def _withdraw(flow: Flow, action: Action) -> Changes:
    if action.actor != flow.applicant:
        raise FlowError("forbidden", "only the applicant withdraws")
    if flow.state not in ("running", "returned"):
        raise FlowError("conflict", f"the request is {flow.state}")
    ch = Changes("withdrawn", flow.step, flow.round)
    _cancel_open(flow, ch)
    ch.trail.append(TrailEntry(action.actor, None, "withdraw", flow.step, action.comment))
    return ch


def _acting_task(flow: Flow, action: Action) -> Task:
    task = next((t for t in flow.tasks if t.id == action.task_id), None)
    if task is None:
        raise FlowError("conflict", "no such task")
    if action.actor not in (task.assignee, task.on_behalf_of):
        raise FlowError("forbidden", "this task is someone else's")
    if flow.state != "running" or task.state != "open" or task.round != flow.round:
        raise FlowError("conflict", "this task is no longer open")
    return task


def _on_behalf(task: Task, actor: int) -> int | None:
    """Who the actor acts for: a delegate for the grantor; the grantor for no one else."""
    return task.on_behalf_of if actor == task.assignee else None


def _approve(flow: Flow, action: Action) -> Changes:
    task = _acting_task(flow, action)
    ch = Changes(flow.state or "running", flow.step, flow.round)
    ch.close[task.id] = "approved"
    ch.trail.append(
        TrailEntry(
            action.actor, _on_behalf(task, action.actor), "approve", task.step, action.comment
        )
    )
    step = flow.steps[task.step]
    others = [t for t in _open_of_step(flow, task.step) if t.id != task.id]
    if step.mode == "any":
        for t in others:
            ch.close[t.id] = "cancelled"
        _enter_next(flow, ch, after=task.step, approved_now=[task])
        return ch
    if step.mode == "all":
        if not others:
            _enter_next(flow, ch, after=task.step, approved_now=[task])
        return ch
    # sequential: the next approver of the step, or the next step
    order = sorted(_approvers(flow, task.step, approved_now=[task]))
    later = [(o, u) for o, u in order if o > task.order]
    if later:
        o, user = later[0]
        ch.open.append(_new_task(flow, task.step, ch.round, user, o))
    else:
        _enter_next(flow, ch, after=task.step, approved_now=[task])
    return ch


def _reject(flow: Flow, action: Action) -> Changes:
    task = _acting_task(flow, action)
    ch = Changes("rejected", task.step, flow.round)
    ch.close[task.id] = "rejected"
    for t in _open_of_step(flow, task.step):
        if t.id != task.id:
            ch.close[t.id] = "cancelled"
    _cancel_open(flow, ch)
    ch.trail.append(
        TrailEntry(
            action.actor, _on_behalf(task, action.actor), "reject", task.step, action.comment
        )
    )
    return ch


def _return(flow: Flow, action: Action) -> Changes:
    task = _acting_task(flow, action)
    ch = Changes("returned", task.step, flow.round)
    ch.close[task.id] = "returned"
    _cancel_open(flow, ch)
    ch.trail.append(
        TrailEntry(
            action.actor, _on_behalf(task, action.actor), "return", task.step, action.comment
        )
    )
    return ch


def _transfer(flow: Flow, action: Action) -> Changes:
    task = _acting_task(flow, action)
    if action.to is None:
        raise FlowError("bad_request", "transfer needs `to`")
    if action.to in (task.assignee, flow.applicant) or any(
        t.assignee == action.to and t.state == "open" and t.step == task.step for t in flow.tasks
    ):
        raise FlowError("conflict", "cannot transfer to that person")
    ch = Changes("running", flow.step, flow.round)
    ch.close[task.id] = "transferred"
    ch.open.append(NewTask(task.step, flow.round, action.to, None, task.order))
    ch.trail.append(
        TrailEntry(
            action.actor, _on_behalf(task, action.actor), "transfer", task.step, action.comment
        )
    )
    return ch


_ACTIONS = {
    "start": _start,
    "resubmit": _resubmit,
    "withdraw": _withdraw,
    "approve": _approve,
    "reject": _reject,
    "return": _return,
    "transfer": _transfer,
}


# --- helpers ------------------------------------------------------------------------------------
def _open_of_step(flow: Flow, step: int) -> list[Task]:
    return [t for t in flow.tasks if t.step == step and t.state == "open" and t.round == flow.round]


def _cancel_open(flow: Flow, ch: Changes) -> None:
    for t in flow.tasks:
        if t.state == "open" and t.id not in ch.close:
            ch.close[t.id] = "cancelled"


def _approved_before(flow: Flow, step: int, approved_now: list[Task]) -> set[int]:
    """Who approved a step before `step` in this round (as themselves or for someone)."""
    done = [t for t in flow.tasks if t.round == flow.round and t.state == "approved"]
    done += approved_now
    people: set[int] = set()
    for t in done:
        if t.step < step:
            people.add(t.assignee)
            if t.on_behalf_of is not None:
                people.add(t.on_behalf_of)
    return people


def _approvers(flow: Flow, step: int, approved_now: list[Task] = ()) -> list[tuple[int, int]]:  # type: ignore[assignment]
    """(order, user) of the step's approvers after the skip rules: not the applicant, not
    someone who approved an earlier step, nobody twice."""
    skip = _approved_before(flow, step, list(approved_now)) | {flow.applicant}
    seen: set[int] = set()
    out: list[tuple[int, int]] = []
    for order, user in enumerate(flow.candidates[step] if step < len(flow.candidates) else []):
        if user in skip or user in seen:
            continue
        seen.add(user)
        out.append((order, user))
    return out


def _new_task(flow: Flow, step: int, round_: int, user: int, order: int) -> NewTask:
    """A task for `user`, or for their delegate on their behalf (one hop)."""
    delegate = flow.delegations.get(user)
    if delegate is not None and delegate != flow.applicant:
        return NewTask(step, round_, delegate, user, order)
    return NewTask(step, round_, user, None, order)


def _enter_next(flow: Flow, ch: Changes, *, after: int, approved_now: list[Task] = ()) -> None:  # type: ignore[assignment]
    """Open the tasks of the first step after `after` that applies and has approvers; past the
    last step, the instance is approved."""
    step = after + 1
    while step < len(flow.steps):
        spec = flow.steps[step]
        if matches(spec.when, flow.form):
            people = _approvers(flow, step, list(approved_now))
            if not people and spec.on_empty == "admin":
                people = [(o, u) for o, u in enumerate(flow.admins) if u != flow.applicant]
            if people:
                ch.step = step
                chosen = people[:1] if spec.mode == "sequential" else people
                ch.open.extend(_new_task(flow, step, ch.round, u, o) for o, u in chosen)
                return
            ch.trail.append(TrailEntry(flow.applicant, None, "skip", step, "无审批人，自动跳过"))
        step += 1
    ch.step = len(flow.steps)
    ch.state = "approved"
