"""Directory and organisation import."""

from __future__ import annotations

import msgspec

from tests.support import ADMIN, Office


async def test_departments_form_a_tree(office: Office) -> None:
    wang = await office.person("wang")
    env = await office.server.command(wang.token, "directory.departments")
    depts = {d["name"]: d for d in env["data"]["departments"]}
    assert depts["办公室"]["parent_id"] is None
    assert depts["综合科"]["parent_id"] == depts["办公室"]["id"]


async def test_search_finds_chinese_names_pinyin_initials_phone_and_department(
    office: Office,
) -> None:
    wang = await office.person("wang")

    async def names(**q: object) -> set[str]:
        env = await office.server.command(wang.token, "directory.users", q)
        assert env["ok"], env
        return {u["name"] for u in env["data"]["users"]}

    assert await names(query="王") == {"王明"}
    assert await names(query="王明") == {"王明"}
    assert await names(query="wangming") == {"王明"}
    assert await names(query="wm") == {"王明"}
    assert await names(query="13900000005") == {"赵敏"}
    assert await names(query="财务") == {"赵敏"}
    assert await names(query="%") == set()  # LIKE wildcards are literal
    assert await names(department_id=office.departments["general"]) == {"王明", "李华", "张伟"}


async def test_users_carry_presence_and_whereabouts(office: Office) -> None:
    await office.tab("li")
    wang = await office.person("wang")
    env = await office.server.command(wang.token, "directory.users", {"query": "李华"})
    (li,) = env["data"]["users"]
    assert li["presence"] == "online"
    assert li["whereabouts"]["status"] == "in_office"
    assert set(li) == {
        "id",
        "account",
        "name",
        "department_id",
        "title",
        "phone",
        "email",
        "presence",
        "whereabouts",
    }


async def test_import_upserts_by_key_and_account(office: Office) -> None:
    admin = await office.server.login(ADMIN)
    body = {
        "departments": [{"key": "finance", "name": "财务处", "parent_key": "office"}],
        "users": [
            {"account": "zhao", "name": "赵敏", "department_key": "general", "title": "副科长"}
        ],
    }
    status, env = await office.server.post(
        "/api/v1/admin/import", body, token=admin["access_token"]
    )
    assert status == 200, env
    assert env["data"]["departments"] == {"finance": office.departments["finance"]}
    assert env["data"]["users"] == {"zhao": office.user_ids["zhao"]}
    zhao = await office.server.login("zhao")  # the password hash was kept
    assert zhao["user"]["title"] == "副科长"
    assert zhao["user"]["department_id"] == office.departments["general"]


async def test_ten_thousand_users_in_one_import(office: Office) -> None:
    admin = await office.server.login(ADMIN)
    body = {
        "departments": [
            {"key": f"d{i}", "name": f"第{i}科", "parent_key": "office"} for i in range(20)
        ],
        "users": [
            {
                "account": f"u{i}",
                "name": f"测试{i}",
                "department_key": f"d{i % 20}",
                "password_hash": office.server.password_hash,
                "supervisor_account": "u0" if i else None,
            }
            for i in range(10_000)
        ],
    }
    body["users"][0].pop("supervisor_account")
    status, env = await office.server.post(
        "/api/v1/admin/import", raw=msgspec.json.encode(body), token=admin["access_token"]
    )
    assert status == 200, env
    assert len(env["data"]["users"]) == 10_000
    pool = office.server.services.pool
    assert await pool.fetchval("SELECT count(*) FROM streams") == 10_000 + 6
    u9 = await office.server.login("u9999")
    assert u9["user"]["supervisor_id"] == env["data"]["users"]["u0"]


async def test_plain_passwords_are_hashed_with_argon2id(office: Office) -> None:
    admin = await office.server.login(ADMIN)
    body = {
        "users": [
            {
                "account": "new",
                "name": "新人",
                "department_key": "general",
                "password": "secret-123",
            }
        ]
    }
    status, env = await office.server.post(
        "/api/v1/admin/import", body, token=admin["access_token"]
    )
    assert status == 200, env
    phc = await office.server.services.pool.fetchval(
        "SELECT password_hash FROM users WHERE account = 'new'"
    )
    assert phc.startswith("$argon2id$")
    assert (await office.server.login("new", "secret-123"))["user"]["name"] == "新人"


async def test_import_cycle_is_refused_and_changes_nothing(office: Office) -> None:
    admin = await office.server.login(ADMIN)
    body = {"departments": [{"key": "office", "name": "办公室", "parent_key": "general"}]}
    status, env = await office.server.post(
        "/api/v1/admin/import", body, token=admin["access_token"]
    )
    assert status == 400 and env["error"]["code"] == "bad_request"
    pool = office.server.services.pool
    assert await pool.fetchval("SELECT parent_id FROM departments WHERE key = 'office'") is None


async def test_duty_roles_import_and_an_unknown_role_is_refused(office: Office) -> None:
    admin = await office.server.login(ADMIN)
    user = {"account": "sun", "name": "孙兰", "department_key": "general", "password": "secret1"}
    status, env = await office.server.post(
        "/api/v1/admin/import",
        {"users": [{**user, "roles": ["archivist"]}]},
        token=admin["access_token"],
    )
    assert status == 200 and env["ok"], env
    pool = office.server.services.pool
    roles = await pool.fetchval("SELECT roles FROM users WHERE account = 'sun'")
    assert list(roles) == ["staff", "archivist"]

    status, env = await office.server.post(
        "/api/v1/admin/import",
        {"users": [{**user, "roles": ["archivst"]}]},
        token=admin["access_token"],
    )
    assert status == 400 and env["error"]["code"] == "bad_request", env
    assert "archivist" in str(env["error"])
    assert list(await pool.fetchval("SELECT roles FROM users WHERE account = 'sun'")) == roles
