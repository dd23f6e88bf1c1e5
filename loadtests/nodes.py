"""`liaison-load nodes`: several Liaison nodes behind nginx, on one PostgreSQL and one Redis, checked.

Starts a Redis (`redis-server`), the first node (which starts the embedded PostgreSQL in a
temporary folder), the other nodes on that PostgreSQL, and nginx in front of them with
`loadtests/deploy/nginx.conf`, the example configuration. Then, through nginx only:

1. people sign in, each with two tabs (WebSocket transport, no sticky sessions: nginx spreads
   the tabs over the nodes), and page each other; every tab must see the same gapless sequence
   and every page must arrive (0 lost, 0 duplicated, 0 gaps);
2. one node is killed (SIGKILL) while paging goes on; its tabs reconnect through nginx (to the
   nodes left) with their `last_seq` and must still end with 0 lost, 0 duplicated, 0 gaps.

Prints the counts and exits 1 if any is not zero. Needs `nginx` and `redis-server` on PATH."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from loadtests.bench import free_port
from loadtests.faults import Office, Tab, embedded_dsn

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "deploy" / "nginx.conf"
ADMIN = "nodesadmin:nodes-admin-pw-1"


def render_nginx(prefix: Path, listen: int, ports: list[int]) -> str:
    upstreams = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
    text = TEMPLATE.read_text()
    return (
        text.replace("{prefix}", str(prefix))
        .replace("{listen}", f"127.0.0.1:{listen}")
        .replace("{upstreams}", upstreams)
    )


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float = 15) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait(5)


class Cluster:
    """Redis, N nodes and nginx in a temporary folder; `url` is nginx's."""

    def __init__(self, nodes: int, env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="liaison-nodes-"))
        self.n = nodes
        self.env = env or {}
        self.redis_port = free_port()
        self.ports = [free_port() for _ in range(nodes)]
        self.listen = free_port()
        self.url = f"http://127.0.0.1:{self.listen}"
        self.nodes: list[Proc] = []
        self.others: list[Proc] = []
        self.dsn = ""
        # One cluster, one set of secrets: a token signed by one node is good on every node.
        self.secrets = {
            "LIAISON_JWT_SECRET": secrets.token_hex(32),
            "LIAISON_SMS_SECRET": secrets.token_hex(32),
        }

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.dir / f"{name}.log"
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return Proc(name, proc, log)

    def node_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "LIAISON_BOOTSTRAP_ADMIN": ADMIN,
                "LIAISON_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "LIAISON_SMS_GATEWAY": "log",
                "LIAISON_RATE_PER_S": "1000",
                "LIAISON_RATE_BURST": "1000",
            }
        )
        env.pop("LIAISON_DATABASE_URL", None)
        env.update(self.secrets)
        env.update(self.env)
        return env

    def start_node(self, i: int) -> Proc:
        env = self.node_env()
        env["LIAISON_DATA_DIR"] = str(self.dir / f"node{i}")
        if self.dsn:
            env["LIAISON_DATABASE_URL"] = self.dsn
        liaison = str(Path(sys.executable).parent / "liaison")
        return self._spawn(f"node{i}", [liaison, "serve", "--port", str(self.ports[i])], env)

    async def start(self) -> None:
        redis = shutil.which("redis-server")
        nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
        if not redis or not nginx:
            raise SystemExit("liaison-load nodes needs redis-server and nginx on PATH")
        self.others.append(
            self._spawn(
                "redis",
                [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.dir)],
            )
        )  # fmt: skip
        first = self.start_node(0)
        self.nodes.append(first)
        await self.wait_ready(self.ports[0], first)
        self.dsn = embedded_dsn(self.dir / "node0")
        for i in range(1, self.n):
            self.nodes.append(self.start_node(i))
        for i, node in enumerate(self.nodes):
            await self.wait_ready(self.ports[i], node)
        conf = self.dir / "nginx.conf"
        conf.write_text(render_nginx(self.dir, self.listen, self.ports))
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / sub).mkdir(exist_ok=True)
        self.others.append(
            self._spawn("nginx", [nginx, "-c", str(conf), "-p", str(self.dir), "-g", "daemon off;"])
        )
        await self.wait_ready(self.listen, self.others[-1])

    async def wait_ready(self, port: int, proc: Proc, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.3)
        raise RuntimeError(f"{proc.name} not ready in {timeout} s")

    async def connections(self) -> list[float]:
        """Live sockets on each node (its /metrics), in node order; a dead node counts 0."""
        out = []
        async with aiohttp.ClientSession() as s:
            for port, node in zip(self.ports, self.nodes, strict=True):
                n = 0.0
                if node.alive():
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                            for line in (await r.text()).splitlines():
                                if line.startswith("liaison_connections "):
                                    n = float(line.split()[-1])
                out.append(n)
        return out

    def stop(self) -> None:
        for p in [*self.others[1:], *reversed(self.nodes)]:
            p.kill()
        for p in [*self.others[1:], *self.nodes]:
            p.wait()
        if self.others:  # Redis last
            self.others[0].kill()
            self.others[0].wait()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


