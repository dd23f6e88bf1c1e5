"""The to-do inbox (待办) in headless Chromium: it is where 李华 lands after signing in, in two
tabs at once. A circulation and an urgent task from 王明 arrive (through the HTTP command API);
the count on the navigation tab and in the page title go up in both tabs without a reload. She
confirms the circulation and completes the task in one tab; the count goes down in both, and
王明's task board shows her part done, live. Then the week calendar: her own entry, and 王明's
calendar with his private entry shown as busy."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from tests.support import TEST_PASSWORD, Office
from tests.test_web_board import NewPage


async def sign_in(new_page: NewPage, url: str, *accounts: str) -> list[Page]:
    """Each account on a page of its own, signed in at "/" (no panel named: the landing view)."""
    pages = []
    for account in accounts:
        page = await new_page()
        await page.goto(url + "/")
        await page.get_by_test_id("login-account").fill(account)
        await page.get_by_test_id("login-password").fill(TEST_PASSWORD)
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("connection-indicator")).to_have_attribute(
            "data-state", "connected"
        )
        pages.append(page)
    return pages


def _id() -> str:
    return uuid.uuid4().hex


async def _count_is(page: Page, n: int) -> None:
    await expect(page.get_by_test_id("nav-todo")).to_have_attribute(
        "data-unread", str(n), timeout=5000
    )
    if n:
        await expect(page).to_have_title(re.compile(rf"^\({n}\) "))
    else:
        await expect(page).to_have_title(re.compile(r"^[^(]"))


async def test_the_inbox_counts_follow_arrivals_and_completions_in_every_tab(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li, wang = await office.person("li"), await office.person("wang")
    tab1, tab2, wang_page = await sign_in(new_page, office.server.url, "li", "li", "wang")
    # The inbox is the landing view.
    for page in (tab1, tab2):
        await expect(page.get_by_test_id("todo-panel")).to_be_visible()
        await expect(page.get_by_test_id("nav-todo")).to_have_attribute("aria-current", "page")
        await _count_is(page, 0)

    circ = await office.server.command(
        wang.token,
        "circulation.create",
        {
            "title": "关于做好节前安全检查的通知",
            "body": "<p>请各科室周四前完成自查。</p>",
            "to": [li.id],
            "client_msg_id": _id(),
        },
    )
    assert circ["ok"], circ
    cid = circ["data"]["circulation_id"]
    for page in (tab1, tab2):
        await _count_is(page, 1)

    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    task = await office.server.command(
        wang.token,
        "task.assign",
        {
            "title": "整理本季度安全检查台账",
            "body": "按科室汇总，附照片。",
            "assignees": [li.id],
            "urgency": "urgent",
            "due_at": due,
            "client_msg_id": _id(),
        },
    )
    assert task["ok"], task
    tid = task["data"]["task_id"]
    for page in (tab1, tab2):
        await _count_is(page, 2)
        # Urgent first, marked as such, in the list and on the navigation tab.
        first = page.locator("[data-testid^='todo-item-']").first
        await expect(first).to_have_attribute("data-kind", "task")
        await expect(first).to_have_attribute("data-urgency", "urgent")
        await expect(first.get_by_test_id("todo-urgent")).to_be_visible()
        await expect(page.get_by_test_id("nav-todo-urgent")).to_have_attribute("data-count", "1")
        await expect(page.get_by_test_id("todo-kind-circulation")).to_have_attribute(
            "data-count", "1"
        )
        await expect(page.get_by_test_id("todo-kind-task")).to_have_attribute("data-count", "1")
    await expect(tab1.locator(f"[data-kind='circulation'][data-ref-id='{cid}']")).to_contain_text(
        "关于做好节前安全检查的通知"
    )
    await expect(tab1.locator(f"[data-kind='task'][data-ref-id='{tid}']")).to_contain_text("王明")
    await tab1.screenshot(path=str(artifacts / "todo-inbox.png"), full_page=True)

    # The circulation opens in its own panel; confirming it closes the item in both tabs.
    await tab1.locator(f"[data-kind='circulation'][data-ref-id='{cid}']").click()
    await expect(tab1.get_by_test_id("nav-circulation")).to_have_attribute("aria-current", "page")
    await expect(tab1.get_by_test_id(f"circ-open-{cid}")).to_be_visible(timeout=5000)
    await tab1.get_by_test_id("circ-confirm").click()
    for page in (tab1, tab2):
        await _count_is(page, 1)

    # The task opens on the task board: report progress, then complete it.
    await tab1.get_by_test_id("nav-todo").click()
    await tab1.locator(f"[data-kind='task'][data-ref-id='{tid}']").click()
    card = tab1.get_by_test_id(f"task-{tid}")
    await expect(card).to_be_visible(timeout=5000)
    await expect(card).to_have_attribute("data-urgency", "urgent")
    await card.get_by_test_id("task-percent").evaluate(
        "el => { el.value = '60'; el.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    await expect(card.get_by_test_id("task-percent-value")).to_have_text("60%")
    await card.get_by_test_id("task-note").fill("已汇总三个科室")
    await card.get_by_test_id("task-progress").click()
    await expect(card.get_by_test_id("task-my-state")).to_have_attribute(
        "data-state", "in_progress"
    )

    # 王明 sees her part move on his board, live.
    await wang_page.get_by_test_id("nav-tasks").click()
    await wang_page.get_by_test_id("task-tab-assigned").click()
    part = wang_page.get_by_test_id(f"task-part-{tid}-{li.id}")
    await expect(part).to_have_attribute("data-state", "in_progress", timeout=5000)
    await expect(part).to_have_attribute("data-percent", "60")
    await expect(part).to_contain_text("已汇总三个科室")
    await tab1.screenshot(path=str(artifacts / "todo-task-board-mine.png"), full_page=True)

    await card.get_by_test_id("task-complete").click()
    await expect(card).to_have_attribute("data-state", "done", timeout=5000)
    for page in (tab1, tab2):
        await _count_is(page, 0)
    await expect(part).to_have_attribute("data-state", "done", timeout=5000)
    await expect(part).to_have_attribute("data-percent", "100")
    await wang_page.screenshot(path=str(artifacts / "todo-task-board-assigned.png"), full_page=True)

    # Both items are under 已办 now.
    await tab2.get_by_test_id("todo-tab-done").click()
    await expect(tab2.locator("[data-testid^='todo-item-']")).to_have_count(2, timeout=5000)

    # The week calendar: her own entry, then 王明's calendar with his private entry as busy.
    starts = datetime.now(UTC) + timedelta(minutes=30)
    own = await office.server.command(
        li.token,
        "schedule.create",
        {
            "title": "安全检查碰头会",
            "starts_at": starts.isoformat(),
            "location": "三楼会议室",
            "client_msg_id": _id(),
        },
    )
    assert own["ok"], own
    private = await office.server.command(
        wang.token,
        "schedule.create",
        {
            "title": "私人事务",
            "starts_at": (starts + timedelta(minutes=5)).isoformat(),
            "visibility": "private",
            "client_msg_id": _id(),
        },
    )
    assert private["ok"], private
    await tab1.get_by_test_id("nav-calendar").click()
    own_block = tab1.get_by_test_id(f"cal-entry-{own['data']['entry_id']}")
    await expect(own_block).to_contain_text("安全检查碰头会", timeout=5000)
    await expect(own_block).to_have_attribute("data-busy", "false")
    await tab1.screenshot(path=str(artifacts / "todo-calendar-mine.png"), full_page=True)
    await tab1.get_by_test_id("cal-who-to-input").fill("王明")
    await tab1.get_by_test_id(f"cal-who-to-option-{wang.id}").click()
    busy = tab1.get_by_test_id(f"cal-entry-{private['data']['entry_id']}")
    await expect(busy).to_have_attribute("data-busy", "true", timeout=5000)
    await expect(busy).to_contain_text("忙")
    await expect(busy).not_to_contain_text("私人事务")
    await tab1.screenshot(path=str(artifacts / "todo-calendar-wang.png"), full_page=True)
