"""Official documents (公文) end to end over the public API: an issued document runs its approval,
then is numbered, circulated with receipts and filed, the drafter told of each step once and in
order; numbers are gapless per prefix and year, also under concurrent approvals and when a step
runs twice; a rejection or withdrawal ends it; retries create nothing new; bad input changes
nothing; a received document ends in handling tasks for its departments; strangers see
nothing."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from handlers import documents
from server.jobs import GiveUp
from storage import documents as dq
from tests.support import ADMIN, Client, Office, eventually

_keys = itertools.count()
YEAR = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).year

# Added to the test office: a document officer (文书), an archivist, and the office's deputy.
STAFF = [
    ("sun", "孙丽", "office", "文书", ["document_officer"], "chen"),
    ("zhou", "周档", "office", "档案员", ["archivist"], "chen"),
]


async def _call(office: Office, who: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A command as `who`; waits out the per-user rate limit (these tests poll as fast as they
    can, a person does not)."""
    p = await office.person(who)
    while True:
        env = await office.server.command(p.token, name, payload)
        if env["ok"] or env["error"]["code"] != "rate_limited":
            return env
        await asyncio.sleep(env["error"]["details"]["retry_after_s"])


async def _ok(office: Office, who: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    env = await _call(office, who, name, payload)
    assert env["ok"], env
    return dict(env["data"])


async def _upload(office: Office, who: str, text: str = "正文") -> str:
    p = await office.person(who)
    status, env = await office.server.upload(p.token, text.encode(), "正文.txt", "text/plain")
    assert status == 200 and env["ok"], env
    return str(env["data"]["file_id"])


async def _issue(office: Office, who: str = "li", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "关于做好年度预算编制工作的通知",
        "client_msg_id": f"doc-{next(_keys)}",
        "signer": office.user_ids["chen"],
        **kw,
    }
    if "file_ids" not in body:
        body["file_ids"] = [await _upload(office, who)]
    if "to" not in body and "departments" not in body:
        body["to"] = [office.user_ids["zhang"]]
        body["departments"] = [office.departments["finance"]]
    return await _ok(office, who, "document.issue", body)


async def _account(office: Office, user_id: str) -> str:
    return {v: k for k, v in office.user_ids.items()}.get(user_id, ADMIN)


async def _open_tasks(office: Office, instance_id: str) -> tuple[str, list[dict[str, Any]]]:
    got = await _ok(office, ADMIN, "workflow.get", {"instance_id": instance_id})
    inst = got["instance"]
    return inst["state"], [t for t in inst["tasks"] if t["state"] == "open"]


async def _act(
    office: Office, instance_id: str, action: str = "approve", comment: str = "同意", steps: int = 9
) -> str:
    """Act on the open tasks, each as its assignee, `steps` times at most; the state after."""
    state = "running"
    for _ in range(steps):
        state, open_ = await _open_tasks(office, instance_id)
        if state != "running" or not open_:
            return state
        for t in open_:
            who = await _account(office, t["assignee"]["id"])
            await _ok(
                office,
                who,
                "workflow.act",
                {"task_id": t["task_id"], "action": action, "comment": comment},
            )
    state, _ = await _open_tasks(office, instance_id)
    return state


async def _document(office: Office, who: str, document_id: str) -> dict[str, Any]:
    return dict((await _ok(office, who, "document.get", {"document_id": document_id}))["document"])


async def _state_is(office: Office, document_id: str, state: str, timeout: float = 10) -> None:
    async def reached() -> bool:
        return (await _document(office, ADMIN, document_id))["state"] == state

    await eventually(reached, timeout=timeout)


def _of(tab: Client, type_: str, document_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in tab.durable(type_) if e["data"]["document_id"] == document_id]


async def test_an_issued_document_is_approved_numbered_circulated_and_filed(
    office: Office,
) -> None:
    await office.add_people(STAFF)
    li_tab = await office.tab("li")
    zhao_tab = await office.tab("zhao")
    issued = await _issue(office)
    assert (issued["state"], issued["prefix"]) == ("approving", "办发")
    doc_id = issued["document_id"]
    await li_tab.wait_for(lambda e: e["type"] == "document.updated")

    # 核稿 (wang, head of 综合科) → 审核 (sun, document officer) → 签发 (chen, picked).
    _, (task,) = await _open_tasks(office, issued["instance_id"])
    assert task["assignee"]["name"] == "王明" and task["step"] == "部门负责人核稿"
    assert await _act(office, issued["instance_id"]) == "approved"
    got = await _ok(office, "li", "workflow.get", {"instance_id": issued["instance_id"]})
    signers = [t["assignee"]["name"] for t in got["instance"]["tasks"]]
    assert signers == ["王明", "孙丽", "陈建国"]

    filed = await li_tab.wait_for("document.filed", timeout=15)
    number = f"办发〔{YEAR}〕1号"
    steps = [
        e["type"]
        for e in li_tab.durable()
        if e["type"].startswith("document.") and e["data"]["document_id"] == doc_id
    ]
    assert steps == [
        "document.updated",
        "document.numbered",
        "document.circulated",
        "document.filed",
    ]
    (numbered,) = _of(li_tab, "document.numbered", doc_id)
    (circulated,) = _of(li_tab, "document.circulated", doc_id)
    assert numbered["number"] == number and circulated["recipients_count"] == 2
    assert filed["data"]["code"]

    # The recipients got it as a circulation, its title carrying the number, the file attached.
    received = await zhao_tab.wait_for("circulation.received")
    assert number in received["data"]["title"]
    assert received["data"]["circulation_id"] == circulated["circulation_id"]
    opened = await _ok(
        office, "zhao", "circulation.open", {"circulation_id": circulated["circulation_id"]}
    )
    (attached,) = opened["attachments"]
    zhao = await office.person("zhao")
    status, data, _ = await office.server.download(zhao.token, attached["file_id"])
    assert (status, data) == (200, "正文".encode())
    await _ok(
        office,
        "zhao",
        "circulation.confirm",
        {"circulation_id": circulated["circulation_id"], "comment": "已阅"},
    )

    # A fresh fetch says what the events said.
    doc = await _document(office, "li", doc_id)
    assert (doc["state"], doc["number"], doc["seq"], doc["year"]) == ("filed", number, 1, YEAR)
    assert doc["circulation_id"] == circulated["circulation_id"]
    assert doc["receipts"] == {"unopened": 1, "opened": 0, "confirmed": 1}
    assert (doc["archive_id"], doc["archive_code"]) == (
        filed["data"]["archive_id"],
        filed["data"]["code"],
    )
    assert doc["files"][0]["name"] == "正文.txt"
    assert doc["recipients"] == {
        "users": [office.user_ids["zhang"]],
        "departments": [office.departments["finance"]],
    }
    conn = await asyncpg.connect(office.server.services.config.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT code, title FROM archive_records WHERE document_id = $1", int(doc_id)
        )
        assert row is not None and row["code"] == doc["archive_code"] and number in row["title"]
    finally:
        await conn.close()


async def test_numbers_follow_the_department_prefix_gapless_per_prefix(office: Office) -> None:
    await office.add_people(STAFF)
    # 综合科 has none of its own: its parent 办公室's applies; 财务科 has its own.
    await _ok(
        office,
        ADMIN,
        "document.prefix.set",
        {"department_id": office.departments["office"], "prefix": "江办发"},
    )
    await _ok(
        office,
        ADMIN,
        "document.prefix.set",
        {"department_id": office.departments["finance"], "prefix": "江财发"},
    )
    env = await _call(office, "li", "document.prefix.set", {"prefix": "乱发"})
    assert env["error"]["code"] == "forbidden"
    mine = await _ok(office, "li", "document.prefixes", {})
    assert mine["mine"] == "江办发"

    first = await _issue(office, "li")
    second = await _issue(office, "li")
    other = await _issue(office, "zhao", to=[office.user_ids["li"]])
    assert (first["prefix"], other["prefix"]) == ("江办发", "江财发")
    for issued in (second, first, other):  # approved out of order: numbered in approval order
        assert await _act(office, issued["instance_id"]) == "approved"
        await _state_is(office, issued["document_id"], "filed", timeout=15)
    numbers = [
        (await _document(office, ADMIN, d["document_id"]))["number"] for d in (second, first, other)
    ]
    assert numbers == [f"江办发〔{YEAR}〕1号", f"江办发〔{YEAR}〕2号", f"江财发〔{YEAR}〕1号"]

    # A prefix chosen at issue must be one the administrator configured, and the drafter's own
    # unless they are a document officer or an administrator.
    env = await _call(
        office,
        "li",
        "document.issue",
        {
            "title": "试",
            "file_ids": [await _upload(office, "li")],
            "to": [office.user_ids["zhang"]],
            "prefix": "私发",
            "client_msg_id": "bad-prefix",
        },
    )
    assert env["error"]["code"] == "bad_request"
    env = await _call(
        office,
        "li",
        "document.issue",
        {
            "title": "试",
            "file_ids": [await _upload(office, "li")],
            "to": [office.user_ids["zhang"]],
            "prefix": "江财发",
            "client_msg_id": "foreign-prefix",
        },
    )
    assert env["error"]["code"] == "forbidden"
    chosen = await _issue(office, "sun", prefix="江财发")
    assert chosen["prefix"] == "江财发"


async def test_concurrent_approvals_get_distinct_gapless_numbers(office: Office) -> None:
    await office.add_people(STAFF)
    issued = [await _issue(office, "li") for _ in range(6)]
    # Up to the last step (签发, chen) for each, then chen signs all six at once.
    finals = []
    for d in issued:
        for _ in range(2):
            _, open_ = await _open_tasks(office, d["instance_id"])
            for t in open_:
                who = await _account(office, t["assignee"]["id"])
                await _ok(
                    office, who, "workflow.act", {"task_id": t["task_id"], "action": "approve"}
                )
        _, (last,) = await _open_tasks(office, d["instance_id"])
        assert last["assignee"]["name"] == "陈建国"
        finals.append(last["task_id"])
    chen = await office.person("chen")
    answers = await asyncio.gather(
        *(
            office.server.command(chen.token, "workflow.act", {"task_id": t, "action": "approve"})
            for t in finals
        )
    )
    assert all(a["ok"] for a in answers), answers
    for d in issued:
        await _state_is(office, d["document_id"], "filed", timeout=20)
    seqs = sorted([(await _document(office, ADMIN, d["document_id"]))["seq"] for d in issued])
    assert seqs == [1, 2, 3, 4, 5, 6]


async def test_the_numbering_step_run_concurrently_and_twice_numbers_each_once(
    office: Office,
) -> None:
    """The job itself, several at once in transactions of their own, each document's twice (an
    at-least-once delivery): every document gets one number, and they are 1..n."""
    await office.add_people(STAFF)
    services = office.server.services
    issued = [await _issue(office, "li") for _ in range(5)]
    pool = services.pool
    # Approve in the database only (no workflow.finished yet), then run the handler directly.
    ids = [int(d["instance_id"]) for d in issued]
    await pool.execute(
        "UPDATE workflow_instances SET state = 'approved' WHERE id = ANY($1::bigint[])", ids
    )

    async def run(instance_id: int) -> None:
        event = {
            "data": {"instance_id": str(instance_id), "key": "document_issue", "state": "approved"}
        }
        async with services.stream.transaction() as tx:
            await documents.approval_end(services, tx, [event])

    await asyncio.gather(*(run(i) for i in ids + ids))
    docs = [await dq.get(pool, int(d["document_id"])) for d in issued]
    assert sorted(d.seq for d in docs if d and d.seq) == [1, 2, 3, 4, 5]
    assert (
        await pool.fetchval(
            "SELECT last FROM document_counters WHERE prefix = '办发' AND year = $1", YEAR
        )
        == 5
    )
    li_tab = await office.tab("li", last_seq=0)
    await eventually(lambda: len(li_tab.durable("document.filed")) == 5, timeout=20)
    assert len(li_tab.durable("document.numbered")) == 5
    assert len(li_tab.durable("document.circulated")) == 5


async def test_a_rejected_or_withdrawn_document_ends_without_a_number(office: Office) -> None:
    await office.add_people(STAFF)
    li_tab = await office.tab("li")
    rejected = await _issue(office, "li")
    assert await _act(office, rejected["instance_id"], "reject", "重写") == "rejected"
    ev = await li_tab.wait_for(
        lambda e: e["type"] == "document.updated" and e["data"]["state"] == "rejected"
    )
    assert ev["data"]["document_id"] == rejected["document_id"]
    doc = await _document(office, "li", rejected["document_id"])
    assert (doc["state"], doc["number"], doc["circulation_id"]) == ("rejected", None, None)

    withdrawn = await _issue(office, "li")
    await _ok(office, "li", "workflow.withdraw", {"instance_id": withdrawn["instance_id"]})
    await _state_is(office, withdrawn["document_id"], "withdrawn")

    # No number was spent on them: the next approved one is the first.
    approved = await _issue(office, "li")
    assert await _act(office, approved["instance_id"]) == "approved"
    await _state_is(office, approved["document_id"], "filed", timeout=15)
    assert (await _document(office, "li", approved["document_id"]))["seq"] == 1


async def test_a_retried_issue_is_the_same_document_with_one_approval(office: Office) -> None:
    await office.add_people(STAFF)
    file_id = await _upload(office, "li")
    body = {
        "title": "关于召开全体会议的通知",
        "file_ids": [file_id],
        "to": [office.user_ids["zhang"]],
        "client_msg_id": "issue-once",
    }
    first = await _ok(office, "li", "document.issue", body)
    again = await _ok(office, "li", "document.issue", body)
    assert again == first
    registered = {
        "title": "来文",
        "file_ids": [file_id],
        "from_org": "市财政局",
        "client_msg_id": "r1",
    }
    one = await _ok(office, "li", "document.receive", registered)
    assert await _ok(office, "li", "document.receive", registered) == one
    pool = office.server.services.pool
    assert await pool.fetchval("SELECT count(*) FROM documents") == 2
    assert await pool.fetchval("SELECT count(*) FROM workflow_instances") == 2
    # Without a signer, 签发 goes to an administrator (its on_empty rule).
    assert await _act(office, first["instance_id"]) == "approved"
    got = await _ok(office, ADMIN, "workflow.get", {"instance_id": first["instance_id"]})
    assert got["instance"]["tasks"][-1]["assignee"]["name"] == "管理员"


async def test_bad_input_is_refused_and_changes_nothing(office: Office) -> None:
    await office.add_people(STAFF)
    mine = await _upload(office, "li")
    theirs = await _upload(office, "zhao")
    base = {
        "title": "通知",
        "file_ids": [mine],
        "to": [office.user_ids["zhang"]],
        "client_msg_id": "x",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"file_ids": []}, "bad_request"),
        ({"file_ids": [theirs]}, "not_found"),
        ({"file_ids": ["999999"]}, "not_found"),
        ({"title": "   "}, "bad_request"),
        ({"title": ""}, "bad_request"),
        ({"to": ["999999"]}, "not_found"),
        ({"to": [], "departments": ["999999"]}, "not_found"),
        ({"to": []}, "bad_request"),
        ({"to": [office.user_ids["li"]]}, "bad_request"),  # only the drafter: nobody
        ({"signer": "999999"}, "bad_request"),
        ({"prefix": "没有"}, "bad_request"),
        ({"to": ["abc"]}, "bad_request"),
        ({"surprise": 1}, "bad_request"),
    ]
    for n, (change, code) in enumerate(cases):
        env = await _call(
            office, "li", "document.issue", {**base, **change, "client_msg_id": f"b{n}"}
        )
        assert not env["ok"] and env["error"]["code"] == code, (change, env)
    received = {"title": "来文", "file_ids": [mine], "from_org": "市财政局"}
    for change, code in [
        ({"from_org": " "}, "bad_request"),
        ({"departments": ["999999"]}, "not_found"),
        ({"leader": "999999"}, "bad_request"),
        ({"file_ids": [theirs]}, "not_found"),
    ]:
        env = await _call(office, "li", "document.receive", {**received, **change})
        assert not env["ok"] and env["error"]["code"] == code, (change, env)
    pool = office.server.services.pool
    assert await pool.fetchval("SELECT count(*) FROM documents") == 0
    assert await pool.fetchval("SELECT count(*) FROM workflow_instances") == 0
    env = await _call(office, "li", "document.list", {"box": "everything"})
    assert env["error"]["code"] == "bad_request"


