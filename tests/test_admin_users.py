"""Cutting a person off (contract §4 Directory, Administration): deactivation ends every session
and drops live sockets within 2 s, the person can no longer sign in and leaves the directory, the
board and fan-out but stays in history; reactivation lets them back; a new password, set by an
administrator or by a re-import, signs out whoever used the old one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.support import ADMIN, TEST_PASSWORD, Client, LiveServer, Office
from tests.test_auth import (
    LOGIN,
    REFRESH,
    assert_failure,
    probe,
    refusal_code,
    refused,
)

IMPORT = "/api/v1/admin/import"
NEW_PASSWORD = "brand new 2"


# --- helpers --------------------------------------------------------------------------------
async def admin_token(server: LiveServer) -> str:
    return str((await server.login(ADMIN))["access_token"])


def watch_disconnect(client: Client) -> asyncio.Future[float]:
    """When (loop time) the server cut this socket."""
    loop = asyncio.get_running_loop()
    cut: asyncio.Future[float] = loop.create_future()

    @client.sio.on("disconnect")
    async def on_disconnect(*_: Any) -> None:
        if not cut.done():
            cut.set_result(loop.time())

    return cut


async def cut_within(cut: asyncio.Future[float], started: float, seconds: float = 2) -> float:
    """Wait for the cut no longer than `seconds` after `started`; how long it took."""
    remaining = started + seconds - asyncio.get_running_loop().time()
    at = await asyncio.wait_for(asyncio.shield(cut), max(remaining, 0.01))
    return at - started


async def admin(server: LiveServer, token: str, name: str, payload: Any) -> dict[str, Any]:
    return await server.command(token, f"admin.users.{name}", payload)


def ok(env: dict[str, Any]) -> dict[str, Any]:
    assert env["ok"] is True, env
    return env["data"]  # type: ignore[no-any-return]


async def signed_out_everywhere(server: LiveServer, token: str, refresh_token: str) -> None:
    """The session's access token is refused over HTTP and on connect; its refresh token too."""
    status, env = await probe(server, token)
    assert_failure(status, env, 401, "unauthorized")
    assert refusal_code(await refused(server, {"token": token})) == "unauthorized"
    status, env = await server.post(REFRESH, {"refresh_token": refresh_token})
    assert_failure(status, env, 401, "unauthorized")


async def cannot_sign_in(server: LiveServer, account: str, password: str = TEST_PASSWORD) -> None:
    status, env = await server.post(LOGIN, {"account": account, "password": password})
    assert_failure(status, env, 401, "unauthorized")


async def directory_ids(server: LiveServer, token: str, **query: Any) -> set[str]:
    return {u["id"] for u in ok(await server.command(token, "directory.users", query))["users"]}


async def open_sessions(server: LiveServer, user_id: str) -> int:
    return int(
        await server.services.pool.fetchval(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
            int(user_id),
        )
    )


def key() -> str:
    return uuid.uuid4().hex


