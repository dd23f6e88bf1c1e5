"""The file library in headless Chromium: 李华 makes a folder, uploads a .txt written in Chinese
into it, sees it "indexing…" until the text is searchable, finds it by a two-character word with
the match highlighted, follows the hit to its folder, and gives 财务科 write access and 张伟 read
access in the permissions dialog, which the server then holds."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.support import Office
from tests.test_web_board import NewPage, sign_in

REPORT = (
    "关于编制2026年度预算报告的说明\n"
    "各科室：根据市财政局要求，请于本月底前报送本部门年度预算草案，"
    "并附支出明细和绩效目标。\n"
).encode()


async def test_a_folder_upload_search_and_permissions(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    li, zhang = await office.person("li"), await office.person("zhang")
    (page,) = await sign_in(new_page, office.server.url, "li")
    await page.get_by_test_id("nav-library").click()
    await expect(page.get_by_test_id("lib-empty")).to_contain_text("还没有您能查看的文件夹")

    # A folder at the top, then into it.
    await page.get_by_test_id("lib-new-folder").click()
    await page.get_by_test_id("lib-folder-name").fill("财务资料")
    await page.get_by_test_id("lib-folder-create").click()
    folder = page.locator("[data-testid^='lib-folder-']").filter(has_text="财务资料")
    await expect(folder).to_be_visible()
    folder_id = (await folder.get_attribute("data-testid") or "").removeprefix("lib-folder-")
    await page.get_by_test_id(f"lib-open-{folder_id}").click()
    await expect(page.get_by_test_id("lib-panel")).to_have_attribute("data-folder-id", folder_id)
    await expect(page.get_by_test_id(f"lib-crumb-{folder_id}")).to_have_text("财务资料")
    await expect(page.get_by_test_id("lib-empty")).to_contain_text("此文件夹是空的")

    # Upload a .txt: it is listed at once and searchable once indexed.
    await page.get_by_test_id("lib-upload").set_input_files(
        files=[{"name": "年度预算报告.txt", "mimeType": "text/plain", "buffer": REPORT}]
    )
    row = page.locator("[data-testid^='lib-doc-']").filter(has_text="年度预算报告")
    await expect(row).to_be_visible(timeout=5000)
    doc_id = (await row.get_attribute("data-testid") or "").removeprefix("lib-doc-")
    await expect(row).to_have_attribute("data-indexing", "false", timeout=10_000)
    await page.screenshot(path=str(artifacts / "library-folder.png"), full_page=True)

    # Search a word from the text (not the title): the hit shows it highlighted.
    await page.get_by_test_id("lib-crumb-top").click()
    await expect(page.get_by_test_id("lib-panel")).to_have_attribute("data-folder-id", "")
    await page.get_by_test_id("lib-search-input").fill("绩效")
    await page.get_by_test_id("lib-search-submit").click()
    hit = page.get_by_test_id(f"lib-hit-{doc_id}")
    await expect(hit).to_be_visible(timeout=5000)
    await expect(page.get_by_test_id("lib-hit-count")).to_have_attribute("data-count", "1")
    marks = page.get_by_test_id(f"lib-hit-snippet-{doc_id}").locator("mark")
    await expect(marks.first).to_have_text("绩效")
    # A two-character word of the title is found as well, and marked in it.
    await page.get_by_test_id("lib-search-input").fill("预算")
    await page.get_by_test_id("lib-search-submit").click()
    await expect(hit.locator("mark").first).to_have_text("预算")
    await page.screenshot(path=str(artifacts / "library-search.png"), full_page=True)
    # The hit leads to its folder.
    await page.get_by_test_id(f"lib-hit-folder-{doc_id}").click()
    await expect(page.get_by_test_id("lib-panel")).to_have_attribute("data-folder-id", folder_id)
    await expect(page.get_by_test_id(f"lib-doc-{doc_id}")).to_have_class("lib-row lib-row-hit")

    # Permissions: 财务科 may write, 张伟 may read.
    await page.get_by_test_id("lib-acl-open").click()
    dialog = page.get_by_test_id("lib-acl-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_test_id(f"lib-acl-user-{li.id}")).to_contain_text("李华")
    await expect(dialog.get_by_test_id(f"lib-acl-user-{li.id}-manage")).to_be_checked()
    finance = office.departments["finance"]
    await dialog.get_by_test_id("lib-acl-dept").select_option(finance)
    await dialog.get_by_test_id(f"lib-acl-department-{finance}-write").check()
    await dialog.get_by_test_id("lib-acl-user-to-input").fill("张伟")
    await dialog.get_by_test_id(f"lib-acl-user-to-option-{zhang.id}").click()
    await expect(dialog.get_by_test_id(f"lib-acl-user-{zhang.id}")).to_contain_text("张伟")
    await expect(dialog.get_by_test_id(f"lib-acl-user-{zhang.id}-read")).to_be_checked()
    await page.screenshot(path=str(artifacts / "library-permissions.png"), full_page=True)
    await dialog.get_by_test_id("lib-acl-save").click()
    await expect(dialog).to_have_count(0)
    await expect(page.get_by_test_id("toast").filter(has_text="权限已保存")).to_be_visible()

    acl = await office.server.command(li.token, "library.acl.get", {"folder_id": folder_id})
    assert acl["ok"], acl
    entries = {
        (e.get("user_id") or e.get("department_id") or e.get("role")): sorted(e["perms"])
        for e in acl["data"]["entries"]
    }
    assert "manage" in entries.pop(li.id), entries
    assert entries == {finance: ["read", "write"], zhang.id: ["read"]}, entries
    # 张伟 now finds it too; 赵敏 (财务科) may add to it.
    found = await office.server.command(zhang.token, "library.search", {"query": "预算"})
    assert [h["doc_id"] for h in found["data"]["hits"]] == [doc_id], found
    listed = await office.server.command(
        (await office.person("zhao")).token, "library.list", {"folder_id": folder_id}
    )
    assert "write" in listed["data"]["may"], listed