async def test_a_received_document_ends_in_tasks_for_its_handling_departments(
    office: Office,
) -> None:
    await office.add_people(STAFF)
    sun_tab = await office.tab("sun")
    wang_tab = await office.tab("wang")
    scan = await _upload(office, "sun", "市财政局来文")
    received = await _ok(
        office,
        "sun",
        "document.receive",
        {
            "title": "关于下达年度预算指标的通知",
            "file_ids": [scan],
            "from_org": "市财政局",
            "departments": [office.departments["general"]],
            "leader": office.user_ids["chen"],
            "client_msg_id": "in-1",
        },
    )
    doc_id = received["document_id"]
    # 登记审核 (the only document officer registered it: an administrator checks) → 批示 (chen).
    for _ in range(3):
        _, open_ = await _open_tasks(office, received["instance_id"])
        if [t["step"] for t in open_] == ["领导批示"]:
            break
        for t in open_:
            who = await _account(office, t["assignee"]["id"])
            await _ok(office, who, "workflow.act", {"task_id": t["task_id"], "action": "approve"})
    (leader_task,) = open_
    assert leader_task["assignee"]["name"] == "陈建国"
    # The leader routes it (also to 财务科, which has no leader: its parent's, chen, handles).
    env = await _call(office, "zhao", "document.route", {"document_id": doc_id, "departments": []})
    assert env["error"]["code"] == "not_found"
    await _ok(
        office,
        "chen",
        "document.route",
        {
            "document_id": doc_id,
            "departments": [office.departments["general"], office.departments["finance"]],
        },
    )
    todo = await _ok(office, "chen", "document.list", {"box": "todo"})
    assert [d["document_id"] for d in todo["items"]] == [doc_id]
    await _ok(
        office,
        "chen",
        "workflow.act",
        {"task_id": leader_task["task_id"], "action": "approve", "comment": "请综合科牵头落实"},
    )
    await sun_tab.wait_for(
        lambda e: e["type"] == "document.updated" and e["data"]["state"] == "handling", timeout=10
    )
    assigned = await wang_tab.wait_for("task.assigned")
    task = await _ok(office, "wang", "task.get", {"task_id": assigned["data"]["task_id"]})
    assert "请综合科牵头落实" in task["task"]["body"] and "市财政局" in task["task"]["body"]
    assert task["task"]["from"]["name"] == "陈建国"
    # Those handling it may read the document's files; others still may not.
    wang, zhao = await office.person("wang"), await office.person("zhao")
    assert (await office.server.download(wang.token, scan))[0] == 200
    assert (await office.server.download(zhao.token, scan))[0] == 404

    doc = await _document(office, "wang", doc_id)
    assert (doc["state"], doc["instruction"], doc["from_org"]) == (
        "handling",
        "请综合科牵头落实",
        "市财政局",
    )
    handling = {h["department"]: h for h in doc["handling"]}
    assert set(handling) == {"综合科", "财务科"}
    assert [a["name"] for a in handling["综合科"]["assignees"]] == ["王明"]
    assert [a["name"] for a in handling["财务科"]["assignees"]] == ["陈建国"]
    incoming = await _ok(office, "wang", "document.list", {"box": "incoming"})
    assert [d["document_id"] for d in incoming["items"]] == [doc_id]

    for who, h in (("wang", handling["综合科"]), ("chen", handling["财务科"])):
        await _ok(office, who, "task.complete", {"task_id": h["task_id"], "note": "已落实"})
    await sun_tab.wait_for(
        lambda e: e["type"] == "document.updated" and e["data"]["state"] == "handled", timeout=10
    )
    doc = await _document(office, "sun", doc_id)
    assert doc["state"] == "handled" and all(h["done"] for h in doc["handling"])
    assert [a["state"] for h in doc["handling"] for a in h["assignees"]] == ["done", "done"]


