"""Request bodies are bounded before they are read (issue 16, item 6): the JSON endpoints take at
most LIAISON_MAX_FRAME_BYTES, the admin import a few megabytes and only from an administrator,
uploads only from a signed-in user and no more than the file limit. A body that claims more is
refused from its headers; one that does not say its length is cut off at the limit. Either way
the answer arrives while the client has sent only a small part of what it announced."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from server.sms import sign
from tests.support import LiveServer, Office, start_server

SIXTY_MB = 60_000_000
FEW_KB = b"x" * 4096
# Generous: the server answers at once; this only stops a test that waits for ever.
ANSWER_WITHIN_S = 15
INBOUND = "/api/v1/sms/inbound"
FILES = "/api/v1/files"
IMPORT = "/api/v1/admin/import"


class NoAnswer(AssertionError):
    """The server did not answer while the rest of the announced body was still unsent."""


# --- a client that sends part of a body and waits -------------------------------------------
async def partial_post(
    server: LiveServer,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes],
    *,
    chunked: bool = False,
) -> tuple[int, dict[str, Any]]:
    """POST with these headers, send `chunks` (as HTTP chunks if `chunked`, without the last
    one) and never the rest of the body, then read the answer."""
    url = urlsplit(server.url)
    assert url.hostname and url.port
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        if chunked:
            head += "Transfer-Encoding: chunked\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode())
        try:
            for chunk in chunks:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                await writer.drain()
        except ConnectionError:
            pass  # refused and closed while we were still sending: the answer is waiting
        try:
            return await asyncio.wait_for(_answer(reader), ANSWER_WITHIN_S)
        except TimeoutError:
            raise NoAnswer(f"{path}: no answer before the body was complete") from None
    finally:
        writer.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length)
    return status, json.loads(body)


def assert_refused(answer: tuple[int, dict[str, Any]], status: int, code: str) -> None:
    got, env = answer
    assert got == status, answer
    assert env["ok"] is False and env["error"]["code"] == code, env


def declared(length: int, **headers: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-Length": str(length), **headers}


# --- unauthenticated endpoints ----------------------------------------------------------------
async def test_an_inbound_sms_claiming_60_mb_is_refused_before_it_is_read(
    server: LiveServer,
) -> None:
    headers = declared(SIXTY_MB, **{"X-Liaison-Signature": "00" * 32})
    assert_refused(await partial_post(server, INBOUND, headers, [FEW_KB]), 413, "too_large")


async def test_an_inbound_sms_without_a_length_is_cut_off_at_the_small_limit(
    server: LiveServer,
) -> None:
    limit = server.services.config.max_frame_bytes
    chunks = [FEW_KB] * (2 * limit // len(FEW_KB))  # twice the limit, and never the end
    headers = {"Content-Type": "application/json", "X-Liaison-Signature": "00" * 32}
    answer = await partial_post(server, INBOUND, headers, chunks, chunked=True)
    assert_refused(answer, 413, "too_large")


async def test_a_signed_inbound_sms_over_the_limit_is_too_large(server: LiveServer) -> None:
    raw = msgspec.json.encode({"from": "13900000003", "text": "x" * 70_000, "id": "big"})
    headers = {"X-Liaison-Signature": sign(server.services.config.resolved_sms_secret(), raw)}
    async with server.http.post(server.url + INBOUND, data=raw, headers=headers) as resp:
        assert resp.status == 413, await resp.text()
        env = await resp.json()
    assert env["error"]["code"] == "too_large", env


async def test_a_signed_inbound_sms_within_the_limit_is_read_whole(server: LiveServer) -> None:
    raw = msgspec.json.encode({"from": "10086", "text": "好的" * 500, "id": "fits"})
    headers = {"X-Liaison-Signature": sign(server.services.config.resolved_sms_secret(), raw)}
    async with server.http.post(server.url + INBOUND, data=raw, headers=headers) as resp:
        env = await resp.json()
    # The signature matched the whole body; nobody has that phone.
    assert resp.status == 404 and env["error"]["code"] == "not_found", env


async def test_login_bodies_are_bounded_with_or_without_a_length(server: LiveServer) -> None:
    answer = await partial_post(server, "/api/v1/auth/login", declared(SIXTY_MB), [FEW_KB])
    assert_refused(answer, 413, "too_large")
    limit = server.services.config.max_frame_bytes
    chunks = [FEW_KB] * (2 * limit // len(FEW_KB))
    headers = {"Content-Type": "application/json"}
    answer = await partial_post(server, "/api/v1/auth/login", headers, chunks, chunked=True)
    assert_refused(answer, 413, "too_large")
    answer = await partial_post(server, "/api/v1/auth/refresh", headers, chunks, chunked=True)
    assert_refused(answer, 413, "too_large")


async def test_an_unauthenticated_upload_is_refused_before_it_is_read(server: LiveServer) -> None:
    headers = declared(SIXTY_MB, **{"Content-Type": "multipart/form-data; boundary=b"})
    assert_refused(await partial_post(server, FILES, headers, [FEW_KB]), 401, "unauthorized")


async def test_an_unauthenticated_import_is_refused_before_it_is_read(server: LiveServer) -> None:
    assert_refused(
        await partial_post(server, IMPORT, declared(SIXTY_MB), [FEW_KB]), 401, "unauthorized"
    )


# --- authenticated endpoints ------------------------------------------------------------------
async def test_a_command_body_without_a_length_is_cut_off_at_the_small_limit(
    office: Office,
) -> None:
    li = await office.person("li")
    limit = office.server.services.config.max_frame_bytes
    chunks = [FEW_KB] * (2 * limit // len(FEW_KB))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {li.token}"}
    path = "/api/v1/commands/directory.departments"
    answer = await partial_post(office.server, path, headers, chunks, chunked=True)
    assert_refused(answer, 413, "too_large")


async def test_an_import_over_its_limit_is_refused_before_it_is_read(office: Office) -> None:
    server = office.server
    admin = await server.login("admin")
    auth = {"Authorization": f"Bearer {admin['access_token']}"}
    answer = await partial_post(server, IMPORT, declared(SIXTY_MB, **auth), [FEW_KB])
    assert_refused(answer, 413, "too_large")
    wang = await office.person("wang")  # not an administrator: refused before reading anything
    answer = await partial_post(
        server, IMPORT, declared(SIXTY_MB, Authorization=f"Bearer {wang.token}"), [FEW_KB]
    )
    assert_refused(answer, 403, "forbidden")


async def test_an_import_larger_than_a_frame_still_works(office: Office) -> None:
    server = office.server
    admin = await server.login("admin")
    users = [
        {
            "account": f"bulk{i:04d}",
            "name": f"批量用户{i}",
            "department_key": "general",
            "title": "科员",
            "email": f"bulk{i:04d}@example.gov.cn",
        }
        for i in range(1_000)
    ]
    raw = msgspec.json.encode({"users": users})
    assert len(raw) > server.services.config.max_frame_bytes
    status, env = await server.post(IMPORT, raw=raw, token=admin["access_token"])
    assert status == 200 and env["ok"], env
    assert len(env["data"]["users"]) == 1_000


@pytest.fixture
async def small_files(
    database_url: str, tmp_path: Path, password_hash: str
) -> AsyncIterator[Office]:
    """The office on a server that takes files of at most 100 kB."""
    async with start_server(database_url, tmp_path, password_hash, max_file_bytes=100_000) as srv:
        yield await Office.create(srv)


async def test_an_upload_is_refused_past_the_file_limit_with_or_without_a_length(
    small_files: Office,
) -> None:
    server = small_files.server
    li = await small_files.person("li")
    multipart = "multipart/form-data; boundary=b"
    auth = f"Bearer {li.token}"
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    answer = await partial_post(
        server,
        FILES,
        declared(SIXTY_MB, **{"Content-Type": multipart, "Authorization": auth}),
        [head + FEW_KB],
    )
    assert_refused(answer, 413, "too_large")
    # A multipart reader holds back one read (up to 256 kB) to look for the boundary: send
    # past the limit by more than that, and still never the end.
    chunks = [head] + [FEW_KB] * ((100_000 + 2 * 256 * 1024) // len(FEW_KB))
    answer = await partial_post(
        server, FILES, {"Content-Type": multipart, "Authorization": auth}, chunks, chunked=True
    )
    assert_refused(answer, 413, "too_large")
    # Under the limit it is stored as before.
    status, env = await server.upload(li.token, b"y" * 90_000, "ok.bin")
    assert status == 200 and env["ok"] and env["data"]["size"] == 90_000, env
