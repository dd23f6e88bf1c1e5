"""Approvals end to end over the public API: a leave runs its chain with live tasks and progress,
conditions and skip rules choose the approvers, concurrent actions have one winner, retries have
no second effect, the trail's hash chain finds an edit made in the database, delegation routes
new tasks and gives them back, and an approved leave puts the applicant on leave on the board."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.support import Client, Office, eventually

_keys = itertools.count()


def _leave(days: float, start_in_h: float = -1) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=start_in_h)
    return {
        "type": "事假",
        "start": start.isoformat(),
        "end": (start + timedelta(days=days)).isoformat(),
        "days": days,
        "reason": "家中有事",
    }


async def _start(office: Office, who: str, key: str = "leave", **kw: Any) -> dict[str, Any]:
    body = {"key": key, "client_msg_id": f"wf-{next(_keys)}", **kw}
    body.setdefault("form", _leave(2))
    return await office.ok(who, "workflow.start", body)


async def _task_of(tab: Client, instance_id: str) -> dict[str, Any]:
    ev = await tab.wait_for(
        lambda e: e["type"] == "workflow.task" and e["data"]["instance_id"] == instance_id
    )
    return dict(ev["data"])


async def test_a_leave_runs_its_chain_live_and_puts_the_applicant_on_leave(office: Office) -> None:
    li_tab = await office.tab("li")
    wang_tab = await office.tab("wang")
    started = await _start(office, "li")
    assert started["state"] == "running"
    assert [t["assignee"] for t in started["tasks"]] == [office.user_ids["wang"]]
    task = await _task_of(wang_tab, started["instance_id"])
    assert (task["key"], task["title"], task["step"]) == ("leave", "李华的请假申请", "直接上级审批")
    assert task["applicant"]["name"] == "李华"

    await office.ok(
        "wang",
        "workflow.act",
        {"task_id": task["task_id"], "action": "approve", "comment": "同意"},
    )
    done = await li_tab.wait_for("workflow.finished")
    assert done["data"]["state"] == "approved"
    progress = [e["data"] for e in li_tab.durable("workflow.progress")]
    assert [(p["action"], p["actor"]["name"]) for p in progress] == [
        ("start", "李华"),
        ("approve", "王明"),
    ]
    assert progress[-1]["comment"] == "同意"

    # The effect, on the bus after commit: li is on leave, live on the board.
    async def on_leave() -> bool:
        env = await office.call("wang", "directory.users", {"query": "李华"})
        return env["data"]["users"][0]["whereabouts"]["status"] == "on_leave"

    await eventually(on_leave, timeout=10)
    got = await office.ok("li", "workflow.get", {"instance_id": started["instance_id"]})
    inst = got["instance"]
    assert (inst["state"], inst["applicant"]["name"]) == ("approved", "李华")
    assert [e["action"] for e in inst["trail"]] == ["start", "approve"]

    # Withdrawn before it ends (销假): back in the office.
    await office.ok("li", "workflow.withdraw", {"instance_id": started["instance_id"]})

    async def back() -> bool:
        env = await office.call("wang", "directory.users", {"query": "李华"})
        return env["data"]["users"][0]["whereabouts"]["status"] == "in_office"

    await eventually(back, timeout=10)


async def test_a_long_leave_needs_the_department_head_and_earlier_approvers_are_skipped(
    office: Office,
) -> None:
    # zhao (财务科) reports to chen; 财务科 has no leader, so its head is chen too: he approved
    # the first step already, so the second is skipped and the leave is approved.
    started = await _start(office, "zhao", form=_leave(5))
    (task,) = started["tasks"]
    assert task["assignee"] == office.user_ids["chen"]
    answer = await office.ok(
        "chen", "workflow.act", {"task_id": task["task_id"], "action": "approve"}
    )
    assert answer["state"] == "approved"
    got = await office.ok("zhao", "workflow.get", {"instance_id": started["instance_id"]})
    assert [e["action"] for e in got["instance"]["trail"]] == ["start", "approve", "skip"]

    # li's long leave: wang (supervisor), then the head of 综合科 is wang again: skipped too.
    started = await _start(office, "li", form=_leave(5))
    (task,) = started["tasks"]
    answer = await office.ok(
        "wang", "workflow.act", {"task_id": task["task_id"], "action": "approve"}
    )
    assert answer["state"] == "approved"


async def _any_step(office: Office) -> None:
    admin = await office.server.login("admin")
    definition = {
        "key": "seal",
        "name": "用印",
        "form": [{"name": "purpose", "label": "用途", "type": "text", "required": True}],
        "steps": [
            {
                "name": "或签",
                "approvers": {
                    "kind": "users",
                    "user_ids": [office.user_ids["wang"], office.user_ids["chen"]],
                },
                "mode": "any",
            }
        ],
    }
    env = await office.server.command(
        admin["access_token"], "workflow.define", {"definition": definition}
    )
    assert env["ok"], env


async def test_two_approvers_acting_at_once_on_an_any_step_one_wins(office: Office) -> None:
    await _any_step(office)
    started = await _start(office, "li", key="seal", form={"purpose": "合同盖章"})
    tasks = {t["assignee"]: t["task_id"] for t in started["tasks"]}
    assert set(tasks) == {office.user_ids["wang"], office.user_ids["chen"]}
    answers = await asyncio.gather(
        office.call(
            "wang",
            "workflow.act",
            {"task_id": tasks[office.user_ids["wang"]], "action": "approve"},
        ),
        office.call(
            "chen",
            "workflow.act",
            {"task_id": tasks[office.user_ids["chen"]], "action": "approve"},
        ),
    )
    assert sorted(a["ok"] for a in answers) == [False, True], answers
    assert next(a for a in answers if not a["ok"])["error"]["code"] == "conflict"
    got = await office.ok("li", "workflow.get", {"instance_id": started["instance_id"]})
    assert got["instance"]["state"] == "approved"
    assert sorted(t["state"] for t in got["instance"]["tasks"]) == ["approved", "cancelled"]


async def test_a_retried_start_or_action_has_no_second_effect(office: Office) -> None:
    body = {"key": "leave", "form": _leave(1), "client_msg_id": "once"}
    first = await office.ok("li", "workflow.start", body)
    again = await office.ok("li", "workflow.start", body)
    assert again == first
    assert len((await office.ok("li", "workflow.list", {"box": "mine"}))["items"]) == 1
    task_id = first["tasks"][0]["task_id"]
    act = {"task_id": task_id, "action": "approve"}
    one = await office.ok("wang", "workflow.act", act)
    two = await office.ok("wang", "workflow.act", act)
    assert one == two
    got = await office.ok("li", "workflow.get", {"instance_id": first["instance_id"]})
    assert [e["action"] for e in got["instance"]["trail"]] == ["start", "approve"]


async def test_return_resubmit_reject_transfer_and_withdraw(office: Office) -> None:
    started = await _start(office, "li")
    task = started["tasks"][0]["task_id"]
    await office.ok(
        "wang",
        "workflow.act",
        {"task_id": task, "action": "return", "comment": "请写明事由"},
    )
    again = await office.call("wang", "workflow.act", {"task_id": task, "action": "approve"})
    assert again["error"]["code"] == "conflict"
    form = {**_leave(2), "reason": "孩子生病"}
    resubmitted = await office.ok(
        "li", "workflow.resubmit", {"instance_id": started["instance_id"], "form": form}
    )
    task2 = resubmitted["tasks"][0]["task_id"]
    assert task2 != task
    moved = await office.ok(
        "wang",
        "workflow.act",
        {"task_id": task2, "action": "transfer", "to": office.user_ids["chen"]},
    )
    assert [t["assignee"] for t in moved["tasks"]] == [office.user_ids["chen"]]
    rejected = await office.ok(
        "chen",
        "workflow.act",
        {"task_id": moved["tasks"][0]["task_id"], "action": "reject"},
    )
    assert (rejected["state"], rejected["tasks"]) == ("rejected", [])
    withdraw = await office.call("li", "workflow.withdraw", {"instance_id": started["instance_id"]})
    assert withdraw["error"]["code"] == "conflict"

    running = await _start(office, "li")
    await office.ok("li", "workflow.withdraw", {"instance_id": running["instance_id"]})
    late = await office.call(
        "wang",
        "workflow.act",
        {"task_id": running["tasks"][0]["task_id"], "action": "approve"},
    )
    assert late["error"]["code"] == "conflict"


async def test_the_trail_finds_an_edit_made_in_the_database(office: Office) -> None:
    started = await _start(office, "li")
    await office.ok(
        "wang",
        "workflow.act",
        {"task_id": started["tasks"][0]["task_id"], "action": "approve", "comment": "同意"},
    )
    ref = {"instance_id": started["instance_id"]}
    assert await office.ok("li", "workflow.verify", ref) == {"intact": True, "entries": 2}
    await office.server.services.pool.execute(
        "UPDATE workflow_trail SET comment = '不同意' WHERE instance_id = $1 AND seq = 2",
        int(started["instance_id"]),
    )
    assert await office.ok("li", "workflow.verify", ref) == {
        "intact": False,
        "entries": 2,
        "broken_at": 2,
    }


async def test_who_may_see_define_and_act(office: Office) -> None:
    started = await _start(office, "li")
    ref = {"instance_id": started["instance_id"]}
    assert (await office.call("zhao", "workflow.get", ref))["error"]["code"] == "not_found"
    assert (await office.ok("wang", "workflow.get", ref))["instance"]["state"] == "running"
    stranger = await office.call(
        "zhao",
        "workflow.act",
        {"task_id": started["tasks"][0]["task_id"], "action": "approve"},
    )
    assert stranger["error"]["code"] == "not_found"
    define = await office.call(
        "li",
        "workflow.define",
        {
            "definition": {
                "key": "x",
                "name": "x",
                "form": [],
                "steps": [{"name": "a", "approvers": {"kind": "supervisor"}}],
            }
        },
    )
    assert define["error"]["code"] == "forbidden"
    bad = await office.call(
        "li",
        "workflow.start",
        {"key": "leave", "form": {"days": "three"}, "client_msg_id": "bad"},
    )
    assert bad["error"]["code"] == "bad_request"
    fields = {f["field"] for f in bad["error"]["details"]["fields"]}
    assert {"form.days", "form.type", "form.start"} <= fields
    assert (
        await office.call("li", "workflow.start", {"key": "nope", "form": {}, "client_msg_id": "n"})
    )["error"]["code"] == "not_found"
    assert len((await office.ok("li", "workflow.list", {"box": "mine"}))["items"]) == 1


async def test_urge_reaches_the_approver_once_per_ten_minutes(office: Office) -> None:
    wang_tab = await office.tab("wang")
    started = await _start(office, "li")
    urged = await office.ok("li", "workflow.urge", {"instance_id": started["instance_id"]})
    assert urged == {"urged": 1, "texted": 0}  # wang is online: no SMS
    ev = await wang_tab.wait_for("workflow.urged")
    assert ev["data"]["title"] == "李华的请假申请"
    again = await office.call("li", "workflow.urge", {"instance_id": started["instance_id"]})
    assert again["error"]["code"] == "rate_limited"
    assert again["error"]["details"]["retry_after_s"] > 500
    # An approver who is offline gets an SMS.
    await wang_tab.close()
    await office.server.services.pool.execute("UPDATE workflow_instances SET urged_at = NULL")
    await eventually(
        lambda: office.server.services.hub.presence(int(office.user_ids["wang"])) == "offline"
    )
    urged = await office.ok("li", "workflow.urge", {"instance_id": started["instance_id"]})
    assert urged == {"urged": 1, "texted": 1}
    sms = await office.server.services.pool.fetch(
        "SELECT address, body FROM outbox WHERE topic = 'workflow.sms'"
    )
    assert [r["address"] for r in sms] == ["13900000002"] and "催办" in sms[0]["body"]


async def test_a_delegate_signs_for_the_grantor_until_revoked(office: Office) -> None:
    ends = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    granted = await office.ok(
        "wang",
        "delegation.grant",
        {"to": office.user_ids["zhang"], "ends_at": ends, "keys": ["leave"]},
    )
    started = await _start(office, "li")
    (task,) = started["tasks"]
    assert task["assignee"] == office.user_ids["zhang"]
    got = await office.ok("zhang", "workflow.get", {"instance_id": started["instance_id"]})
    assert got["instance"]["tasks"][0]["on_behalf_of"]["name"] == "王明"

    # Revoked: the delegate's open task returns to wang (a job on the bus), who is told.
    wang_tab = await office.tab("wang")
    await office.ok("wang", "delegation.revoke", {"delegation_id": granted["delegation_id"]})
    back = await _task_of(wang_tab, started["instance_id"])
    assert back["task_id"] == task["task_id"]
    answer = await office.ok(
        "wang", "workflow.act", {"task_id": task["task_id"], "action": "approve"}
    )
    assert answer["state"] == "approved"
    assert not (
        await office.call(
            "zhang", "workflow.act", {"task_id": task["task_id"], "action": "approve"}
        )
    )["ok"]

    # A second delegation approved by the delegate shows on whose behalf in the trail.
    await office.ok("wang", "delegation.grant", {"to": office.user_ids["zhang"], "ends_at": ends})
    started = await _start(office, "li")
    await office.ok(
        "zhang",
        "workflow.act",
        {"task_id": started["tasks"][0]["task_id"], "action": "approve"},
    )
    got = await office.ok("li", "workflow.get", {"instance_id": started["instance_id"]})
    last = got["instance"]["trail"][-1]
    assert (last["actor"]["name"], last["on_behalf_of"]["name"]) == ("张伟", "王明")
    listed = await office.ok("zhang", "delegation.list", {})
    assert [d["active"] for d in listed["delegations"]] == [True, False]
    cycle = await office.call(
        "zhang", "delegation.grant", {"to": office.user_ids["wang"], "ends_at": ends}
    )
    assert cycle["error"]["code"] == "conflict"


async def test_a_definition_whose_condition_could_never_match_is_refused(office: Office) -> None:
    admin = await office.server.login("admin")

    def definition(when: dict[str, Any]) -> dict[str, Any]:
        return {
            "definition": {
                "key": "leave",
                "name": "请假",
                "form": [
                    {"name": "days", "label": "天数", "type": "number", "required": True},
                    {"name": "type", "label": "假别", "type": "text", "required": True},
                ],
                "steps": [{"name": "上级", "approvers": {"kind": "supervisor"}, "when": when}],
            }
        }

    for when in (
        {"field": "days", "op": "gt", "value": "3"},  # text against a number
        {"field": "days", "op": "in", "value": 3},  # `in` without a list
        {"field": "type", "op": "gt", "value": "事假"},  # text has no order
        {"field": "type", "op": "eq", "value": 1},
    ):
        env = await office.server.command(
            admin["access_token"], "workflow.define", definition(when)
        )
        assert env["error"]["code"] == "bad_request", when
    env = await office.server.command(
        admin["access_token"],
        "workflow.define",
        definition({"field": "type", "op": "in", "value": ["事假", "病假"]}),
    )
    assert env["data"] == {"key": "leave", "version": 2}
    # Running requests keep their version; a new one gets the new version and its fields.
    started = await _start(office, "li", form={"days": 1, "type": "事假"})
    got = await office.ok("li", "workflow.get", {"instance_id": started["instance_id"]})
    assert got["instance"]["version"] == 2
    assert [f["name"] for f in got["instance"]["form_fields"]] == ["days", "type"]


async def test_delegations_name_both_people(office: Office) -> None:
    ends = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    await office.ok("wang", "delegation.grant", {"to": office.user_ids["zhang"], "ends_at": ends})
    (d,) = (await office.ok("zhang", "delegation.list", {}))["delegations"]
    assert (d["grantor"]["name"], d["delegate"]["name"], d["active"]) == ("王明", "张伟", True)


async def test_urge_sms_keeps_the_pagers_rules_quiet_hours_and_one_per_window(
    office: Office,
) -> None:
    """wang is offline. In his quiet hours no SMS; out of them one, and the next urge within the
    digest window sends none."""
    now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    await office.ok("wang", "prefs.set", {"quiet_hours": quiet})
    first = await _start(office, "li")
    assert await office.ok("li", "workflow.urge", {"instance_id": first["instance_id"]}) == {
        "urged": 1,
        "texted": 0,
    }

    await office.ok("wang", "prefs.set", {"quiet_hours": None})
    second = await _start(office, "li")
    assert await office.ok("li", "workflow.urge", {"instance_id": second["instance_id"]}) == {
        "urged": 1,
        "texted": 1,
    }
    third = await _start(office, "zhang")
    assert await office.ok("zhang", "workflow.urge", {"instance_id": third["instance_id"]}) == {
        "urged": 1,
        "texted": 0,
    }


async def test_approvers_may_read_the_files_a_request_carries_and_nobody_else(
    office: Office,
) -> None:
    li = await office.person("li")
    status, up = await office.server.upload(li.token, b"receipt bytes", "receipt.pdf")
    assert status == 200, up
    receipt = up["data"]["file_id"]
    form = {"amount": 120, "category": "差旅", "reason": "出差票据", "receipt": receipt}
    started = await _start(office, "li", key="expense", form=form)
    wang, zhao = await office.person("wang"), await office.person("zhao")
    assert [t["assignee"] for t in started["tasks"]] == [wang.id]
    assert (await office.server.download(wang.token, receipt))[:2] == (200, b"receipt bytes")
    assert (await office.server.download(zhao.token, receipt))[0] == 404

    # A file the applicant may not read cannot ride on a request to reach an approver.
    status, up = await office.server.upload(zhao.token, b"zhao's own", "secret.pdf")
    theirs = {**form, "receipt": up["data"]["file_id"]}
    env = await office.call(
        "li", "workflow.start", {"key": "expense", "form": theirs, "client_msg_id": "x-1"}
    )
    assert not env["ok"] and env["error"]["code"] == "not_found", env
    assert (await office.server.download(wang.token, up["data"]["file_id"]))[0] == 404
