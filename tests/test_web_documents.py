"""Documents (公文) and the archive in headless Chromium.

李华 drafts a notice in the 公文 panel (title, a file, 赵敏 and 财务科 as recipients, 陈建国 to
sign) and follows it on its page: 王明 approves the first step in his 审批 panel, the office check
and the signature go through the API, and 李华's page turns, without a reload, to numbered
(办发〔year〕1号), circulated (with receipts) and filed (with its archive code). 赵敏's 传阅 shows
the circulation, and her 公文 panel's 收到的公文 the numbered document.

Then the archive: 赵敏 finds the filed record, may not open it, asks to borrow it for 3 days; once
approved her loan shows as running with its end, and the record's files open."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from tests.support import ADMIN, Office
from tests.test_web_board import NewPage, sign_in

YEAR = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).year
NOTICE = "关于做好2026年度预算编制工作的通知"
TEXT = "各科室：请于本月底前报送年度预算草案。\n".encode()
# Added to the test office: a document officer (文书) and an archivist.
STAFF = [
    ("sun", "孙丽", "office", "文书", ["document_officer"], "chen"),
    ("zhou", "周档", "office", "档案员", ["archivist"], "chen"),
]


async def approve_open_tasks(office: Office, instance_id: str, comment: str = "同意") -> None:
    """Every open task of the request, approved by its assignee, until it ends."""
    accounts = {v: k for k, v in office.user_ids.items()}
    for _ in range(6):
        inst = (await office.ok(ADMIN, "workflow.get", {"instance_id": instance_id}))["instance"]
        tasks = [t for t in inst["tasks"] if t["state"] == "open"]
        if inst["state"] != "running" or not tasks:
            return
        for t in tasks:
            who = accounts.get(t["assignee"]["id"], ADMIN)
            payload = {"task_id": t["task_id"], "action": "approve", "comment": comment}
            await office.ok(who, "workflow.act", payload)
    raise AssertionError("the approval did not end")


async def issue_in_browser(page: Page, office: Office, artifacts: Path) -> str:
    zhao, chen = await office.person("zhao"), await office.person("chen")
    await page.get_by_test_id("nav-documents").click()
    await expect(page.get_by_test_id("doc-tab-mine")).to_have_attribute("aria-selected", "true")
    await page.get_by_test_id("doc-new").click()
    form = page.get_by_test_id("doc-form")
    await form.get_by_test_id("doc-title").fill(NOTICE)
    await form.get_by_test_id("doc-attach").set_input_files(
        files=[{"name": "预算通知.txt", "mimeType": "text/plain", "buffer": TEXT}]
    )
    await expect(form.locator(".pager-upload-done")).to_have_count(1)
    await form.get_by_test_id("doc-to-input").fill("赵敏")
    await form.get_by_test_id(f"doc-to-option-{zhao.id}").click()
    await form.get_by_test_id("doc-dept-select").select_option(office.departments["finance"])
    await form.get_by_test_id("doc-signer-to-input").fill("陈建国")
    await form.get_by_test_id(f"doc-signer-to-option-{chen.id}").click()
    await expect(form.get_by_test_id(f"doc-signer-chip-{chen.id}")).to_be_visible()
    await page.screenshot(path=str(artifacts / "documents-issue-form.png"), full_page=True)
    await form.get_by_test_id("doc-submit").click()
    detail = page.locator("[data-testid^='doc-detail-']")
    await expect(detail).to_have_attribute("data-state", "approving", timeout=5000)
    return (await detail.get_attribute("data-testid") or "").removeprefix("doc-detail-")


async def test_a_document_is_issued_approved_and_followed_live(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    await office.add_people(STAFF)
    li_page, wang_page, zhao_page = await sign_in(new_page, office.server.url, "li", "wang", "zhao")
    doc_id = await issue_in_browser(li_page, office, artifacts)
    doc = (await office.ok("li", "document.get", {"document_id": doc_id}))["document"]
    iid = doc["instance_id"]
    await expect(li_page.get_by_test_id("doc-state")).to_have_text("审批中")
    await expect(li_page.get_by_test_id("doc-stage-approval")).to_have_attribute(
        "data-status", "current"
    )
    await expect(li_page.get_by_test_id("doc-number")).to_have_text("（待编号）")
    await expect(li_page.get_by_test_id("doc-step-0")).to_contain_text("王明")
    await expect(li_page.get_by_test_id(f"doc-item-{doc_id}")).to_have_attribute(
        "data-state", "approving"
    )

    # 王明 (head of 综合科) reviews it in his 审批 panel.
    await wang_page.get_by_test_id("nav-workflow").click()
    item = wang_page.get_by_test_id(f"wf-item-{iid}")
    await expect(item).to_be_visible(timeout=5000)
    await item.click()
    await wang_page.get_by_test_id("wf-act-comment").fill("核稿无误")
    await wang_page.get_by_test_id("wf-approve").click()
    await expect(wang_page.get_by_test_id("wf-act")).to_have_count(0, timeout=5000)

    # 李华's page follows: the first step done with the comment, the office check next.
    await expect(li_page.get_by_test_id("doc-step-0")).to_have_attribute(
        "data-status", "done", timeout=5000
    )
    await expect(li_page.get_by_test_id("doc-step-0")).to_contain_text("核稿无误")
    await expect(li_page.get_by_test_id("doc-step-1")).to_contain_text("孙丽")
    await expect(li_page.get_by_test_id("doc-live")).to_contain_text("王明")
    await li_page.screenshot(path=str(artifacts / "documents-approving.png"), full_page=True)

    # The office check (孙丽) and the signature (陈建国).
    await approve_open_tasks(office, iid)

    number = f"办发〔{YEAR}〕1号"
    await expect(li_page.get_by_test_id("doc-state")).to_have_attribute(
        "data-state", "filed", timeout=15_000
    )
    await expect(li_page.get_by_test_id("doc-number")).to_have_text(number)
    for stage in ("approval", "numbered", "circulated", "filed"):
        await expect(li_page.get_by_test_id(f"doc-stage-{stage}")).to_have_attribute(
            "data-status", "done"
        )
    await expect(li_page.get_by_test_id("doc-stage-numbered")).to_contain_text(number)
    receipts = li_page.get_by_test_id("doc-receipts")
    await expect(receipts).to_be_visible()
    # 赵敏, named and the only one in 财务科: one recipient, not opened yet.
    await expect(receipts).to_have_attribute("data-unopened", "1")
    filed = (await office.ok("li", "document.get", {"document_id": doc_id}))["document"]
    code = filed["archive_code"]
    assert code
    await expect(li_page.get_by_test_id("doc-archive-code")).to_contain_text(code)
    live = li_page.get_by_test_id("doc-live")
    await expect(live).to_contain_text(f"已编号：{number}")
    await expect(live).to_contain_text("已分发给")
    await expect(live).to_contain_text(f"已归档，档号 {code}")
    await expect(li_page.get_by_test_id(f"doc-item-{doc_id}")).to_have_attribute(
        "data-number", number
    )
    await li_page.screenshot(path=str(artifacts / "documents-filed.png"), full_page=True)

    # 赵敏: the circulation in her 传阅 inbox, the document among those sent to her.
    await zhao_page.get_by_test_id("nav-circulation").click()
    circ = zhao_page.get_by_test_id(f"circ-item-{filed['circulation_id']}")
    await expect(circ).to_be_visible(timeout=5000)
    await expect(circ).to_contain_text(number)
    await zhao_page.get_by_test_id("nav-documents").click()
    await zhao_page.get_by_test_id("doc-tab-incoming").click()
    got = zhao_page.get_by_test_id(f"doc-item-{doc_id}")
    await expect(got).to_have_attribute("data-number", number, timeout=5000)
    await got.click()
    await expect(zhao_page.get_by_test_id(f"doc-detail-{doc_id}")).to_contain_text(NOTICE)
    await expect(zhao_page.get_by_test_id("doc-files")).to_contain_text("预算通知.txt")
    await zhao_page.screenshot(path=str(artifacts / "documents-recipient.png"), full_page=True)

    # The archive: 赵敏 finds the record, may not open it, and asks to borrow it.
    archive_id = filed["archive_id"]
    await zhao_page.get_by_test_id("nav-archive").click()
    await zhao_page.get_by_test_id("arc-search-input").fill("预算")
    await zhao_page.get_by_test_id("arc-search-submit").click()
    hit = zhao_page.get_by_test_id(f"arc-hit-{archive_id}")
    await expect(hit).to_have_attribute("data-may-open", "false", timeout=5000)
    await hit.click()
    await expect(zhao_page.get_by_test_id("arc-locked")).to_be_visible()
    await expect(zhao_page.get_by_test_id(f"arc-detail-{archive_id}")).to_contain_text(code)
    await zhao_page.get_by_test_id("arc-borrow-reason").fill("编制本科室预算需参照")
    await zhao_page.get_by_test_id("arc-borrow-days").fill("3")
    await zhao_page.get_by_test_id("arc-borrow-submit").click()
    mine = zhao_page.get_by_test_id("arc-my-loan")
    await expect(mine).to_have_attribute("data-state", "pending", timeout=5000)
    loan = (await office.ok("zhao", "archive.loans", {}))["loans"][0]
    await approve_open_tasks(office, loan["instance_id"], "同意借阅")
    await expect(mine).to_have_attribute("data-state", "active", timeout=10_000)
    await expect(mine).to_contain_text("可查阅至")
    await expect(zhao_page.get_by_test_id(f"arc-detail-{archive_id}")).to_have_attribute(
        "data-open", "true", timeout=5000
    )
    await expect(zhao_page.get_by_test_id("arc-files")).to_contain_text("预算通知.txt")
    row = zhao_page.get_by_test_id(f"arc-loan-{loan['loan_id']}")
    await expect(row).to_have_attribute("data-state", "active")
    assert re.match(r"\d{4}-", await row.get_attribute("data-ends-at") or "")
    await zhao_page.screenshot(path=str(artifacts / "archive-loan.png"), full_page=True)


async def test_an_archivist_files_a_record_and_asks_to_destroy_it(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    await office.add_people(STAFF)
    (page,) = await sign_in(new_page, office.server.url, "zhou")
    await page.get_by_test_id("nav-archive").click()
    await expect(page.get_by_test_id("arc-no-hits")).to_contain_text("档案库还是空的")
    await page.get_by_test_id("arc-new").click()
    form = page.get_by_test_id("arc-file-form")
    await form.get_by_test_id("arc-file-title").fill(f"{YEAR - 1}年度办公室工作总结")
    await form.get_by_test_id("arc-file-retention").select_option("D10")
    await form.get_by_test_id("arc-file-year").fill(str(YEAR - 1))
    await form.get_by_test_id("arc-file-attach").set_input_files(
        files=[{"name": "工作总结.txt", "mimeType": "text/plain", "buffer": "总结".encode()}]
    )
    await expect(form.locator(".pager-upload-done")).to_have_count(1)
    await page.screenshot(path=str(artifacts / "archive-file-form.png"), full_page=True)
    await form.get_by_test_id("arc-file-submit").click()
    detail = page.locator("[data-testid^='arc-detail-']")
    await expect(detail).to_have_attribute("data-open", "true", timeout=5000)
    code = await page.get_by_test_id("arc-code").inner_text()
    assert re.fullmatch(rf".+-文书·{YEAR - 1}-D10-0001", code), code
    await expect(page.get_by_test_id("arc-retention")).to_contain_text("10年")
    await expect(page.get_by_test_id("arc-files")).to_contain_text("工作总结.txt")
    archive_id = (await detail.get_attribute("data-testid") or "").removeprefix("arc-detail-")
    await expect(page.get_by_test_id(f"arc-hit-{archive_id}")).to_be_visible()

    await page.get_by_test_id("arc-destroy").click()
    await page.get_by_test_id("arc-destroy-reason").fill("重复归档")
    await page.get_by_test_id("arc-destroy-submit").click()
    # Toasts stack (the filing's may still show): look for this one, wherever it is.
    await expect(page.get_by_test_id("toast").filter(has_text="销毁申请已提交审批")).to_be_visible()
    await page.screenshot(path=str(artifacts / "archive-record.png"), full_page=True)
    # The request is an approval of its own.
    for _ in range(50):
        mine = await office.ok("zhou", "workflow.list", {"box": "mine"})
        if any("销毁" in i["title"] for i in mine["items"]):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(mine)


async def test_an_incoming_document_is_registered_and_handled(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    await office.add_people(STAFF)
    sun_page, wang_page = await sign_in(new_page, office.server.url, "sun", "wang")
    chen = await office.person("chen")
    general = office.departments["general"]

    # 孙丽 (文书) registers what came from 市财政局, for 综合科 to handle, 陈建国 to instruct.
    await sun_page.get_by_test_id("nav-documents").click()
    await sun_page.get_by_test_id("doc-receive-new").click()
    form = sun_page.get_by_test_id("doc-recv-form")
    await form.get_by_test_id("doc-recv-title").fill("关于下达年度预算指标的通知")
    await form.get_by_test_id("doc-recv-from").fill("市财政局")
    await form.get_by_test_id("doc-recv-attach").set_input_files(
        files=[{"name": "来文.txt", "mimeType": "text/plain", "buffer": "来文".encode()}]
    )
    await expect(form.locator(".pager-upload-done")).to_have_count(1)
    await form.get_by_test_id("doc-recv-dept-select").select_option(general)
    await expect(form.get_by_test_id(f"doc-recv-dept-chip-{general}")).to_contain_text("综合科")
    await form.get_by_test_id("doc-recv-leader-to-input").fill("陈建国")
    await form.get_by_test_id(f"doc-recv-leader-to-option-{chen.id}").click()
    await sun_page.screenshot(path=str(artifacts / "documents-receive-form.png"), full_page=True)
    await form.get_by_test_id("doc-recv-submit").click()
    detail = sun_page.locator("[data-testid^='doc-detail-']")
    await expect(detail).to_have_attribute("data-state", "approving", timeout=5000)
    doc_id = (await detail.get_attribute("data-testid") or "").removeprefix("doc-detail-")
    doc = (await office.ok("sun", "document.get", {"document_id": doc_id}))["document"]

    # The check and the instruction; then 综合科's head has a task, and the page says so live.
    await approve_open_tasks(office, doc["instance_id"], "请综合科牵头落实")
    await expect(detail).to_have_attribute("data-state", "handling", timeout=10_000)
    await expect(sun_page.get_by_test_id("doc-instruction")).to_contain_text("请综合科牵头落实")
    row = sun_page.get_by_test_id(f"doc-handling-{general}")
    await expect(row).to_contain_text("王明")
    await expect(sun_page.get_by_test_id("doc-stage-handling")).to_have_attribute(
        "data-status", "current"
    )
    await sun_page.screenshot(path=str(artifacts / "documents-handling.png"), full_page=True)

    await wang_page.get_by_test_id("nav-documents").click()
    await wang_page.get_by_test_id("doc-tab-incoming").click()
    await expect(wang_page.get_by_test_id(f"doc-item-{doc_id}")).to_have_attribute(
        "data-state", "handling", timeout=5000
    )
    task_id = (await office.ok("sun", "document.get", {"document_id": doc_id}))["document"][
        "handling"
    ][0]["task_id"]
    await office.ok("wang", "task.complete", {"task_id": task_id, "note": "已落实"})
    await expect(detail).to_have_attribute("data-state", "handled", timeout=10_000)
    await expect(row).to_have_attribute("data-done", "true")
    await expect(sun_page.get_by_test_id("doc-stage-handled")).to_have_attribute(
        "data-status", "done"
    )
