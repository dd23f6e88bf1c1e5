"""Signing in and staying signed in (contract §2 auth, §3 connect and `auth.renew`): passwords,
access tokens, rotating refresh tokens, logout, expiry of live sockets, connection limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import socketio

from tests.support import TEST_PASSWORD, Client, LiveServer, Office, start_server

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PROBE = "/api/v1/commands/directory.departments"  # any cheap authenticated command


class MissingRefusalCode(AssertionError):
    """A refused connect whose connect_error carries no `data.code` (contract §3)."""


# --- helpers --------------------------------------------------------------------------------
def secret(server: LiveServer) -> str:
    value = server.services.config.jwt_secret
    assert value, "tests start the server with a fixed jwt_secret"
    return value


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def forge(claims: dict[str, Any], key: str | None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


async def login(server: LiveServer, account: str, password: str) -> tuple[int, dict[str, Any]]:
    return await server.post(LOGIN, {"account": account, "password": password})


async def probe(server: LiveServer, token: str) -> tuple[int, dict[str, Any]]:
    return await server.post(PROBE, {}, token=token)


def assert_failure(status: int, env: dict[str, Any], http: int, code: str) -> None:
    assert status == http, (status, env)
    assert env["ok"] is False, env
    assert env["error"]["code"] == code, env
    assert isinstance(env["error"].get("message"), str), env


async def refused(server: LiveServer, auth: Any) -> Any:
    """Connect with this auth, expect a refusal, and return what connect_error carried."""
    sio = socketio.AsyncClient(reconnection=False)
    seen: list[Any] = []

    @sio.on("connect_error")
    async def on_connect_error(data: Any = None) -> None:
        seen.append(data)

    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=5)
        assert not sio.connected
    finally:
        if sio.connected:
            await sio.disconnect()
    assert seen, "a refused connect must fire connect_error"
    return seen[-1]


def refusal_code(payload: Any) -> str:
    """connect_error's `data.code` (Socket.IO v5: CONNECT_ERROR carries {message, data})."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("code"), str):
        raise MissingRefusalCode(f"connect_error without data.code: {payload!r}")
    return data["code"]


