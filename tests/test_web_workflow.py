"""Approvals in headless Chromium: 李华 files a two-day leave from the 审批 panel; her supervisor
王明 sees it arrive in 待我审批 without a reload and approves it with a comment; 李华's step view
turns to 已通过 with his comment, live, and the board shows her on leave."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.support import ADMIN, Office
from tests.test_web_board import NewPage, sign_in

# datetime-local values ("YYYY-MM-DDTHH:MM") in the browser's own time zone: now, and two days on.
NOW_AND_IN_TWO_DAYS = """() => {
  const p = (n) => String(n).padStart(2, '0');
  const f = (d) => `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  const now = new Date();
  return [f(now), f(new Date(now.getTime() + 2 * 86400000))];
}"""


async def file_leave(page: Page, days: str, reason: str) -> str:
    """Fill in and submit the 请假 form; returns the new request's id."""
    await page.get_by_test_id("nav-workflow").click()
    await page.get_by_test_id("wf-new").click()
    await page.get_by_test_id("wf-def-leave").click()
    await expect(page.get_by_test_id("wf-route")).to_contain_text("直接上级审批")
    start, end = await page.evaluate(NOW_AND_IN_TWO_DAYS)
    await page.get_by_test_id("wf-field-type").fill("事假")
    await page.get_by_test_id("wf-field-start").fill(start)
    await page.get_by_test_id("wf-field-end").fill(end)
    await page.get_by_test_id("wf-field-days").fill(days)
    await page.get_by_test_id("wf-field-reason").fill(reason)
    await page.get_by_test_id("wf-submit").click()
    detail = page.locator("[data-testid^='wf-detail-']")
    await expect(detail).to_have_attribute("data-state", "running", timeout=5000)
    return (await detail.get_attribute("data-testid") or "").removeprefix("wf-detail-")


async def test_a_leave_is_approved_live_and_puts_the_applicant_on_leave(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li, wang = await office.person("li"), await office.person("wang")
    li_page, wang_page = await sign_in(new_page, office.server.url, "li", "wang")
    await wang_page.get_by_test_id("nav-workflow").click()
    await expect(wang_page.get_by_test_id("wf-tab-todo")).to_have_attribute("aria-selected", "true")
    await expect(wang_page.get_by_test_id("nav-workflow")).to_have_attribute("data-unread", "0")

    # The applicant files a leave of two days starting now.
    iid = await file_leave(li_page, "2", "家中有事，需回老家处理")
    await expect(li_page.get_by_test_id("wf-state")).to_have_attribute("data-state", "running")
    await expect(li_page.get_by_test_id("wf-step-0")).to_have_attribute("data-status", "current")
    await expect(li_page.get_by_test_id("wf-step-0")).to_contain_text("王明")
    # Two days: no second step (部门负责人审批 only beyond three).
    await expect(li_page.get_by_test_id("wf-step-1")).to_have_attribute("data-status", "pending")
    await expect(li_page.get_by_test_id("wf-trail")).to_contain_text("提交")
    await expect(li_page.get_by_test_id(f"wf-item-{iid}")).to_be_visible()

    # The supervisor's todo and the navigation badge fill in without a reload.
    item = wang_page.get_by_test_id(f"wf-item-{iid}")
    await expect(item).to_be_visible(timeout=5000)
    await expect(item).to_contain_text("李华的请假申请")
    await expect(wang_page.get_by_test_id("nav-workflow")).to_have_attribute("data-unread", "1")
    await expect(wang_page.get_by_test_id("wf-todo-count")).to_have_attribute("data-count", "1")
    await item.click()
    await expect(wang_page.get_by_test_id(f"wf-detail-{iid}")).to_contain_text("家中有事")
    await expect(wang_page.get_by_test_id("wf-act")).to_be_visible()
    await wang_page.get_by_test_id("wf-act-comment").fill("同意，注意安全，安排好工作交接")
    await wang_page.screenshot(path=str(artifacts / "workflow-approver-todo.png"), full_page=True)
    await wang_page.get_by_test_id("wf-approve").click()

    await expect(wang_page.get_by_test_id("wf-state")).to_have_attribute(
        "data-state", "approved", timeout=5000
    )
    await expect(wang_page.get_by_test_id("wf-act")).to_have_count(0)
    await expect(wang_page.get_by_test_id("nav-workflow")).to_have_attribute("data-unread", "0")
    await expect(item).to_have_count(0)
    await wang_page.get_by_test_id("wf-tab-done").click()
    await expect(wang_page.get_by_test_id(f"wf-item-{iid}")).to_have_attribute(
        "data-state", "approved", timeout=5000
    )

    # The applicant's step view follows, live: approved, with the supervisor's comment.
    await expect(li_page.get_by_test_id("wf-state")).to_have_attribute(
        "data-state", "approved", timeout=5000
    )
    await expect(li_page.get_by_test_id("wf-state")).to_have_text("已通过")
    step = li_page.get_by_test_id("wf-step-0")
    await expect(step).to_have_attribute("data-status", "done")
    await expect(step).to_contain_text("同意，注意安全，安排好工作交接")
    await expect(li_page.get_by_test_id("wf-step-1")).to_have_attribute("data-status", "not_needed")
    await expect(li_page.get_by_test_id("wf-step-end")).to_have_attribute("data-status", "approved")
    approve_row = li_page.locator("[data-testid='wf-trail'] tr[data-action='approve']")
    await expect(approve_row).to_contain_text("王明")
    await expect(approve_row).to_contain_text("同意")
    await expect(li_page.get_by_test_id(f"wf-item-{iid}")).to_have_attribute(
        "data-state", "approved"
    )
    await expect(li_page.get_by_test_id("wf-urge")).to_have_count(0)
    await li_page.screenshot(
        path=str(artifacts / "workflow-applicant-approved.png"), full_page=True
    )
    # The same view in English.
    await li_page.get_by_test_id("lang-switch").click()
    await expect(li_page.get_by_test_id("wf-state")).to_have_text("Approved")
    await expect(approve_row).to_contain_text("Approved")
    await li_page.screenshot(
        path=str(artifacts / "workflow-applicant-approved-en.png"), full_page=True
    )

    # The approval puts 李华 on leave on her department's board (an async job after commit).
    await wang_page.get_by_test_id("nav-board").click()
    await expect(wang_page.get_by_test_id(f"status-{li.id}")).to_have_attribute(
        "data-status", "on_leave", timeout=10_000
    )
    await expect(wang_page.get_by_test_id(f"status-{li.id}")).to_have_text("请假")
    await wang_page.screenshot(path=str(artifacts / "workflow-board-on-leave.png"), full_page=True)

    # What the pages show is what the server holds.
    got = await office.server.command(li.token, "workflow.get", {"instance_id": iid})
    inst = got["data"]["instance"]
    assert inst["state"] == "approved"
    assert inst["form"]["days"] == 2
    assert inst["form"]["start"].endswith("Z")
    done = [t for t in inst["tasks"] if t["state"] == "approved"]
    assert [(t["assignee"]["id"], t["comment"]) for t in done] == [
        (wang.id, "同意，注意安全，安排好工作交接")
    ]


async def test_field_errors_show_beside_the_fields(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    (li_page,) = await sign_in(new_page, office.server.url, "li")
    await li_page.get_by_test_id("nav-workflow").click()
    await li_page.get_by_test_id("wf-new").click()
    await li_page.get_by_test_id("wf-def-leave").click()
    await li_page.get_by_test_id("wf-field-type").fill("年假")
    await li_page.get_by_test_id("wf-submit").click()
    await expect(li_page.get_by_test_id("wf-start-error")).to_have_attribute(
        "data-code", "bad_request"
    )
    for name in ("start", "end", "days", "reason"):
        await expect(li_page.get_by_test_id(f"wf-field-error-{name}")).to_have_text("必填")
    await expect(li_page.get_by_test_id("wf-field-error-type")).to_have_count(0)
    await li_page.screenshot(path=str(artifacts / "workflow-field-errors.png"), full_page=True)


async def test_the_applicant_urges_once_then_waits(office: Office, new_page: NewPage) -> None:
    (li_page,) = await sign_in(new_page, office.server.url, "li")
    iid = await file_leave(li_page, "1", "看病")
    await li_page.get_by_test_id("wf-urge").click()
    await expect(li_page.get_by_test_id("toast").filter(has_text="已催办 1 人")).to_be_visible()
    await expect(li_page.get_by_test_id("wf-urge")).to_be_disabled()
    # A fresh page knows nothing of it: the server's rate_limited says how long to wait.
    await li_page.reload()
    await expect(li_page.get_by_test_id("connection-indicator")).to_have_attribute(
        "data-state", "connected"
    )
    await li_page.get_by_test_id("wf-tab-mine").click()
    await li_page.get_by_test_id(f"wf-item-{iid}").click()
    await li_page.get_by_test_id("wf-urge").click()
    await expect(li_page.get_by_test_id("wf-urge-wait")).to_contain_text("后可再次催办")
    await expect(li_page.get_by_test_id("wf-urge-wait")).to_contain_text(":")
    await expect(li_page.get_by_test_id("wf-urge")).to_be_disabled()
    await expect(li_page.get_by_test_id("wf-urge-error")).to_have_count(0)


async def test_a_delegate_approves_on_behalf_of_the_supervisor(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    zhang = await office.person("zhang")
    wang_page, zhang_page, li_page = await sign_in(
        new_page, office.server.url, "wang", "zhang", "li"
    )
    # 王明 hands his leave approvals to 张伟 for a week.
    await wang_page.get_by_test_id("nav-workflow").click()
    await wang_page.get_by_test_id("wf-delegation-open").click()
    await wang_page.get_by_test_id("wf-deleg-to-input").fill("张伟")
    await wang_page.get_by_test_id(f"wf-deleg-to-option-{zhang.id}").click()
    in_a_week = await wang_page.evaluate(
        """() => { const p = (n) => String(n).padStart(2, '0'); const d = new Date(Date.now() + 7 * 86400000);
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; }"""
    )
    await wang_page.get_by_test_id("wf-deleg-ends").fill(in_a_week)
    await wang_page.get_by_test_id("wf-deleg-key-leave").check()
    await wang_page.get_by_test_id("wf-deleg-submit").click()
    row = wang_page.locator("[data-testid='wf-deleg-list'] tbody tr").first
    await expect(row).to_have_attribute("data-status", "active", timeout=5000)
    await expect(row).to_contain_text("张伟")
    await expect(row).to_contain_text("请假")
    await wang_page.screenshot(path=str(artifacts / "workflow-delegation.png"), full_page=True)

    # The leave goes to 张伟, who approves it for 王明.
    await zhang_page.get_by_test_id("nav-workflow").click()
    iid = await file_leave(li_page, "1", "体检")
    await expect(li_page.get_by_test_id("wf-step-0")).to_contain_text("张伟（代王明）")
    item = zhang_page.get_by_test_id(f"wf-item-{iid}")
    await expect(item).to_be_visible(timeout=5000)
    await expect(zhang_page.get_by_test_id("nav-workflow")).to_have_attribute("data-unread", "1")
    await item.click()
    await expect(zhang_page.get_by_test_id("wf-act")).to_contain_text("代 王明 审批")
    await zhang_page.get_by_test_id("wf-act-comment").fill("代王科长同意")
    await zhang_page.get_by_test_id("wf-approve").click()
    await expect(li_page.get_by_test_id("wf-state")).to_have_attribute(
        "data-state", "approved", timeout=5000
    )
    approve_row = li_page.locator("[data-testid='wf-trail'] tr[data-action='approve']")
    await expect(approve_row).to_contain_text("张伟（代王明）")
    await expect(approve_row).to_contain_text("代王科长同意")

    # Revoked, it is gone from the active ones.
    wang_page.on("dialog", lambda dialog: dialog.accept())
    await wang_page.locator("[data-testid^='wf-deleg-revoke-']").first.click()
    await expect(row).to_have_attribute("data-status", "revoked")


async def test_an_administrator_stores_a_new_version_of_a_definition(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li = await office.person("li")
    admin_page, li_page = await sign_in(new_page, office.server.url, ADMIN, "li")
    await li_page.get_by_test_id("nav-workflow").click()
    await expect(li_page.get_by_test_id("wf-define-open")).to_have_count(0)

    await admin_page.get_by_test_id("nav-workflow").click()
    await admin_page.get_by_test_id("wf-define-open").click()
    await expect(admin_page.get_by_test_id("wf-define-base")).to_have_value("leave")
    await expect(admin_page.get_by_test_id("wf-define-name")).to_have_value("请假")
    # The head of department only beyond five days now.
    await expect(admin_page.get_by_test_id("wf-define-step-1-when-value")).to_have_value("3")
    await admin_page.get_by_test_id("wf-define-step-1-when-value").fill("5")
    await admin_page.get_by_test_id("wf-define-save").click()
    await expect(
        admin_page.get_by_test_id("toast").filter(has_text="已保存为第 2 版")
    ).to_be_visible()
    await admin_page.evaluate("window.scrollTo(0, 0)")
    await admin_page.screenshot(path=str(artifacts / "workflow-define.png"), full_page=True)

    defs = await office.server.command(li.token, "workflow.definitions")
    leave = next(d for d in defs["data"]["definitions"] if d["key"] == "leave")
    assert leave["version"] == 2
    assert leave["steps"][1]["when"] == {"field": "days", "op": "gt", "value": 5}
    assert leave["form"][0] == {"name": "type", "label": "假别", "type": "text", "required": True}

    # What the server refuses, it says.
    await admin_page.get_by_test_id("wf-define-step-1-when-field").select_option("reason")
    await admin_page.get_by_test_id("wf-define-field-4-remove").click()
    await admin_page.get_by_test_id("wf-define-save").click()
    error = admin_page.get_by_test_id("wf-define-error")
    await expect(error).to_have_attribute("data-code", "bad_request")
    await expect(error).to_contain_text("reason")
