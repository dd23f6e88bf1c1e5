"""The pager in headless Chromium: a page pops up live on the recipient's open tab, and the sender
watches the receipt go delivered → read without reloading."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.support import Office
from tests.test_web_board import NewPage, sign_in


async def test_a_page_pops_up_live_and_the_sender_sees_delivered_then_read(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li = await office.person("li")
    wang_page, li_page = await sign_in(new_page, office.server.url, "wang", "li")

    await wang_page.get_by_test_id("nav-pager").click()
    await wang_page.get_by_test_id("pager-to-input").fill("李华")
    await wang_page.get_by_test_id(f"pager-to-option-{li.id}").click()
    await expect(wang_page.get_by_test_id(f"pager-chip-{li.id}")).to_be_visible()
    await wang_page.get_by_test_id("pager-body").fill("请十分钟后到302会议室")
    await wang_page.get_by_test_id("pager-urgent").check()
    await wang_page.get_by_test_id("pager-send").click()

    # Li stayed on the board: the page pops up there, live.
    popup = li_page.get_by_test_id("pager-popup")
    await expect(popup).to_be_visible(timeout=5000)
    await expect(popup).to_contain_text("请十分钟后到302会议室")
    await expect(popup).to_contain_text("王明")
    message_id = await popup.get_attribute("data-message-id")
    assert message_id
    await expect(li_page.get_by_test_id("nav-pager")).to_have_attribute("data-unread", "1")
    await li_page.screenshot(path=str(artifacts / "pager-popup.png"), full_page=True)

    # Li's client acknowledged the event: Wang's receipt says delivered, then read.
    receipt = wang_page.get_by_test_id(f"receipt-{message_id}-{li.id}")
    if not await receipt.is_visible():
        await wang_page.get_by_test_id("pager-tab-sent").click()
        await wang_page.get_by_test_id(f"pager-item-{message_id}").click()
    await expect(receipt).to_have_attribute("data-state", "delivered", timeout=5000)
    await li_page.get_by_test_id("pager-popup-read").click()
    await expect(receipt).to_have_attribute("data-state", "read", timeout=5000)
    await expect(li_page.get_by_test_id("nav-pager")).to_have_attribute("data-unread", "0")
    await wang_page.screenshot(path=str(artifacts / "pager-receipts.png"), full_page=True)

    # The page agrees with the server.
    wang = await office.person("wang")
    env = await office.server.command(wang.token, "pager.receipts", {"message_id": message_id})
    row = env["data"]["recipients"][0]
    assert row["delivered_at"] and row["read_at"]
