"""A hostile client (contract §3): whatever it sends, the server answers in the error envelope,
keeps its connection and everyone else's, changes nothing, and never shows a stack trace."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.support import Client, LiveServer, Office, start_server

ADMIN_IMPORT = "/api/v1/admin/import"


class NoAnswer(AssertionError):
    """A frame that carried an ack id was never answered."""


# --- helpers --------------------------------------------------------------------------------
def assert_error(answer: Any, code: str) -> dict[str, Any]:
    assert isinstance(answer, dict) and answer.get("ok") is False, answer
    error = answer["error"]
    assert error["code"] == code, answer
    assert isinstance(error.get("message"), str), answer
    assert "Traceback" not in json.dumps(answer, ensure_ascii=False), answer
    return error


def fields_of(error: dict[str, Any]) -> list[str]:
    return [f["field"] for f in error["details"]["fields"]]


def assert_bad_field(answer: Any, field: str) -> None:
    error = assert_error(answer, "bad_request")
    assert field in fields_of(error), answer


async def still_works(client: Client) -> None:
    assert client.sio.connected, "the connection must stay up"
    answer = await client.call("directory.departments", {})
    assert answer["ok"], answer


async def http(
    server: LiveServer,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """One HTTP call; the answer must be a JSON envelope without a stack trace."""
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (msgspec.json.encode(body) if body is not None else None)
    async with server.http.request(method, server.url + path, data=data, headers=hdrs) as resp:
        text = await resp.text()
        assert "Traceback" not in text, text
        assert resp.content_type == "application/json", (resp.status, text[:300])
        return resp.status, json.loads(text)


def assert_http_error(status: int, env: dict[str, Any], http_status: int, code: str) -> None:
    assert status == http_status, (status, env)
    assert_error(env, code)


async def raw_event(client: Client, body: str) -> asyncio.Future[Any]:
    """Write `2<ack id><body>` straight onto the Engine.IO socket; the future gets the ack."""
    answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_ack(*args: Any) -> None:
        if not answered.done():
            answered.set_result(args[0] if args else None)

    ack_id = client.sio._generate_ack_id("/", on_ack)
    await client.sio.eio.send(f"2{ack_id}{body}")
    return answered


async def answer_of(answered: asyncio.Future[Any], frame: str) -> Any:
    try:
        return await asyncio.wait_for(answered, 2)
    except TimeoutError:
        raise NoAnswer(f"no ack for {frame!r}") from None


async def board(server: LiveServer, token: str, department_id: str) -> dict[str, Any]:
    """A fresh fetch of the board over HTTP: user id -> whereabouts."""
    env = await server.command(token, "whereabouts.board", {"department_id": department_id})
    assert env["ok"], env
    return {m["user"]["id"]: m["whereabouts"] for m in env["data"]["members"]}


async def nobody_named(server: LiveServer, token: str, *accounts: str) -> None:
    for account in accounts:
        env = await server.command(token, "directory.users", {"query": account})
        assert env["ok"], env
        assert [u for u in env["data"]["users"] if u["account"] == account] == [], env


@pytest.fixture
async def small_frames(
    database_url: str, tmp_path: Path, password_hash: str
) -> AsyncIterator[Office]:
    """The office on a server that takes frames of at most 4 KiB."""
    async with start_server(database_url, tmp_path, password_hash, max_frame_bytes=4096) as srv:
        yield await Office.create(srv)


# --- commands over the socket ---------------------------------------------------------------
async def test_an_unknown_command_is_not_found(office: Office) -> None:
    li = await office.tab("li")
    for name in ("no.such.command", "whereabouts.set.evil", "__proto__", "x" * 300):
        assert_error(await li.call(name, {}), "not_found")
    await still_works(li)


async def test_a_payload_that_is_not_an_object_is_bad_request(office: Office) -> None:
    li = await office.tab("li")
    for payload in (["in_office"], "in_office", 5, 1.5, True):
        assert_error(await li.call("whereabouts.set", payload), "bad_request")
    await still_works(li)


async def test_wrong_types_and_unknown_fields_are_bad_request_naming_the_field(
    office: Office,
) -> None:
    li = await office.tab("li")
    assert_bad_field(await li.call("whereabouts.set", {"status": 5}), "status")
    assert_bad_field(await li.call("whereabouts.set", {"status": "flying"}), "status")
    assert_bad_field(await li.call("whereabouts.set", {"status": "out", "evil": 1}), "evil")
    assert_bad_field(await li.call("whereabouts.set", {"note": "x"}), "status")
    assert_bad_field(
        await li.call("whereabouts.set", {"status": "out", "note": {"$gt": ""}}), "note"
    )
    assert_bad_field(await li.call("whereabouts.set", {"status": "out", "until": "soon"}), "until")
    await still_works(li)


async def test_a_string_over_its_limit_is_bad_request(office: Office) -> None:
    li = await office.tab("li")
    answer = await li.call("whereabouts.set", {"status": "out", "note": "长" * 5000})
    assert_bad_field(answer, "note")
    answer = await li.call("whereabouts.set", {"status": "out", "location": "x" * 201})
    assert_bad_field(answer, "location")
    assert (await board(office.server, li.token, office.departments["general"]))[
        office.user_ids["li"]
    ]["status"] == "in_office", "nothing changed"
    await still_works(li)


async def test_a_nul_character_in_any_text_is_bad_request_and_stores_nothing(
    office: Office,
) -> None:
    """PostgreSQL keeps no U+0000 in text or jsonb: refused at the door, over both transports,
    not failed at the write as an internal error."""
    li = await office.tab("li")
    wang = await office.person("wang")
    page = {"to": [office.user_ids["wang"]], "body": "a\u0000b", "client_msg_id": "nul"}
    assert_bad_field(await li.call("pager.send", page), "body")
    assert_bad_field(await office.server.command(wang.token, "pager.send", page), "body")
    assert_bad_field(
        await li.call("whereabouts.set", {"status": "out", "note": "x", "location": "\u0000"}),
        "location",
    )
    pool = office.server.services.pool
    assert await pool.fetchval("SELECT count(*) FROM pager_messages") == 0
    await still_works(li)


async def test_an_id_that_is_not_an_id_is_bad_request(office: Office) -> None:
    li = await office.tab("li")
    for bad in ("abc", "0", "-1", "1; DROP TABLE users", "1" * 40, "", " 2", 2):
        assert_bad_field(
            await li.call("whereabouts.board", {"department_id": bad}), "department_id"
        )
        assert_bad_field(
            await li.call("whereabouts.set", {"status": "out", "for_user": bad}), "for_user"
        )
    # A well-formed id of nothing is simply not found.
    assert_error(await li.call("whereabouts.board", {"department_id": "999999"}), "not_found")
    assert_error(
        await li.call("whereabouts.set", {"status": "out", "for_user": "999999"}), "not_found"
    )
    await still_works(li)


async def test_setting_whereabouts_for_someone_you_do_not_lead_is_forbidden(
    office: Office,
) -> None:
    server = office.server
    general = office.departments["general"]
    watcher = await office.person("zhang")
    before = await board(server, watcher.token, general)
    li = await office.tab("li")
    zhao = await office.tab("zhao")
    zhang = await office.tab("zhang")
    attempts = [
        (li, "wang"),  # a subordinate for the leader
        (zhao, "li"),  # someone in another department
        (zhang, "li"),  # a colleague of the same rank
    ]
    for actor, target in attempts:
        answer = await actor.call(
            "whereabouts.set",
            {"status": "on_leave", "note": "forged", "for_user": office.user_ids[target]},
        )
        assert_error(answer, "forbidden")
        await still_works(actor)
    assert await board(server, watcher.token, general) == before, "nothing changed"


async def test_the_leader_sets_a_subordinates_whereabouts(office: Office) -> None:
    wang = await office.tab("wang")
    answer = await wang.call(
        "whereabouts.set",
        {"status": "business_trip", "note": "省厅", "for_user": office.user_ids["li"]},
    )
    assert answer["ok"], answer
    assert answer["data"]["whereabouts"]["set_by"]["id"] == office.user_ids["wang"]
    seen = (await board(office.server, wang.token, office.departments["general"]))[
        office.user_ids["li"]
    ]
    assert seen["status"] == "business_trip" and seen["note"] == "省厅"
    assert seen["set_by"] == {"id": office.user_ids["wang"], "name": "王明"}


async def test_the_director_of_the_parent_department_sets_li_too(office: Office) -> None:
    chen = await office.tab("chen")
    answer = await chen.call(
        "whereabouts.set", {"status": "in_meeting", "for_user": office.user_ids["li"]}
    )
    assert answer["ok"], answer
    seen = (await board(office.server, chen.token, office.departments["general"]))[
        office.user_ids["li"]
    ]
    assert seen["status"] == "in_meeting"
    assert seen["set_by"] == {"id": office.user_ids["chen"], "name": "陈建国"}


# --- raw frames -----------------------------------------------------------------------------
async def test_an_event_frame_with_broken_json_is_answered_bad_request(office: Office) -> None:
    li = await office.tab("li")
    frames = [
        '["whereabouts.set",{bad json',
        '["whereabouts.set",{"status":"out",}]',
        '["whereabouts.set",{"status":"out"}',
        '["directory.departments",\x00]',
    ]
    for body in frames:
        answer = await answer_of(await raw_event(li, body), body)
        assert_error(answer, "bad_request")
        await still_works(li)
    env = await office.server.command(
        li.token, "whereabouts.board", {"department_id": office.departments["general"]}
    )
    assert env["ok"], env
    mine = [m for m in env["data"]["members"] if m["user"]["id"] == office.user_ids["li"]]
    assert mine[0]["whereabouts"]["status"] == "in_office", "nothing changed"


async def test_a_well_formed_raw_event_still_works(office: Office) -> None:
    li = await office.tab("li")
    # No payload, or null, means no arguments.
    for body in (
        '["directory.departments",{}]',
        '["directory.departments",null]',
        '["directory.departments"]',
    ):
        answer = await answer_of(await raw_event(li, body), body)
        assert answer["ok"], (body, answer)


async def test_an_event_for_another_namespace_is_answered_bad_request(office: Office) -> None:
    """Only the default namespace is served: an event for another is refused, not run."""
    li = await office.tab("li")
    answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ack_id = li.sio._generate_ack_id("/", lambda *a: answered.set_result(a[0] if a else None))
    frame = f'2/admin,{ack_id}["whereabouts.set",{{"status":"out"}}]'
    await li.sio.eio.send(frame)
    assert_error(await answer_of(answered, frame), "bad_request")
    await still_works(li)
    assert (await board(office.server, li.token, office.departments["general"]))[
        office.user_ids["li"]
    ]["status"] == "in_office", "nothing changed"


async def test_an_event_frame_without_a_command_name_is_answered_bad_request(
    office: Office,
) -> None:
    li = await office.tab("li")
    frames = ["", "[]", "{}", "[", "null"]
    pending = [(body, await raw_event(li, body)) for body in frames]
    await still_works(li)
    for body, answered in pending:
        assert_error(await answer_of(answered, body), "bad_request")


async def test_binary_and_unknown_packets_do_not_close_the_connection(office: Office) -> None:
    li = await office.tab("li")
    for frame in ('51-7["whereabouts.set",{"_placeholder":true,"num":0}]', "8", "9", "4{}", "3"):
        await li.sio.eio.send(frame)
        await still_works(li)
    await li.sio.eio.send(b"\x00\xff raw bytes")
    await still_works(li)


# --- oversized frames -----------------------------------------------------------------------
async def test_a_frame_over_the_limit_is_too_large_and_the_connection_stays(
    small_frames: Office,
) -> None:
    li = await small_frames.tab("li")
    answer = await li.call("whereabouts.set", {"status": "out", "note": "x" * 5000})
    assert_error(answer, "too_large")
    await still_works(li)
    # Just under the limit it is judged on its content again.
    answer = await li.call("whereabouts.set", {"status": "out", "note": "x" * 3000})
    assert_bad_field(answer, "note")
    seen = await board(small_frames.server, li.token, small_frames.departments["general"])
    assert seen[small_frames.user_ids["li"]]["status"] == "in_office", "nothing changed"


async def test_an_http_body_over_the_limit_is_413_too_large(small_frames: Office) -> None:
    server = small_frames.server
    li = await small_frames.person("li")
    huge = msgspec.json.encode({"status": "out", "note": "x" * 5000})
    status, env = await http(server, "POST", "/api/v1/commands/x", raw=huge, token=li.token)
    assert_http_error(status, env, 413, "too_large")
    status, env = await http(
        server, "POST", "/api/v1/commands/whereabouts.set", raw=huge, token=li.token
    )
    assert_http_error(status, env, 413, "too_large")
    status, env = await http(
        server, "POST", "/api/v1/auth/login", body={"account": "li", "password": "x" * 5000}
    )
    assert_http_error(status, env, 413, "too_large")


# --- rate limit -----------------------------------------------------------------------------
async def test_deeply_nested_json_is_bad_request_counted_and_logged_in_a_line(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    """5,000 levels of nesting: answered bad_request (over the socket and over HTTP), counted
    against the sender's rate like any command, and no traceback per frame in the log."""
    caplog.set_level(logging.INFO)
    li = await office.tab("li")
    zhao = await office.tab("zhao")
    deep = "[" * 5000 + "]" * 5000
    bodies = [f'["notes.list",{{"a":{deep}}}]', f'["notes.list",{deep}]', f"[{deep}]"]
    for body in bodies:
        assert_error(await answer_of(await raw_event(li, body), body[:40]), "bad_request")
    await still_works(li)
    answers = [await asyncio.wait_for(await raw_event(li, bodies[0]), 10) for _ in range(60)]
    codes = {a["error"]["code"] for a in answers}
    assert codes == {"bad_request", "rate_limited"}, codes
    assert (await zhao.call("directory.departments"))["ok"]
    zhao_person = await office.person("zhao")  # li is rate limited by now
    status, env = await http(
        office.server,
        "POST",
        "/api/v1/commands/notes.list",
        raw=f'{{"a":{deep}}}'.encode(),
        token=zhao_person.token,
    )
    assert_http_error(status, env, 400, "bad_request")
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks[0].getMessage()
    assert len(caplog.records) <= 10 * len(answers)


