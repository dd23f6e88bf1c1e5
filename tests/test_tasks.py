"""Tasks (交办): assigned to several people, each part followed live by the assigner, handed on
never twice to one person, overdue reminders with an SMS to those offline, to-do items that open
and close with the parts, and a meeting's action that becomes a task."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Office, eventually

_keys = itertools.count()


async def _assign(office: Office, to: list[str], **kw: Any) -> str:
    body = {
        "title": "起草年度工作总结",
        "assignees": [office.user_ids[a] for a in to],
        "client_msg_id": f"task-{next(_keys)}",
        **kw,
    }
    return str((await office.ok("wang", "task.assign", body))["task_id"])


async def test_the_assigner_follows_each_part_live(office: Office) -> None:
    wang = await office.tab("wang")
    li = await office.tab("li")
    task_id = await _assign(office, ["li", "zhang"], urgency="urgent", body="月底前交初稿")
    assigned = await li.wait_for("task.assigned")
    assert (assigned["data"]["task_id"], assigned["data"]["urgency"]) == (task_id, "urgent")
    assert assigned["data"]["from"]["name"] == "王明"
    todo = await li.wait_for("todo.added")
    assert todo["data"]["item"]["kind"] == "task" and todo["data"]["counts"]["urgent"] == 1

    await office.ok("li", "task.progress", {"task_id": task_id, "percent": 40, "note": "框架已定"})
    update = await wang.wait_for("task.updated")
    assert (update["data"]["user_id"], update["data"]["state"], update["data"]["percent"]) == (
        office.user_ids["li"],
        "in_progress",
        40,
    )
    await office.ok("li", "task.complete", {"task_id": task_id, "note": "已提交"})
    await wang.wait_for(lambda e: e["type"] == "task.updated" and e["data"]["state"] == "done")
    gone = await li.wait_for("todo.done")
    assert gone["data"]["counts"]["open"] == 0
    again = await office.call("li", "task.complete", {"task_id": task_id})
    assert again["error"]["code"] == "conflict"

    got = await office.ok("wang", "task.get", {"task_id": task_id})
    parts = {a["name"]: (a["state"], a["percent"]) for a in got["task"]["assignees"]}
    assert parts == {"李华": ("done", 100), "张伟": ("open", 0)}
    assert (await office.call("zhao", "task.get", {"task_id": task_id}))["error"][
        "code"
    ] == "not_found"
    mine = await office.ok("zhang", "task.list", {"box": "mine"})
    assert [t["task_id"] for t in mine["tasks"]] == [task_id]
    assigned_list = await office.ok("wang", "task.list", {"box": "assigned"})
    assert [t["task_id"] for t in assigned_list["tasks"]] == [task_id]


async def test_a_part_is_handed_on_but_never_twice_to_one_person(office: Office) -> None:
    task_id = await _assign(office, ["li", "zhang"])
    zhao = await office.tab("zhao")
    await office.ok("li", "task.reassign", {"task_id": task_id, "to": office.user_ids["zhao"]})
    await zhao.wait_for("task.assigned")
    back = await office.call(
        "zhao", "task.reassign", {"task_id": task_id, "to": office.user_ids["li"]}
    )
    assert back["error"]["code"] == "conflict"
    other = await office.call(
        "zhang", "task.reassign", {"task_id": task_id, "to": office.user_ids["zhao"]}
    )
    assert other["error"]["code"] == "conflict"
    got = await office.ok("wang", "task.get", {"task_id": task_id})
    states = {a["name"]: (a["state"], a["handed_to"]) for a in got["task"]["assignees"]}
    assert states["李华"] == ("handed_on", office.user_ids["zhao"])
    assert states["赵敏"] == ("open", None)
    assert (await office.ok("li", "todo.list", {}))["counts"]["open"] == 0


async def test_overdue_reminds_the_unfinished_and_texts_those_offline(office: Office) -> None:
    wang = await office.tab("wang")
    li = await office.tab("li")
    due = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    task_id = await _assign(office, ["li", "zhang", "zhao"], due_at=due)
    await office.ok("zhao", "task.complete", {"task_id": task_id})
    overdue = await wang.wait_for("task.overdue", timeout=10)
    names = sorted(u["name"] for u in overdue["data"]["unfinished"])
    assert names == ["张伟", "李华"]
    await li.wait_for("task.overdue")

    async def texted() -> bool:
        rows = await office.server.services.pool.fetch(
            "SELECT address FROM outbox WHERE topic = 'task.sms'"
        )
        return [r["address"] for r in rows] == ["13900000004"]  # zhang: offline; li: online

    await eventually(texted, timeout=10)
    item = next(
        i for i in (await office.ok("li", "todo.list", {}))["items"] if i["ref_id"] == task_id
    )
    assert item["due_at"] is not None
    assert (await office.ok("li", "todo.list", {}))["counts"]["overdue"] == 1


async def test_a_meeting_action_becomes_a_task_with_a_to_do_item(office: Office) -> None:
    li = await office.tab("li")
    meeting = await office.ok(
        "wang",
        "meeting.create",
        {"title": "周例会", "participants": [office.user_ids["li"]]},
    )
    mid = meeting["meeting_id"]
    await office.ok("wang", "meeting.join", {"meeting_id": mid})
    said = await office.ok(
        "wang",
        "meeting.say",
        {"meeting_id": mid, "body": "李华负责会议纪要", "client_msg_id": "m1"},
    )
    await office.ok(
        "wang",
        "meeting.mark",
        {
            "meeting_id": mid,
            "message_id": said["message_id"],
            "kind": "action",
            "assignee": office.user_ids["li"],
        },
    )
    added = await li.wait_for(
        lambda e: e["type"] == "todo.added" and e["data"]["item"]["kind"] == "meeting_action"
    )
    task_id = added["data"]["item"]["ref_id"]
    got = await office.ok("li", "task.get", {"task_id": task_id})
    assert got["task"]["source"] == "meeting" and "李华负责会议纪要" in got["task"]["title"]
    await office.ok("li", "task.complete", {"task_id": task_id})
    await li.wait_for("todo.done")


async def test_bad_input_changes_nothing(office: Office) -> None:
    bad = await office.call(
        "wang",
        "task.assign",
        {"title": "x", "assignees": ["999999"], "client_msg_id": "b1"},
    )
    assert bad["error"]["code"] == "bad_request"
    naive = await office.call(
        "wang",
        "task.assign",
        {
            "title": "x",
            "assignees": [office.user_ids["li"]],
            "due_at": "2030-01-01T00:00:00",
            "client_msg_id": "b2",
        },
    )
    assert naive["error"]["code"] == "bad_request"
    pct = await office.call("li", "task.progress", {"task_id": "1", "percent": 101})
    assert pct["error"]["code"] == "bad_request"
    assert (await office.ok("wang", "task.list", {"box": "assigned"}))["tasks"] == []
