"""The file library's permissions: a matrix over inheritance on/off × a user / their department
(from above) / their role × read / write / manage, checked through the commands and the
download; moves and ACL changes rewrite the effective permissions of the whole subtree."""

from __future__ import annotations

import pytest

from tests.support import Office


async def _abilities(office: Office, who: str, folder_id: str, file_id: str) -> set[str]:
    """What `who` can do in the folder, found by trying it."""
    can = set()
    listed = await office.call(who, "library.list", {"folder_id": folder_id})
    person = await office.person(who)
    status, _, _ = await office.server.download(person.token, file_id)
    if listed["ok"]:
        can.add("read")
        assert status == 200
    else:
        assert listed["error"]["code"] == "not_found" and status == 404
    sub = await office.call(who, "library.folder.create", {"name": "试写", "parent_id": folder_id})
    if sub["ok"]:
        can.add("write")
    if (await office.call(who, "library.acl.get", {"folder_id": folder_id}))["ok"]:
        can.add("manage")
    return can


PRINCIPALS = {
    "user": lambda o: {"user_id": o.user_ids["li"]},
    "department": lambda o: {"department_id": o.departments["office"]},  # li is in 综合科, below
    "role": lambda _: {"role": "staff"},
}
EXPECTED = {"read": {"read"}, "write": {"read", "write"}, "manage": {"read", "write", "manage"}}


@pytest.mark.parametrize("inherit", [True, False])
@pytest.mark.parametrize("principal", ["user", "department", "role"])
@pytest.mark.parametrize("perm", ["read", "write", "manage"])
async def test_the_permission_matrix(
    office: Office, inherit: bool, principal: str, perm: str
) -> None:
    wang = office.user_ids["wang"]
    top = (await office.ok("wang", "library.folder.create", {"name": "科室资料"}))["folder_id"]
    sub = (await office.ok("wang", "library.folder.create", {"name": "制度", "parent_id": top}))[
        "folder_id"
    ]
    files = {}
    for folder in (top, sub):  # a document in each, to download
        status, uploaded = await office.server.upload(
            (await office.person("wang")).token, "规章制度汇编".encode(), "rules.txt", "text/plain"
        )
        assert status == 200, uploaded
        files[folder] = uploaded["data"]["file_id"]
        await office.ok("wang", "library.add", {"folder_id": folder, "file_id": files[folder]})
    entries = [
        {"user_id": wang, "perms": ["manage"]},
        {**PRINCIPALS[principal](office), "perms": [perm]},
    ]
    await office.ok(
        "wang", "library.acl.set", {"folder_id": top, "inherit": True, "entries": entries}
    )
    await office.ok(
        "wang",
        "library.acl.set",
        {"folder_id": sub, "inherit": inherit, "entries": [{"user_id": wang, "perms": ["manage"]}]},
    )
    assert await _abilities(office, "li", top, files[top]) == EXPECTED[perm]
    assert await _abilities(office, "li", sub, files[sub]) == (EXPECTED[perm] if inherit else set())
    # zhao (财务科) is not li, but is below 办公室 too and has the staff role.
    expected_zhao = set() if principal == "user" else EXPECTED[perm]
    assert await _abilities(office, "zhao", top, files[top]) == expected_zhao


async def test_moving_a_folder_takes_the_new_parents_permissions(office: Office) -> None:
    wang = office.user_ids["wang"]
    open_ = (await office.ok("wang", "library.folder.create", {"name": "公开"}))["folder_id"]
    closed = (await office.ok("wang", "library.folder.create", {"name": "内部"}))["folder_id"]
    await office.ok(
        "wang",
        "library.acl.set",
        {
            "folder_id": open_,
            "inherit": True,
            "entries": [
                {"user_id": wang, "perms": ["manage"]},
                {"role": "staff", "perms": ["read"]},
            ],
        },
    )
    inner = (
        await office.ok("wang", "library.folder.create", {"name": "通知", "parent_id": closed})
    )["folder_id"]
    assert not (await office.call("li", "library.list", {"folder_id": inner}))["ok"]
    await office.ok("wang", "library.move", {"folder_id": inner, "to": open_})
    listed = await office.ok("li", "library.list", {"folder_id": open_})
    assert [f["name"] for f in listed["folders"]] == ["通知"]
    assert (await office.ok("li", "library.list", {"folder_id": inner}))["may"] == ["read"]
    # Not into itself.
    env = await office.call("wang", "library.move", {"folder_id": open_, "to": inner})
    assert env["error"]["code"] == "conflict"


async def test_bad_acl_input_changes_nothing(office: Office) -> None:
    top = (await office.ok("wang", "library.folder.create", {"name": "资料"}))["folder_id"]
    for entries in (
        [{"user_id": office.user_ids["li"], "role": "staff", "perms": ["read"]}],
        [{"user_id": "999999", "perms": ["read"]}],
        [{"role": "staff", "perms": ["delete"]}],
        [],
    ):
        env = await office.call(
            "wang",
            "library.acl.set",
            {"folder_id": top, "inherit": True, "entries": entries},
        )
        assert env["error"]["code"] in ("bad_request", "conflict"), entries
    got = await office.ok("wang", "library.acl.get", {"folder_id": top})
    assert got["entries"] == [
        {"user_id": office.user_ids["wang"], "perms": ["read", "write", "manage"]}
    ]
    assert (
        await office.call(
            "li", "library.acl.set", {"folder_id": top, "inherit": True, "entries": []}
        )
    )["error"]["code"] == "not_found"