async def test_a_flood_is_rate_limited_for_that_user_only(office: Office) -> None:
    li = await office.tab("li")
    zhao = await office.tab("zhao")
    # 200 at once: even a slow machine cannot send them in the 7.5 s the bucket would need to
    # refill for all of them (a burst of 50, then 20 a second).
    flood = [li.call("directory.departments", {}, timeout=30) for _ in range(200)]
    calm = [zhao.call("directory.departments", {}, timeout=30) for _ in range(10)]
    answers = await asyncio.gather(*flood, *calm)
    mine, theirs = answers[:200], answers[200:]
    limited = [a for a in mine if not a["ok"]]
    assert limited, "200 commands at once exceed the burst of 50"
    assert sum(a["ok"] for a in mine) >= 50, "the burst is allowed"
    retry = 0.0
    for answer in limited:
        error = assert_error(answer, "rate_limited")
        retry = max(retry, error["details"]["retry_after_s"])
        assert 0 < error["details"]["retry_after_s"] <= 5, answer
    assert all(a["ok"] for a in theirs), theirs
    assert li.sio.connected and zhao.sio.connected
    await asyncio.sleep(retry + 0.1)
    await still_works(li)


# --- everyone else ------------------------------------------------------------------------------
async def test_all_that_abuse_never_disturbs_another_user(office: Office) -> None:
    general = office.departments["general"]
    zhang = await office.tab("zhang")
    assert (await zhang.call("whereabouts.board", {"department_id": general}))["ok"]
    li = await office.tab("li")
    li2 = await office.tab("li")

    await li.call("no.such.command", {})
    await li.call("whereabouts.set", [1, 2, 3])
    await li.call("whereabouts.set", {"status": 5, "evil": 1})
    await li.call("whereabouts.set", {"status": "out", "note": "x" * 5000})
    await li.call("whereabouts.set", {"status": "out", "for_user": office.user_ids["wang"]})
    await li.call("whereabouts.board", {"department_id": "'; --"})
    await li.call("whereabouts.set", {"status": "out", "note": "x" * 70_000})  # > 64 KiB frame
    await raw_event(li, '["whereabouts.set",{bad json')
    await li.sio.eio.send("27[]")
    await li.sio.eio.send('51-["x",{"_placeholder":true,"num":0}]')
    await asyncio.gather(*(li.call("directory.departments", {}) for _ in range(60)))

    start = len(zhang.events)
    wang = await office.person("wang")
    env = await office.server.command(
        wang.token, "whereabouts.set", {"status": "out", "note": "银行"}
    )
    assert env["ok"], env
    ev = await zhang.wait_for(
        lambda e: e["type"] == "whereabouts.changed" and e["data"]["user_id"] == wang.id,
        start=start,
    )
    assert ev["seq"] is None
    assert ev["data"]["whereabouts"]["status"] == "out"
    assert ev["data"]["reason"] == "set"
    await still_works(zhang)
    assert li.sio.connected and li2.sio.connected, "the abuser's own tabs stay up too"


