"""The approval engine as a table: every mode against every action and the edges that trouble
open-source engines' users (handlers/workflow_engine.py; pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from handlers.workflow_engine import (
    Action,
    Changes,
    Flow,
    FlowError,
    Step,
    Task,
    advance,
    matches,
)

APPLICANT, A, B, C, D, ADMIN = 1, 2, 3, 4, 5, 9


def flow(*steps: Step, candidates: list[list[int]], form: dict[str, Any] | None = None) -> Flow:
    return Flow(
        steps=list(steps),
        applicant=APPLICANT,
        form=form or {},
        state=None,
        step=-1,
        round=0,
        candidates=candidates,
        admins=[ADMIN],
    )


def step(mode: str = "sequential", **kw: Any) -> Step:
    return Step(name=f"{mode} step", mode=mode, approvers={"kind": "users"}, **kw)  # type: ignore[arg-type]


def apply(f: Flow, ch: Changes) -> Flow:
    """The flow after the changes, as handlers/workflow.py writes them (task ids: 1, 2, …)."""
    tasks = [replace(t, state=ch.close.get(t.id, t.state)) for t in f.tasks]
    next_id = max((t.id for t in tasks), default=0) + 1
    for i, n in enumerate(ch.open):
        tasks.append(
            Task(next_id + i, n.step, n.round, n.assignee, n.on_behalf_of, "open", n.order)
        )
    return replace(f, state=ch.state, step=ch.step, round=ch.round, tasks=tasks)


def start(f: Flow) -> Flow:
    return apply(f, advance(f, Action("start", APPLICANT)))


def act(f: Flow, name: str, actor: int, **kw: Any) -> Flow:
    task = next(t for t in f.tasks if t.state == "open" and actor in (t.assignee, t.on_behalf_of))
    return apply(f, advance(f, Action(name, actor, task_id=task.id, **kw)))  # type: ignore[arg-type]


def open_for(f: Flow) -> list[int]:
    return sorted(t.assignee for t in f.tasks if t.state == "open")


# --- modes --------------------------------------------------------------------------------------
def test_sequential_goes_approver_by_approver_then_step_by_step() -> None:
    f = start(flow(step("sequential"), step("sequential"), candidates=[[A, B], [C]]))
    assert (f.state, f.step, open_for(f)) == ("running", 0, [A])
    f = act(f, "approve", A)
    assert (f.step, open_for(f)) == (0, [B])
    f = act(f, "approve", B)
    assert (f.step, open_for(f)) == (1, [C])
    f = act(f, "approve", C)
    assert (f.state, open_for(f)) == ("approved", [])


def test_all_needs_every_approver() -> None:
    f = start(flow(step("all"), candidates=[[A, B, C]]))
    assert open_for(f) == [A, B, C]
    f = act(f, "approve", B)
    f = act(f, "approve", A)
    assert (f.state, open_for(f)) == ("running", [C])
    f = act(f, "approve", C)
    assert f.state == "approved"


def test_any_is_decided_by_the_first_and_cancels_the_others() -> None:
    f = start(flow(step("any"), step("sequential"), candidates=[[A, B], [C]]))
    f = act(f, "approve", B)
    assert open_for(f) == [C]
    assert {t.assignee: t.state for t in f.tasks if t.step == 0} == {A: "cancelled", B: "approved"}


@pytest.mark.parametrize("mode", ["sequential", "all", "any"])
def test_a_reject_ends_the_instance_and_cancels_the_steps_other_tasks(mode: str) -> None:
    f = start(flow(step(mode), step("sequential"), candidates=[[A, B, C], [D]]))
    first = open_for(f)[0]
    f = act(f, "reject", first, comment="不同意")
    assert (f.state, open_for(f)) == ("rejected", [])
    assert all(t.state in ("rejected", "cancelled") for t in f.tasks)


@pytest.mark.parametrize("mode", ["sequential", "all", "any"])
def test_return_goes_back_cleanly_and_a_resubmit_starts_a_new_round(mode: str) -> None:
    f = start(flow(step(mode), candidates=[[A, B]]))
    f = act(f, "return", A, comment="请补充材料")
    assert (f.state, open_for(f)) == ("returned", [])
    with pytest.raises(FlowError):  # the old round's task cannot be acted on
        advance(f, Action("approve", B, task_id=f.tasks[-1].id))
    f = apply(f, advance(f, Action("resubmit", APPLICANT)))
    assert (f.state, f.round) == ("running", 2)
    assert all(t.round == 2 for t in f.tasks if t.state == "open")
    assert open_for(f) == ([A] if mode == "sequential" else [A, B])


@pytest.mark.parametrize("mode", ["sequential", "all", "any"])
def test_the_applicant_withdraws_mid_step_and_every_open_task_is_cancelled(mode: str) -> None:
    f = start(flow(step(mode), candidates=[[A, B]]))
    f = apply(f, advance(f, Action("withdraw", APPLICANT)))
    assert (f.state, open_for(f)) == ("withdrawn", [])
    with pytest.raises(FlowError) as err:
        advance(f, Action("withdraw", APPLICANT))
    assert err.value.code == "conflict"


def test_only_the_applicant_withdraws_or_resubmits() -> None:
    f = start(flow(step(), candidates=[[A]]))
    for name in ("withdraw", "resubmit"):
        with pytest.raises(FlowError):
            advance(f, Action(name, A))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sequential", "all", "any"])
def test_transfer_hands_the_task_on_in_the_same_step(mode: str) -> None:
    f = start(flow(step(mode), candidates=[[A, B]]))
    f = act(f, "transfer", A, to=D)
    assert D in open_for(f) and A not in open_for(f)
    f = act(f, "approve", D)
    if mode != "any":
        f = act(f, "approve", B)
    assert f.state == "approved"


def test_transfer_to_the_applicant_or_oneself_is_a_conflict() -> None:
    f = start(flow(step(), candidates=[[A]]))
    for to in (APPLICANT, A):
        with pytest.raises(FlowError) as err:
            act(f, "transfer", A, to=to)
        assert err.value.code == "conflict"


# --- approvers -------------------------------------------------------------------------------------
def test_the_applicant_and_someone_named_twice_are_skipped() -> None:
    f = start(flow(step("sequential"), candidates=[[APPLICANT, A, A, B]]))
    assert open_for(f) == [A]
    f = act(f, "approve", A)
    assert open_for(f) == [B]


def test_someone_who_approved_an_earlier_step_is_skipped_later() -> None:
    f = start(flow(step(), step(), candidates=[[A], [A, B]]))
    f = act(f, "approve", A)
    assert (f.step, open_for(f)) == (1, [B])


def test_a_step_with_nobody_is_skipped_or_goes_to_the_admins_never_stuck() -> None:
    f = start(flow(step(), step(), candidates=[[], [APPLICANT]]))
    assert (f.state, open_for(f)) == ("approved", [])
    f = start(flow(step(on_empty="admin"), candidates=[[]]))
    assert open_for(f) == [ADMIN]


def test_when_conditions_choose_the_steps() -> None:
    leave = [step(), step(when={"field": "days", "op": "gt", "value": 3})]
    short = start(flow(*leave, candidates=[[A], [B]], form={"days": 2}))
    short = act(short, "approve", A)
    assert short.state == "approved"
    long = start(flow(*leave, candidates=[[A], [B]], form={"days": 5}))
    long = act(long, "approve", A)
    assert open_for(long) == [B]


@pytest.mark.parametrize(
    ("op", "value", "form_value", "expected"),
    [
        ("eq", "事假", "事假", True),
        ("ne", "事假", "病假", True),
        ("gt", 3, 4, True),
        ("gte", 3, 3, True),
        ("lt", 3, 3, False),
        ("lte", 3, 3, True),
        ("in", ["事假", "病假"], "病假", True),
        ("in", "not a list", "x", False),
        ("gt", 3, "many", False),  # text against a number: no match, no error
        ("gt", 3, None, False),
        ("gt", 3, True, False),
    ],
)
def test_conditions_use_a_fixed_operator_set(
    op: str, value: Any, form_value: Any, expected: bool
) -> None:
    assert matches({"field": "f", "op": op, "value": value}, {"f": form_value}) is expected


# --- delegation and acting --------------------------------------------------------------------------
def test_a_delegate_gets_the_grantors_task_and_acts_on_their_behalf() -> None:
    f = replace(flow(step(), candidates=[[A]]), delegations={A: D})
    f = start(f)
    (task,) = [t for t in f.tasks if t.state == "open"]
    assert (task.assignee, task.on_behalf_of) == (D, A)
    ch = advance(f, Action("approve", D, task_id=task.id))
    assert (ch.trail[-1].actor, ch.trail[-1].on_behalf_of) == (D, A)
    # The grantor keeps the right to act, as themselves.
    ch = advance(f, Action("approve", A, task_id=task.id))
    assert (ch.trail[-1].actor, ch.trail[-1].on_behalf_of, ch.state) == (A, None, "approved")


def test_delegation_is_one_hop() -> None:
    f = start(replace(flow(step(), candidates=[[A]]), delegations={A: D, D: C}))
    (task,) = [t for t in f.tasks if t.state == "open"]
    assert (task.assignee, task.on_behalf_of) == (D, A)


def test_nobody_else_acts_and_a_closed_task_cannot_be_acted_on_again() -> None:
    f = start(flow(step("any"), candidates=[[A, B]]))
    a_task = next(t for t in f.tasks if t.assignee == A)
    with pytest.raises(FlowError) as err:
        advance(f, Action("approve", C, task_id=a_task.id))
    assert err.value.code == "forbidden"
    done = act(f, "approve", B)
    with pytest.raises(FlowError) as err:  # B won the `any` step: A's task was cancelled
        advance(done, Action("approve", A, task_id=a_task.id))
    assert err.value.code == "conflict"
