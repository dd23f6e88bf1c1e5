"""Circulation in headless Chromium: A circulates to B and C; B opens it, C confirms with a
comment; A's status board follows every step live."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.support import Office
from tests.test_web_board import NewPage, sign_in


async def _counts(page: Page, unopened: int, opened: int, confirmed: int) -> None:
    for state, n in (("unopened", unopened), ("opened", opened), ("confirmed", confirmed)):
        await expect(page.get_by_test_id(f"circ-count-{state}")).to_have_attribute(
            "data-count", str(n), timeout=5000
        )


async def test_the_senders_board_follows_open_and_confirm_live(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li, zhang = await office.person("li"), await office.person("zhang")
    wang_page, li_page, zhang_page = await sign_in(
        new_page, office.server.url, "wang", "li", "zhang"
    )

    await wang_page.get_by_test_id("nav-circulation").click()
    await wang_page.get_by_test_id("circ-new").click()
    await wang_page.get_by_test_id("circ-title").fill("关于做好年终总结工作的通知")
    await wang_page.get_by_test_id("circ-body").click()
    await wang_page.keyboard.type("请各位于本周五前提交年度工作总结。")
    for person, name in ((li, "李华"), (zhang, "张伟")):
        await wang_page.get_by_test_id("circ-to-input").fill(name)
        await wang_page.get_by_test_id(f"circ-to-option-{person.id}").click()
        await expect(wang_page.get_by_test_id(f"circ-chip-{person.id}")).to_be_visible()
    await wang_page.get_by_test_id("circ-send").click()
    await _counts(wang_page, 2, 0, 0)

    # B opens it: A's board moves without a reload.
    await li_page.get_by_test_id("nav-circulation").click()
    item = li_page.locator("[data-testid^='circ-item-']").first
    await expect(item).to_be_visible(timeout=5000)
    await item.click()
    await expect(li_page.get_by_test_id("circ-my-state")).to_have_attribute("data-state", "opened")
    await _counts(wang_page, 1, 1, 0)

    # C confirms with a comment (without opening first).
    await zhang_page.get_by_test_id("nav-circulation").click()
    z_item = zhang_page.locator("[data-testid^='circ-item-']").first
    await z_item.click()
    await zhang_page.get_by_test_id("circ-confirm-comment").fill("已阅，周四前报送")
    await zhang_page.get_by_test_id("circ-confirm").click()
    await expect(zhang_page.get_by_test_id("circ-my-state")).to_have_attribute(
        "data-state", "confirmed"
    )
    await _counts(wang_page, 0, 1, 1)
    cid = (await z_item.get_attribute("data-testid") or "").removeprefix("circ-item-")
    await expect(wang_page.get_by_test_id(f"circ-row-{cid}-{zhang.id}")).to_have_attribute(
        "data-state", "confirmed"
    )
    await expect(wang_page.get_by_test_id(f"circ-status-{cid}")).to_contain_text("已阅，周四前报送")
    await wang_page.screenshot(path=str(artifacts / "circulation-status.png"), full_page=True)
    await zhang_page.screenshot(path=str(artifacts / "circulation-confirmed.png"), full_page=True)

    status = await office.server.command(
        (await office.person("wang")).token, "circulation.status", {"circulation_id": cid}
    )
    assert status["data"]["counts"] == {"unopened": 0, "opened": 1, "confirmed": 1}