async def _page_round(office: Office, people: list[dict[str, Any]], n: int) -> list[str]:
    sent = []
    for i in range(n):
        a, b = random.sample(people, 2)
        _, env = await office.page(a["token"], [b["id"]], f"跨节点寻呼 {i}")
        if env.get("ok"):
            sent.append(env["data"]["message_id"])
    return sent


def _counts(tabs: dict[str, list[Tab]], sent: list[str]) -> dict[str, int]:
    """Over every user's tabs: pages that reached no tab of their recipient (lost), seqs seen
    twice by a tab, gaps, and tabs whose sequence differs from their sibling's."""
    got = {m for ts in tabs.values() for t in ts for m in t.pages}
    dup = gaps = differ = 0
    for ts in tabs.values():
        for t in ts:
            d, g = t.stream_errors()
            dup, gaps = dup + d, gaps + g
        if len({tuple(sorted(set(t.seqs))) for t in ts}) > 1:
            differ += 1
    return {
        "lost": len(set(sent) - got),
        "duplicated": dup,
        "gaps": gaps,
        "tabs_differ": differ,
    }


async def _settle(tabs: dict[str, list[Tab]], sent: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = _counts(tabs, sent)
        if not any(counts.values()):
            return
        await asyncio.sleep(0.3)


async def check(cluster: Cluster, users: int = 8, pages: int = 60) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        office = Office(cluster.url, http)
        people = await office.people(ADMIN, f"nd{random.randrange(10**6)}-", users, phones=False)
        tabs = {p["id"]: [Tab(p["id"], p["token"]), Tab(p["id"], p["token"])] for p in people}
        for ts in tabs.values():
            for t in ts:
                await t.connect(cluster.url)
        spread = await cluster.connections()
        sent = await _page_round(office, people, pages)
        await _settle(tabs, sent)
        before = _counts(tabs, sent)

        # A node dies under paging; its tabs come back through nginx with their last seq.
        victim = max(range(cluster.n), key=lambda i: spread[i])
        # nginx closes the dead node's client sockets; the clients notice.
        gone = asyncio.Event()
        for ts in tabs.values():
            for t in ts:
                t.sio.on("disconnect", lambda *_: gone.set())
        paging = asyncio.create_task(_page_round(office, people, pages))
        await asyncio.sleep(0.5)
        cluster.nodes[victim].kill(signal.SIGKILL)
        cluster.nodes[victim].wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), 15)
        await asyncio.sleep(1)  # the rest of that node's sockets
        moved = 0
        for uid, ts in tabs.items():
            for i, t in enumerate(ts):
                if t.sio.connected:
                    continue
                moved += 1
                last = max(t.seqs, default=0)
                fresh = Tab(uid, t.token, seqs=list(t.seqs), pages=list(t.pages))
                await fresh.connect(cluster.url, last_seq=last)
                ts[i] = fresh
        sent += await paging
        await _settle(tabs, sent)
        after = _counts(tabs, sent)
        for ts in tabs.values():
            for t in ts:
                await t.close()
        return {
            "nodes": cluster.n,
            "tabs_per_node": spread,
            "pages": len(sent),
            "before_kill": before,
            "tabs_moved": moved,
            "after_kill": after,
        }


def verdict(result: dict[str, Any]) -> list[str]:
    bad = [
        f"{phase}.{k} = {v}"
        for phase in ("before_kill", "after_kill")
        for k, v in result[phase].items()
        if v
    ]
    if sum(1 for n in result["tabs_per_node"] if n) < 2:
        bad.append(f"nginx did not spread the tabs: {result['tabs_per_node']}")
    if not result["tabs_moved"]:
        bad.append("no tab was on the killed node")
    return bad


async def run(nodes: int) -> dict[str, Any]:
    cluster = Cluster(nodes)
    try:
        await cluster.start()
        return await check(cluster)
    finally:
        cluster.stop()
        cluster.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="liaison-load nodes", description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args.nodes))
    for k, v in result.items():
        print(f"{k:<16} {v}")
    bad = verdict(result)
    print("FAILED: " + "; ".join(bad) if bad else "all zero")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
