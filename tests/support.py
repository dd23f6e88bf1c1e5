"""Helpers that drive a real server the way clients do: HTTP with the envelope, Socket.IO with
python-socketio's own client, and an organisation built through the public import API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import socketio
from aiohttp.test_utils import TestServer

from handlers import pager
from server.app import FEATURES, create_app
from server.config import Config
from server.events import declared_events
from server.feature import Feature
from server.keys import SERVICES
from server.services import Services
from storage import idempotency as idem
from storage.directory import get_user

TEST_PASSWORD = "correct horse 1"


def check_event(envelope: dict[str, Any]) -> None:
    """Every pushed event must be a declared type whose data decodes into its class (DESIGN §3)."""
    assert set(envelope) == {"seq", "type", "at", "data"}, envelope
    cls = {c.type: c for c in declared_events()}[envelope["type"]]
    assert (envelope["seq"] is None) == (not cls.durable), envelope
    msgspec.convert(envelope["data"], cls, strict=False)
    msgspec.convert(envelope["at"], datetime, strict=False)


ADMIN = "admin"


@contextlib.asynccontextmanager
async def start_server(
    database_url: str,
    data_dir: Path,
    password_hash: str,
    features: Sequence[Feature] = tuple(FEATURES),
    **overrides: Any,
) -> AsyncIterator[LiveServer]:
    config = Config(
        database_url=database_url,
        data_dir=data_dir,
        jwt_secret="test-secret-" + "x" * 40,
        **overrides,
    )
    app = create_app(config, features)
    ts = TestServer(app, host="127.0.0.1")
    await ts.start_server()
    srv = LiveServer(ts, password_hash)
    try:
        # The administrator every test organisation is imported by.
        await srv.services.pool.execute(
            "INSERT INTO users (account, name, roles, password_hash) VALUES ($1, '管理员',"
            " '{staff,admin}', $2) ON CONFLICT (account) DO NOTHING",
            ADMIN,
            password_hash,
        )
        await srv.services.pool.execute(
            "INSERT INTO streams (user_id) SELECT id FROM users WHERE account = $1"
            " ON CONFLICT DO NOTHING",
            ADMIN,
        )
        yield srv
    finally:
        for client in list(srv.clients):
            with contextlib.suppress(Exception):
                await client.close()
        await srv.http.close()
        await ts.close()


class LiveServer:
    def __init__(self, ts: TestServer, password_hash: str) -> None:
        self.ts = ts
        self.url = str(ts.make_url("")).rstrip("/")
        self.password_hash = password_hash
        self.http = aiohttp.ClientSession()
        self.clients: list[Client] = []
        self.bad_events: list[tuple[dict[str, Any], str]] = []

    @property
    def services(self) -> Services:
        return self.ts.app[SERVICES]

    async def post(
        self, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else msgspec.json.encode(body if body is not None else {})
        async with self.http.post(self.url + path, data=data, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def upload(
        self, token: str, data: bytes, name: str, content_type: str = "application/octet-stream"
    ) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=content_type)
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.post(self.url + "/api/v1/files", data=form, headers=headers) as resp:
            return resp.status, await resp.json()

    async def download(self, token: str, file_id: str) -> tuple[int, bytes, str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.get(self.url + f"/api/v1/files/{file_id}", headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers.get("Content-Type", "")

    async def login(self, account: str, password: str = TEST_PASSWORD) -> dict[str, Any]:
        status, env = await self.post(
            "/api/v1/auth/login", {"account": account, "password": password}
        )
        assert status == 200 and env["ok"], env
        return env["data"]

    async def command(self, token: str, name: str, payload: Any = None) -> dict[str, Any]:
        _, env = await self.post(f"/api/v1/commands/{name}", payload or {}, token=token)
        return env

    async def connect(self, token: str, last_seq: int | None = None, **kw: Any) -> Client:
        client = Client(self, token)
        await client.connect(last_seq, **kw)
        return client


@dataclasses.dataclass
class Client:
    """One browser tab: a Socket.IO connection recording every pushed event."""

    server: LiveServer
    token: str
    sio: socketio.AsyncClient = dataclasses.field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    _arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def connect(
        self,
        last_seq: int | None = None,
        wait_sync: bool = True,
        transports: tuple[str, ...] = ("websocket",),
    ) -> None:
        @self.sio.on("event")
        async def on_event(envelope: dict[str, Any]) -> None:
            try:
                check_event(envelope)
            except Exception as exc:  # the fixture fails the test at teardown
                self.server.bad_events.append((envelope, repr(exc)))
            self.events.append(envelope)
            self._arrived.set()

        auth: dict[str, Any] = {"token": self.token}
        if last_seq is not None:
            auth["last_seq"] = last_seq
        await self.sio.connect(
            self.server.url, auth=auth, transports=list(transports), wait_timeout=10
        )
        self.server.clients.append(self)
        if wait_sync:
            await self.wait_for(lambda e: e["type"] in ("sync.ready", "sync.reset"))

    async def call(self, name: str, payload: Any = None, timeout: float = 10) -> dict[str, Any]:
        return await self.sio.call(name, payload if payload is not None else {}, timeout=timeout)

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool] | str, timeout: float = 5, start: int = 0
    ) -> dict[str, Any]:
        if isinstance(pred, str):
            wanted = pred
            pred = lambda e: e["type"] == wanted  # noqa: E731
        deadline = asyncio.get_running_loop().time() + timeout
        seen = start
        while True:
            for ev in self.events[seen:]:
                if pred(ev):
                    return ev
            seen = len(self.events)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no matching event; got {[e['type'] for e in self.events]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def durable(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.events if e["seq"] is not None and (type_ is None or e["type"] == type_)
        ]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@dataclasses.dataclass
class Person:
    account: str
    id: str
    token: str
    refresh_token: str
    data: dict[str, Any]


LIAISON = Path(sys.executable).parent / "liaison"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess(LiveServer):
    """A `liaison serve` subprocess, driven over HTTP and Socket.IO like the in-process one."""

    def __init__(self, name: str, env: dict[str, str], folder: Path, password_hash: str) -> None:
        self.name = name
        self.env = env
        self.folder = folder
        self.password_hash = password_hash
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = aiohttp.ClientSession()
        self.clients: list[Client] = []
        self.bad_events: list[tuple[dict[str, Any], str]] = []
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(LIAISON), "serve", "--port", str(self.port),
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        for _ in range(300):
            assert self.proc.returncode is None, self.log_path.read_text(errors="replace")[-3000:]
            if await self.ready():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} did not get ready")

    async def ready(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            timeout = aiohttp.ClientTimeout(total=3)
            async with self.http.get(self.url + "/readyz", timeout=timeout) as r:
                return r.status == 200
        return False

    async def kill(self) -> None:
        """SIGKILL: no drain, no lease released, nothing flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.close()
        await self.http.close()


