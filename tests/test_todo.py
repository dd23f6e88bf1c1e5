"""The to-do inbox: circulations and approval tasks add and close their items in the same
transaction, every change is pushed with the counts (so a client never recounts), and the counts
are exact under concurrency (checked against a fresh `todo.list`)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Client, Office

_keys = itertools.count()


async def _circulate(office: Office, sender: str, to: list[str], **kw: Any) -> str:
    body = {
        "title": kw.pop("title", "关于年终总结的通知"),
        "body": "<p>请阅。</p>",
        "to": [office.user_ids[a] for a in to],
        "client_msg_id": f"todo-{next(_keys)}",
        **kw,
    }
    return str((await office.ok(sender, "circulation.create", body))["circulation_id"])


def _last_counts(tab: Client) -> dict[str, Any]:
    todo_events = [e for e in tab.durable() if e["type"] in ("todo.added", "todo.done")]
    return dict(todo_events[-1]["data"]["counts"])


async def test_a_circulation_adds_an_item_and_confirming_closes_it(office: Office) -> None:
    li = await office.tab("li")
    cid = await _circulate(office, "wang", ["li"])
    added = await li.wait_for("todo.added")
    item = added["data"]["item"]
    assert (item["kind"], item["ref_id"], item["title"]) == (
        "circulation",
        cid,
        "关于年终总结的通知",
    )
    assert item["from"]["name"] == "王明"
    assert added["data"]["counts"] == {
        "open": 1,
        "urgent": 0,
        "overdue": 0,
        "by_kind": {"circulation": 1},
    }
    listed = await office.ok("li", "todo.list", {})
    assert [i["todo_id"] for i in listed["items"]] == [item["todo_id"]]
    assert listed["counts"] == added["data"]["counts"]

    await office.ok("li", "circulation.confirm", {"circulation_id": cid})
    gone = await li.wait_for("todo.done")
    assert (gone["data"]["todo_id"], gone["data"]["ref_id"]) == (item["todo_id"], cid)
    assert gone["data"]["counts"]["open"] == 0
    assert (await office.ok("li", "todo.list", {}))["items"] == []
    done = await office.ok("li", "todo.list", {"state": "done"})
    assert [i["todo_id"] for i in done["items"]] == [item["todo_id"]]


async def test_a_recall_closes_every_recipients_item(office: Office) -> None:
    tabs = {a: await office.tab(a) for a in ("li", "zhang")}
    cid = await _circulate(office, "wang", ["li", "zhang"])
    await office.ok("wang", "circulation.recall", {"circulation_id": cid})
    for tab in tabs.values():
        ev = await tab.wait_for("todo.done")
        assert ev["data"]["counts"]["open"] == 0


async def test_an_approval_task_is_an_item_until_it_is_acted_on(office: Office) -> None:
    wang = await office.tab("wang")
    start = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    form = {"type": "事假", "start": start, "end": start, "days": 1, "reason": "办事"}
    started = await office.ok(
        "li", "workflow.start", {"key": "leave", "form": form, "client_msg_id": "t1"}
    )
    task_id = started["tasks"][0]["task_id"]
    added = await wang.wait_for("todo.added")
    assert (added["data"]["item"]["kind"], added["data"]["item"]["ref_id"]) == ("approval", task_id)
    assert added["data"]["item"]["title"] == "李华的请假申请"
    await office.ok("wang", "workflow.act", {"task_id": task_id, "action": "approve"})
    gone = await wang.wait_for("todo.done")
    assert gone["data"]["ref_id"] == task_id and gone["data"]["counts"]["open"] == 0


async def test_open_items_sort_by_due_time_then_newest(office: Office) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    a = await _circulate(office, "wang", ["li"], title="无期限")
    b = await _circulate(office, "wang", ["li"], title="后天截止", deadline=later)
    c = await _circulate(office, "zhao", ["li"], title="两小时后截止", deadline=soon)
    d = await _circulate(office, "chen", ["li"], title="又一个无期限")
    listed = await office.ok("li", "todo.list", {"kind": "circulation"})
    assert [i["ref_id"] for i in listed["items"]] == [c, b, d, a]
    assert listed["counts"]["by_kind"] == {"circulation": 4}


async def test_counts_are_exact_under_concurrent_adds_and_closes(office: Office) -> None:
    li = await office.tab("li")
    senders = ["wang", "zhang", "zhao", "chen"]
    first = [await _circulate(office, s, ["li"]) for s in senders]
    # At once: twelve more arrive while li confirms the first four.
    await asyncio.gather(
        *(_circulate(office, senders[i % 4], ["li"]) for i in range(12)),
        *(office.ok("li", "circulation.confirm", {"circulation_id": c}) for c in first),
    )

    async def settled() -> bool:
        events = [e for e in li.durable() if e["type"] in ("todo.added", "todo.done")]
        return len(events) == 4 + 12 + 4

    for _ in range(100):
        if await settled():
            break
        await asyncio.sleep(0.05)
    assert await settled()
    fresh = await office.ok("li", "todo.list", {})
    assert fresh["counts"]["open"] == 12
    assert _last_counts(li) == fresh["counts"]
    # Every pushed count is the one that stood right after its change: in seq order they step
    # by one.
    opens = [
        e["data"]["counts"]["open"]
        for e in li.durable()
        if e["type"] in ("todo.added", "todo.done")
    ]
    assert all(abs(b - a) == 1 for a, b in itertools.pairwise(opens)), opens


async def test_only_a_notice_is_dismissed_by_hand(office: Office) -> None:
    await _circulate(office, "wang", ["li"])
    item = (await office.ok("li", "todo.list", {}))["items"][0]
    p = await office.person("li")
    env = await office.server.command(p.token, "todo.dismiss", {"todo_id": item["todo_id"]})
    assert env["error"]["code"] == "conflict"
    zhang = await office.person("zhang")
    env = await office.server.command(zhang.token, "todo.dismiss", {"todo_id": item["todo_id"]})
    assert env["error"]["code"] == "not_found"
