"""`liaison-load faults`: the faults of issue 16 reproduced against a live server, with counts.

1. **stall**: one signed-in client stops reading while it is paged heavily beside everyone
   else. Reported: the others' `pager.send` latency before and during the stall, how many pages
   and seconds until the server cut the stalled socket, and, once it reconnects with
   `last_seq`, what it lost, got twice, or got out of order.
2. **hiccup**: users page each other steadily while every database connection of the server is
   killed (`pg_terminate_backend`) every few seconds. Every client acknowledges what it gets,
   as the web client does. Reported: pages answered but never delivered (lost), delivered
   twice (duplicated), gaps in a stream, SMS texted to a recipient who had acknowledged the page
   (wrong SMS; everyone is online, so every SMS is wrong), and acknowledged pages whose sender
   never got the `delivered` receipt. A send answered `unavailable` is retried with its
   `client_msg_id`, as a client must.

Without `--url` it starts its own Liaison (embedded PostgreSQL in a temporary folder, the SMS
gateway pointed at a recorder in this process, a 2 s SMS grace). With `--url` it uses that
server, which must have been started with `LIAISON_SMS_GATEWAY=http://127.0.0.1:<--sms-port>/`
and `LIAISON_BOOTSTRAP_ADMIN`; `--database-url` names its PostgreSQL for the connection kills.
Exits 1 if any count that must be zero is not. Loopback only."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import msgspec
import socketio
from aiohttp import web

from loadtests.org import cheap_hash
from loadtests.stalled import StalledSocket

PASSWORD = "faults-pw-2026"
KILL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


@dataclass
class Options:
    url: str | None = None
    admin: str = "faultsadmin:faults-admin-pw-1"
    database_url: str | None = None
    sms_port: int = 0
    stall_pages: int = 1500
    hiccup_users: int = 10
    hiccup_s: float = 20.0
    rate: float = 40.0
    kill_every_s: float = 2.0
    grace_s: float = 2.0
    sweep_wait_s: float = 12.0


# -- the peers -----------------------------------------------------------------------------------
class SmsSink:
    """The SMS gateway: records what Liaison texts (the HTTP gateway's signed JSON POST)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(msgspec.json.decode(await request.read()))
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Tab:
    """A person's live connection: acknowledges every durable event, as the web client does,
    and keeps what arrived for the counts."""

    user_id: str
    token: str
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    seqs: list[int] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)  # message ids of pager.message, as arrived
    receipts: dict[tuple[str, str], int] = field(default_factory=dict)  # (message, user) -> n
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, url: str, last_seq: int | None = None) -> None:
        async def on_event(env: dict[str, Any]) -> None:
            if env["type"] in ("sync.ready", "sync.reset"):
                self.ready.set()
            if env["seq"] is None:
                return
            self.seqs.append(env["seq"])
            data = env["data"]
            if env["type"] == "pager.message":
                self.pages.append(data["message_id"])
            elif env["type"] == "pager.receipt" and data["state"] == "delivered":
                key = (data["message_id"], data["user_id"])
                self.receipts[key] = self.receipts.get(key, 0) + 1
            with contextlib.suppress(Exception):
                await self.sio.emit("sync.ack", {"seq": env["seq"]})

        self.sio.on("event", on_event)
        auth: dict[str, Any] = {"token": self.token}
        if last_seq is not None:
            auth["last_seq"] = last_seq
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=20)
        await asyncio.wait_for(self.ready.wait(), 20)

    def stream_errors(self) -> tuple[int, int]:
        """(duplicated, gaps) in the seqs as they arrived."""
        dup = len(self.seqs) - len(set(self.seqs))
        gaps = sum(1 for a, b in itertools.pairwise(self.seqs) if b > a + 1)
        return dup, gaps

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


