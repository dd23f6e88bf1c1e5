"""Meetings in headless Chromium: three people meet, the chair marks a decision and closes, and
all three see the minutes."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.support import Office
from tests.test_web_board import NewPage, sign_in


async def _enter(page: Page, mid: str) -> None:
    await page.get_by_test_id("nav-meetings").click()
    await page.get_by_test_id(f"meet-item-{mid}").click()
    await expect(page.get_by_test_id(f"meet-room-{mid}")).to_be_visible()


async def test_three_people_meet_and_all_see_the_minutes(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li, zhang = await office.person("li"), await office.person("zhang")
    wang_page, li_page, zhang_page = await sign_in(
        new_page, office.server.url, "wang", "li", "zhang"
    )

    await wang_page.get_by_test_id("nav-meetings").click()
    await wang_page.get_by_test_id("meet-new").click()
    await wang_page.get_by_test_id("meet-title").fill("年终工作部署会")
    await wang_page.get_by_test_id("meet-agenda").fill("一、总结报送\n二、值班安排")
    for person, name in ((li, "李华"), (zhang, "张伟")):
        await wang_page.get_by_test_id("meet-to-input").fill(name)
        await wang_page.get_by_test_id(f"meet-to-option-{person.id}").click()
    await wang_page.get_by_test_id("meet-create").click()

    # The invitation pops up for the others.
    popup = li_page.get_by_test_id("meet-popup")
    await expect(popup).to_be_visible(timeout=5000)
    await expect(popup).to_contain_text("年终工作部署会")
    room = wang_page.locator("[data-testid^='meet-room-']")
    await expect(room).to_be_visible()
    mid = (await room.get_attribute("data-testid") or "").removeprefix("meet-room-")
    await _enter(li_page, mid)
    await _enter(zhang_page, mid)
    await expect(wang_page.get_by_test_id(f"meet-present-{zhang.id}")).to_have_attribute(
        "data-present", "true"
    )

    async def say(page: Page, text: str) -> None:
        await page.get_by_test_id("meet-input").fill(text)
        await page.get_by_test_id("meet-send").click()

    await say(wang_page, "年终总结本周五前报送办公室")
    await say(li_page, "收到，我负责汇总")
    await say(zhang_page, "值班表明天发出")
    decision = wang_page.locator("[data-testid^='meet-msg-']").filter(
        has_text="年终总结本周五前报送办公室"
    )
    await expect(decision).to_be_visible()
    msg_id = (await decision.get_attribute("data-testid") or "").removeprefix("meet-msg-")
    for page in (li_page, zhang_page):
        await expect(page.get_by_test_id(f"meet-msg-{msg_id}")).to_be_visible()
    await wang_page.get_by_test_id(f"meet-mark-decision-{msg_id}").click()
    for page in (wang_page, li_page, zhang_page):
        await expect(page.get_by_test_id(f"meet-msg-{msg_id}")).to_have_attribute(
            "data-mark", "decision", timeout=5000
        )
    await wang_page.screenshot(path=str(artifacts / "meeting-room.png"), full_page=True)

    await wang_page.get_by_test_id("meet-close").click()
    await wang_page.get_by_test_id("meet-summary").fill("按部署推进")
    await wang_page.get_by_test_id("meet-close-confirm").click()
    for page in (wang_page, li_page, zhang_page):
        minutes = page.get_by_test_id(f"meet-minutes-{mid}")
        await expect(minutes).to_be_visible(timeout=5000)
        await expect(page.get_by_test_id("meet-minutes-decisions")).to_contain_text(
            "年终总结本周五前报送办公室"
        )
        await expect(page.get_by_test_id("meet-minutes-attendees")).to_contain_text("张伟")
    await li_page.screenshot(path=str(artifacts / "meeting-minutes.png"), full_page=True)

    env = await office.server.command(li.token, "meeting.minutes", {"meeting_id": mid})
    assert [d["body"] for d in env["data"]["minutes"]["decisions"]] == [
        "年终总结本周五前报送办公室"
    ]
    assert {a["name"] for a in env["data"]["minutes"]["attendees"]} == {"王明", "李华", "张伟"}