async def dropped_within(client: Client, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while client.sio.connected:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def works(client: Client) -> bool:
    answer = await client.call("directory.departments", {})
    return bool(answer["ok"])


@pytest.fixture
async def short_lived(
    database_url: str, tmp_path: Path, password_hash: str
) -> AsyncIterator[Office]:
    """The office on a server whose access tokens live 2 s and whose sockets are swept often."""
    async with start_server(
        database_url, tmp_path, password_hash, access_ttl_s=2, token_sweep_s=0.5
    ) as srv:
        yield await Office.create(srv)


# --- login ----------------------------------------------------------------------------------
async def test_login_with_the_right_password_returns_a_token_pair_and_the_user(
    office: Office,
) -> None:
    status, env = await login(office.server, "li", TEST_PASSWORD)
    assert status == 200 and env["ok"] is True, env
    data = env["data"]
    assert isinstance(data["access_token"], str) and data["access_token"]
    assert isinstance(data["refresh_token"], str) and data["refresh_token"]
    assert data["access_token"] != data["refresh_token"]
    assert data["expires_in"] == 900
    user = data["user"]
    assert user["id"] == office.user_ids["li"]
    assert user["account"] == "li"
    assert user["name"] == "李华"
    assert user["department_id"] == office.departments["general"]
    assert "staff" in user["roles"] and "admin" not in user["roles"]
    assert not any("password" in key for key in user), user


async def test_wrong_password_and_unknown_account_are_both_unauthorized(office: Office) -> None:
    status, wrong = await login(office.server, "li", "not the password")
    assert_failure(status, wrong, 401, "unauthorized")
    status, unknown = await login(office.server, "nobody", TEST_PASSWORD)
    assert_failure(status, unknown, 401, "unauthorized")
    # The answer must not tell a guesser which accounts exist.
    assert wrong["error"]["message"] == unknown["error"]["message"]


async def test_ten_wrong_passwords_rate_limit_that_account_only(office: Office) -> None:
    server = office.server
    for status, env in await asyncio.gather(*(login(server, "li", "guess") for _ in range(10))):
        assert_failure(status, env, 401, "unauthorized")
    status, env = await login(server, "li", "guess")
    assert_failure(status, env, 429, "rate_limited")
    retry = env["error"]["details"]["retry_after_s"]
    assert isinstance(retry, int | float) and 0 < retry <= 300, env
    # Even the right password waits now; other accounts are not affected.
    status, env = await login(server, "li", TEST_PASSWORD)
    assert_failure(status, env, 429, "rate_limited")
    status, env = await login(server, "zhang", TEST_PASSWORD)
    assert status == 200 and env["ok"], env


# --- the access token -----------------------------------------------------------------------
async def test_access_token_is_an_hs256_jwt_with_session_claims(office: Office) -> None:
    li = await office.person("li")
    assert jwt.get_unverified_header(li.token)["alg"] == "HS256"
    claims = jwt.decode(li.token, secret(office.server), algorithms=["HS256"])
    assert {"exp", "iat", "sub", "sid", "jti"} <= set(claims)
    assert claims["sub"] == li.id
    assert claims["exp"] - claims["iat"] == li.data["expires_in"]
    assert abs(claims["iat"] - time.time()) < 60
    other = claims_of((await office.server.login("li"))["access_token"])
    assert other["sid"] != claims["sid"], "each login is its own session"
    assert other["jti"] != claims["jti"]


def bad_tokens(office: Office, real: str) -> dict[str, str]:
    claims = claims_of(real)
    no_sid = {k: v for k, v in claims.items() if k != "sid"}
    ghost = {**claims, "sub": "987654321"}
    return {
        "another key": forge(claims, "another-secret-" + "y" * 40),
        "alg none": forge(claims, None, algorithm="none"),
        "missing sid": forge(no_sid, secret(office.server)),
        "unknown user": forge(ghost, secret(office.server)),
        "garbage": "this.is.not-a-jwt",
    }


async def test_forged_and_malformed_tokens_are_refused_over_http(office: Office) -> None:
    li = await office.person("li")
    for label, token in bad_tokens(office, li.token).items():
        status, env = await probe(office.server, token)
        assert status == 401 and env["ok"] is False, (label, env)
        assert env["error"]["code"] == "unauthorized", (label, env)
    status, env = await probe(office.server, li.token)
    assert status == 200 and env["ok"], env


async def test_forged_and_malformed_tokens_are_refused_on_connect(office: Office) -> None:
    li = await office.person("li")
    attempts: dict[str, Any] = {
        label: {"token": t} for label, t in bad_tokens(office, li.token).items()
    }
    attempts |= {"no auth": None, "empty auth": {}, "token not a string": {"token": 42}}
    payloads = {label: await refused(office.server, auth) for label, auth in attempts.items()}
    assert await works(await office.tab("li")), "the real token still connects"
    for label, payload in payloads.items():
        assert refusal_code(payload) == "unauthorized", (label, payload)


def expired_token(office: Office, real: str) -> str:
    now = int(time.time())
    return forge({**claims_of(real), "iat": now - 1000, "exp": now - 100}, secret(office.server))


async def test_an_expired_token_is_unauthorized_over_http(office: Office) -> None:
    li = await office.person("li")
    status, env = await probe(office.server, expired_token(office, li.token))
    assert_failure(status, env, 401, "unauthorized")


async def test_an_expired_token_is_refused_on_connect_as_token_expired(office: Office) -> None:
    li = await office.person("li")
    payload = await refused(office.server, {"token": expired_token(office, li.token)})
    assert refusal_code(payload) == "token_expired", payload


# --- refresh --------------------------------------------------------------------------------
async def test_refresh_rotates_to_a_new_working_pair(office: Office) -> None:
    li = await office.person("li")
    status, env = await office.server.post(REFRESH, {"refresh_token": li.refresh_token})
    assert status == 200 and env["ok"], env
    pair = env["data"]
    assert pair["refresh_token"] != li.refresh_token
    assert pair["access_token"] != li.token
    assert pair["expires_in"] == 900 and pair["user"]["id"] == li.id
    assert claims_of(pair["access_token"])["sid"] == claims_of(li.token)["sid"]
    status, env = await probe(office.server, pair["access_token"])
    assert status == 200 and env["ok"], env
    tab = await office.server.connect(pair["access_token"])
    assert await works(tab)
    status, env = await office.server.post(REFRESH, {"refresh_token": pair["refresh_token"]})
    assert status == 200 and env["ok"], env


async def test_an_unknown_refresh_token_is_unauthorized(office: Office) -> None:
    status, env = await office.server.post(REFRESH, {"refresh_token": "nope.nothing"})
    assert_failure(status, env, 401, "unauthorized")


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    old_tab = await server.connect(li.token)
    status, env = await server.post(REFRESH, {"refresh_token": li.refresh_token})
    assert status == 200, env
    newest = env["data"]
    new_tab = await server.connect(newest["access_token"])
    other_session = await server.login("li")
    bystander = await server.connect(other_session["access_token"])

    status, env = await server.post(REFRESH, {"refresh_token": li.refresh_token})
    assert_failure(status, env, 401, "unauthorized")

    assert await dropped_within(old_tab, 2), "the session's sockets go within 2 s"
    assert await dropped_within(new_tab, 2)
    status, env = await server.post(REFRESH, {"refresh_token": newest["refresh_token"]})
    assert_failure(status, env, 401, "unauthorized")
    status, env = await probe(server, newest["access_token"])
    assert_failure(status, env, 401, "unauthorized")
    payload = await refused(server, {"token": newest["access_token"]})
    assert refusal_code(payload) == "unauthorized"
    # Another session of the same user is not the thief's.
    assert bystander.sio.connected and await works(bystander)
    status, env = await probe(server, other_session["access_token"])
    assert status == 200 and env["ok"], env


# --- logout ---------------------------------------------------------------------------------
async def test_logout_drops_the_sessions_sockets_and_nothing_else(office: Office) -> None:
    server = office.server
    li = await office.person("li")
    tab1 = await server.connect(li.token)
    tab2 = await server.connect(li.token)
    phone = await server.login("li")  # a second session of the same user
    phone_tab = await server.connect(phone["access_token"])
    wang_tab = await office.tab("wang")

    status, env = await server.post(LOGOUT, {}, token=li.token)
    assert status == 200 and env["ok"] is True, env

    assert await dropped_within(tab1, 2), "logout drops the session's sockets within 2 s"
    assert await dropped_within(tab2, 2)
    status, env = await probe(server, li.token)
    assert_failure(status, env, 401, "unauthorized")
    status, env = await server.post(REFRESH, {"refresh_token": li.refresh_token})
    assert_failure(status, env, 401, "unauthorized")
    assert refusal_code(await refused(server, {"token": li.token})) == "unauthorized"

    assert phone_tab.sio.connected and await works(phone_tab)
    status, env = await probe(server, phone["access_token"])
    assert status == 200 and env["ok"], env
    assert wang_tab.sio.connected and await works(wang_tab)


async def test_logout_needs_a_valid_token(office: Office) -> None:
    status, env = await office.server.post(LOGOUT, {})
    assert_failure(status, env, 401, "unauthorized")
    status, env = await office.server.post(LOGOUT, {}, token="garbage")
    assert_failure(status, env, 401, "unauthorized")


# --- expiry and auth.renew ------------------------------------------------------------------
async def test_a_socket_whose_token_expires_is_dropped_unless_renewed(
    short_lived: Office,
) -> None:
    server = short_lived.server
    li = await short_lived.person("li")
    expires_at = claims_of(li.token)["exp"]
    keeper = await server.connect(li.token)
    doomed = await server.connect(li.token)

    refresh_token = li.refresh_token
    dropped_at: float | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 8
    # Renew the keeper twice a second until the other socket is gone and the keeper has
    # outlived its first token by a few sweeps.
    while dropped_at is None or time.time() < expires_at + 1.5:
        assert loop.time() < deadline, "the unrenewed socket was not dropped in time"
        status, env = await server.post(REFRESH, {"refresh_token": refresh_token})
        assert status == 200 and env["ok"], env
        refresh_token = env["data"]["refresh_token"]
        answer = await keeper.call("auth.renew", {"token": env["data"]["access_token"]})
        assert answer["ok"], answer
        if dropped_at is None and not doomed.sio.connected:
            dropped_at = time.time()
        await asyncio.sleep(0.4)

    assert dropped_at is not None and dropped_at >= expires_at - 0.1, "dropped before expiry"
    assert keeper.sio.connected and await works(keeper)


async def test_auth_renew_with_another_users_token_is_forbidden(office: Office) -> None:
    li = await office.tab("li")
    wang = await office.person("wang")
    answer = await li.call("auth.renew", {"token": wang.token})
    assert answer["ok"] is False and answer["error"]["code"] == "forbidden", answer
    assert li.sio.connected and await works(li)


async def test_auth_renew_with_garbage_is_unauthorized(office: Office) -> None:
    li = await office.tab("li")
    for token in ("garbage", expired_token(office, (await office.person("li")).token)):
        answer = await li.call("auth.renew", {"token": token})
        assert answer["ok"] is False and answer["error"]["code"] == "unauthorized", answer
    assert li.sio.connected and await works(li)


# --- connections per user -------------------------------------------------------------------
async def test_the_21st_concurrent_socket_of_one_user_is_refused(office: Office) -> None:
    tabs = [await office.tab("li") for _ in range(20)]
    li = await office.person("li")
    payload = await refused(office.server, {"token": li.token})
    assert all(t.sio.connected for t in tabs), "the refusal must not drop the others"
    wang = await office.tab("wang")
    assert await works(wang), "other users are not affected"
    await tabs[0].close()
    assert await dropped_within(tabs[0], 2)
    await asyncio.sleep(0.2)  # let the server see the close
    again = await office.tab("li")
    assert await works(again), "a freed slot can be used again"
    assert refusal_code(payload) == "rate_limited", payload