class Office:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    async def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.post(self.url + path, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def login(self, account: str, password: str) -> dict[str, Any]:
        for _ in range(100):  # the server may be refusing for a moment (unavailable, throttled)
            status, env = await self.post(
                "/api/v1/auth/login", {"account": account, "password": password}
            )
            if env.get("ok"):
                return dict(env["data"])
            await asyncio.sleep(0.3)
        raise RuntimeError(f"login of {account} failed: {status} {env}")

    async def people(self, admin: str, prefix: str, n: int, phones: bool) -> list[dict[str, Any]]:
        account, _, password = admin.partition(":")
        token = (await self.login(account, password))["access_token"]
        phc = cheap_hash(PASSWORD)
        body = {
            "departments": [{"key": f"{prefix}-dept", "name": f"故障演练{prefix}"}],
            "users": [
                {
                    "account": f"{prefix}{i}",
                    "name": f"演练{prefix}{i}",
                    "department_key": f"{prefix}-dept",
                    "password_hash": phc,
                    **({"phone": f"139{random.randrange(10**8):08d}"} if phones else {}),
                }
                for i in range(n)
            ],
        }
        status, env = await self.post("/api/v1/admin/import", body, token)
        if not env.get("ok"):
            raise RuntimeError(f"import failed: {status} {env}")
        out = []
        for u in body["users"]:
            data = await self.login(u["account"], PASSWORD)
            out.append({**u, "id": data["user"]["id"], "token": data["access_token"]})
        return out

    async def page(self, token: str, to: list[str], body: str) -> tuple[float, dict[str, Any]]:
        """Send until answered ok (an `unavailable` is retried with the same key); returns the
        first attempt's latency and the final answer."""
        payload = {"to": to, "body": body, "client_msg_id": uuid.uuid4().hex}
        started = time.perf_counter()
        latency = None
        deadline = started + 60
        while True:
            try:
                _, env = await self.post("/api/v1/commands/pager.send", payload, token)
            except (aiohttp.ClientError, OSError):
                env = {"ok": False, "error": {"code": "unreachable"}}
            if latency is None:
                latency = time.perf_counter() - started
            if env.get("ok") or time.perf_counter() > deadline:
                return latency, env
            code = env["error"]["code"]
            if code not in ("unavailable", "rate_limited", "unreachable"):
                return latency, env
            await asyncio.sleep(0.2)

    async def cut_count(self, reason: str) -> float:
        async with self.http.get(self.url + "/metrics") as r:
            text = await r.text()
        for line in text.splitlines():
            if line.startswith("liaison_sockets_cut_total") and f'reason="{reason}"' in line:
                return float(line.split()[-1])
        return 0.0


def _ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100)[int(q) - 1] * 1000, 1)


# -- 1: a client that stops reading ------------------------------------------------------------
async def stall(o: Options, office: Office) -> dict[str, Any]:
    people = await office.people(o.admin, f"st{random.randrange(10**6)}-", 5, phones=False)
    stalled_user, others = people[0], people[1:]
    tabs = [Tab(p["id"], p["token"]) for p in others]
    for t in tabs:
        await t.connect(office.url)

    async def chatter(n: int) -> list[float]:
        out = []
        for i in range(n):
            a, b = random.sample(others, 2)
            latency, env = await office.page(a["token"], [b["id"]], f"例行寻呼 {i}")
            if env.get("ok"):
                out.append(latency)
        return out

    before = await chatter(50)
    stalled = await StalledSocket.open(office.url, stalled_user["token"])
    stalled.stall()
    cuts = await office.cut_count("send_buffer")
    body = "紧急通知：请各科室负责人于下午三点到三楼会议室参加专题会议。" * 40
    sent: list[str] = []
    during: list[float] = []
    started = time.monotonic()
    cut_after = None
    while len(sent) < o.stall_pages:
        sender = random.choice(others)
        _, env = await office.page(sender["token"], [stalled_user["id"]], body[:4900])
        if env.get("ok"):
            sent.append(env["data"]["message_id"])
        during += await chatter(1)
        if await office.cut_count("send_buffer") > cuts:
            cut_after = (len(sent), round(time.monotonic() - started, 2))
            break
    was_cut = await stalled.was_cut(timeout=10)
    stalled.close()
    back = Tab(stalled_user["id"], stalled_user["token"])
    await back.connect(office.url, last_seq=0)
    await asyncio.sleep(1)
    got = set(back.pages)
    dup, gaps = back.stream_errors()
    for t in [*tabs, back]:
        await t.close()
    return {
        "send_p50_ms_before": _ms(before, 50),
        "send_p99_ms_before": _ms(before, 99),
        "send_p50_ms_during": _ms(during, 50),
        "send_p99_ms_during": _ms(during, 99),
        "pages_to_stalled": len(sent),
        "cut_after_pages": cut_after[0] if cut_after else None,
        "cut_after_s": cut_after[1] if cut_after else None,
        "connection_closed": was_cut,
        "lost": len(set(sent) - got),
        "duplicated": len(back.pages) - len(got) + dup,
        "gaps": gaps,
    }