# --- HTTP -------------------------------------------------------------------------------------
async def test_malformed_json_over_http_is_400_bad_request(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    for raw in (b'{"status":', b"\xff\xfe", b"[1,2", b"{'status': 'out'}"):
        status, env = await http(
            server, "POST", "/api/v1/commands/whereabouts.set", raw=raw, token=li.token
        )
        assert_http_error(status, env, 400, "bad_request")
        assert "fields" in env["error"]["details"], env
    for raw in (b"[]", b'"out"', b"5"):
        status, env = await http(
            server, "POST", "/api/v1/commands/whereabouts.set", raw=raw, token=li.token
        )
        assert_http_error(status, env, 400, "bad_request")
    status, env = await http(server, "POST", "/api/v1/auth/login", raw=b'{"account":')
    assert_http_error(status, env, 400, "bad_request")
    status, env = await http(server, "POST", "/api/v1/auth/login", body={"account": 5})
    assert_http_error(status, env, 400, "bad_request")
    status, env = await http(server, "POST", "/api/v1/auth/refresh", raw=b"{")
    assert_http_error(status, env, 400, "bad_request")


async def test_missing_or_invalid_authorization_is_401(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Basic {li.token}"},
        {"Authorization": f"Token {li.token}"},
    ):
        status, env = await http(
            server, "POST", "/api/v1/commands/directory.departments", body={}, headers=headers
        )
        assert_http_error(status, env, 401, "unauthorized")
    status, env = await http(server, "POST", ADMIN_IMPORT, body={})
    assert_http_error(status, env, 401, "unauthorized")


async def test_an_unknown_command_over_http_is_404_not_found(office: Office) -> None:
    li = await office.person("li")
    status, env = await http(
        office.server, "POST", "/api/v1/commands/no.such.command", body={}, token=li.token
    )
    assert_http_error(status, env, 404, "not_found")


async def test_unknown_routes_and_methods_under_api_answer_in_the_envelope(
    office: Office,
) -> None:
    li = await office.person("li")
    status, env = await http(office.server, "GET", "/api/v1/nothing/here", token=li.token)
    assert_http_error(status, env, 404, "not_found")
    status, env = await http(
        office.server, "GET", "/api/v1/commands/directory.departments", token=li.token
    )
    assert status == 405 and env["ok"] is False, env


async def test_admin_import_by_a_non_admin_is_forbidden(office: Office) -> None:
    server = office.server
    wang = await office.person("wang")  # a leader, but not an administrator
    body = {
        "departments": [{"key": "shadow", "name": "影子科"}],
        "users": [
            {"account": "mole", "name": "内鬼", "department_key": "shadow", "roles": ["admin"]}
        ],
    }
    status, env = await http(server, "POST", ADMIN_IMPORT, body=body, token=wang.token)
    assert_http_error(status, env, 403, "forbidden")
    await nobody_named(server, wang.token, "mole")
    env = await server.command(wang.token, "directory.departments", {})
    assert "影子科" not in [d["name"] for d in env["data"]["departments"]], env


async def test_an_import_with_bad_references_is_400_and_imports_nothing(office: Office) -> None:
    server = office.server
    admin = await server.login("admin")
    good = {"account": "newbie", "name": "新人", "department_key": "general"}
    body = {
        "users": [
            {"account": "lost", "name": "迷路", "department_key": "no-such-department"},
            {
                "account": "orphan",
                "name": "孤儿",
                "department_key": "general",
                "supervisor_account": "no-such-boss",
            },
            {
                "account": "badhash",
                "name": "坏哈希",
                "department_key": "general",
                "password_hash": "md5:5f4dcc3b5aa765d61d8327deb882cf99",
            },
            good,
        ]
    }
    status, env = await http(server, "POST", ADMIN_IMPORT, body=body, token=admin["access_token"])
    assert_http_error(status, env, 400, "bad_request")
    fields = fields_of(env["error"])
    assert "users[0].department_key" in fields, fields
    assert "users[1].supervisor_account" in fields, fields
    assert "users[2].password_hash" in fields, fields
    await nobody_named(server, admin["access_token"], "lost", "orphan", "badhash", "newbie")

    status, env = await http(
        server, "POST", ADMIN_IMPORT, raw=b'{"users":[', token=admin["access_token"]
    )
    assert_http_error(status, env, 400, "bad_request")
    status, env = await http(
        server,
        "POST",
        ADMIN_IMPORT,
        body={"users": [{**good, "evil": 1}]},
        token=admin["access_token"],
    )
    assert_http_error(status, env, 400, "bad_request")
    await nobody_named(server, admin["access_token"], "newbie")


async def test_no_answer_ever_carries_a_stack_trace(office: Office) -> None:
    """Every probe above in one sweep, reading raw bodies: envelopes only, never a Traceback."""
    server = office.server
    li = await office.person("li")
    probes: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("POST", "/api/v1/auth/login", b"", {}),
        ("POST", "/api/v1/auth/login", b"null", {}),
        ("POST", "/api/v1/auth/login", b'{"account":"li","password":null}', {}),
        ("POST", "/api/v1/auth/refresh", b'{"refresh_token":""}', {}),
        (
            "POST",
            "/api/v1/auth/logout",
            b"{}",
            {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AA"},
        ),
        (
            "POST",
            "/api/v1/commands/whereabouts.set",
            b'{"status":"out","until":"2020-13-45"}',
            {"Authorization": f"Bearer {li.token}"},
        ),
        (
            "POST",
            "/api/v1/commands/whereabouts.set",
            b'{"status":"out","until":"2001-01-01T00:00:00"}',
            {"Authorization": f"Bearer {li.token}"},
        ),
        (
            "POST",
            "/api/v1/commands/notes.read",
            b'{"note_ids":[]}',
            {"Authorization": f"Bearer {li.token}"},
        ),
        ("POST", "/api/v1/commands/%00", b"{}", {"Authorization": f"Bearer {li.token}"}),
        ("POST", "/api/v1/admin/import", b"{}", {"Authorization": f"Bearer {li.token}"}),
        ("PUT", "/api/v1/auth/login", b"{}", {}),
    ]
    for method, path, raw, headers in probes:
        status, env = await http(server, method, path, raw=raw, headers=headers)
        assert 400 <= status < 500, (method, path, status, env)
        assert env["ok"] is False and env["error"]["code"] != "internal", (path, env)
