"""Sanity checks for the demo organisation (pure data, no database)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from storage.demo import DEMO_PASSWORD, DemoLogin, demo_logins, demo_organisation

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
ACCOUNT_RE = re.compile(r"^[a-z0-9]+$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
HEAD_TITLES = {"科长", "主任", "处长"}


@pytest.fixture(scope="module")
def org() -> dict[str, Any]:
    return demo_organisation(HASH)


@pytest.fixture(scope="module")
def users(org: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["account"]: u for u in org["users"]}


@pytest.fixture(scope="module")
def departments(org: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["key"]: d for d in org["departments"]}


def test_sizes(org: dict[str, Any]) -> None:
    assert 10 <= len(org["departments"]) <= 15
    assert 140 <= len(org["users"]) <= 160


def test_department_tree(org: dict[str, Any], departments: dict[str, dict[str, Any]]) -> None:
    assert len(departments) == len(org["departments"]), "department keys must be unique"
    roots = [d for d in org["departments"] if d.get("parent_key") is None]
    assert [d["key"] for d in roots] == ["office"]
    assert roots[0]["name"].endswith("人民政府办公室")
    for dep in org["departments"]:
        assert ACCOUNT_RE.match(dep["key"]), dep
        assert dep["name"]
        parent = dep.get("parent_key")
        if parent is not None:
            assert parent in departments, dep
        # Walking up must reach the root without revisiting a node.
        seen = set()
        key: str | None = dep["key"]
        while key is not None:
            assert key not in seen, f"department cycle at {key}"
            seen.add(key)
            key = departments[key].get("parent_key")


def test_user_fields(org: dict[str, Any], departments: dict[str, dict[str, Any]]) -> None:
    for user in org["users"]:
        assert ACCOUNT_RE.match(user["account"]), user["account"]
        assert user["department_key"] in departments, user
        assert user["email"] == f"{user['account']}@jiangzhou.gov.cn"
        assert user["password_hash"] == HASH
        assert user["name"] and user["title"]
        assert "staff" in user["roles"]
        assert set(user["roles"]) <= {"staff", "leader", "admin", "document_officer", "archivist"}


def test_accounts_names_phones_unique(org: dict[str, Any]) -> None:
    accounts = Counter(u["account"] for u in org["users"])
    assert [a for a, n in accounts.items() if n > 1] == []
    names = Counter(u["name"] for u in org["users"])
    assert [a for a, n in names.items() if n > 1] == []
    phones = [u["phone"] for u in org["users"]]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert PHONE_RE.match(phone), phone
        assert phone[:2] in {"13", "15", "17", "18", "19"}


def test_supervisors_exist_and_precede(org: dict[str, Any], users: dict[str, Any]) -> None:
    seen: set[str] = set()
    for user in org["users"]:
        sup = user.get("supervisor_account")
        if sup is not None:
            assert sup in users, user
            assert sup in seen, f"{user['account']} listed before its supervisor {sup}"
        seen.add(user["account"])
    no_supervisor = [u["account"] for u in org["users"] if "supervisor_account" not in u]
    assert no_supervisor == ["chenjianguo"]


def test_no_supervisor_cycles(users: dict[str, dict[str, Any]]) -> None:
    for account in users:
        seen: set[str] = set()
        current: str | None = account
        while current is not None:
            assert current not in seen, f"supervisor cycle through {current}"
            seen.add(current)
            current = users[current].get("supervisor_account")
        assert "chenjianguo" in seen


def test_one_head_per_department(
    org: dict[str, Any], departments: dict[str, dict[str, Any]], users: dict[str, Any]
) -> None:
    for key, dep in departments.items():
        members = [u for u in org["users"] if u["department_key"] == key]
        assert members, f"{key} is empty"
        heads = [u for u in members if u["title"] in HEAD_TITLES]
        assert len(heads) == 1, (key, [h["name"] for h in heads])
        head = heads[0]
        assert "leader" in head["roles"]
        if key == "office":
            assert head["account"] == "chenjianguo"
            continue
        # Within a department only the head is a leader; everyone else reports to the head.
        assert [u for u in members if "leader" in u["roles"]] == [head]
        for member in members:
            if member is not head:
                assert member["supervisor_account"] == head["account"], member
        sup = users[head["supervisor_account"]]
        if dep["parent_key"] == "office":
            assert sup["department_key"] == "office" and sup["title"] == "副主任", head
        else:
            parent_heads = [
                u
                for u in org["users"]
                if u["department_key"] == dep["parent_key"] and u["title"] in HEAD_TITLES
            ]
            assert parent_heads == [sup]


def test_office_leadership(org: dict[str, Any]) -> None:
    office = [u for u in org["users"] if u["department_key"] == "office"]
    titles = Counter(u["title"] for u in office)
    assert titles["主任"] == 1
    assert 2 <= titles["副主任"] <= 3
    assert titles["秘书长"] == 1
    for user in office:
        if user["title"] in {"主任", "副主任", "秘书长"}:
            assert "leader" in user["roles"]
            if user["title"] != "主任":
                assert user["supervisor_account"] == "chenjianguo"


def test_fixed_accounts(users: dict[str, dict[str, Any]], departments: dict[str, Any]) -> None:
    assert departments["mishu1"]["name"] == "秘书一科"
    assert departments["xinxi"]["name"] == "信息科"

    wangming = users["wangming"]
    assert (wangming["name"], wangming["department_key"]) == ("王明", "mishu1")
    assert "leader" in wangming["roles"]
    assert wangming["title"] == "科长"

    for account, name in (("lihua", "李华"), ("zhangwei", "张伟")):
        user = users[account]
        assert (user["name"], user["department_key"], user["title"]) == (name, "mishu1", "科员")
        assert user["roles"] == ["staff"]
        assert user["supervisor_account"] == "wangming"

    admin = users["admin"]
    assert (admin["name"], admin["department_key"]) == ("系统管理员", "xinxi")
    assert admin["roles"] == ["staff", "admin"]

    director = users["chenjianguo"]
    assert director["department_key"] == "office" and director["title"] == "主任"
    assert "leader" in director["roles"]

    admins = [a for a, u in users.items() if "admin" in u["roles"]]
    assert admins == ["admin"]


def test_no_generated_collisions_with_fixed_names(org: dict[str, Any]) -> None:
    fixed = {"王明", "李华", "张伟", "陈建国"}
    names = [u["name"] for u in org["users"]]
    for name in fixed:
        assert names.count(name) == 1
    # No generated account like "wangming2" that could be confused with a well-known one.
    for user in org["users"]:
        for base in ("wangming", "lihua", "zhangwei", "chenjianguo", "admin"):
            assert not re.fullmatch(base + r"\d+", user["account"]), user


def test_deterministic() -> None:
    assert demo_organisation(HASH) == demo_organisation(HASH)
    other = demo_organisation("other")
    assert [u["phone"] for u in other["users"]] == [
        u["phone"] for u in demo_organisation(HASH)["users"]
    ]


def test_demo_logins(users: dict[str, dict[str, Any]]) -> None:
    logins = demo_logins()
    assert DEMO_PASSWORD == "liaison2026"
    assert all(isinstance(login, DemoLogin) for login in logins)
    accounts = {login.account for login in logins}
    assert {"admin", "wangming", "lihua", "zhangwei", "chenjianguo"} <= accounts
    for login in logins:
        assert users[login.account]["name"] == login.name
        assert login.role
