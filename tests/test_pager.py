"""Pager (网络寻呼): pages to people and departments, receipts that follow each recipient,
history, attachments, and who may see what."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec

from handlers import pager
from tests.support import Office, eventually


async def _send(office: Office, sender: str, to: list[str] | None = None, **kw: object) -> dict:
    p = await office.person(sender)
    ids = [(await office.person(a)).id for a in (to or [])]
    payload = {"to": ids, "body": "请到302会议室", "client_msg_id": f"c-{id(kw)}-{len(ids)}", **kw}
    env = await office.server.command(p.token, "pager.send", payload)
    assert env["ok"], env
    return env["data"]


async def test_a_page_reaches_every_tab_of_its_recipient(office: Office) -> None:
    tab1 = await office.tab("li")
    tab2 = await office.tab("li")
    wang = await office.person("wang")
    li = await office.person("li")
    sent = await _send(office, "wang", ["li"], body="下午三点开会", priority="urgent")
    assert sent["recipients"] == [{"user_id": li.id, "online": True}]
    for tab in (tab1, tab2):
        ev = await tab.wait_for("pager.message")
        assert ev["seq"] == 1
        assert ev["data"]["message_id"] == sent["message_id"]
        assert ev["data"]["from"] == {"id": wang.id, "name": "王明"}
        assert (ev["data"]["body"], ev["data"]["priority"], ev["data"]["via"]) == (
            "下午三点开会",
            "urgent",
            "web",
        )
        assert datetime.fromisoformat(ev["data"]["sent_at"]) == datetime.fromisoformat(
            sent["sent_at"]
        )


async def test_a_department_page_reaches_everyone_below_it_but_the_sender(office: Office) -> None:
    chen = await office.person("chen")
    env = await office.server.command(
        chen.token,
        "pager.send",
        {"departments": [office.departments["office"]], "body": "全体注意", "client_msg_id": "d1"},
    )
    assert env["ok"], env
    got = {r["user_id"] for r in env["data"]["recipients"]}
    expected = {office.user_ids[a] for a in ("wang", "li", "zhang", "zhao")}
    assert got == expected
    assert all(r["online"] is False for r in env["data"]["recipients"])


async def test_someone_named_twice_or_also_in_a_named_department_is_paged_once(
    office: Office,
) -> None:
    li_tab = await office.tab("li")
    li = await office.person("li")
    sent = await _send(office, "wang", ["li", "li"], body="一次", client_msg_id="twice")
    assert [r["user_id"] for r in sent["recipients"]] == [li.id]
    wang = await office.person("wang")
    env = await office.server.command(
        wang.token,
        "pager.send",
        {
            "to": [li.id, li.id],
            "departments": [office.departments["office"]],
            "body": "也一次",
            "client_msg_id": "dept-too",
        },
    )
    assert env["ok"], env
    ids = [r["user_id"] for r in env["data"]["recipients"]]
    assert ids.count(li.id) == 1 and len(ids) == len(set(ids))
    await li_tab.wait_for(lambda e: e["data"].get("body") == "也一次")
    assert [e["data"]["body"] for e in li_tab.durable("pager.message")] == ["一次", "也一次"]


async def test_sending_is_idempotent_on_client_msg_id(office: Office) -> None:
    li_tab = await office.tab("li")
    first = await _send(office, "wang", ["li"], client_msg_id="same")
    again = await _send(office, "wang", ["li"], client_msg_id="same")
    assert first == again
    await li_tab.wait_for("pager.message")
    await asyncio.sleep(0.2)
    assert len(li_tab.durable("pager.message")) == 1


async def test_receipts_go_delivered_then_read_live_and_match_the_query(office: Office) -> None:
    wang_tab = await office.tab("wang")
    li_tab = await office.tab("li")
    li = await office.person("li")
    sent = await _send(office, "wang", ["li"])
    page = await li_tab.wait_for("pager.message")
    assert (await li_tab.call("sync.ack", {"seq": page["seq"]}))["ok"]
    delivered = await wang_tab.wait_for(
        lambda e: e["type"] == "pager.receipt" and e["data"]["state"] == "delivered"
    )
    assert delivered["data"]["user_id"] == li.id
    assert delivered["data"]["message_id"] == sent["message_id"]
    read = await li_tab.call("pager.read", {"message_ids": [sent["message_id"]]})
    assert read["data"] == {"read": [sent["message_id"]]}
    read_ev = await wang_tab.wait_for(
        lambda e: e["type"] == "pager.receipt" and e["data"]["state"] == "read"
    )
    # What the events said is what a fresh fetch says.
    env = await wang_tab.call("pager.receipts", {"message_id": sent["message_id"]})
    (row,) = env["data"]["recipients"]
    assert row["user_id"] == li.id and row["name"] == "李华"
    assert row["delivered_at"] == delivered["data"]["at"]
    assert row["read_at"] == read_ev["data"]["at"]
    assert row["sms"] is None
    # The reader's other tabs hear it too.
    mine = await li_tab.wait_for(lambda e: e["type"] == "pager.receipt")
    assert mine["data"] == read_ev["data"]
    # Reading again changes nothing and tells nobody.
    again = await li_tab.call("pager.read", {"message_ids": [sent["message_id"]]})
    assert again["data"] == {"read": []}
    await asyncio.sleep(0.2)
    assert len(wang_tab.durable("pager.receipt")) == 2


async def test_reading_before_the_ack_reports_delivered_then_read(office: Office) -> None:
    wang_tab = await office.tab("wang")
    li = await office.person("li")
    sent = await _send(office, "wang", ["li"])
    await office.server.command(li.token, "pager.read", {"message_ids": [sent["message_id"]]})
    await wang_tab.wait_for(lambda e: e["type"] == "pager.receipt" and e["data"]["state"] == "read")
    assert [e["data"]["state"] for e in wang_tab.durable("pager.receipt")] == ["delivered", "read"]


async def test_only_the_sender_sees_receipts(office: Office) -> None:
    sent = await _send(office, "wang", ["li"])
    for account in ("li", "zhao"):
        p = await office.person(account)
        env = await office.server.command(
            p.token, "pager.receipts", {"message_id": sent["message_id"]}
        )
        assert env["error"]["code"] == "not_found", account


async def test_nobody_marks_someone_elses_page_read(office: Office) -> None:
    sent = await _send(office, "wang", ["li"])
    zhao = await office.person("zhao")
    env = await office.server.command(
        zhao.token, "pager.read", {"message_ids": [sent["message_id"]]}
    )
    assert env["data"] == {"read": []}
    wang = await office.person("wang")
    receipts = await office.server.command(
        wang.token, "pager.receipts", {"message_id": sent["message_id"]}
    )
    assert receipts["data"]["recipients"][0]["read_at"] is None


async def test_history_by_peer_keyword_and_pages(office: Office) -> None:
    await _send(office, "wang", ["li"], body="明天上午报送材料", client_msg_id="h1")
    await _send(office, "li", ["wang"], body="收到，马上准备", client_msg_id="h2")
    await _send(office, "zhang", ["li"], body="中午一起吃饭", client_msg_id="h3")
    await _send(office, "wang", ["zhang"], body="材料放在桌上", client_msg_id="h4")
    li = await office.person("li")
    wang = await office.person("wang")

    async def bodies(token: str, **q: object) -> list[str]:
        env = await office.server.command(token, "pager.history", q)
        assert env["ok"], env
        return [m["body"] for m in env["data"]["messages"]]

    assert await bodies(li.token) == ["中午一起吃饭", "收到，马上准备", "明天上午报送材料"]
    assert await bodies(li.token, peer=wang.id) == ["收到，马上准备", "明天上午报送材料"]
    assert await bodies(wang.token, query="材料") == ["材料放在桌上", "明天上午报送材料"]
    first = await office.server.command(li.token, "pager.history", {"limit": 2})
    older = await office.server.command(
        li.token,
        "pager.history",
        {"limit": 2, "before": first["data"]["messages"][-1]["message_id"]},
    )
    assert [m["body"] for m in older["data"]["messages"]] == ["明天上午报送材料"]
    item = first["data"]["messages"][0]
    assert item["my_state"] == "unread" and item["from"]["name"] == "张伟"
    mine = (await office.server.command(wang.token, "pager.history", {"limit": 1}))["data"][
        "messages"
    ][0]
    assert mine["receipts_summary"] == {"total": 1, "delivered": 0, "read": 0}
    assert mine["to"] == [{"id": office.user_ids["zhang"], "name": "张伟"}]


async def test_a_leader_reads_a_subordinates_history_and_it_is_audited(office: Office) -> None:
    await _send(office, "zhao", ["li"], body="报销单已批", client_msg_id="a1")
    wang = await office.person("wang")
    li = await office.person("li")
    env = await office.server.command(wang.token, "pager.history", {"as_user": li.id})
    assert [m["body"] for m in env["data"]["messages"]] == ["报销单已批"]
    audit = await office.server.services.pool.fetchrow(
        "SELECT actor_id, action, subject_id FROM audit_log"
    )
    assert (str(audit["actor_id"]), audit["action"], str(audit["subject_id"])) == (
        wang.id,
        "pager.history.as_user",
        li.id,
    )
    # Not the other way round, not a colleague, and not a delegate.
    for account, target in (("li", "wang"), ("zhang", "li"), ("zhao", "li")):
        p = await office.person(account)
        env = await office.server.command(
            p.token, "pager.history", {"as_user": (await office.person(target)).id}
        )
        assert env["error"]["code"] == "forbidden", (account, target)
    await office.server.command(li.token, "delegates.set", {"user_ids": [office.user_ids["zhang"]]})
    zhang = await office.person("zhang")
    env = await office.server.command(zhang.token, "pager.history", {"as_user": li.id})
    assert env["error"]["code"] == "forbidden"


async def test_replies_thread_and_cannot_point_at_unseen_pages(office: Office) -> None:
    first = await _send(office, "wang", ["li"], body="方案看了吗", client_msg_id="t1")
    reply = await _send(
        office,
        "li",
        ["wang"],
        body="看了，没问题",
        reply_to=first["message_id"],
        client_msg_id="t2",
    )
    wang = await office.person("wang")
    env = await office.server.command(wang.token, "pager.history", {"limit": 1})
    assert env["data"]["messages"][0]["reply_to"] == first["message_id"]
    assert env["data"]["messages"][0]["message_id"] == reply["message_id"]
    zhao = await office.person("zhao")
    env = await office.server.command(
        zhao.token,
        "pager.send",
        {"to": [wang.id], "body": "x", "reply_to": first["message_id"], "client_msg_id": "t3"},
    )
    assert env["error"]["code"] == "not_found"


async def test_bad_pages_are_refused_and_send_nothing(office: Office) -> None:
    li_tab = await office.tab("li")
    wang = await office.person("wang")
    li = await office.person("li")
    cases = [
        ({"to": [li.id], "body": "   ", "client_msg_id": "b1"}, "bad_request"),
        ({"body": "nobody", "client_msg_id": "b2"}, "bad_request"),
        ({"to": ["987654"], "body": "x", "client_msg_id": "b3"}, "not_found"),
        ({"departments": ["987654"], "body": "x", "client_msg_id": "b4"}, "not_found"),
        ({"to": [li.id], "body": "x", "priority": "loud", "client_msg_id": "b5"}, "bad_request"),
        ({"to": [li.id], "body": "x"}, "bad_request"),  # client_msg_id is required
        ({"to": [li.id], "body": "x" * 6000, "client_msg_id": "b6"}, "bad_request"),
        (
            {"to": [li.id], "body": "x", "attachments": ["987654"], "client_msg_id": "b7"},
            "not_found",
        ),
        ({"to": [wang.id], "body": "to myself only", "client_msg_id": "b8"}, "bad_request"),
    ]
    for payload, code in cases:
        env = await office.server.command(wang.token, "pager.send", payload)
        assert env["ok"] is False and env["error"]["code"] == code, (payload, env)
    await asyncio.sleep(0.2)
    assert li_tab.durable() == []
    assert await office.server.services.pool.fetchval("SELECT count(*) FROM pager_messages") == 0


async def _upload(
    office: Office, account: str, data: bytes, name: str, content_type: str = "application/pdf"
) -> tuple[int, dict]:
    return await office.server.upload(
        (await office.person(account)).token, data, name, content_type
    )


async def _download(office: Office, account: str, file_id: str) -> tuple[int, bytes, str]:
    return await office.server.download((await office.person(account)).token, file_id)


async def test_attachments_are_readable_by_uploader_and_recipients_only(office: Office) -> None:
    li_tab = await office.tab("li")
    status, env = await _upload(office, "wang", b"%PDF-1.4 report", "季度报告.pdf")
    assert status == 200, env
    f = env["data"]
    assert (f["name"], f["size"], f["content_type"]) == ("季度报告.pdf", 15, "application/pdf")
    assert len(f["sha256"]) == 64
    # Before it is sent, only the uploader can read it.
    assert (await _download(office, "li", f["file_id"]))[0] == 404
    await _send(
        office, "wang", ["li"], body="请审阅", attachments=[f["file_id"]], client_msg_id="f1"
    )
    page = await li_tab.wait_for("pager.message")
    assert page["data"]["attachments"] == [
        {
            "file_id": f["file_id"],
            "name": "季度报告.pdf",
            "size": 15,
            "content_type": "application/pdf",
        }
    ]
    for account in ("wang", "li"):
        status, body, ctype = await _download(office, account, f["file_id"])
        assert (status, body, ctype) == (200, b"%PDF-1.4 report", "application/pdf"), account
    status, body, _ = await _download(office, "zhao", f["file_id"])
    assert status == 404 and b"%PDF" not in body
    # A recipient may forward what they received; an outsider may not attach it.
    zhao = await office.person("zhao")
    env = await office.server.command(
        zhao.token,
        "pager.send",
        {
            "to": [office.user_ids["chen"]],
            "body": "x",
            "attachments": [f["file_id"]],
            "client_msg_id": "f2",
        },
    )
    assert env["error"]["code"] == "not_found"
    await _send(
        office, "li", ["zhang"], body="转发", attachments=[f["file_id"]], client_msg_id="f3"
    )
    assert (await _download(office, "zhang", f["file_id"]))[0] == 200


async def test_identical_uploads_are_stored_once(office: Office) -> None:
    _, a = await _upload(office, "wang", b"same bytes", "a.txt", "text/plain")
    _, b = await _upload(office, "li", b"same bytes", "b.txt", "text/plain")
    assert a["data"]["file_id"] != b["data"]["file_id"]
    assert a["data"]["sha256"] == b["data"]["sha256"]
    assert await office.server.services.pool.fetchval("SELECT count(*) FROM blobs") == 1


async def test_uploads_over_the_limit_are_too_large(database_url, tmp_path, password_hash) -> None:  # type: ignore[no-untyped-def]
    from tests.support import start_server

    async with start_server(database_url, tmp_path, password_hash, max_file_bytes=1000) as srv:
        office = await Office.create(srv)
        status, env = await _upload(office, "wang", b"x" * 5000, "big.bin")
        assert status == 413 and env["error"]["code"] == "too_large"
        status, env = await _upload(office, "wang", b"x" * 900, "ok.bin")
        assert status == 200
        assert await srv.services.pool.fetchval("SELECT count(*) FROM files") == 1


async def test_uploads_need_a_token_and_a_file(office: Office) -> None:
    status, env = await office.server.post("/api/v1/files", {})
    assert status == 401
    wang = await office.person("wang")
    status, env = await office.server.post("/api/v1/files", {"not": "multipart"}, token=wang.token)
    assert status == 400 and env["error"]["code"] == "bad_request"
    assert (await _download(office, "wang", "abc"))[0] == 404


async def test_prefs_round_trip(office: Office) -> None:
    li = await office.person("li")
    env = await office.server.command(li.token, "prefs.get")
    assert env["data"] == {"sms_fallback": "offline", "quiet_hours": None}
    env = await office.server.command(
        li.token,
        "prefs.set",
        {"sms_fallback": "urgent", "quiet_hours": {"start": "22:00", "end": "07:00"}},
    )
    assert env["data"] == {
        "sms_fallback": "urgent",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }
    env = await office.server.command(li.token, "prefs.set", {"sms_fallback": "off"})
    assert env["data"]["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    env = await office.server.command(li.token, "prefs.set", {"quiet_hours": None})
    assert env["data"] == {"sms_fallback": "off", "quiet_hours": None}
    env = await office.server.command(
        li.token, "prefs.set", {"quiet_hours": {"start": "25:00", "end": "07:00"}}
    )
    assert env["error"]["code"] == "bad_request"


async def test_the_log_gateway_lists_sent_sms_on_the_dev_page(
    database_url, tmp_path, password_hash
) -> None:  # type: ignore[no-untyped-def]
    from tests.support import start_server

    async with start_server(database_url, tmp_path, password_hash, sms_offline_grace_s=0.3) as srv:
        office = await Office.create(srv)
        await _send(office, "wang", ["li"], body="<b>速回电话</b>", client_msg_id="dev1")
        for _ in range(50):
            async with srv.http.get(srv.url + "/dev/sms") as resp:
                page = await resp.text()
            if "速回电话" in page:
                break
            await asyncio.sleep(0.1)
        assert resp.status == 200
        assert "13900000003" in page and "&lt;b&gt;速回电话" in page and "<b>速回" not in page


async def test_pages_sent_together_share_a_transaction_each_with_its_own_answer(
    office: Office,
) -> None:
    """Sends arriving while one is being written are written together (one transaction, one
    statement per step); each still gets its own answer, a key repeated inside the batch
    creates once, and every stream stays gapless."""
    li_tab = await office.tab("li")
    senders = ["wang", "zhang", "zhao", "chen"]
    people = {a: await office.person(a) for a in senders}
    li = office.user_ids["li"]

    async def send(sender: str, key: str) -> dict:
        payload = {"to": [li], "body": f"{sender} {key}", "client_msg_id": key}
        env = await office.server.command(people[sender].token, "pager.send", payload)
        assert env["ok"], env
        return env["data"]

    jobs = [send(senders[i % 4], f"k{i}") for i in range(40)]
    jobs += [send("wang", "k0"), send("zhang", "k1")]  # retries racing their first sends
    answers = await asyncio.gather(*jobs)
    assert answers[40] == answers[0] and answers[41] == answers[1]
    assert len({a["message_id"] for a in answers}) == 40
    await eventually(lambda: len(li_tab.durable("pager.message")) == 40)
    got = li_tab.durable("pager.message")
    assert [e["seq"] for e in got] == list(range(1, 41))
    assert sorted(e["data"]["message_id"] for e in got) == sorted(
        a["message_id"] for a in answers[:40]
    )
    pool = office.server.services.pool
    transactions = await pool.fetchval("SELECT count(DISTINCT xmin::text) FROM pager_messages")
    assert await pool.fetchval("SELECT count(*) FROM pager_messages") == 40
    assert transactions < 40, "sends that arrived together were written together"


async def test_a_page_that_fails_in_a_batch_fails_alone(office: Office) -> None:
    """A batch whose write fails is retried page by page: the others still go out, the bad one
    fails for its sender alone, and nothing of it is stored."""
    li_tab = await office.tab("li")
    services = office.server.services
    good, bad = (
        await office.page("wang", "li", "材料已送到", "good"),
        await office.page("wang", "li", "坏\x00字", "bad"),
    )
    outcomes = await pager._send_batch(services, [bad, good])
    assert isinstance(outcomes[0], Exception)
    assert isinstance(outcomes[1], dict)
    ev = await li_tab.wait_for("pager.message")
    assert ev["seq"] == 1 and ev["data"]["message_id"] == outcomes[1]["message_id"]
    bodies = await services.pool.fetch("SELECT body FROM pager_messages")
    assert [r["body"] for r in bodies] == ["材料已送到"]
    assert (
        await services.pool.fetchval("SELECT count(*) FROM idempotency WHERE client_msg_id = 'bad'")
        == 0
    )


async def test_a_retry_in_a_batch_gets_its_first_answer_and_the_others_go_once(
    office: Office,
) -> None:
    """A batch is one statement that claims every key; one claimed before fails it, and the batch
    goes again claiming only the free keys: the retry is answered as the first time, the new
    page is sent once, nothing is stored twice."""
    li_tab = await office.tab("li")
    services = office.server.services
    first = await _send(office, "wang", ["li"], body="第一次", client_msg_id="r-old")
    await li_tab.wait_for("pager.message")
    outcomes = await pager._send_batch(
        services,
        [
            await office.page("wang", "li", "重发", "r-old"),
            await office.page("wang", "li", "新的", "r-new"),
        ],
    )
    assert msgspec.json.decode(msgspec.json.encode(outcomes[0])) == first
    assert isinstance(outcomes[1], dict) and outcomes[1]["message_id"] != first["message_id"]
    ev = await li_tab.wait_for(lambda e: e["data"].get("message_id") == outcomes[1]["message_id"])
    assert ev["seq"] == 2 and ev["data"]["body"] == "新的"
    await asyncio.sleep(0.2)
    assert len(li_tab.durable("pager.message")) == 2
    bodies = await services.pool.fetch("SELECT body FROM pager_messages ORDER BY id")
    assert [r["body"] for r in bodies] == ["第一次", "新的"]


async def test_a_retry_gets_the_first_answer_even_if_its_check_now_fails(office: Office) -> None:
    """The key decides: a retry whose recipient has since gone (here: named wrongly) is still
    answered as the first send was, and nothing new is created."""
    first = await _send(office, "wang", ["li"], client_msg_id="retry-1")
    wang = await office.person("wang")
    payload = {"to": ["999999"], "body": "x", "client_msg_id": "retry-1"}
    again = await office.server.command(wang.token, "pager.send", payload)
    assert again == {"ok": True, "data": first}
    fresh = await office.server.command(wang.token, "pager.send", {**payload, "client_msg_id": "n"})
    assert fresh["ok"] is False and fresh["error"]["code"] == "not_found"
    assert await office.server.services.pool.fetchval("SELECT count(*) FROM pager_messages") == 1
