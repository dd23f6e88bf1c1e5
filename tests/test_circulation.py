"""Circulation (传阅): unopened → opened → confirmed per recipient, the sender watching live,
reminders (rate-limited, before and at the deadline, by SMS to the offline), SMS confirmation,
recall, and nobody else seeing any of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from server.sms import sign
from tests.support import Office, start_server


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _create(office: Office, sender: str, to: list[str], **kw: object) -> dict:
    p = await office.person(sender)
    ids = [(await office.person(a)).id for a in to]
    payload = {
        "title": "关于做好年终总结的通知",
        "body": "<p>请各科室<b>周五前</b>报送。</p>",
        "to": ids,
        "client_msg_id": f"c{len(ids)}{sorted(kw)}",
        **kw,
    }
    env = await office.server.command(p.token, "circulation.create", payload)
    assert env["ok"], env
    return env["data"]


async def test_every_transition_reaches_the_sender_and_matches_the_status(office: Office) -> None:
    wang_tab = await office.tab("wang")
    li_tab = await office.tab("li")
    zhang_tab = await office.tab("zhang")
    li, zhang = await office.person("li"), await office.person("zhang")
    created = await _create(office, "wang", ["li", "zhang"])
    assert created["recipients_count"] == 2
    cid = created["circulation_id"]
    for tab in (li_tab, zhang_tab):
        ev = await tab.wait_for("circulation.received")
        assert ev["data"]["circulation_id"] == cid
        assert ev["data"]["title"] == "关于做好年终总结的通知"
        assert ev["data"]["from"]["name"] == "王明"

    opened = await li_tab.call("circulation.open", {"circulation_id": cid})
    assert opened["data"]["my_state"] == "opened"
    assert opened["data"]["body"] == "<p>请各科室<b>周五前</b>报送。</p>"
    ev = await wang_tab.wait_for("circulation.status")
    assert (ev["data"]["user_id"], ev["data"]["state"]) == (li.id, "opened")
    assert "comment" not in ev["data"]

    confirmed = await zhang_tab.call(
        "circulation.confirm", {"circulation_id": cid, "comment": "已阅，按时报送"}
    )
    assert confirmed["data"]["state"] == "confirmed"
    await wang_tab.wait_for(
        lambda e: e["type"] == "circulation.status" and e["data"]["state"] == "confirmed"
    )
    states = [
        (e["data"]["user_id"], e["data"]["state"]) for e in wang_tab.durable("circulation.status")
    ]
    # Confirming an unopened circulation opens it first.
    assert states == [(li.id, "opened"), (zhang.id, "opened"), (zhang.id, "confirmed")]
    assert wang_tab.durable("circulation.status")[-1]["data"]["comment"] == "已阅，按时报送"

    status = await wang_tab.call("circulation.status", {"circulation_id": cid})
    assert status["data"]["counts"] == {"unopened": 0, "opened": 1, "confirmed": 1}
    rows = {r["user_id"]: r for r in status["data"]["recipients"]}
    assert rows[li.id]["state"] == "opened" and rows[li.id]["opened_at"]
    assert rows[zhang.id]["comment"] == "已阅，按时报送"
    last = wang_tab.durable("circulation.status")[-1]["data"]
    assert datetime.fromisoformat(rows[zhang.id]["confirmed_at"]) == datetime.fromisoformat(
        last["at"]
    )


async def test_two_tabs_opening_at_once_make_one_event(office: Office) -> None:
    wang_tab = await office.tab("wang")
    tabs = [await office.tab("li") for _ in range(3)]
    cid = (await _create(office, "wang", ["li"]))["circulation_id"]
    answers = await asyncio.gather(
        *(t.call("circulation.open", {"circulation_id": cid}) for t in tabs)
    )
    assert all(a["data"]["my_state"] == "opened" for a in answers)
    await wang_tab.wait_for("circulation.status")
    await asyncio.sleep(0.3)
    assert len(wang_tab.durable("circulation.status")) == 1
    # Opening again later changes nothing either.
    await tabs[0].call("circulation.open", {"circulation_id": cid})
    await asyncio.sleep(0.2)
    assert len(wang_tab.durable("circulation.status")) == 1


async def test_confirming_twice_changes_nothing(office: Office) -> None:
    wang_tab = await office.tab("wang")
    li = await office.person("li")
    cid = (await _create(office, "wang", ["li"]))["circulation_id"]
    await office.server.command(
        li.token, "circulation.confirm", {"circulation_id": cid, "comment": "同意"}
    )
    again = await office.server.command(
        li.token, "circulation.confirm", {"circulation_id": cid, "comment": "改主意"}
    )
    assert again["data"]["comment"] == "同意"
    await asyncio.sleep(0.3)
    assert [e["data"]["state"] for e in wang_tab.durable("circulation.status")] == [
        "opened",
        "confirmed",
    ]


async def test_departments_expand_and_freeze_at_creation(office: Office) -> None:
    chen = await office.person("chen")
    env = await office.server.command(
        chen.token,
        "circulation.create",
        {
            "title": "通知",
            "body": "x",
            "departments": [office.departments["general"]],
            "client_msg_id": "dep",
        },
    )
    assert env["data"]["recipients_count"] == 3
    # Someone joining the department later is not added.
    admin = await office.server.login("admin")
    await office.server.post(
        "/api/v1/admin/import",
        {"users": [{"account": "new", "name": "新人", "department_key": "general"}]},
        token=admin["access_token"],
    )
    status = await office.server.command(
        chen.token, "circulation.status", {"circulation_id": env["data"]["circulation_id"]}
    )
    assert len(status["data"]["recipients"]) == 3


async def test_create_is_idempotent(office: Office) -> None:
    li_tab = await office.tab("li")
    a = await _create(office, "wang", ["li"], client_msg_id="once")
    b = await _create(office, "wang", ["li"], client_msg_id="once")
    assert a == b
    await li_tab.wait_for("circulation.received")
    await asyncio.sleep(0.2)
    assert len(li_tab.durable("circulation.received")) == 1


async def test_the_body_is_sanitized_on_output(office: Office) -> None:
    li = await office.person("li")
    body = '<p onclick="steal()">正文<script>alert(1)</script><a href="javascript:x()">链接</a><img src=x onerror=y></p>'
    cid = (await _create(office, "wang", ["li"], body=body, client_msg_id="xss"))["circulation_id"]
    env = await office.server.command(li.token, "circulation.open", {"circulation_id": cid})
    html = env["data"]["body"]
    for bad in ("script", "onclick", "javascript:", "onerror", "<img"):
        assert bad not in html, html
    assert "正文" in html and "链接" in html


async def test_lists_inbox_and_sent_with_state_filters(office: Office) -> None:
    li = await office.person("li")
    wang = await office.person("wang")
    first = (await _create(office, "wang", ["li"], title="一号", client_msg_id="l1"))[
        "circulation_id"
    ]
    second = (await _create(office, "wang", ["li", "zhang"], title="二号", client_msg_id="l2"))[
        "circulation_id"
    ]
    await office.server.command(li.token, "circulation.confirm", {"circulation_id": first})
    inbox = await office.server.command(li.token, "circulation.list", {"box": "inbox"})
    assert [(c["title"], c["my_state"]) for c in inbox["data"]["circulations"]] == [
        ("二号", "unopened"),
        ("一号", "confirmed"),
    ]
    unopened = await office.server.command(
        li.token, "circulation.list", {"box": "inbox", "state": "unopened"}
    )
    assert [c["circulation_id"] for c in unopened["data"]["circulations"]] == [second]
    sent = await office.server.command(wang.token, "circulation.list", {"box": "sent"})
    assert sent["data"]["circulations"][0]["counts"] == {"unopened": 2, "opened": 0, "confirmed": 0}
    assert sent["data"]["circulations"][1]["counts"] == {"unopened": 0, "opened": 0, "confirmed": 1}
    page = await office.server.command(
        li.token, "circulation.list", {"box": "inbox", "limit": 1, "before": second}
    )
    assert [c["circulation_id"] for c in page["data"]["circulations"]] == [first]


async def test_remind_reaches_the_unconfirmed_once_per_five_minutes(office: Office) -> None:
    li_tab = await office.tab("li")
    zhang_tab = await office.tab("zhang")
    wang = await office.person("wang")
    cid = (await _create(office, "wang", ["li", "zhang"]))["circulation_id"]
    await zhang_tab.call("circulation.confirm", {"circulation_id": cid})
    env = await office.server.command(wang.token, "circulation.remind", {"circulation_id": cid})
    assert env["data"]["reminded"] == 1 and env["data"]["sms"] == 0  # li is online
    ev = await li_tab.wait_for("circulation.reminder")
    assert ev["data"]["circulation_id"] == cid
    await asyncio.sleep(0.2)
    assert zhang_tab.durable("circulation.reminder") == []
    again = await office.server.command(wang.token, "circulation.remind", {"circulation_id": cid})
    assert again["error"]["code"] == "rate_limited"
    assert 290 <= again["error"]["details"]["retry_after_s"] <= 300
    status = await office.server.command(wang.token, "circulation.status", {"circulation_id": cid})
    assert status["data"]["remind_allowed_at"] is not None
    # Five minutes later it works again.
    await office.server.services.pool.execute(
        "UPDATE circulations SET last_reminded_at = now() - interval '301 seconds'"
    )
    assert (await office.server.command(wang.token, "circulation.remind", {"circulation_id": cid}))[
        "ok"
    ]
    # Only the sender reminds.
    li = await office.person("li")
    env = await office.server.command(li.token, "circulation.remind", {"circulation_id": cid})
    assert env["error"]["code"] == "forbidden"


async def test_offline_recipients_are_reminded_by_sms_and_confirm_by_reply(
    database_url: str, tmp_path: Path, password_hash: str, sms_gateway
) -> None:  # type: ignore[no-untyped-def]
    async with start_server(
        database_url,
        tmp_path,
        password_hash,
        sms_gateway=sms_gateway.url,
        sms_secret=sms_gateway.secret,
    ) as srv:
        office = await Office.create(srv)
        wang_tab = await office.tab("wang")
        await office.tab("zhang")  # online: reminded in the browser only
        wang = await office.person("wang")
        cid = (await _create(office, "wang", ["li", "zhang"]))["circulation_id"]
        env = await srv.command(wang.token, "circulation.remind", {"circulation_id": cid})
        assert (env["data"]["reminded"], env["data"]["sms"]) == (2, 1)
        (sms,) = await sms_gateway.wait_for(1)
        assert sms["to"] == "13900000003"
        code = sms["text"].split("回复 Y ")[1].split()[0]
        assert "关于做好年终总结的通知" in sms["text"] and len(sms["text"]) <= 70

        body = msgspec.json.encode(
            {"from": "13900000003", "text": f"Y {code} 已阅同意", "id": "in-1"}
        )
        headers = {
            "X-Liaison-Signature": sign(sms_gateway.secret, body),
            "Content-Type": "application/json",
        }
        async with srv.http.post(
            srv.url + "/api/v1/sms/inbound", data=body, headers=headers
        ) as resp:
            assert resp.status == 200, await resp.text()
        ev = await wang_tab.wait_for(
            lambda e: e["type"] == "circulation.status" and e["data"]["state"] == "confirmed"
        )
        assert ev["data"]["comment"] == "已阅同意"
        # A code for a circulation this phone did not receive confirms nothing.
        body = msgspec.json.encode({"from": "13900000005", "text": f"Y {code}", "id": "in-2"})
        headers = {
            "X-Liaison-Signature": sign(sms_gateway.secret, body),
            "Content-Type": "application/json",
        }
        async with srv.http.post(
            srv.url + "/api/v1/sms/inbound", data=body, headers=headers
        ) as resp:
            assert resp.status == 404
        status = await srv.command(wang.token, "circulation.status", {"circulation_id": cid})
        assert status["data"]["counts"] == {"unopened": 1, "opened": 0, "confirmed": 1}


async def test_deadline_reminders_and_the_sender_hears_who_is_late(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(
        database_url, tmp_path, password_hash, circulation_remind_before_s=1.0
    ) as srv:
        office = await Office.create(srv)
        wang_tab = await office.tab("wang")
        li_tab = await office.tab("li")
        zhang = await office.person("zhang")
        deadline = datetime.now(UTC) + timedelta(seconds=2.5)
        cid = (await _create(office, "wang", ["li", "zhang"], deadline=_iso(deadline)))[
            "circulation_id"
        ]
        await srv.command(zhang.token, "circulation.confirm", {"circulation_id": cid})
        soon = await li_tab.wait_for("circulation.reminder", timeout=5)
        assert datetime.now(UTC) < deadline + timedelta(seconds=0.5)
        assert soon["data"]["deadline"] is not None
        overdue = await wang_tab.wait_for("circulation.overdue", timeout=6)
        assert overdue["data"]["unconfirmed"] == [
            {"id": (await office.person("li")).id, "name": "李华"}
        ]
        await li_tab.wait_for(
            lambda e: e["type"] == "circulation.reminder", start=li_tab.events.index(soon) + 1
        )
        assert len(li_tab.durable("circulation.reminder")) == 2


async def test_recall_tells_recipients_and_closes_the_circulation(office: Office) -> None:
    li_tab = await office.tab("li")
    wang = await office.person("wang")
    _, up = await _upload(office, "wang", b"plan", "plan.txt")
    cid = (await _create(office, "wang", ["li"], attachments=[up["file_id"]], client_msg_id="rc"))[
        "circulation_id"
    ]
    assert (await _download(office, "li", up["file_id"])) == 200
    env = await office.server.command(wang.token, "circulation.recall", {"circulation_id": cid})
    assert env["data"] == {"recalled": True}
    ev = await li_tab.wait_for("circulation.recalled")
    assert ev["data"] == {"circulation_id": cid}
    opened = await li_tab.call("circulation.open", {"circulation_id": cid})
    assert opened["error"]["code"] == "conflict"
    assert (await li_tab.call("circulation.confirm", {"circulation_id": cid}))["error"][
        "code"
    ] == "conflict"
    assert (await _download(office, "li", up["file_id"])) == 404
    assert (await office.server.command(wang.token, "circulation.remind", {"circulation_id": cid}))[
        "error"
    ]["code"] == "conflict"
    li = await office.person("li")
    assert (await office.server.command(li.token, "circulation.recall", {"circulation_id": cid}))[
        "error"
    ]["code"] in ("forbidden", "conflict")


async def test_outsiders_see_nothing(office: Office) -> None:
    zhao = await office.person("zhao")
    _, up = await _upload(office, "wang", b"secret", "s.txt")
    cid = (await _create(office, "wang", ["li"], attachments=[up["file_id"]], client_msg_id="out"))[
        "circulation_id"
    ]
    for name, payload in [
        ("circulation.open", {"circulation_id": cid}),
        ("circulation.confirm", {"circulation_id": cid}),
        ("circulation.status", {"circulation_id": cid}),
        ("circulation.remind", {"circulation_id": cid}),
        ("circulation.recall", {"circulation_id": cid}),
    ]:
        env = await office.server.command(zhao.token, name, payload)
        assert env["error"]["code"] == "not_found", (name, env)
    assert (await _download(office, "zhao", up["file_id"])) == 404
    inbox = await office.server.command(zhao.token, "circulation.list", {"box": "inbox"})
    assert inbox["data"]["circulations"] == []


async def test_bad_creates_are_refused(office: Office) -> None:
    wang = await office.person("wang")
    li = await office.person("li")
    past = _iso(datetime.now(UTC) - timedelta(hours=1))
    for payload, code in [
        ({"title": " ", "body": "x", "to": [li.id], "client_msg_id": "b1"}, "bad_request"),
        ({"title": "t", "body": "x", "client_msg_id": "b2"}, "bad_request"),
        (
            {"title": "t", "body": "x", "to": [li.id], "deadline": past, "client_msg_id": "b3"},
            "bad_request",
        ),
        ({"title": "t", "body": "x", "to": ["99999"], "client_msg_id": "b4"}, "not_found"),
        (
            {
                "title": "t",
                "body": "x",
                "to": [li.id],
                "attachments": ["99999"],
                "client_msg_id": "b5",
            },
            "not_found",
        ),
    ]:
        env = await office.server.command(wang.token, "circulation.create", payload)
        assert env["error"]["code"] == code, (payload, env)
    assert await office.server.services.pool.fetchval("SELECT count(*) FROM circulations") == 0


async def _upload(office: Office, account: str, data: bytes, name: str) -> tuple[int, dict]:
    status, env = await office.server.upload(
        (await office.person(account)).token, data, name, "text/plain"
    )
    return status, env["data"]


async def _download(office: Office, account: str, file_id: str) -> int:
    return (await office.server.download((await office.person(account)).token, file_id))[0]
