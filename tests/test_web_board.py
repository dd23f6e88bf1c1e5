"""The web client in headless Chromium: two people, two browser contexts, a live board."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import Page, expect

from tests.support import TEST_PASSWORD, Office

NewPage = Callable[[], Awaitable[Page]]


async def sign_in(new_page: NewPage, url: str, *accounts: str) -> list[Page]:
    """Each account signed in on a page of its own (a separate browser context), connected."""
    return [await _sign_in_one(new_page, url, a) for a in accounts]


async def _sign_in_one(new_page: NewPage, url: str, account: str) -> Page:
    page = await new_page()
    await page.goto(url + "/#board")
    await page.get_by_test_id("login-account").fill(account)
    await page.get_by_test_id("login-password").fill(TEST_PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("connection-indicator")).to_have_attribute(
        "data-state", "connected"
    )
    return page


async def test_a_business_trip_shows_on_a_colleagues_board_without_reload(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li = await office.person("li")
    wang_page, li_page = await sign_in(new_page, office.server.url, "wang", "li")
    li_status = wang_page.get_by_test_id(f"status-{li.id}")
    await expect(li_status).to_have_attribute("data-status", "in_office")
    await expect(wang_page.get_by_test_id(f"presence-{li.id}")).to_have_attribute(
        "data-presence", "online"
    )

    await li_page.get_by_test_id("wa-status").select_option("business_trip")
    await li_page.get_by_test_id("wa-note").fill("赴省厅汇报")
    await li_page.get_by_test_id("wa-location").fill("省城")
    await li_page.get_by_test_id("wa-until-tomorrow").click()
    await li_page.get_by_test_id("wa-submit").click()

    # Wang's page was never reloaded: the delta arrived over the socket.
    await expect(li_status).to_have_attribute("data-status", "business_trip", timeout=5000)
    row = wang_page.get_by_test_id(f"board-row-{li.id}")
    await expect(row).to_contain_text("赴省厅汇报")
    await expect(wang_page.get_by_test_id(f"until-{li.id}")).not_to_be_empty()
    await wang_page.screenshot(path=str(artifacts / "board-business-trip.png"), full_page=True)

    # What the page shows is what the server holds.
    board = await office.server.command(
        li.token, "whereabouts.board", {"department_id": office.departments["general"]}
    )
    me = next(m for m in board["data"]["members"] if m["user"]["id"] == li.id)
    assert me["whereabouts"]["status"] == "business_trip"
    assert me["whereabouts"]["until"] is not None
    await li_page.screenshot(path=str(artifacts / "board-li-form.png"), full_page=True)


async def test_a_note_left_on_the_board_reaches_its_reader_live(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li = await office.person("li")
    wang_page, li_page = await sign_in(new_page, office.server.url, "wang", "li")
    await wang_page.get_by_test_id(f"note-to-{li.id}").click()
    await wang_page.get_by_test_id("note-body").fill("下午三点来我办公室")
    await wang_page.get_by_test_id("note-submit").click()
    await expect(li_page.get_by_test_id("header-notes")).to_have_attribute(
        "data-count", "1", timeout=5000
    )
    await expect(wang_page.get_by_test_id(f"notes-waiting-{li.id}")).to_have_attribute(
        "data-count", "1"
    )
    await li_page.screenshot(path=str(artifacts / "notes-arrived.png"), full_page=True)
