"""Several nodes behave as one server (CONTRACT.md §3, "Several processes and nodes"): real
`liaison serve` processes on one database and one real Redis. Tabs of one user on different
nodes see one gapless sequence; logout cuts sockets on every node; a node killed with -9 under
paging loses nothing (its clients resume elsewhere) and its users go offline after its lease; a
Redis outage under paging loses nothing and pushes are late by about the sweep interval; the
whereabouts board, meeting presence and the rate limit hold across nodes; `--workers 2` serves.
Assertions are on end states, with generous timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
import socketio

from tests.redis_server import RedisServer
from tests.support import (
    LIAISON,
    ROOT,
    TEST_PASSWORD,
    Client,
    Office,
    ServeProcess,
    eventually,
    free_port,
)

SWEEP_S = 1.0
LEASE_S = 3.0
OUTAGE_S = float(os.environ.get("LIAISON_TEST_REDIS_OUTAGE_S", "10"))


def _env(
    database_url: str, data_dir: Path, redis_url: str, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(
        LIAISON_DATABASE_URL=database_url,
        LIAISON_DATA_DIR=str(data_dir),
        LIAISON_BOOTSTRAP_ADMIN=f"admin:{TEST_PASSWORD}",
        LIAISON_JWT_SECRET="multinode-test-secret-" + "m" * 40,
        LIAISON_SMS_SECRET="multinode-sms-secret-" + "s" * 40,
        LIAISON_SMS_GATEWAY="log",
        LIAISON_REDIS_URL=redis_url,
        LIAISON_SWEEP_S=str(SWEEP_S),
        LIAISON_PRESENCE_LEASE_S=str(LEASE_S),
        LIAISON_BUS_PING_S="0.5",
        LIAISON_RATE_PER_S="1000",
        LIAISON_RATE_BURST="1000",
    )
    env.update(extra)
    return env


StartServeProcesss = Callable[..., Awaitable[list[ServeProcess]]]


@pytest.fixture
async def start_nodes(
    database_url: str, tmp_path: Path, password_hash: str, redis_server: RedisServer
) -> AsyncIterator[StartServeProcesss]:
    started: list[ServeProcess] = []

    async def start(n: int, **extra: str) -> list[ServeProcess]:
        env = _env(database_url, tmp_path / "data", redis_server.url, extra)
        nodes = [
            ServeProcess(f"node{len(started) + i}", env, tmp_path, password_hash) for i in range(n)
        ]
        started.extend(nodes)
        await asyncio.gather(*(node.start() for node in nodes))
        return nodes

    try:
        yield start
    finally:
        await asyncio.gather(*(node.stop() for node in started), return_exceptions=True)
        for node in started:
            assert not node.bad_events, node.bad_events[:3]


def _durable(*tabs: Client) -> list[dict[str, Any]]:
    return [e for tab in tabs for e in tab.durable()]


def _assert_gapless(events: list[dict[str, Any]]) -> list[int]:
    seqs = [e["seq"] for e in events]
    assert seqs, "no durable events"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    return seqs


async def _page(node: ServeProcess, token: str, to: str, body: str) -> dict[str, Any]:
    payload = {"to": [to], "body": body, "client_msg_id": uuid.uuid4().hex}
    return await node.command(token, "pager.send", payload)


async def _tab(node: ServeProcess, token: str, last_seq: int | None = None) -> Client:
    return await node.connect(token, last_seq)


async def _contiguous(tab: Client) -> int:
    """The last seq the tab holds without a gap since it synced."""
    last = next(e for e in tab.events if e["type"] == "sync.ready")["data"]["seq"]
    for e in tab.durable():
        if e["seq"] == last + 1:
            last = e["seq"]
    return last


# --- the durable stream ------------------------------------------------------------------------
async def test_tabs_of_one_user_on_two_nodes_see_one_gapless_sequence(
    start_nodes: StartServeProcesss,
) -> None:
    # No sweep to fall back on: every push to the other node's tab comes from a hint.
    a, b = await start_nodes(2, LIAISON_SWEEP_S="600")
    office = await Office.create(a)
    li = await office.person("li")
    zhang = await office.person("zhang")
    wang = await office.person("wang")
    tab_a, tab_b = await _tab(a, li.token), await _tab(b, li.token)
    n = 40

    async def sender(token: str, nodes: list[ServeProcess], tag: str) -> None:
        for i in range(n // 2):
            env = await _page(nodes[i % 2], token, li.id, f"{tag}{i}")
            assert env["ok"], env

    # Two senders, each through both nodes: commits for li race on both.
    await asyncio.gather(sender(zhang.token, [a, b], "z"), sender(wang.token, [b, a], "w"))
    await eventually(lambda: len(tab_a.durable("pager.message")) == n, 10)
    await eventually(lambda: len(tab_b.durable("pager.message")) == n, 10)
    seq_a = _assert_gapless(tab_a.durable())
    seq_b = _assert_gapless(tab_b.durable())
    assert seq_a == seq_b
    assert [e["data"] for e in tab_a.durable()] == [e["data"] for e in tab_b.durable()]
    bodies = sorted(e["data"]["body"] for e in tab_a.durable("pager.message"))
    assert bodies == sorted([f"z{i}" for i in range(n // 2)] + [f"w{i}" for i in range(n // 2)])


async def test_a_dropped_subscription_is_rebuilt_and_bad_bus_messages_are_survived(
    start_nodes: StartServeProcesss, redis_server: RedisServer
) -> None:
    a, b = await start_nodes(2, LIAISON_SWEEP_S="600")
    office = await Office.create(a)
    li, zhang = await office.person("li"), await office.person("zhang")
    tab = await _tab(b, li.token)
    client = redis.Redis.from_url(redis_server.url, protocol=2)
    try:
        for junk in (b"not json", b"[]", b'{"node": "x"}', b'{"node":"x","kind":"hint","msg":1}'):
            await client.publish("liaison:bus", junk)
        # Every subscription cut at once (as a Redis failover or a proxy restart would).
        await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    finally:
        await client.aclose()
    await asyncio.sleep(0.5)  # noticed at once: the connection closes
    await eventually(a.ready, 10)
    await eventually(b.ready, 10)
    for i in range(5):
        assert (await _page(a, zhang.token, li.id, f"r{i}"))["ok"]
    await eventually(lambda: len(tab.durable("pager.message")) == 5, 10)
    _assert_gapless(tab.durable())


async def test_logout_cuts_the_sessions_sockets_on_every_node_within_two_seconds(
    start_nodes: StartServeProcesss,
) -> None:
    a, b, c = await start_nodes(3)
    office = await Office.create(a)
    li = await office.person("li")
    tabs = [await _tab(node, li.token) for node in (a, b, c)]
    bystander = await _tab(c, (await office.person("wang")).token)
    status, env = await b.post("/api/v1/auth/logout", {}, token=li.token)
    assert status == 200 and env["ok"], env
    start = asyncio.get_running_loop().time()
    await eventually(lambda: not any(t.sio.connected for t in tabs), 2.5)
    assert asyncio.get_running_loop().time() - start <= 2.0
    assert bystander.sio.connected


async def test_a_node_killed_under_paging_loses_nothing_and_its_users_go_offline(
    start_nodes: StartServeProcesss,
) -> None:
    a, b, c = await start_nodes(3)
    office = await Office.create(a)
    li, zhang, chen = [await office.person(p) for p in ("li", "zhang", "chen")]
    zhao = await office.person("zhao")
    on_c = await _tab(c, li.token)
    on_a = await _tab(a, li.token)
    await _tab(c, zhao.token)  # zhao is only on the node that dies
    board = await _tab(a, chen.token)
    await board.call("whereabouts.board", {"department_id": office.departments["finance"]})
    sent: list[str] = []
    stop = asyncio.Event()

    async def pager() -> None:
        i = 0
        while not stop.is_set():
            body = f"p{i}"
            env = await _page((a, b)[i % 2], zhang.token, li.id, body)
            if env["ok"]:
                sent.append(body)
            i += 1
            await asyncio.sleep(0.01)

    paging = asyncio.create_task(pager())
    await eventually(lambda: len(on_c.durable()) >= 10, 10)
    await c.kill()
    await eventually(lambda: not on_c.sio.connected, 5)
    # Its client resumes on another node from its last contiguous seq.
    resumed = await _tab(b, li.token, await _contiguous(on_c))
    await asyncio.sleep(1)
    stop.set()
    await paging
    await eventually(lambda: len(on_a.durable("pager.message")) == len(sent), 10)
    await eventually(
        lambda: (
            len(on_c.durable("pager.message")) + len(resumed.durable("pager.message")) >= len(sent)
        ),
        10,
    )
    seen = _durable(on_c, resumed)
    seqs = _assert_gapless(seen)
    assert len(set(seqs)) == len(seqs), "no duplicates"
    got = [e["data"]["body"] for e in seen if e["type"] == "pager.message"]
    assert sorted(got) == sorted(sent), "0 lost, 0 duplicated"
    assert [e["seq"] for e in on_a.durable()] == seqs
    # The dead node's users go offline after its lease, on every board and in every lookup.
    ev = await board.wait_for(
        lambda e: (
            e["type"] == "presence.changed"
            and e["data"]["user_id"] == zhao.id
            and e["data"]["presence"] == "offline"
        ),
        timeout=LEASE_S * 4,
    )
    assert ev["seq"] is None
    users = await office.ok(
        "chen", "directory.users", {"department_id": office.departments["finance"]}
    )
    assert {u["id"]: u["presence"] for u in users["users"]}[zhao.id] == "offline"


async def test_a_redis_outage_under_paging_loses_nothing_and_pushes_are_late_at_most_a_sweep(
    start_nodes: StartServeProcesss, redis_server: RedisServer
) -> None:
    a, b = await start_nodes(2)
    office = await Office.create(a)
    li, zhang = await office.person("li"), await office.person("zhang")
    tab = await _tab(b, li.token)
    sent: list[str] = []
    late: list[float] = []

    async def page_and_time(i: int) -> None:
        env = await _page(a, zhang.token, li.id, f"o{i}")
        assert env["ok"], env
        sent.append(f"o{i}")
        t0 = asyncio.get_running_loop().time()
        await tab.wait_for(
            lambda e: e["type"] == "pager.message" and e["data"]["body"] == f"o{i}",
            timeout=SWEEP_S * 5,
        )
        late.append(asyncio.get_running_loop().time() - t0)

    await page_and_time(0)
    await redis_server.stop()
    await eventually(lambda: _not(a.ready()), 10)  # /readyz fails while Redis is down
    i = 1
    end = asyncio.get_running_loop().time() + OUTAGE_S
    while asyncio.get_running_loop().time() < end:
        await page_and_time(i)
        i += 1
    assert max(late[1:]) <= SWEEP_S * 3, late
    await redis_server.start()
    await eventually(a.ready, 15)
    await eventually(b.ready, 15)
    for _ in range(5):
        await page_and_time(i)
        i += 1
    seen = tab.durable()
    _assert_gapless(seen)
    got = [e["data"]["body"] for e in seen if e["type"] == "pager.message"]
    assert got == sent, "0 lost, 0 duplicated, in order"


async def _not(ready: Awaitable[bool]) -> bool:
    return not await ready


# --- ephemeral state across nodes ----------------------------------------------------------------
async def test_the_whereabouts_board_and_meeting_presence_are_right_across_nodes(
    start_nodes: StartServeProcesss,
) -> None:
    a, b = await start_nodes(2)
    office = await Office.create(a)
    chen, wang, li = [await office.person(p) for p in ("chen", "wang", "li")]
    general = office.departments["general"]
    watcher = await _tab(a, chen.token)
    board = await watcher.call("whereabouts.board", {"department_id": general})
    assert {m["user"]["id"]: m["presence"] for m in board["data"]["members"]}[li.id] == "offline"

    li_b = await _tab(b, li.token)
    await watcher.wait_for(
        lambda e: (
            e["type"] == "presence.changed"
            and e["data"] == {**e["data"], "user_id": li.id, "presence": "online"}
        )
    )
    board = await watcher.call("whereabouts.board", {"department_id": general})
    assert {m["user"]["id"]: m["presence"] for m in board["data"]["members"]}[li.id] == "online"
    env = await li_b.call("whereabouts.set", {"status": "out", "note": "去财政局"})
    assert env["ok"], env
    ev = await watcher.wait_for("whereabouts.changed")
    assert ev["data"]["user_id"] == li.id and ev["data"]["whereabouts"]["status"] == "out"

    # A second tab on the other node, then the first closes: still online everywhere.
    li_a = await _tab(a, li.token)
    await li_b.close()
    await asyncio.sleep(1)
    board = await watcher.call("whereabouts.board", {"department_id": general})
    assert {m["user"]["id"]: m["presence"] for m in board["data"]["members"]}[li.id] == "online"
    n = len(watcher.events)
    await li_a.close()
    await watcher.wait_for(
        lambda e: (
            e["type"] == "presence.changed"
            and e["data"]["user_id"] == li.id
            and e["data"]["presence"] == "offline"
        ),
        start=n,
    )
    online = [
        e
        for e in watcher.events[n:]
        if e["type"] == "presence.changed" and e["data"]["user_id"] == li.id
    ]
    assert online[-1]["data"]["presence"] == "offline"

    # Meeting presence: the chair on one node, a participant with tabs on both.
    env = await a.command(
        wang.token, "meeting.create", {"title": "周例会", "participants": [li.id], "agenda": ""}
    )
    assert env["ok"], env
    mid = env["data"]["meeting_id"]
    wang_a = await _tab(a, wang.token)
    assert (await wang_a.call("meeting.join", {"meeting_id": mid}))["data"]["present"] == [wang.id]
    li_on_b, li_on_a = await _tab(b, li.token), await _tab(a, li.token)
    joined = await li_on_b.call("meeting.join", {"meeting_id": mid})
    assert sorted(joined["data"]["present"]) == sorted([wang.id, li.id])
    await wang_a.wait_for(
        lambda e: e["type"] == "meeting.presence" and e["data"]["user_id"] == li.id
    )
    joined = await li_on_a.call("meeting.join", {"meeting_id": mid})
    assert sorted(joined["data"]["present"]) == sorted([wang.id, li.id])
    await li_on_b.close()  # li is still in the room on node a
    await asyncio.sleep(1)
    left = [
        e for e in wang_a.events if e["type"] == "meeting.presence" and not e["data"]["present"]
    ]
    assert not left
    await li_on_a.close()
    ev = await wang_a.wait_for(
        lambda e: e["type"] == "meeting.presence" and not e["data"]["present"]
    )
    assert ev["data"]["user_id"] == li.id
    # A late joiner on the other node sees who is present now.
    zhang = await office.person("zhang")
    env = await a.command(wang.token, "meeting.create", {"title": "二", "participants": [zhang.id]})
    assert env["ok"], env
    await wang_a.call("meeting.join", {"meeting_id": env["data"]["meeting_id"]})
    zhang_b = await _tab(b, zhang.token)
    joined = await zhang_b.call("meeting.join", {"meeting_id": env["data"]["meeting_id"]})
    assert sorted(joined["data"]["present"]) == sorted([wang.id, zhang.id])


async def test_the_rate_limit_and_the_socket_cap_hold_per_user_across_nodes(
    start_nodes: StartServeProcesss,
) -> None:
    a, b, c = await start_nodes(
        3, LIAISON_RATE_PER_S="0.5", LIAISON_RATE_BURST="6", LIAISON_MAX_CONNECTIONS_PER_USER="3"
    )
    admin = await a.login("admin")
    for node in (a, b, c):
        await _tab(node, admin["access_token"])
    for node in (a, b, c):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await node.connect(admin["access_token"], wait_sync=False)
    results = [
        await node.command(admin["access_token"], "directory.departments", {})
        for node in (a, b, c) * 6
    ]
    ok = [r for r in results if r["ok"]]
    limited = [r for r in results if not r["ok"]]
    assert len(ok) <= 7, "one bucket for the user, whichever node answers"
    assert limited and all(r["error"]["code"] == "rate_limited" for r in limited)


# --- several processes on one port ---------------------------------------------------------------
def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


async def test_workers_share_one_port_and_a_dead_one_is_replaced(
    database_url: str, tmp_path: Path, redis_server: RedisServer, password_hash: str
) -> None:
    port = free_port()
    env = _env(database_url, tmp_path / "data", redis_server.url, {})
    with (tmp_path / "workers.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            str(LIAISON), "serve", "--workers", "2", "--port", str(port),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    node = ServeProcess("workers", env, tmp_path, password_hash)
    node.port, node.url = port, f"http://127.0.0.1:{port}"
    try:
        await eventually(node.ready, 30)
        await eventually(lambda: len(_children(proc.pid)) == 2, 10)
        workers = _children(proc.pid)
        office = await Office.create(node)
        li, zhang = await office.person("li"), await office.person("zhang")
        tabs = [await _tab(node, li.token) for _ in range(6)]
        for i in range(10):
            assert (await _page(node, zhang.token, li.id, f"w{i}"))["ok"]
        for tab in tabs:
            await eventually(lambda tab=tab: len(tab.durable("pager.message")) == 10, 10)
            _assert_gapless(tab.durable())
        os.kill(min(workers), signal.SIGKILL)
        await eventually(lambda: len(_children(proc.pid) - {min(workers)}) == 2, 15)
        await eventually(node.ready, 10)
    finally:
        for client in list(node.clients):
            with contextlib.suppress(Exception):
                await client.close()
        await node.http.close()
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            raise
    assert proc.returncode == 0, (tmp_path / "workers.log").read_text()[-3000:]
    assert not _children(proc.pid)


async def test_more_than_one_worker_needs_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["LIAISON_DATA_DIR"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        str(LIAISON), "serve", "--workers", "2", "--port", str(free_port()),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0 and b"LIAISON_REDIS_URL" in out