class Office:
    """The test organisation, imported through POST /api/v1/admin/import."""

    DEPARTMENTS = [
        {"key": "office", "name": "办公室"},
        {"key": "general", "name": "综合科", "parent_key": "office"},
        {"key": "finance", "name": "财务科", "parent_key": "office"},
    ]
    USERS = [
        ("chen", "陈建国", "office", "主任", ["leader"], None, "13900000001"),
        ("wang", "王明", "general", "科长", ["leader"], "chen", "13900000002"),
        ("li", "李华", "general", "科员", [], "wang", "13900000003"),
        ("zhang", "张伟", "general", "科员", [], "wang", "13900000004"),
        ("zhao", "赵敏", "finance", "科员", [], "chen", "13900000005"),
    ]

    def __init__(
        self, server: LiveServer, departments: dict[str, str], users: dict[str, str]
    ) -> None:
        self.server = server
        self.departments = departments
        self.user_ids = users
        self._people: dict[str, Person] = {}

    @classmethod
    async def create(cls, server: LiveServer) -> Office:
        admin = await server.login(ADMIN)
        body = {
            "departments": cls.DEPARTMENTS,
            "users": [
                {
                    "account": a,
                    "name": n,
                    "department_key": d,
                    "title": t,
                    "roles": ["staff", *r],
                    "phone": ph,
                    "email": f"{a}@example.gov.cn",
                    "password_hash": server.password_hash,
                    **({"supervisor_account": s} if s else {}),
                }
                for a, n, d, t, r, s, ph in cls.USERS
            ],
        }
        status, env = await server.post("/api/v1/admin/import", body, token=admin["access_token"])
        assert status == 200 and env["ok"], env
        return cls(server, env["data"]["departments"], env["data"]["users"])

    async def page(self, sender: str, to: str, body: str, key: str | None = None) -> pager.Page:
        """A page from `sender` to `to`, checked and ready for a batch (`pager._send_batch`)."""
        services = self.server.services
        user = await get_user(services.pool, int(self.user_ids[sender]))
        assert user is not None
        return await pager.checked_page(
            services,
            idem.Key(user.id, "pager.send", key or uuid.uuid4().hex),
            sender=user,
            to=[self.user_ids[to]],
            departments=[],
            body=body,
            priority="normal",
            attachments=[],
            reply_to=None,
            via="web",
        )

    async def person(self, account: str) -> Person:
        """Signed in once per test and cached."""
        if account not in self._people:
            data = await self.server.login(account)
            self._people[account] = Person(
                account, data["user"]["id"], data["access_token"], data["refresh_token"], data
            )
        return self._people[account]

    async def add_people(self, people: list[tuple[str, str, str, str, list[str], str]]) -> None:
        """More staff, imported like everyone else: (account, name, department key, title,
        roles besides staff, supervisor's account)."""
        admin = await self.person(ADMIN)
        body = {
            "departments": [],
            "users": [
                {
                    "account": a,
                    "name": n,
                    "department_key": d,
                    "title": t,
                    "roles": ["staff", *r],
                    "password_hash": self.server.password_hash,
                    "supervisor_account": s,
                }
                for a, n, d, t, r, s in people
            ],
        }
        status, env = await self.server.post("/api/v1/admin/import", body, token=admin.token)
        assert status == 200 and env["ok"], env
        self.user_ids.update(env["data"]["users"])

    async def call(self, account: str, name: str, payload: Any = None) -> dict[str, Any]:
        """`name` sent over HTTP as `account`: the answer's envelope."""
        p = await self.person(account)
        return await self.server.command(p.token, name, payload)

    async def ok(self, account: str, name: str, payload: Any = None) -> dict[str, Any]:
        """`name` as `account`, which must succeed: its data."""
        env = await self.call(account, name, payload)
        assert env["ok"], env
        return dict(env["data"])

    async def tab(self, account: str, last_seq: int | None = None) -> Client:
        p = await self.person(account)
        return await self.server.connect(p.token, last_seq)


async def eventually(check: Callable[[], Any], timeout: float = 5) -> None:
    """Poll `check` (a function returning a bool or an awaitable bool) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