# -- 2: database connections killed under paging -------------------------------------------------
async def hiccup(o: Options, office: Office, sms: SmsSink, dsn: str) -> dict[str, Any]:
    people = await office.people(o.admin, f"hc{random.randrange(10**6)}-", o.hiccup_users, True)
    phones = {p["phone"] for p in people}
    tabs = {p["id"]: Tab(p["id"], p["token"]) for p in people}
    for t in tabs.values():
        await t.connect(office.url)
    sent: dict[str, tuple[str, str]] = {}  # message -> (sender, recipient)
    unavailable = 0
    failed = 0
    kills = 0
    stop = asyncio.Event()

    async def killer() -> None:
        nonlocal kills
        conn = await asyncpg.connect(dsn)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), o.kill_every_s)
                if not stop.is_set():
                    kills += await conn.fetchval(KILL)
        finally:
            await conn.close()

    async def one(i: int) -> None:
        nonlocal unavailable, failed
        a, b = random.sample(people, 2)
        latency, env = await office.page(a["token"], [b["id"]], f"第{i}号寻呼")
        if env.get("ok"):
            sent[env["data"]["message_id"]] = (a["id"], b["id"])
        else:
            failed += 1
        if latency > 0 and not env.get("ok"):
            unavailable += 1

    kill_task = asyncio.create_task(killer())
    pending: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    for i in itertools.count():
        due = started + i / o.rate
        if due - started > o.hiccup_s:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        task = asyncio.create_task(one(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    stop.set()
    await kill_task
    # The SMS grace passes (no SMS may follow), and the periodic sweep marks what it must.
    await asyncio.sleep(o.grace_s + o.sweep_wait_s)
    lost = duplicated = missing_receipts = 0
    for message_id, (sender, recipient) in sent.items():
        n = tabs[recipient].pages.count(message_id)
        lost += n == 0
        duplicated += max(0, n - 1)
        if n and tabs[sender].receipts.get((message_id, recipient), 0) == 0:
            missing_receipts += 1
    gaps = sum(t.stream_errors()[1] for t in tabs.values())
    duplicated += sum(t.stream_errors()[0] for t in tabs.values())
    wrong_sms = sum(1 for m in sms.received if m.get("to") in phones)
    for t in tabs.values():
        await t.close()
    return {
        "pages_sent": len(sent),
        "connections_killed": kills,
        "sends_not_ok": failed,
        "lost": lost,
        "duplicated": duplicated,
        "gaps": gaps,
        "wrong_sms": wrong_sms,
        "missing_delivered_receipts": missing_receipts,
    }


# -- running it ----------------------------------------------------------------------------------
def embedded_dsn(data_dir: Path) -> str:
    lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres@/liaison?host={lines[4]}&port={lines[3]}"


async def run(o: Options) -> dict[str, Any]:
    sms = SmsSink(o.sms_port)
    await sms.start()
    server = None
    try:
        url, dsn = o.url, o.database_url
        if url is None:
            from loadtests.bench import Server

            server = Server(
                "liaison",
                0,
                {
                    "LIAISON_BOOTSTRAP_ADMIN": o.admin,
                    "LIAISON_SMS_GATEWAY": f"http://127.0.0.1:{sms.port}/",
                    "LIAISON_SMS_OFFLINE_GRACE_S": str(o.grace_s),
                    "LIAISON_RATE_PER_S": "1000",
                    "LIAISON_RATE_BURST": "1000",
                },
            )
            server.start()
            await server.wait_ready()
            url, dsn = server.url, embedded_dsn(server.dir / "data")
        host = urlsplit(url).hostname or ""
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            raise SystemExit("liaison-load faults: only a server on this machine (loopback)")
        if dsn is None:
            raise SystemExit("liaison-load faults: --url needs --database-url for the kills")
        async with aiohttp.ClientSession() as http:
            office = Office(url, http)
            return {"stall": await stall(o, office), "hiccup": await hiccup(o, office, sms, dsn)}
    finally:
        await sms.stop()
        if server is not None:
            server.stop()


MUST_BE_ZERO = {
    "stall": ("lost", "duplicated", "gaps"),
    "hiccup": ("lost", "duplicated", "gaps", "wrong_sms", "missing_delivered_receipts"),
}


def verdict(result: dict[str, Any]) -> list[str]:
    """What went wrong: counts that must be zero and are not, a stalled socket never cut."""
    bad = [
        f"{p}.{k} = {result[p][k]}"
        for p, keys in MUST_BE_ZERO.items()
        for k in keys
        if result[p][k]
    ]
    if result["stall"]["cut_after_pages"] is None or not result["stall"]["connection_closed"]:
        bad.append("stall: the stalled socket was not cut")
    return bad


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="liaison-load faults", description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--admin", default=Options.admin, help="account:password of an admin")
    ap.add_argument("--database-url", help="the server's PostgreSQL (with --url)")
    ap.add_argument("--sms-port", type=int, default=0, help="port of the SMS recorder")
    ap.add_argument("--hiccup-s", type=float, default=Options.hiccup_s)
    ap.add_argument("--rate", type=float, default=Options.rate, help="pages/s in the hiccup")
    ap.add_argument("--kill-every-s", type=float, default=Options.kill_every_s)
    ap.add_argument("--grace-s", type=float, default=Options.grace_s)
    ap.add_argument("--sweep-wait-s", type=float, default=Options.sweep_wait_s)
    args = ap.parse_args(argv)
    o = Options(
        url=args.url,
        admin=args.admin,
        database_url=args.database_url,
        sms_port=args.sms_port,
        hiccup_s=args.hiccup_s,
        rate=args.rate,
        kill_every_s=args.kill_every_s,
        grace_s=args.grace_s,
        sweep_wait_s=args.sweep_wait_s,
    )
    result = asyncio.run(run(o))
    for phase, counts in result.items():
        print(phase)
        for k, v in counts.items():
            print(f"  {k:<28} {v}")
    bad = verdict(result)
    print("FAILED: " + "; ".join(bad) if bad else "all zero")
    sys.exit(1 if bad else 0)
