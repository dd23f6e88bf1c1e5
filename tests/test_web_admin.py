"""The web client's people administration in headless Chromium: an administrator cuts off a
colleague who is signed in elsewhere, lets them back, and gives them a new password."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.support import ADMIN, TEST_PASSWORD, Office
from tests.test_web_board import NewPage, sign_in

NEW_PASSWORD = "brand new 2"


async def open_admin(page: Page, name: str) -> None:
    await page.get_by_test_id("nav-admin").click()
    await page.get_by_test_id("admin-search").fill(name)


async def try_login(page: Page, account: str, password: str) -> None:
    await page.get_by_test_id("login-account").fill(account)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()


async def test_an_administrator_cuts_off_a_signed_in_colleague(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li = await office.person("li")
    admin_page, li_page, wang_page = await sign_in(new_page, office.server.url, ADMIN, "li", "wang")
    # Only administrators see the panel.
    await expect(wang_page.get_by_test_id("nav-admin")).to_have_count(0)
    await expect(li_page.get_by_test_id("nav-admin")).to_have_count(0)

    await open_admin(admin_page, "李华")
    row = admin_page.get_by_test_id(f"admin-row-{li.id}")
    await expect(row).to_be_visible()
    await expect(admin_page.get_by_test_id("admin-count")).to_have_attribute("data-count", "1")
    await admin_page.get_by_test_id(f"admin-deactivate-{li.id}").click()
    await expect(admin_page.get_by_test_id("admin-deactivate-dialog")).to_contain_text("李华")
    await admin_page.screenshot(path=str(artifacts / "admin-deactivate-confirm.png"))
    await admin_page.get_by_test_id("admin-deactivate-confirm").click()

    await expect(admin_page.get_by_test_id(f"admin-state-{li.id}")).to_have_attribute(
        "data-state", "deactivated"
    )
    await expect(admin_page.get_by_test_id(f"admin-reactivate-{li.id}")).to_be_visible()
    # Li's page was cut off and is back at the login, without anybody touching it.
    await expect(li_page.get_by_test_id("login-form")).to_be_visible(timeout=5000)
    await try_login(li_page, "li", TEST_PASSWORD)
    await expect(li_page.get_by_test_id("login-error")).to_have_attribute(
        "data-code", "unauthorized"
    )
    # Wang, untouched, no longer finds li on the board.
    await wang_page.reload()
    await expect(wang_page.get_by_test_id("connection-indicator")).to_have_attribute(
        "data-state", "connected"
    )
    await expect(wang_page.get_by_test_id("board-table")).to_contain_text("王明")
    await expect(wang_page.get_by_test_id(f"board-row-{li.id}")).to_have_count(0)

    await admin_page.screenshot(path=str(artifacts / "admin-deactivated.png"), full_page=True)
    await li_page.screenshot(path=str(artifacts / "admin-li-signed-out.png"), full_page=True)


async def test_an_administrator_reactivates_and_sets_a_new_password(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li = await office.person("li")
    admin_page, li_page = await sign_in(new_page, office.server.url, ADMIN, "li")
    await open_admin(admin_page, "lihua")
    await admin_page.get_by_test_id(f"admin-deactivate-{li.id}").click()
    await admin_page.get_by_test_id("admin-deactivate-confirm").click()
    await expect(li_page.get_by_test_id("login-form")).to_be_visible(timeout=5000)

    await admin_page.get_by_test_id(f"admin-reactivate-{li.id}").click()
    await expect(admin_page.get_by_test_id(f"admin-state-{li.id}")).to_have_attribute(
        "data-state", "active"
    )
    await admin_page.get_by_test_id(f"admin-reset-{li.id}").click()
    dialog = admin_page.get_by_test_id("admin-reset-dialog")
    await admin_page.get_by_test_id("admin-new-password").fill(NEW_PASSWORD)
    await admin_page.get_by_test_id("admin-new-password-again").fill("something else")
    await admin_page.get_by_test_id("admin-reset-submit").click()
    await expect(dialog.get_by_test_id("admin-dialog-error")).to_be_visible()
    await admin_page.get_by_test_id("admin-new-password-again").fill(NEW_PASSWORD)
    await admin_page.screenshot(path=str(artifacts / "admin-reset-password.png"))
    await admin_page.get_by_test_id("admin-reset-submit").click()
    await expect(dialog).to_have_count(0)

    await try_login(li_page, "li", TEST_PASSWORD)
    await expect(li_page.get_by_test_id("login-error")).to_have_attribute(
        "data-code", "unauthorized"
    )
    await try_login(li_page, "li", NEW_PASSWORD)
    await expect(li_page.get_by_test_id("connection-indicator")).to_have_attribute(
        "data-state", "connected"
    )