# --- deactivation ---------------------------------------------------------------------------
async def test_deactivation_cuts_live_sockets_within_2s_and_every_session(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    phone = await server.login("li")  # a second session
    tabs = [await server.connect(li.token), await server.connect(phone["access_token"])]
    cuts = [watch_disconnect(tab) for tab in tabs]
    wang_tab = await office.tab("wang")
    token = await admin_token(server)

    started = asyncio.get_running_loop().time()
    data = ok(await admin(server, token, "deactivate", {"user_id": li.id}))
    for cut in cuts:
        took = await cut_within(cut, started)
        assert took <= 2, f"the socket was cut after {took:.2f} s"

    assert data["user"]["id"] == li.id and data["user"]["deactivated_at"] is not None
    await signed_out_everywhere(server, li.token, li.refresh_token)
    await signed_out_everywhere(server, phone["access_token"], phone["refresh_token"])
    assert await open_sessions(server, li.id) == 0
    await cannot_sign_in(server, "li")
    # Nobody else was touched.
    assert wang_tab.sio.connected
    assert (await wang_tab.call("directory.departments", {}))["ok"]


async def test_a_deactivated_users_unexpired_token_is_refused_even_if_the_revocation_was_lost(
    office: Office,
) -> None:
    """Should a node miss the revocation (a crash after commit, a bus outage), the token of a
    deactivated person still opens nothing: the user lookups of HTTP and connect refuse them."""
    server = office.server
    li = await office.person("li")
    await server.services.pool.execute(
        "UPDATE users SET deactivated_at = now() WHERE id = $1", int(li.id)
    )
    status, env = await probe(server, li.token)
    assert_failure(status, env, 401, "unauthorized")
    assert refusal_code(await refused(server, {"token": li.token})) == "unauthorized"
    status, env = await server.post(REFRESH, {"refresh_token": li.refresh_token})
    assert_failure(status, env, 401, "unauthorized")


async def test_a_deactivated_person_leaves_directory_board_and_fan_out_but_stays_in_history(
    office: Office,
) -> None:
    server = office.server
    li = await office.person("li")
    wang = await office.person("wang")
    chen = await office.person("chen")
    general = office.departments["general"]
    # History made while li was active: a page from li, a meeting where li spoke.
    page = ok(
        await server.command(
            li.token, "pager.send", {"to": [wang.id], "body": "报告已交", "client_msg_id": key()}
        )
    )
    meeting = ok(
        await server.command(
            wang.token, "meeting.create", {"title": "周例会", "participants": [li.id, chen.id]}
        )
    )
    li_tab = await office.tab("li")
    assert (await li_tab.call("meeting.join", {"meeting_id": meeting["meeting_id"]}))["ok"]
    said = await li_tab.call(
        "meeting.say",
        {"meeting_id": meeting["meeting_id"], "body": "我来汇报", "client_msg_id": key()},
    )
    assert said["ok"], said
    assert li.id in await directory_ids(server, wang.token, department_id=general)

    ok(await admin(server, await admin_token(server), "deactivate", {"user_id": li.id}))

    # Not in the directory, whatever the search.
    assert li.id not in await directory_ids(server, wang.token)
    assert li.id not in await directory_ids(server, wang.token, department_id=general)
    assert await directory_ids(server, wang.token, query="李华") == set()
    assert await directory_ids(server, wang.token, query="lihua") == set()
    # Not on the board.
    board = ok(await server.command(wang.token, "whereabouts.board", {"department_id": general}))
    assert li.id not in {m["user"]["id"] for m in board["members"]}
    # A page to the department skips li; naming li is naming nobody.
    sent = ok(
        await server.command(
            chen.token,
            "pager.send",
            {"departments": [general], "body": "下午开会", "client_msg_id": key()},
        )
    )
    recipients = {r["user_id"] for r in sent["recipients"]}
    assert li.id not in recipients and wang.id in recipients
    for name, payload in [
        ("pager.send", {"to": [li.id], "body": "在吗", "client_msg_id": key()}),
        (
            "circulation.create",
            {"title": "通知", "body": "…", "to": [li.id], "client_msg_id": key()},
        ),
        ("meeting.create", {"title": "小会", "participants": [li.id]}),
        ("notes.leave", {"to": li.id, "body": "回来找我", "client_msg_id": key()}),
    ]:
        env = await server.command(chen.token, name, payload)
        assert env["ok"] is False and env["error"]["code"] == "not_found", (name, env)
    circulated = ok(
        await server.command(
            chen.token,
            "circulation.create",
            {"title": "通知", "body": "…", "departments": [general], "client_msg_id": key()},
        )
    )
    assert circulated["recipients_count"] == 2  # wang and zhang
    # Nor can li take the chair of a meeting they were in.
    env = await server.command(
        wang.token, "meeting.handover", {"meeting_id": meeting["meeting_id"], "to": li.id}
    )
    assert env["ok"] is False and env["error"]["code"] == "bad_request", env

    # History still names li.
    history = ok(await server.command(wang.token, "pager.history", {"peer": li.id}))
    mine = next(m for m in history["messages"] if m["message_id"] == page["message_id"])
    assert mine["from"] == {"id": li.id, "name": "李华"}
    joined = ok(
        await server.command(wang.token, "meeting.join", {"meeting_id": meeting["meeting_id"]})
    )
    assert {"id": li.id, "name": "李华"} in [m["from"] for m in joined["messages"]]
    # The administrator still finds li, marked deactivated.
    listed = ok(
        await admin(server, await admin_token(server), "list", {"query": "李华", "state": "all"})
    )
    assert [(u["id"], u["deactivated_at"] is not None) for u in listed["users"]] == [(li.id, True)]


async def test_reactivation_lets_the_person_back(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    wang = await office.person("wang")
    token = await admin_token(server)
    ok(await admin(server, token, "deactivate", {"user_id": li.id}))
    await cannot_sign_in(server, "li")
    listed = ok(await admin(server, token, "list", {"state": "deactivated"}))
    assert [u["id"] for u in listed["users"]] == [li.id]

    data = ok(await admin(server, token, "reactivate", {"user_id": li.id}))
    assert data["user"]["deactivated_at"] is None
    again = await server.login("li")
    tab = await server.connect(again["access_token"])
    assert (await tab.call("directory.departments", {}))["ok"]
    assert li.id in await directory_ids(
        server, wang.token, department_id=li.data["user"]["department_id"]
    )
    # The old session stays ended: reactivation lets li sign in, it revives nothing.
    await signed_out_everywhere(server, li.token, li.refresh_token)
    assert ok(await admin(server, token, "list", {"state": "deactivated"}))["users"] == []


async def test_deactivating_twice_is_harmless(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    token = await admin_token(server)
    first = ok(await admin(server, token, "deactivate", {"user_id": li.id}))
    second = ok(await admin(server, token, "deactivate", {"user_id": li.id}))
    assert second["user"]["deactivated_at"] == first["user"]["deactivated_at"]
    audits = await server.services.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'user.deactivate' AND subject_id = $1",
        int(li.id),
    )
    assert audits == 1


# --- passwords ------------------------------------------------------------------------------
async def test_reset_password_ends_sessions_and_only_the_new_password_works(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    tab = await server.connect(li.token)
    cut = watch_disconnect(tab)
    token = await admin_token(server)

    started = asyncio.get_running_loop().time()
    ok(await admin(server, token, "reset_password", {"user_id": li.id, "password": NEW_PASSWORD}))
    took = await cut_within(cut, started)
    assert took <= 2

    await signed_out_everywhere(server, li.token, li.refresh_token)
    await cannot_sign_in(server, "li", TEST_PASSWORD)
    fresh = await server.login("li", NEW_PASSWORD)
    status, env = await probe(server, fresh["access_token"])
    assert status == 200 and env["ok"], env


async def test_reimport_with_a_changed_password_ends_the_old_sessions(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    zhang = await office.person("zhang")
    token = await admin_token(server)
    body = {
        "users": [
            {
                "account": "li",
                "name": "李华",
                "department_key": "general",
                "password": NEW_PASSWORD,
            },
            {
                "account": "zhang",
                "name": "张伟",
                "department_key": "general",
                "password_hash": server.password_hash,  # the same password: nothing changes
            },
        ]
    }
    status, env = await server.post(IMPORT, body, token=token)
    assert status == 200, env

    assert await open_sessions(server, li.id) == 0
    status, env = await server.post(REFRESH, {"refresh_token": li.refresh_token})
    assert_failure(status, env, 401, "unauthorized")
    await cannot_sign_in(server, "li", TEST_PASSWORD)
    await server.login("li", NEW_PASSWORD)
    # zhang's password did not change, so zhang's session goes on.
    assert await open_sessions(server, zhang.id) == 1
    status, env = await server.post(REFRESH, {"refresh_token": zhang.refresh_token})
    assert status == 200 and env["ok"], env


async def test_reimport_with_a_changed_password_cuts_live_sockets_within_2s(
    office: Office,
) -> None:
    server = office.server
    li = await office.person("li")
    tab = await server.connect(li.token)
    cut = watch_disconnect(tab)
    token = await admin_token(server)
    body = {
        "users": [
            {"account": "li", "name": "李华", "department_key": "general", "password": NEW_PASSWORD}
        ]
    }
    started = asyncio.get_running_loop().time()
    status, env = await server.post(IMPORT, body, token=token)
    assert status == 200, env
    assert await cut_within(cut, started) <= 2
    await signed_out_everywhere(server, li.token, li.refresh_token)


async def test_reimport_with_the_same_plain_password_signs_nobody_out(office: Office) -> None:
    server = office.server
    token = await admin_token(server)
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
    status, env = await server.post(IMPORT, body, token=token)
    assert status == 200, env
    new = await server.login("new", "secret-123")
    tab = await server.connect(new["access_token"])
    phc = await server.services.pool.fetchval(
        "SELECT password_hash FROM users WHERE account = 'new'"
    )

    status, env = await server.post(IMPORT, body, token=token)
    assert status == 200, env

    assert (
        await server.services.pool.fetchval("SELECT password_hash FROM users WHERE account = 'new'")
        == phc
    ), "the same password keeps its hash"
    assert await open_sessions(server, new["user"]["id"]) == 1
    assert tab.sio.connected and (await tab.call("directory.departments", {}))["ok"]
    status, env = await server.post(REFRESH, {"refresh_token": new["refresh_token"]})
    assert status == 200 and env["ok"], env


# --- who may, and what is refused -----------------------------------------------------------
async def test_only_administrators_may(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    wang = await office.person("wang")  # a leader is no administrator
    for name, payload in [
        ("list", {}),
        ("deactivate", {"user_id": li.id}),
        ("reactivate", {"user_id": li.id}),
        ("reset_password", {"user_id": li.id, "password": NEW_PASSWORD}),
    ]:
        env = await admin(server, wang.token, name, payload)
        assert env["ok"] is False and env["error"]["code"] == "forbidden", (name, env)
    await server.login("li")  # nothing changed
    assert await open_sessions(server, li.id) == 2


async def test_an_unknown_user_is_not_found(office: Office) -> None:
    server = office.server
    token = await admin_token(server)
    for name, payload in [
        ("deactivate", {"user_id": "999999"}),
        ("reactivate", {"user_id": "999999"}),
        ("reset_password", {"user_id": "999999", "password": NEW_PASSWORD}),
    ]:
        env = await admin(server, token, name, payload)
        assert env["ok"] is False and env["error"]["code"] == "not_found", (name, env)


async def test_bad_input_is_refused_and_changes_nothing(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    token = await admin_token(server)
    for name, payload in [
        ("deactivate", {}),
        ("deactivate", {"user_id": "li"}),
        ("deactivate", {"user_id": int(li.id)}),
        ("deactivate", {"user_id": li.id, "reason": "left"}),
        ("reactivate", {"user_id": "-1"}),
        ("reset_password", {"user_id": li.id}),
        ("reset_password", {"user_id": li.id, "password": "12345"}),
        ("reset_password", {"user_id": li.id, "password": "        "}),
        ("reset_password", {"user_id": li.id, "password": "x" * 201}),
        ("list", {"state": "gone"}),
        ("list", {"limit": 1000}),
    ]:
        env = await admin(server, token, name, payload)
        assert env["ok"] is False and env["error"]["code"] == "bad_request", (name, payload, env)
    status, env = await probe(server, li.token)
    assert status == 200 and env["ok"], env
    await server.login("li", TEST_PASSWORD)
    listed = ok(await admin(server, token, "list", {"state": "deactivated"}))
    assert listed["users"] == []


async def test_an_administrator_cannot_deactivate_themselves(office: Office) -> None:
    server = office.server
    me = await server.login(ADMIN)
    env = await admin(server, me["access_token"], "deactivate", {"user_id": me["user"]["id"]})
    assert env["ok"] is False and env["error"]["code"] == "conflict", env
    status, env = await probe(server, me["access_token"])
    assert status == 200 and env["ok"], env