async def test_a_received_document_for_reading_only_is_handled_at_the_instruction(
    office: Office,
) -> None:
    await office.add_people(STAFF)
    received = await _ok(
        office,
        "sun",
        "document.receive",
        {
            "title": "情况通报",
            "file_ids": [await _upload(office, "sun")],
            "from_org": "省政府办公厅",
        },
    )
    assert await _act(office, received["instance_id"], comment="阅") == "approved"
    await _state_is(office, received["document_id"], "handled")
    assert (await _document(office, "sun", received["document_id"]))["handling"] == []


async def test_only_those_concerned_see_a_document(office: Office) -> None:
    await office.add_people(STAFF)
    issued = await _issue(office, "li", to=[office.user_ids["zhang"]], departments=[])
    doc_id = issued["document_id"]
    for stranger in ("zhao", "zhang", "zhou"):  # zhang only once it is circulated
        env = await _call(office, stranger, "document.get", {"document_id": doc_id})
        assert env["error"]["code"] == "not_found", (stranger, env)
    env = await _call(office, "li", "document.get", {"document_id": "999999"})
    assert env["error"]["code"] == "not_found"
    assert (await _document(office, "wang", doc_id))["state"] == "approving"  # an approver
    assert (await _document(office, ADMIN, doc_id))["state"] == "approving"
    drafts = await _ok(office, "li", "document.list", {"box": "drafts"})
    assert [d["document_id"] for d in drafts["items"]] == [doc_id]
    todo = await _ok(office, "wang", "document.list", {"box": "todo"})
    assert [d["document_id"] for d in todo["items"]] == [doc_id]

    assert await _act(office, issued["instance_id"]) == "approved"
    await _state_is(office, doc_id, "filed", timeout=15)
    assert (await _document(office, "zhang", doc_id))["number"] == f"办发〔{YEAR}〕1号"
    env = await _call(office, "zhao", "document.get", {"document_id": doc_id})
    assert env["error"]["code"] == "not_found"
    incoming = await _ok(office, "zhang", "document.list", {"box": "incoming"})
    assert [d["document_id"] for d in incoming["items"]] == [doc_id]
    assert (await _ok(office, "li", "document.list", {"box": "drafts"}))["items"] == []
    assert [d["state"] for d in (await _ok(office, "li", "document.list", {}))["items"]] == [
        "filed"
    ]


