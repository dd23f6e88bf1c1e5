"""The archive (档案) end to end: an archivist files records that get gapless codes and keep their
files' SHA-256, documents are filed once, all staff search the catalogue, a borrower reads a
record's files while an approved loan runs and not after it ends, retention's end brings the
archivists an appraisal to-do, and destruction runs through an approval into a hash-chained
register that finds an edit made in the database."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers import archive
from tests.support import ADMIN, Office, eventually

YEAR = datetime.now(ZoneInfo("Asia/Shanghai")).year


async def _error(office: Office, who: str, name: str, payload: dict[str, Any]) -> str:
    env = await office.call(who, name, payload)
    assert not env["ok"], env
    return str(env["error"]["code"])


# Two archivists in 办公室 (its head: 陈建国).
ARCHIVISTS = [
    ("sun", "孙兰", "office", "档案员", ["archivist"], "chen"),
    ("qian", "钱进", "office", "档案员", ["archivist"], "chen"),
]


async def _upload(office: Office, who: str, data: bytes, name: str = "件.txt") -> str:
    p = await office.person(who)
    status, env = await office.server.upload(p.token, data, name, "text/plain")
    assert status == 200 and env["ok"], env
    return str(env["data"]["file_id"])


async def _filed(
    office: Office, title: str = "关于年度预算的报告", retention: str = "D30", **kw: Any
) -> dict[str, Any]:
    file_id = await _upload(office, "sun", f"{title} 正文".encode())
    body = {"title": title, "file_ids": [file_id], "retention": retention, **kw}
    return await office.ok("sun", "archive.file", body)


async def _download(office: Office, who: str, file_id: str) -> int:
    p = await office.person(who)
    status, _, _ = await office.server.download(p.token, file_id)
    return status


async def _act(
    office: Office, applicant: str, instance_id: str, who: str, action: str = "approve"
) -> dict[str, Any]:
    """`who` acts on their open task of the request."""
    got = await office.ok(applicant, "workflow.get", {"instance_id": instance_id})
    task = next(
        t
        for t in got["instance"]["tasks"]
        if t["state"] == "open" and t["assignee"]["id"] == office.user_ids[who]
    )
    return await office.ok(who, "workflow.act", {"task_id": task["task_id"], "action": action})


async def _records(office: Office) -> int:
    return int(await office.server.services.pool.fetchval("SELECT count(*) FROM archive_records"))


# --- filing --------------------------------------------------------------------------------------
async def test_filing_gives_a_code_and_keeps_each_files_sha256(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    sun_tab = await office.tab("sun")
    first, second = b"first file", "第二份 材料".encode()
    ids = [await _upload(office, "sun", first, "a.txt"), await _upload(office, "sun", second)]
    filed = await office.ok(
        "sun",
        "archive.file",
        {"title": "办公室会议纪要", "file_ids": ids, "retention": "D30"},
    )
    assert filed["code"] == f"J001-文书·{YEAR}-D30-0001"
    assert [f["sha256"] for f in filed["files"]] == [
        hashlib.sha256(first).hexdigest(),
        hashlib.sha256(second).hexdigest(),
    ]
    ev = await sun_tab.wait_for("archive.filed")
    assert ev["data"] == {
        "archive_id": filed["archive_id"],
        "code": filed["code"],
        "title": "办公室会议纪要",
        "document_id": None,
    }

    got = (await office.ok("sun", "archive.get", {"archive_id": filed["archive_id"]}))["record"]
    assert (got["code"], got["state"], got["retention"], got["year"]) == (
        filed["code"],
        "kept",
        "D30",
        YEAR,
    )
    assert got["filed_by"]["name"] == "孙兰"
    assert [(f["file_id"], f["name"]) for f in got["files"]] == [
        (ids[0], "a.txt"),
        (ids[1], "件.txt"),
    ]
    assert got["files"] == filed["files"]
    assert got["retention_ends_at"].startswith(f"{YEAR + 30}-12-31T16:00:00")  # 1 Jan, Beijing

    # The next of the same prefix is 0002; another retention or category starts at 0001.
    assert (await _filed(office, "二号"))["code"] == f"J001-文书·{YEAR}-D30-0002"
    assert (await _filed(office, "永久", "Y"))["code"] == f"J001-文书·{YEAR}-Y-0001"
    assert (await _filed(office, "照片", category="照片"))["code"] == f"J001-照片·{YEAR}-D30-0001"
    assert (await _filed(office, "旧档", year=2001))["code"] == "J001-文书·2001-D30-0001"


async def test_only_archivists_file_and_only_files_they_may_read(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    lis = await _upload(office, "li", b"li's own")
    body = {"title": "材料", "file_ids": [lis], "retention": "D10"}
    assert await _error(office, "li", "archive.file", body) == "forbidden"
    assert await _error(office, "sun", "archive.file", body) == "not_found"  # not sun's to read
    # An administrator files too.
    admin = await office.server.login(ADMIN)
    status, env = await office.server.upload(admin["access_token"], b"admin's", "b.txt")
    assert status == 200
    admins = {**body, "file_ids": [env["data"]["file_id"]]}
    assert (await office.server.command(admin["access_token"], "archive.file", admins))["ok"]
    assert await _records(office) == 1


async def test_concurrent_filings_get_distinct_gapless_numbers(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    file_id = await _upload(office, "sun", b"shared")
    answers = await asyncio.gather(
        *(
            office.call(
                "sun",
                "archive.file",
                {"title": f"并发{i}", "file_ids": [file_id], "retention": "D10"},
            )
            for i in range(12)
        )
    )
    assert all(a["ok"] for a in answers), answers
    numbers = sorted(int(a["data"]["code"].rsplit("-", 1)[1]) for a in answers)
    assert numbers == list(range(1, 13))


async def _document(office: Office, file_id: str) -> str:
    """A document li issues (in its approval: nothing files it meanwhile)."""
    issued = await office.ok(
        "li",
        "document.issue",
        {
            "title": "关于做好档案工作的通知",
            "file_ids": [file_id],
            "to": [office.user_ids["zhang"]],
            "client_msg_id": f"doc-{file_id}",
        },
    )
    return str(issued["document_id"])


async def test_a_document_is_filed_once(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    services = office.server.services
    li_tab = await office.tab("li")
    file_id = int(await _upload(office, "li", b"the document"))
    document_id = await _document(office, str(file_id))
    results = []
    for _ in range(2):
        async with services.stream.transaction() as tx:
            results.append(
                await archive.file_document(
                    services,
                    tx,
                    document_id=int(document_id),
                    title="江州市人民政府办公室关于做好档案工作的通知",
                    file_ids=[file_id],
                    filed_by=int(office.user_ids["li"]),
                    year=None,
                )
            )
    assert results[0] == results[1]
    archive_id, code = results[0]
    assert code == f"J001-文书·{YEAR}-D30-0001"
    assert await _records(office) == 1
    ev = await li_tab.wait_for("archive.filed")
    assert ev["data"]["document_id"] == document_id
    assert len(li_tab.durable("archive.filed")) == 1

    # Filed by hand with the same document: a conflict naming the first record.
    other = await _upload(office, "sun", b"copy")
    env = await office.call(
        "sun",
        "archive.file",
        {"title": "再次", "file_ids": [other], "retention": "D30", "document_id": document_id},
    )
    assert env["error"]["code"] == "conflict"
    assert env["error"]["details"] == {"archive_id": str(archive_id), "code": code}
    assert await _records(office) == 1
    # A document that does not exist is not filed.
    env = await office.call(
        "sun",
        "archive.file",
        {"title": "无", "file_ids": [other], "retention": "D30", "document_id": "987654"},
    )
    assert env["error"]["code"] == "not_found"


# --- the catalogue ---------------------------------------------------------------------------------
async def test_all_staff_search_the_catalogue_but_only_the_allowed_open_a_record(
    office: Office,
) -> None:
    await office.add_people(ARCHIVISTS)
    budget = await _filed(office, "2026年度预算 Annual REPORT")
    await _filed(office, "人事任免通知")
    await _filed(office, "预算执行情况", "D10", category="会计")

    async def titles(who: str, query: str) -> list[str]:
        hits = (await office.ok(who, "archive.search", {"query": query}))["hits"]
        return [h["title"] for h in hits]

    assert await titles("li", "预算") == ["预算执行情况", "2026年度预算 Annual REPORT"]
    assert await titles("li", "预算 report") == ["2026年度预算 Annual REPORT"]  # every term
    assert await titles("li", "会计") == ["预算执行情况"]  # the category
    assert await titles("li", budget["code"]) == ["2026年度预算 Annual REPORT"]  # the code
    assert await titles("li", "%") == []  # punctuation alone finds nothing
    assert await titles("li", "预") == [
        "预算执行情况",
        "2026年度预算 Annual REPORT",
    ]  # one character
    assert await titles("li", "年度") == ["2026年度预算 Annual REPORT"]
    assert await titles("li", "算执") == ["预算执行情况"]
    assert await titles("li", "report 2026") == ["2026年度预算 Annual REPORT"]
    assert len(await titles("li", "")) == 3
    listed = (await office.ok("li", "archive.list", {"limit": 2}))["records"]
    assert len(listed) == 2
    nxt = await office.ok("li", "archive.list", {"before": listed[-1]["archive_id"]})
    assert [r["title"] for r in nxt["records"]] == ["2026年度预算 Annual REPORT"]

    hit = (await office.ok("li", "archive.search", {"query": "人事"}))["hits"][0]
    assert hit["may_open"] is False
    assert (await office.ok("sun", "archive.search", {"query": "人事"}))["hits"][0]["may_open"]
    ref = {"archive_id": hit["archive_id"]}
    assert await _error(office, "li", "archive.get", ref) == "forbidden"
    assert await _error(office, "li", "archive.files", ref) == "forbidden"
    assert await _error(office, "li", "archive.get", {"archive_id": "999999"}) == "not_found"
    assert (await office.ok("qian", "archive.files", ref))["files"]

    # Best match first, then newest: a title hit above category hits, though older.
    await _filed(office, "会计制度汇编", "D10")
    await _filed(office, "差旅报销", "D10", category="会计")
    assert await titles("li", "会计") == ["会计制度汇编", "差旅报销", "预算执行情况"]


# --- loans -----------------------------------------------------------------------------------------
async def test_an_approved_loan_opens_the_files_until_it_ends(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    li_tab = await office.tab("li")
    filed = await _filed(office, "机要文件")
    file_id = filed["files"][0]["file_id"]
    ref = {"archive_id": filed["archive_id"]}
    assert await _download(office, "li", file_id) == 404

    loan = await office.ok("li", "archive.borrow", {**ref, "reason": "查阅资料", "days": 7})
    assert loan["state"] == "pending"
    again = await office.call("li", "archive.borrow", {**ref, "reason": "再借", "days": 1})
    assert again["error"]["code"] == "conflict"
    got = await office.ok("li", "workflow.get", {"instance_id": loan["instance_id"]})
    assert got["instance"]["key"] == "archive_borrow"
    assert got["instance"]["form"]["days"] == 7
    assert filed["code"] in got["instance"]["form"]["archive"]
    await _act(office, "li", loan["instance_id"], "wang")  # 直接上级审批
    assert await _download(office, "li", file_id) == 404  # not approved yet
    await _act(office, "li", loan["instance_id"], "qian")  # 档案管理员审核

    started = await li_tab.wait_for("archive.loan_started", timeout=10)
    assert started["data"]["loan_id"] == loan["loan_id"]
    assert await _download(office, "li", file_id) == 200
    record = (await office.ok("li", "archive.get", ref))["record"]
    assert [(x["loan_id"], x["state"]) for x in record["loans"]] == [(loan["loan_id"], "active")]
    assert record["loans"][0]["ends_at"] == started["data"]["ends_at"]
    hit = (await office.ok("li", "archive.search", {"query": "机要"}))["hits"][0]
    assert hit["may_open"] is True
    # The supervisor who approved the loan reads nothing through it.
    assert await _download(office, "wang", file_id) == 404

    # Its time is up (moved, rather than waited for): the files are refused, then the loan ends.
    pool = office.server.services.pool
    await pool.execute(
        "UPDATE archive_loans SET ends_at = now() - interval '1 s' WHERE id = $1",
        int(loan["loan_id"]),
    )
    assert await _download(office, "li", file_id) == 404
    await pool.execute("UPDATE jobs SET run_at = now() WHERE kind = 'archive.loan_end'")
    ended = await li_tab.wait_for("archive.loan_ended", timeout=10)
    assert ended["data"] == {
        "archive_id": filed["archive_id"],
        "loan_id": loan["loan_id"],
        "code": filed["code"],
        "title": "机要文件",
        "reason": "expired",
    }
    assert await _download(office, "li", file_id) == 404
    assert await _error(office, "li", "archive.get", ref) == "forbidden"
    assert await _error(office, "li", "archive.files", ref) == "forbidden"
    mine = (await office.ok("li", "archive.loans", {}))["loans"]
    assert [(x["loan_id"], x["state"]) for x in mine] == [(loan["loan_id"], "ended")]
    # A new loan may be asked for.
    assert await office.ok("li", "archive.borrow", {**ref, "reason": "续借", "days": 1})


async def test_a_refused_loan_opens_nothing(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    filed = await _filed(office, "人事档案")
    file_id = filed["files"][0]["file_id"]
    ref = {"archive_id": filed["archive_id"]}
    loan = await office.ok("li", "archive.borrow", {**ref, "reason": "好奇", "days": 3})
    await _act(office, "li", loan["instance_id"], "wang", "reject")

    async def refused() -> bool:
        loans = (await office.ok("li", "archive.loans", {}))["loans"]
        return loans[0]["state"] == "refused"

    await eventually(refused, timeout=10)
    assert await _download(office, "li", file_id) == 404
    assert await _error(office, "li", "archive.get", ref) == "forbidden"
    # Not pending any more: a new request is allowed; withdrawn, it is refused too.
    loan = await office.ok("li", "archive.borrow", {**ref, "reason": "工作需要", "days": 3})
    await office.ok("li", "workflow.withdraw", {"instance_id": loan["instance_id"]})

    async def both_refused() -> bool:
        loans = (await office.ok("sun", "archive.loans", {"all": True}))["loans"]
        return [x["state"] for x in loans] == ["refused", "refused"]

    await eventually(both_refused, timeout=10)
    assert await _error(office, "li", "archive.loans", {"all": True}) == "forbidden"


# --- appraisal -------------------------------------------------------------------------------------
async def test_the_end_of_retention_brings_the_archivists_an_appraisal_to_do(
    office: Office,
) -> None:
    await office.add_people(ARCHIVISTS)
    qian_tab = await office.tab("qian")
    old = await _filed(office, "二〇〇〇年工作总结", "D10", year=2000)  # kept until 2010
    await _filed(office, "二〇〇〇年大事记", "D30", year=2000)  # kept until 2030

    added = await qian_tab.wait_for("todo.added", timeout=10)
    item = added["data"]["item"]
    assert (item["kind"], item["ref_id"]) == ("document", old["archive_id"])
    assert old["code"] in item["title"]
    for who in ("sun", "qian"):
        items = (await office.ok(who, "todo.list", {"kind": "document"}))["items"]
        assert [i["ref_id"] for i in items] == [old["archive_id"]]
    assert await _error(office, "qian", "todo.dismiss", {"todo_id": item["todo_id"]}) == "conflict"
    pending = await office.server.services.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = 'archive.appraisal' AND run_at > now()"
    )
    assert pending == 1  # the 30-year one, for later

    ref = {"archive_id": old["archive_id"]}
    assert await _error(office, "sun", "archive.appraise", {**ref, "retention": "D10"}) == (
        "bad_request"
    )
    assert await _error(office, "li", "archive.appraise", {**ref, "retention": "Y"}) == "forbidden"
    kept = await office.ok("sun", "archive.appraise", {**ref, "retention": "Y"})
    assert kept["retention_ends_at"] is None
    done = await qian_tab.wait_for("todo.done")
    assert done["data"]["ref_id"] == old["archive_id"]
    assert (await office.ok("qian", "todo.list", {"kind": "document"}))["items"] == []
    record = (await office.ok("sun", "archive.get", ref))["record"]
    assert (record["retention"], record["code"]) == ("Y", old["code"])


# --- destruction -------------------------------------------------------------------------------------
async def test_destruction_runs_through_an_approval_into_a_register_that_finds_an_edit(
    office: Office,
) -> None:
    await office.add_people(ARCHIVISTS)
    sun_tab = await office.tab("sun")
    li_tab = await office.tab("li")
    a = await _filed(office, "一九九九年报表", "D10", year=1999)
    b = await _filed(office, "一九九九年通知", "D10", year=1999)
    keep = await _filed(office, "永久保存的决定", "Y")
    await sun_tab.wait_for(lambda e: e["type"] == "todo.added" and e["data"]["counts"]["open"] == 2)
    file_a = a["files"][0]["file_id"]
    assert await _download(office, "qian", file_a) == 200

    # li is reading one of them.
    loan = await office.ok(
        "li",
        "archive.borrow",
        {"archive_id": a["archive_id"], "reason": "核对", "days": 30},
    )
    await _act(office, "li", loan["instance_id"], "wang")
    await _act(office, "li", loan["instance_id"], "sun")
    await li_tab.wait_for("archive.loan_started", timeout=10)

    ids = [a["archive_id"], b["archive_id"]]
    asked = await office.ok(
        "sun",
        "archive.destroy",
        {"archive_ids": ids, "reason": "保管期满，经鉴定无保存价值"},
    )
    got = await office.ok("sun", "workflow.get", {"instance_id": asked["instance_id"]})
    assert got["instance"]["key"] == "archive_destroy"
    assert got["instance"]["steps"] == ["档案管理员审核", "领导审批"]
    assert got["instance"]["form"]["count"] == 2
    # A record in a pending request cannot be asked for twice.
    twice = await office.call(
        "qian", "archive.destroy", {"archive_ids": [b["archive_id"]], "reason": "再"}
    )
    assert twice["error"]["code"] == "conflict"
    assert twice["error"]["details"] == {"archive_ids": [b["archive_id"]]}

    await _act(office, "sun", asked["instance_id"], "qian")  # 档案管理员审核 (not sun: he asked)
    assert (await office.ok("sun", "archive.get", {"archive_id": a["archive_id"]}))["record"][
        "state"
    ] == "kept"
    await _act(office, "sun", asked["instance_id"], "chen")  # 领导审批: 办公室's head

    destroyed = await sun_tab.wait_for("archive.destroyed", timeout=10)
    assert destroyed["data"] == {
        "destruction_id": asked["destruction_id"],
        "archive_ids": ids,
        "codes": [a["code"], b["code"]],
    }
    ended = await li_tab.wait_for("archive.loan_ended")
    assert ended["data"]["reason"] == "destroyed"
    assert await _download(office, "qian", file_a) == 404
    assert await _download(office, "li", file_a) == 404
    assert (await office.ok("sun", "todo.list", {"kind": "document"}))["items"] == []
    record = (await office.ok("sun", "archive.get", {"archive_id": a["archive_id"]}))["record"]
    assert record["state"] == "destroyed" and record["destroyed_at"]
    # Out of the staff's catalogue; the archivists still see it, marked.
    assert (await office.ok("li", "archive.search", {"query": "一九九九"}))["hits"] == []
    hits = (await office.ok("sun", "archive.search", {"query": "一九九九"}))["hits"]
    assert {h["state"] for h in hits} == {"destroyed"}
    again = await office.call("sun", "archive.destroy", {"archive_ids": ids, "reason": "再"})
    assert again["error"]["code"] == "conflict"
    assert (
        await _error(
            office,
            "li",
            "archive.borrow",
            {"archive_id": b["archive_id"], "reason": "看", "days": 1},
        )
        == "conflict"
    )

    entries = (await office.ok("qian", "archive.register", {}))["entries"]
    assert [(e["seq"], e["code"]) for e in entries] == [(2, b["code"]), (1, a["code"])]
    assert entries[1]["files"] == [{"name": "件.txt", "sha256": a["files"][0]["sha256"]}]
    assert entries[1]["requester"]["name"] == "孙兰"
    assert entries[1]["reason"] == "保管期满，经鉴定无保存价值"
    assert await office.ok("sun", "archive.verify_register", {}) == {"intact": True, "entries": 2}
    assert await _error(office, "li", "archive.register", {}) == "forbidden"
    assert await _error(office, "li", "archive.verify_register", {}) == "forbidden"

    # A second destruction, rejected: the record stays, the register does not grow.
    other = await office.ok(
        "sun", "archive.destroy", {"archive_ids": [keep["archive_id"]], "reason": "误"}
    )
    await _act(office, "sun", other["instance_id"], "qian", "reject")
    await sun_tab.wait_for(
        lambda e: (
            e["type"] == "workflow.finished" and e["data"]["instance_id"] == other["instance_id"]
        )
    )

    async def refused() -> bool:
        state = await office.server.services.pool.fetchval(
            "SELECT state FROM archive_destructions WHERE id = $1", int(other["destruction_id"])
        )
        return bool(state == "refused")

    await eventually(refused, timeout=10)
    assert (await office.ok("sun", "archive.get", {"archive_id": keep["archive_id"]}))["record"][
        "state"
    ] == "kept"

    # Destroyed, a record is the archivists' alone: its filer, no longer one, cannot open it
    # (a kept one they filed, still).
    admin = await office.server.login(ADMIN)
    body = {
        "departments": Office.DEPARTMENTS,
        "users": [
            {
                "account": "sun",
                "name": "孙兰",
                "department_key": "office",
                "title": "科员",
                "roles": ["staff"],
                "password_hash": office.server.password_hash,
                "supervisor_account": "chen",
            }
        ],
    }
    status, env = await office.server.post(
        "/api/v1/admin/import", body, token=admin["access_token"]
    )
    assert status == 200 and env["ok"], env
    assert await _error(office, "sun", "archive.get", {"archive_id": a["archive_id"]}) == (
        "forbidden"
    )
    assert await office.ok("sun", "archive.get", {"archive_id": keep["archive_id"]})
    hits = (await office.ok("sun", "archive.search", {"query": "一九九九"}))["hits"]
    assert hits == []
    # The register names its requester after they left.
    await office.ok(ADMIN, "admin.users.deactivate", {"user_id": office.user_ids["sun"]})
    entries = (await office.ok("qian", "archive.register", {}))["entries"]
    assert entries[1]["requester"] == {"id": office.user_ids["sun"], "name": "孙兰"}

    # An edit made in the database is found.
    await office.server.services.pool.execute(
        "UPDATE archive_register SET title = '篡改' WHERE seq = 1"
    )
    assert await office.ok("qian", "archive.verify_register", {}) == {
        "intact": False,
        "entries": 2,
        "broken_at": 1,
    }


# --- bad input -------------------------------------------------------------------------------------
async def test_bad_input_is_a_clear_error_and_changes_nothing(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    file_id = await _upload(office, "sun", b"x")
    filed = await _filed(office, "样本")
    ref = filed["archive_id"]
    base = {"title": "标题", "file_ids": [file_id], "retention": "D30"}
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("sun", "archive.file", {**base, "retention": "D5"}, "bad_request"),
        ("sun", "archive.file", {**base, "file_ids": []}, "bad_request"),
        ("sun", "archive.file", {**base, "file_ids": [file_id, file_id]}, "bad_request"),
        ("sun", "archive.file", {**base, "file_ids": ["999999"]}, "not_found"),
        ("sun", "archive.file", {**base, "title": "   "}, "bad_request"),
        ("sun", "archive.file", {**base, "category": "文-书"}, "bad_request"),
        ("sun", "archive.file", {**base, "year": YEAR + 1}, "bad_request"),
        ("sun", "archive.file", {**base, "extra": 1}, "bad_request"),
        ("li", "archive.file", base, "forbidden"),
        ("li", "archive.borrow", {"archive_id": ref, "reason": "r", "days": 0}, "bad_request"),
        ("li", "archive.borrow", {"archive_id": ref, "reason": "r", "days": -1}, "bad_request"),
        ("li", "archive.borrow", {"archive_id": ref, "reason": "r", "days": 366}, "bad_request"),
        ("li", "archive.borrow", {"archive_id": ref, "reason": " ", "days": 1}, "bad_request"),
        ("li", "archive.borrow", {"archive_id": "999999", "reason": "r", "days": 1}, "not_found"),
        ("li", "archive.borrow", {"archive_id": "abc", "reason": "r", "days": 1}, "bad_request"),
        ("sun", "archive.borrow", {"archive_id": ref, "reason": "r", "days": 1}, "conflict"),
        ("sun", "archive.destroy", {"archive_ids": [], "reason": "r"}, "bad_request"),
        ("sun", "archive.destroy", {"archive_ids": [ref, ref], "reason": "r"}, "bad_request"),
        ("sun", "archive.destroy", {"archive_ids": [ref, "999999"], "reason": "r"}, "not_found"),
        ("sun", "archive.destroy", {"archive_ids": [ref], "reason": ""}, "bad_request"),
        ("li", "archive.destroy", {"archive_ids": [ref], "reason": "r"}, "forbidden"),
        ("li", "archive.appraise", {"archive_id": ref, "retention": "Y"}, "forbidden"),
        ("sun", "archive.appraise", {"archive_id": "999999", "retention": "Y"}, "not_found"),
        ("sun", "archive.appraise", {"archive_id": ref, "retention": "D99"}, "bad_request"),
        ("sun", "archive.get", {"archive_id": "999999"}, "not_found"),
        ("li", "archive.get", {"archive_id": ref}, "forbidden"),
        ("li", "archive.search", {"query": "a " * 11}, "bad_request"),
        ("sun", "archive.register", {"before": 99999999999}, "bad_request"),
        ("sun", "archive.register", {"before": 0}, "bad_request"),
    ]
    pool = office.server.services.pool
    before = await pool.fetchval(
        "SELECT (SELECT count(*) FROM archive_records) + (SELECT count(*) FROM archive_loans)"
        " + (SELECT count(*) FROM archive_destructions) + (SELECT count(*) FROM workflow_instances)"
    )
    for who, name, payload, code in cases:
        env = await office.call(who, name, payload)
        assert not env["ok"] and env["error"]["code"] == code, (name, payload, env)
        assert env["error"]["message"]
    after = await pool.fetchval(
        "SELECT (SELECT count(*) FROM archive_records) + (SELECT count(*) FROM archive_loans)"
        " + (SELECT count(*) FROM archive_destructions) + (SELECT count(*) FROM workflow_instances)"
    )
    assert after == before
    counter = await pool.fetchval("SELECT last FROM archive_counters WHERE year = $1", YEAR)
    assert counter == 1  # no number was spent on a refused filing
    assert re.fullmatch(r"J001-文书·\d{4}-D30-0001", filed["code"])


# --- a loan reads, and does not pass on ----------------------------------------------------------
async def test_a_borrower_reads_the_files_and_cannot_attach_them_elsewhere(office: Office) -> None:
    await office.add_people(ARCHIVISTS)
    li_tab = await office.tab("li")
    filed = await _filed(office, "机要文件")
    file_id = filed["files"][0]["file_id"]
    loan = await office.ok(
        "li", "archive.borrow", {"archive_id": filed["archive_id"], "reason": "查阅", "days": 1}
    )
    await _act(office, "li", loan["instance_id"], "wang")
    await _act(office, "li", loan["instance_id"], "qian")
    await li_tab.wait_for("archive.loan_started", timeout=10)
    assert await _download(office, "li", file_id) == 200

    folder = await office.ok("li", "library.folder.create", {"name": "我的"})
    zhang = office.user_ids["zhang"]
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("library.add", {"folder_id": folder["folder_id"], "file_id": file_id}),
        (
            "circulation.create",
            {
                "title": "看",
                "body": "x",
                "to": [zhang],
                "attachments": [file_id],
                "client_msg_id": "c-loan",
            },
        ),
        (
            "document.issue",
            {"title": "转发", "file_ids": [file_id], "to": [zhang], "client_msg_id": "d-loan"},
        ),
        (
            "pager.send",
            {"to": [zhang], "body": "看看", "attachments": [file_id], "client_msg_id": "p-loan"},
        ),
    ]
    for name, payload in attempts:
        assert await _error(office, "li", name, payload) == "not_found", name
    assert await _download(office, "zhang", file_id) == 404
    # An archivist may attach it (to a new record, say).
    again = await office.ok(
        "qian", "archive.file", {"title": "副本", "file_ids": [file_id], "retention": "D10"}
    )
    assert again["archive_id"]


async def test_a_loan_approved_while_its_record_is_destroyed_is_refused(office: Office) -> None:
    """The approval of a loan waits for a destruction of its record holding the record's lock
    (as `_destroy` does), then sees it destroyed: no loan of a destroyed record runs."""
    await office.add_people(ARCHIVISTS)
    filed = await _filed(office, "待销毁")
    archive_id = int(filed["archive_id"])
    loan = await office.ok(
        "li", "archive.borrow", {"archive_id": filed["archive_id"], "reason": "查", "days": 1}
    )
    services = office.server.services
    event = {
        "data": {"key": "archive_borrow", "instance_id": loan["instance_id"], "state": "approved"}
    }

    async def approve() -> None:
        async with services.stream.transaction() as tx:
            await archive.loans_decided(services, tx, [event])

    async with services.pool.acquire() as conn:
        destroying = conn.transaction()
        await destroying.start()
        await conn.execute("SELECT id FROM archive_records WHERE id = $1 FOR UPDATE", archive_id)
        await conn.execute(
            "UPDATE archive_records SET state = 'destroyed', destroyed_at = now() WHERE id = $1",
            archive_id,
        )
        approving = asyncio.create_task(approve())
        await asyncio.sleep(0.5)
        await destroying.commit()
    await approving
    state = await services.pool.fetchval(
        "SELECT state FROM archive_loans WHERE id = $1", int(loan["loan_id"])
    )
    assert state == "refused"


async def test_a_download_is_revalidated_at_each_use(office: Office) -> None:
    """No browser keeps serving a file after its reader lost it: `no-cache`, with an ETag that
    makes asking again cheap while access lasts."""
    await office.add_people(ARCHIVISTS)
    file_id = await _upload(office, "sun", b"revalidated")
    sun = await office.person("sun")
    li = await office.person("li")
    url = office.server.url + f"/api/v1/files/{file_id}"
    headers = {"Authorization": f"Bearer {sun.token}"}
    async with office.server.http.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "private, no-cache"
        etag = resp.headers["ETag"]
    async with office.server.http.get(url, headers={**headers, "If-None-Match": etag}) as resp:
        assert resp.status == 304 and await resp.read() == b""
    li_headers = {"Authorization": f"Bearer {li.token}", "If-None-Match": etag}
    async with office.server.http.get(url, headers=li_headers) as resp:
        assert resp.status == 404


async def test_records_filed_before_the_catalogue_search_are_indexed_by_a_job(
    office: Office,
) -> None:
    await office.add_people(ARCHIVISTS)
    await _filed(office, "旧档案")
    pool = office.server.services.pool
    await pool.execute("UPDATE archive_records SET search = NULL")  # as the migration finds them
    assert (await office.ok("li", "archive.search", {"query": "旧档"}))["hits"] == []
    await pool.execute(
        "INSERT INTO jobs (kind, key, payload) VALUES ('archive.reindex', 'backfill', '{}')"
    )

    async def found() -> bool:
        return bool((await office.ok("li", "archive.search", {"query": "旧档"}))["hits"])

    await eventually(found, timeout=10)
