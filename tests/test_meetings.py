"""Chat-room meetings with minutes: one order for everyone, catching up on resume, marks by the
chair, minutes with attendees and absentees, circulation of the minutes, and outsiders refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.support import Client, Office


async def _meeting(office: Office, chair: str, others: list[str], **kw: object) -> str:
    p = await office.person(chair)
    ids = [(await office.person(a)).id for a in others]
    env = await office.server.command(
        p.token,
        "meeting.create",
        {"title": "周例会", "participants": ids, "agenda": "一、上周工作\n二、本周安排", **kw},
    )
    assert env["ok"], env
    return env["data"]["meeting_id"]


async def _say(tab: Client, mid: str, body: str, key: str) -> str:
    env = await tab.call("meeting.say", {"meeting_id": mid, "body": body, "client_msg_id": key})
    assert env["ok"], env
    return env["data"]["message_id"]


async def test_participants_are_invited_and_the_room_sees_who_is_present(office: Office) -> None:
    li_tab = await office.tab("li")
    mid = await _meeting(office, "wang", ["li", "zhang"])
    invited = await li_tab.wait_for("meeting.invited")
    assert invited["data"]["meeting_id"] == mid and invited["data"]["chair"]["name"] == "王明"
    wang_tab = await office.tab("wang")
    joined = await wang_tab.call("meeting.join", {"meeting_id": mid})
    assert joined["data"]["present"] == [(await office.person("wang")).id]
    assert joined["data"]["meeting"]["chair"]["name"] == "王明"
    assert {p["name"] for p in joined["data"]["meeting"]["participants"]} == {
        "王明",
        "李华",
        "张伟",
    }
    await li_tab.call("meeting.join", {"meeting_id": mid})
    li = await office.person("li")
    ev = await wang_tab.wait_for(
        lambda e: e["type"] == "meeting.presence" and e["data"]["user_id"] == li.id
    )
    assert ev["data"] == {"meeting_id": mid, "user_id": li.id, "present": True}
    # A second tab is no news; closing the last tab leaves the room.
    second = await office.tab("li")
    await second.call("meeting.join", {"meeting_id": mid})
    await li_tab.close()
    await asyncio.sleep(0.2)
    assert not [
        e for e in wang_tab.events if e["type"] == "meeting.presence" and not e["data"]["present"]
    ]
    await second.close()
    gone = await wang_tab.wait_for(
        lambda e: e["type"] == "meeting.presence" and not e["data"]["present"]
    )
    assert gone["data"]["user_id"] == li.id


async def test_everyone_sees_one_order_and_it_is_the_transcript(office: Office) -> None:
    mid = await _meeting(office, "wang", ["li", "zhang"])
    tabs = {a: await office.tab(a) for a in ("wang", "li", "zhang")}
    for tab in tabs.values():
        await tab.call("meeting.join", {"meeting_id": mid})
    await asyncio.gather(
        *(_say(tab, mid, f"{a} 第{i}句", f"{a}-{i}") for a, tab in tabs.items() for i in range(10))
    )
    orders = []
    for tab in tabs.values():
        await tab.wait_for(lambda e, t=tab: len(t.durable("meeting.message")) >= 30, timeout=10)
        orders.append([e["data"]["message_id"] for e in tab.durable("meeting.message")])
    assert orders[0] == orders[1] == orders[2] and len(orders[0]) == 30
    joined = await tabs["li"].call("meeting.join", {"meeting_id": mid})
    assert [m["message_id"] for m in joined["data"]["messages"]] == orders[0]


async def test_an_absent_participant_catches_up_on_resume(office: Office) -> None:
    zhang_tab = await office.tab("zhang")
    mid = await _meeting(office, "wang", ["li", "zhang"])
    await zhang_tab.wait_for("meeting.invited")
    last = zhang_tab.durable()[-1]["seq"]
    await zhang_tab.close()
    wang_tab = await office.tab("wang")
    await wang_tab.call("meeting.join", {"meeting_id": mid})
    said = [await _say(wang_tab, mid, f"第{i}项", f"k{i}") for i in range(5)]
    back = await office.tab("zhang", last_seq=last)
    assert [e["data"]["message_id"] for e in back.durable("meeting.message")] == said
    assert back.events[-1]["type"] == "sync.ready"


async def test_say_is_idempotent(office: Office) -> None:
    mid = await _meeting(office, "wang", ["li"])
    wang_tab = await office.tab("wang")
    a = await _say(wang_tab, mid, "同一句", "dup")
    b = await _say(wang_tab, mid, "同一句", "dup")
    assert a == b
    joined = await wang_tab.call("meeting.join", {"meeting_id": mid})
    assert len(joined["data"]["messages"]) == 1


async def test_minutes_hold_attendees_absentees_decisions_actions_and_transcript(
    office: Office,
) -> None:
    mid = await _meeting(office, "wang", ["li", "zhang"])
    wang_tab, li_tab = await office.tab("wang"), await office.tab("li")
    for tab in (wang_tab, li_tab):
        await tab.call("meeting.join", {"meeting_id": mid})
    decision = await _say(wang_tab, mid, "年终总结周五前报送", "d")
    action = await _say(li_tab, mid, "我来汇总各科室材料", "a")
    await _say(li_tab, mid, "好的", "c")
    li = await office.person("li")
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    env = await wang_tab.call(
        "meeting.mark", {"meeting_id": mid, "message_id": decision, "kind": "decision"}
    )
    assert env["ok"], env
    env = await wang_tab.call(
        "meeting.mark",
        {"meeting_id": mid, "message_id": action, "kind": "action", "assignee": li.id, "due": due},
    )
    assert env["ok"], env
    marked = await li_tab.wait_for(
        lambda e: e["type"] == "meeting.marked" and e["data"]["kind"] == "action"
    )
    assert marked["data"]["assignee"] == {"id": li.id, "name": "李华"}
    assigned = await li_tab.wait_for("meeting.action_assigned")
    assert (
        assigned["data"]["body"] == "我来汇总各科室材料"
        and assigned["data"]["meeting_title"] == "周例会"
    )
    # Only the chair marks.
    env = await li_tab.call(
        "meeting.mark", {"meeting_id": mid, "message_id": decision, "kind": "decision"}
    )
    assert env["error"]["code"] == "forbidden"

    closed = await wang_tab.call("meeting.close", {"meeting_id": mid, "summary": "按计划推进"})
    minutes = closed["data"]["minutes"]
    assert minutes["title"] == "周例会" and minutes["chair"]["name"] == "王明"
    assert [a["name"] for a in minutes["attendees"]] == ["王明", "李华"]
    assert all(a["joined_at"] and a["left_at"] for a in minutes["attendees"])
    assert [a["name"] for a in minutes["absentees"]] == ["张伟"]
    assert [d["body"] for d in minutes["decisions"]] == ["年终总结周五前报送"]
    assert [(a["body"], a["assignee"]["name"]) for a in minutes["actions"]] == [
        ("我来汇总各科室材料", "李华")
    ]
    assert [t["body"] for t in minutes["transcript"]] == [
        "年终总结周五前报送",
        "我来汇总各科室材料",
        "好的",
    ]
    assert minutes["started_at"] and minutes["ended_at"] and minutes["summary"] == "按计划推进"
    await li_tab.wait_for("meeting.closed")

    after = await li_tab.call(
        "meeting.say", {"meeting_id": mid, "body": "还有一件事", "client_msg_id": "late"}
    )
    assert after["error"]["code"] == "conflict"
    fetched = await li_tab.call("meeting.minutes", {"meeting_id": mid})
    assert fetched["data"]["minutes"]["decisions"] == minutes["decisions"]
    md = fetched["data"]["markdown"]
    for text in (
        "# 会议纪要：周例会",
        "张伟",
        "年终总结周五前报送",
        "我来汇总各科室材料 — 负责人 李华",
        "按计划推进",
    ):
        assert text in md, text
    async with office.server.http.get(
        office.server.url + f"/api/v1/meetings/{mid}/minutes.md",
        headers={"Authorization": f"Bearer {li.token}"},
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/markdown")
        assert await resp.text() == md


async def test_closing_with_circulate_sends_the_minutes_with_read_receipts(office: Office) -> None:
    mid = await _meeting(office, "wang", ["li", "zhang"])
    wang_tab = await office.tab("wang")
    li_tab = await office.tab("li")
    await wang_tab.call("meeting.join", {"meeting_id": mid})
    await _say(wang_tab, mid, "<script>x</script>散会", "s")
    closed = await wang_tab.call("meeting.close", {"meeting_id": mid, "circulate": True})
    cid = closed["data"]["minutes"]["circulation_id"]
    assert cid
    received = await li_tab.wait_for("circulation.received")
    assert (
        received["data"]["circulation_id"] == cid
        and received["data"]["title"] == "会议纪要：周例会"
    )
    status = await wang_tab.call("circulation.status", {"circulation_id": cid})
    assert {r["name"] for r in status["data"]["recipients"]} == {"李华", "张伟"}
    opened = await li_tab.call("circulation.open", {"circulation_id": cid})
    assert "散会" in opened["data"]["body"] and "<script>" not in opened["data"]["body"]


async def test_the_chair_can_be_handed_over(office: Office) -> None:
    mid = await _meeting(office, "wang", ["li"])
    wang, li = await office.person("wang"), await office.person("li")
    env = await office.server.command(
        wang.token, "meeting.handover", {"meeting_id": mid, "to": li.id}
    )
    assert env["data"]["chair"] == {"id": li.id, "name": "李华"}
    env = await office.server.command(wang.token, "meeting.close", {"meeting_id": mid})
    assert env["error"]["code"] == "forbidden"
    env = await office.server.command(li.token, "meeting.close", {"meeting_id": mid})
    assert env["ok"]
    zhao = await office.person("zhao")
    env = await office.server.command(
        li.token, "meeting.handover", {"meeting_id": mid, "to": zhao.id}
    )
    assert env["error"]["code"] in ("conflict", "bad_request")


async def test_outsiders_are_refused_everything(office: Office) -> None:
    mid = await _meeting(office, "wang", ["li"])
    zhao_tab = await office.tab("zhao")
    for name, payload in [
        ("meeting.join", {"meeting_id": mid}),
        ("meeting.leave", {"meeting_id": mid}),
        ("meeting.say", {"meeting_id": mid, "body": "x", "client_msg_id": "z"}),
        ("meeting.minutes", {"meeting_id": mid}),
        ("meeting.close", {"meeting_id": mid}),
        ("meeting.handover", {"meeting_id": mid, "to": office.user_ids["zhao"]}),
    ]:
        env = await zhao_tab.call(name, payload)
        assert env["error"]["code"] == "not_found", (name, env)
    zhao = await office.person("zhao")
    async with office.server.http.get(
        office.server.url + f"/api/v1/meetings/{mid}/minutes.md",
        headers={"Authorization": f"Bearer {zhao.token}"},
    ) as resp:
        assert resp.status == 404
    listed = await zhao_tab.call("meeting.list", {})
    assert listed["data"]["meetings"] == []


async def test_meeting_list_shows_mine(office: Office) -> None:
    a = await _meeting(office, "wang", ["li"], title="甲")
    b = await _meeting(office, "zhang", ["li"], title="乙")
    li = await office.person("li")
    env = await office.server.command(li.token, "meeting.list", {})
    assert [m["meeting_id"] for m in env["data"]["meetings"]] == [b, a]
    await office.server.command(
        (await office.person("wang")).token, "meeting.close", {"meeting_id": a}
    )
    env = await office.server.command(li.token, "meeting.list", {"state": "open"})
    assert [m["meeting_id"] for m in env["data"]["meetings"]] == [b]