async def test_what_was_accepted_at_issue_goes_out_although_the_drafter_lost_it_meanwhile(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """li issues a file zhang circulated to him; during the approval zhang recalls it (li may
    no longer read it) and the recipients' cap is lowered below the document's: the document
    is still circulated with its file to all of them and filed. Its delivery cannot be
    recalled."""
    await office.add_people(STAFF)
    fid = await _upload(office, "zhang", "来自张伟")
    c = await _ok(
        office,
        "zhang",
        "circulation.create",
        {
            "title": "材料",
            "body": "x",
            "to": [office.user_ids["li"]],
            "attachments": [fid],
            "client_msg_id": "c-1",
        },
    )
    issued = await _issue(office, file_ids=[fid])
    await _ok(office, "zhang", "circulation.recall", {"circulation_id": c["circulation_id"]})
    li = await office.person("li")
    assert (await office.server.download(li.token, fid))[0] == 404
    monkeypatch.setattr(documents.circulation, "MAX_RECIPIENTS", 1)
    assert await _act(office, issued["instance_id"]) == "approved"
    await _state_is(office, issued["document_id"], "filed", timeout=15)
    doc = await _document(office, ADMIN, issued["document_id"])
    assert doc["receipts"] == {"unopened": 2, "opened": 0, "confirmed": 0}
    zhao = await office.person("zhao")
    assert (await office.server.download(zhao.token, fid))[0] == 200

    env = await _call(office, "li", "circulation.recall", {"circulation_id": doc["circulation_id"]})
    assert env["error"]["code"] == "conflict"
    opened = await _ok(
        office, "zhao", "circulation.open", {"circulation_id": doc["circulation_id"]}
    )
    assert opened["recalled"] is False


async def test_a_step_that_can_never_be_done_leaves_the_document_failed_and_says_so(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    await office.add_people(STAFF)

    async def broken(*args: Any, **kw: Any) -> tuple[int, int]:
        raise GiveUp("the circulation cannot be made")

    monkeypatch.setattr(documents.circulation, "create_circulation", broken)
    li_tab = await office.tab("li")
    issued = await _issue(office)
    doc_id = issued["document_id"]
    assert await _act(office, issued["instance_id"]) == "approved"
    failed = await li_tab.wait_for(
        lambda e: e["type"] == "document.updated" and e["data"]["state"] == "failed", timeout=15
    )
    assert failed["data"]["document_id"] == doc_id
    assert failed["data"]["failed_step"] == "circulate"
    doc = await _document(office, "li", doc_id)
    assert doc["state"] == "failed" and doc["number"] == f"办发〔{YEAR}〕1号"
    assert doc["failure"]["step"] == "circulate"
    assert "cannot be made" in doc["failure"]["error"]
    assert doc["circulation_id"] is None and doc["archive_id"] is None


async def test_only_the_departments_prefix_unless_an_officer_or_administrator(
    office: Office,
) -> None:
    await office.add_people(STAFF)
    await _ok(
        office,
        ADMIN,
        "document.prefix.set",
        {"department_id": office.departments["finance"], "prefix": "财发"},
    )
    env = await _call(
        office,
        "li",  # in 综合科: the default 办发 applies to him
        "document.issue",
        {
            "title": "借用财务科的代字",
            "file_ids": [await _upload(office, "li")],
            "to": [office.user_ids["zhang"]],
            "prefix": "财发",
            "client_msg_id": "other-prefix",
        },
    )
    assert env["error"]["code"] == "forbidden"
    assert (await _issue(office, "li", prefix="办发"))["prefix"] == "办发"  # his own, named
    assert (await _issue(office, "sun", prefix="财发"))["prefix"] == "财发"  # a document officer
    assert (await _issue(office, "zhao", prefix="财发"))["prefix"] == "财发"  # finance's own


async def test_a_document_is_filed_under_its_numbers_year(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbered on 31 December, filed on 1 January: the record is the number's year's."""
    await office.add_people(STAFF)
    years = iter([YEAR - 1])

    def local_year(services: Any) -> int:
        return next(years, YEAR)

    monkeypatch.setattr(documents.archive, "local_year", local_year)
    issued = await _issue(office)
    assert await _act(office, issued["instance_id"]) == "approved"
    await _state_is(office, issued["document_id"], "filed", timeout=15)
    doc = await _document(office, ADMIN, issued["document_id"])
    assert doc["number"] == f"办发〔{YEAR - 1}〕1号"
    assert f"·{YEAR - 1}-D30-" in doc["archive_code"]


async def test_an_archivist_files_a_document_only_as_it_is(office: Office) -> None:
    """archive.file's document_id: a document that exists, has its number, is not filed yet,
    with its own files."""
    await office.add_people(STAFF)
    issued = await _issue(office)
    doc_id = issued["document_id"]
    own = (await _document(office, ADMIN, doc_id))["files"][0]["file_id"]
    other = await _upload(office, "zhou", "无关")

    async def file(document_id: str, file_id: str) -> dict[str, Any]:
        body = {"title": "归档", "file_ids": [file_id], "retention": "D30"}
        return await _call(office, "zhou", "archive.file", {**body, "document_id": document_id})

    assert (await file("987654", other))["error"]["code"] == "not_found"
    assert (await file(doc_id, other))["error"]["code"] == "conflict"  # no number yet
    async with office.server.services.pool.acquire() as conn, conn.transaction():
        await dq.number(conn, int(doc_id), YEAR)  # numbered, not yet filed
    env = await file(doc_id, other)
    assert env["error"]["code"] == "bad_request"  # not its file
    zhou = await office.person("zhou")
    await _ok(
        office,
        "li",
        "circulation.create",
        {  # zhou may now share li's file
            "title": "原件",
            "body": "x",
            "to": [office.user_ids["zhou"]],
            "attachments": [own],
            "client_msg_id": "own-1",
        },
    )
    assert (await office.server.download(zhou.token, own))[0] == 200
    filed = await file(doc_id, own)
    assert filed["ok"], filed
    assert f"·{YEAR}-D30-" in filed["data"]["code"]
    again = await file(doc_id, own)
    assert again["error"]["code"] == "conflict"
    hits = (await _ok(office, "zhou", "archive.search", {"query": f"办发〔{YEAR}〕1号"}))["hits"]
    assert [h["archive_id"] for h in hits] == [filed["data"]["archive_id"]]
