"""`make bench`: the same four scenarios against the framework floor, against Liaison and against
Liaison with N worker processes on Redis (`liaison serve --workers N`), in one run, the server
(with its PostgreSQL) pinned to one core (N cores for N workers on a machine with more than two)
and the load generator to the others. Prints and writes the table of ratios Liaison / floor and
N workers / one worker (loadtests/results/bench.md and .json).

Targets: `floor`, `liaison` (one process), `liaison-wN` (N workers, a `redis-server` of its own
started beside it; `--workers` sets N of the default targets).

1. Pager path, 2,000 connected users: the highest sustained page rate with p99 end-to-end
   ≤ 100 ms (rates doubled until a step fails, then bisected twice).
2. Memory: 10,000 authenticated connections on one server process: RSS above the idle process
   per connection.
3. Reconnect storm: 10,000 users away, three pages each meanwhile, then all reconnect at once
   with last_seq: time until all are back at sync.ready, and every missed page replayed.
4. Fan-out: one circulation to a bureau of 5,000: from the send (and from its ack) to each
   circulation.received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from loadtests.accounting import reconcile, sum_totals
from loadtests.approvals import scenario_approvals
from loadtests.hist import LogHistogram
from loadtests.org import Org, build_org, cheap_hash
from loadtests.report import CSS, series_charts
from loadtests.runner import Fleet, import_org, live_status, make_specs
from loadtests.worker import Mix, raise_fd_limit

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
ADMIN = "benchadmin:bench-admin-pw-1"
PASSWORD = "bench-user-1"
P99_LIMIT_S = 0.100
# A step that fails while the generator itself ran this late (p99 of its loop lag: a quarter of
# the latency budget) measured the shared machine, not the server: it is run once more.
GENERATOR_STALL_S = 0.025


@dataclass
class Options:
    users: int = 10_000
    pager_users: int = 2_000
    fanout: int = 5_000
    procs: int = 4
    step_s: float = 8.0
    warmup_s: float = 2.0
    rates: tuple[int, ...] = (50, 100, 200, 400, 800, 1600, 3200, 6400)
    refine: int = 2
    connect_rate: float = 500.0
    storm_pages: int = 3
    storm_wait_s: float = 60.0
    server_core: int = 0
    generator_core: int = 1
    generator_cores: tuple[int, ...] = (1,)
    workers: int = 2
    targets: tuple[str, ...] = ("floor", "liaison", "liaison-w2")
    out: Path = RESULTS
    profile: bool = False
    quiet: bool = False
    only: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/*/stat's ppid."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d.name))
    return kids


def process_tree(root: int, skip: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """`root` and its descendants, leaving out the subtrees of `skip` (the embedded
    PostgreSQL, which is measured on its own)."""
    kids = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in skip:
            continue
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def workers_of(kind: str) -> int:
    """Server processes of a target: `liaison-w4` is Liaison with four workers."""
    m = re.fullmatch(r"liaison-w(\d+)", kind)
    return int(m.group(1)) if m else 1


def server_cpus(kind: str, o: Options) -> list[int]:
    """The cores a target's server (and its PostgreSQL and Redis) is pinned to; [] for none.
    One process gets `server_core`; N workers get N cores from it when the machine has more
    than two (the generator runs on the others), and share the whole machine otherwise."""
    cores = os.cpu_count() or 1
    n = workers_of(kind)
    if cores <= 1:
        return []
    if n == 1:
        return [o.server_core]
    if cores <= 2:
        return []
    return list(range(o.server_core, o.server_core + min(n, cores - 1)))


def _cpu_list(cpus: list[int]) -> str:
    return (
        f"{cpus[0]}-{cpus[-1]}"
        if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1))
        else ",".join(map(str, cpus))
    )


def _log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


# -- servers -----------------------------------------------------------------------------------
class Server:
    def __init__(
        self, kind: str, core: int, env: dict[str, str], cpus: list[int] | None = None
    ) -> None:
        self.kind = kind
        self.core = core
        self.workers = workers_of(kind)
        # pinned to these cores ([]: not pinned); by default `core`, on a machine of several
        self.cpus = [core] if cpus is None and (os.cpu_count() or 1) > 1 else cpus or []
        self.env = env  # settings for Liaison on top of the bench's own
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"liaison-bench-{kind}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.redis: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "server.log"

    def _pin(self, cmd: list[str]) -> list[str]:
        taskset = shutil.which("taskset")
        return [taskset, "-c", _cpu_list(self.cpus), *cmd] if taskset and self.cpus else cmd

    def _start_redis(self) -> str:
        """A throwaway Redis for the workers' bus, on the server's cores: no persistence."""
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError(f"{self.kind} needs redis-server on PATH")
        port = free_port()
        cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(self.dir)]
        log = (self.dir / "redis.log").open("wb")
        self.redis = subprocess.Popen(
            self._pin(cmd), cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.redis.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.dir / 'redis.log').read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 1) as c,
            ):
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
            time.sleep(0.1)
        raise RuntimeError("redis-server not answering in 15 s")

    def start(self) -> None:
        env = dict(os.environ)
        env["LIAISON_BOOTSTRAP_ADMIN"] = ADMIN
        env.pop("LIAISON_DATABASE_URL", None)
        env["LIAISON_DATA_DIR"] = str(self.dir / "data")
        env["LIAISON_SMS_GATEWAY"] = "log"
        env.pop("LIAISON_REDIS_URL", None)
        env.pop("LIAISON_WORKERS", None)
        env.update(self.env)
        if self.workers > 1:
            env["LIAISON_REDIS_URL"] = self._start_redis()
        py = sys.executable
        if self.kind == "floor":
            cmd = [py, "-m", "loadtests.floor", "--port", str(self.port)]
        else:
            liaison = Path(py).parent / "liaison"
            cmd = [
                str(liaison),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.dir / "data"),
            ]
            if self.workers > 1:
                cmd += ["--workers", str(self.workers)]
        cmd = self._pin(cmd)
        log = self.log_path.open("wb")
        # Its own session, so the bench's signals do not reach it and we can stop its group.
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} exited: {self.log_path.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with s.get(self.url + "/readyz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.3)
        raise RuntimeError(f"{self.kind} not ready in {timeout}s")

    async def wait_idle(self, limit: float = 120.0, busy: float = 0.1) -> float:
        """Until the server and its PostgreSQL have worked off what the last phase left them
        (ten thousand disconnects, a backlog of commands): below `busy` of a core for a second
        and answering /healthz. Returns the wait."""
        t = time.monotonic()
        calm = 0
        last = sum(self.cpu_seconds())
        async with aiohttp.ClientSession() as s:
            while time.monotonic() - t < limit and calm < 2:
                await asyncio.sleep(0.5)
                now = sum(self.cpu_seconds())
                calm = calm + 1 if (now - last) / 0.5 < busy else 0
                last = now
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with s.get(
                    self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=10)
                ) as r:
                    await r.read()
        return round(time.monotonic() - t, 2)

    def _postmaster(self) -> int | None:
        pidfile = self.dir / "data" / "pg" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pidfile.read_text().split()[0])
        return None

    def rss_kb(self) -> int:
        """Resident memory of the server: its process, and with workers the supervisor and
        every worker (not PostgreSQL, not Redis)."""
        pg = self._postmaster()
        total = 0
        for pid in process_tree(self.pid, {pg} if pg else set()):
            with contextlib.suppress(OSError, RuntimeError):
                total += rss_kb(pid)
        return total

    def cpu_seconds(self) -> tuple[float, float, float]:
        """CPU time so far of the server (its process, or the supervisor and its workers), of
        its PostgreSQL (all backends) and of its Redis (0 without)."""
        tick = os.sysconf("SC_CLK_TCK")

        def cpu(pid: int, reaped: bool = False) -> float:
            # utime + stime; with `reaped`, also cutime + cstime: the children that have
            # exited (autovacuum workers, closed backends), whose time would else vanish
            # from the sum mid-step.
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return sum(int(f) for f in fields[11 : 15 if reaped else 13]) / tick
            return 0.0

        pg = 0.0
        master = self._postmaster()
        kids = _children()
        if master is not None:
            pg = cpu(master, reaped=True) + sum(cpu(k) for k in kids.get(master, ()))
        server = cpu(self.pid)
        if self.workers > 1:  # the workers (and any that exited), not PostgreSQL
            server = cpu(self.pid, reaped=True) + sum(
                cpu(k) for k in process_tree(self.pid, {master} if master else set())[1:]
            )
        redis = cpu(self.redis.pid) if self.redis is not None else 0.0
        return server, pg, redis

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, keep_log: Path | None = None, grace: float = 5.0) -> None:
        """SIGTERM, and SIGKILL after `grace`: a throwaway server with thousands of sockets
        would spend a minute saying goodbye to each."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # The embedded PostgreSQL is a child of the server: make sure none outlives the bench.
        pidfile = self.dir / "data" / "pg" / "postmaster.pid"
        if pidfile.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)
                time.sleep(1)
        if self.workers > 1:  # a worker the supervisor left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(5)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait(5)
        if keep_log is not None and self.log_path.exists():
            shutil.copy(self.log_path, keep_log)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- scenarios ---------------------------------------------------------------------------------
def _owner(fleet: Fleet, user_id: int) -> int:
    """Which worker simulates this user."""
    owners: dict[int, int] = getattr(fleet, "_owners", {})
    if not owners:
        owners = {p[2]: i for i, spec in enumerate(fleet.specs) for p in spec.people}
        fleet._owners = owners  # type: ignore[attr-defined]
    return owners[user_id]


async def scenario_memory(fleet: Fleet, server: Server, o: Options) -> dict[str, Any]:
    logins = await fleet.call_all("login", concurrency=max(8, 64 // len(fleet)))
    await server.wait_idle()
    idle = server.rss_kb()
    t = time.monotonic()
    res = await fleet.call_all("connect", rate=o.connect_rate / len(fleet))
    connect_s = time.monotonic() - t
    await server.wait_idle()
    await asyncio.sleep(2)
    connected = sum(r["connected"] for r in res)
    loaded = server.rss_kb()
    return {
        "logins_ok": sum(r["ok"] for r in logins),
        "login_s": max(r["s"] for r in logins),
        "idle_rss_kb": idle,
        "connected": connected,
        "connected_rss_kb": loaded,
        "connect_s": round(connect_s, 2),
        "kb_per_connection": round((loaded - idle) / connected, 2) if connected else None,
    }


async def scenario_fanout(fleet: Fleet, org: Org, o: Options) -> dict[str, Any]:
    assert org.director is not None
    director = org.people[org.director].id
    bureau_key = next(iter(org.bureaus))
    bureau = org.dept_ids[bureau_key]
    sections = set(org.bureaus[bureau_key]) | {bureau_key}
    members = [p.id for p in org.people if p.section in sections]
    w = _owner(fleet, director)
    sent = await fleet.call(w, "fanout", sender=director, dept=bureau, recipients=members)
    if not sent["ok"]:
        return {"ok": False, "error": sent["code"]}
    want = sent["recipients"]
    arrivals: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        arrivals = [t for part in await fleet.call_all("arrivals", key=sent["key"]) for t in part]
        if len(arrivals) >= want:
            break
        await asyncio.sleep(0.25)
    from_send, from_ack = LogHistogram(), LogHistogram()
    for t in arrivals:
        from_send.add(t - sent["t_send"])
        from_ack.add(max(0.0, t - sent["t_ack"]))
    return {
        "ok": True,
        "recipients": want,
        "arrived": len(arrivals),
        "ack_ms": round((sent["t_ack"] - sent["t_send"]) * 1000, 2),
        "from_send_ms": from_send.summary(),
        "from_ack_ms": from_ack.summary(),
        "arrivals_after_ack": sum(1 for t in arrivals if t >= sent["t_ack"]),
    }


async def scenario_storm(fleet: Fleet, server: Server, org: Org, o: Options) -> dict[str, Any]:
    t = time.monotonic()
    await fleet.call_all("disconnect")
    disconnect_s = await server.wait_idle() + (time.monotonic() - t)
    # Every person gets `storm_pages` pages while away: bureau-wide pages from the director.
    assert org.director is not None
    director = org.people[org.director].id
    jobs = [(director, org.dept_ids[b]) for b in org.bureaus]
    t = time.monotonic()
    paged = [
        await fleet.call(
            _owner(fleet, director), "page_departments", jobs=jobs, count=o.storm_pages
        )
    ]
    paging_s = time.monotonic() - t
    settle_s = await server.wait_idle()
    start_at = time.monotonic() + 1.0
    cpu0 = server.cpu_seconds()
    res = await fleet.call_all(
        "connect", rate=0.0, start_at=start_at, resume=True, wait_s=o.storm_wait_s
    )
    back = sum(r["connected"] for r in res)
    all_back_s = max(r["last_ready"] for r in res) - start_at
    cpu1 = server.cpu_seconds()
    storm_s = max(0.001, time.monotonic() - start_at)
    await _drained(fleet, 20.0)  # the replayed pages are all accounted for
    back_ids = {u for part in await fleet.call_all("ready_ids") for u in part}
    return {
        "pages_sent": sum(p["ok"] for p in paged),
        "pages_wanted": sum(p["wanted"] for p in paged),
        "paging_s": round(paging_s, 2),
        "disconnect_s": round(disconnect_s, 2),
        "settle_s": settle_s,
        "users": sum(len(s.people) for s in fleet.specs),
        "back": back,
        "all_back_s": round(all_back_s, 3),
        "retried": sum(r["retried"] for r in res),
        # share of one core while they came back: the server process, its PostgreSQL
        "server_cpu": round((cpu1[0] - cpu0[0]) / storm_s, 2),
        "postgres_cpu": round((cpu1[1] - cpu0[1]) / storm_s, 2),
        "redis_cpu": round((cpu1[2] - cpu0[2]) / storm_s, 2),
        "wait_s": o.storm_wait_s,
        "back_ids": back_ids,
    }


async def scenario_pager(
    fleet: Fleet, server: Server, o: Options, phase: list[str]
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []

    async def step(rate: float, again: bool = False) -> dict[str, Any]:
        phase[0] = f"{rate:.0f}/s"
        cpu0 = server.cpu_seconds()
        start = time.monotonic()
        await fleet.call_all("mix", duration=o.step_s, rate=rate / len(fleet))
        end = time.monotonic()
        cpu1 = server.cpu_seconds()
        await asyncio.sleep(1.6)  # the last buckets reach us, stragglers land
        s = fleet.series
        win = s.window(s.index(start + o.warmup_s) + 1, s.index(end))
        secs = max(1, s.index(end) - s.index(start + o.warmup_s) - 1)
        push = win.hists.get("push.pager.message", LogHistogram())
        cmd = win.hists.get("cmd.pager.send", LogHistogram())
        lag = win.hists.get("gen.loop_lag", LogHistogram())
        achieved = win.counts.get("ok.pager.send", 0) / secs
        errors = win.counts.get("errors", 0)
        p99 = push.percentile(0.99)
        passed = p99 is not None and p99 <= P99_LIMIT_S and achieved >= 0.95 * rate and errors == 0
        row = {
            "rate": rate,
            "achieved": round(achieved, 1),
            "p50_ms": _ms(push.percentile(0.5)),
            "p99_ms": _ms(p99),
            "max_ms": _ms(push.max if push.count else None),
            "send_ack_p99_ms": _ms(cmd.percentile(0.99)),
            "errors": errors,
            "generator_lag_p99_ms": _ms(lag.percentile(0.99)),
            # share of one core used during the step: the server process, its PostgreSQL
            "server_cpu": round((cpu1[0] - cpu0[0]) / (end - start), 2),
            "postgres_cpu": round((cpu1[1] - cpu0[1]) / (end - start), 2),
            "redis_cpu": round((cpu1[2] - cpu0[2]) / (end - start), 2),
            "passed": passed,
        }
        if not o.quiet:
            _log(f"  step {rate:.0f}/s: {row}")
        steps.append(row)
        # The next step starts from a server that has worked off this one's backlog.
        await _drained(fleet, 30.0)
        await server.wait_idle(limit=30.0)
        stalled = (lag.percentile(0.99) or 0.0) > GENERATOR_STALL_S
        if not passed and stalled and not again:
            row["repeated"] = True
            _log(f"  step {rate:.0f}/s failed with the generator stalled: once more")
            return await step(rate, again=True)
        return row

    best: float | None = None
    failed: float | None = None
    for rate in o.rates:
        if (await step(rate))["passed"]:
            best = rate
        else:
            failed = rate
            break
    lo, hi = best, failed
    for _ in range(o.refine if lo is not None and hi is not None else 0):
        assert lo is not None and hi is not None
        mid = round((lo + hi) / 2)
        if mid in (lo, hi):
            break
        if (await step(mid))["passed"]:
            lo = best = mid
        else:
            hi = mid
    return {"best_rate": best, "first_failed": hi, "steps": steps}


async def _drained(fleet: Fleet, limit: float) -> None:
    """Until every expected delivery has arrived, or `limit` seconds."""
    until = time.monotonic() + limit
    while time.monotonic() < until:
        prog = await fleet.call_all("progress")
        if sum(p["received_pairs"] for p in prog) >= sum(p["expected_pairs"] for p in prog):
            return
        await asyncio.sleep(0.25)


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


@contextlib.asynccontextmanager
async def _session(  # type: ignore[no-untyped-def]
    kind: str, o: Options, users: int, phase: list[str], env: dict[str, str], **org_kw: Any
):
    """A fresh server with a fresh organisation of `users` and a fleet simulating them."""
    server = Server(kind, o.server_core, env, cpus=server_cpus(kind, o))
    server.start()
    fleet: Fleet | None = None
    try:
        await server.wait_ready()
        org = build_org(users, "bench", **org_kw)
        import_s = await import_org(server.url, ADMIN, org, cheap_hash(PASSWORD))
        _log(f"[{kind}] imported {users} people in {import_s:.1f}s; server pid {server.pid}")
        t0 = time.monotonic()
        specs = make_specs(
            org,
            base_url=server.url,
            password=PASSWORD,
            procs=o.procs,
            t0=t0,
            deadline=t0 + 900,
            mix=Mix(board=False, read_share=0.0),  # the benchmarks drive only what the floor has
            seed=7,
            deflate=False,
        )
        fleet = Fleet(specs, in_process=o.procs == 0, t0=t0)
        await fleet.start()
        async with live_status(fleet.series, users, phase, not o.quiet):
            yield server, org, fleet, import_s
    finally:
        # The server goes first: ten thousand goodbyes would only keep it busy for a minute.
        await asyncio.to_thread(server.stop, o.out / f"{kind}-{users}-server.log")
        if fleet is not None:
            await fleet.close()


def _checks(fleet: Fleet, reports: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    total = fleet.series.window()
    return {
        "stream": sum_totals(r["stream"] for r in reports),
        "delivery": reconcile((r["deliveries"] for r in reports), prefix=prefix),
        "errors_by_code": {k[4:]: n for k, n in total.counts.items() if k.startswith("err.")},
        "disconnects": total.counts.get("conn.disconnects", 0),
    }


SERIES = [
    "push.pager.message",
    "cmd.pager.send",
    "conn.connect",
    "conn.resume",
    "gen.loop_lag",
]


async def bench_target(kind: str, o: Options) -> dict[str, Any]:
    out: dict[str, Any] = {"target": kind}
    phase = ["start"]
    # 1. the pager path, on a server of its own with the 2,000
    if o.only == "big":
        return out | await _big(kind, o, phase)
    # Every page sets an SMS grace timer; at its default (a minute) an 8 s step would carry the
    # timers of whichever step ran a minute before. Short, each step carries its own, as a
    # server paging steadily does.
    grace = {"LIAISON_SMS_OFFLINE_GRACE_S": "2"}
    async with _session(kind, o, o.pager_users, phase, grace) as (server, _org, fleet, _):
        phase[0] = "connect"
        await fleet.call_all("login", concurrency=max(4, 32 // len(fleet)))
        res = await fleet.call_all("connect", rate=o.connect_rate / len(fleet))
        _log(f"[{kind}] {sum(r['connected'] for r in res)} connected")
        await server.wait_idle()
        profiler = _start_profiler(server, o) if o.profile and kind == "liaison" else None
        out["pager"] = await scenario_pager(fleet, server, o, phase)
        if profiler is not None:
            out["profile"] = _stop_profiler(profiler, o)
        _log(f"[{kind}] pager: best {out['pager']['best_rate']}/s")
        reports = await fleet.call_all("report")
        out["pager"].update(_checks(fleet, reports, "p"))
        out["pager_series"] = fleet.series.to_json(SERIES)
        if kind == "liaison":
            phase[0] = "approvals"
            await server.wait_idle()
            out["approvals"] = await scenario_approvals(server.url, _org, ADMIN, PASSWORD)
            _log(f"[{kind}] approvals: {out['approvals']}")
    if o.only != "pager":
        out |= await _big(kind, o, phase)
    return out


async def _big(kind: str, o: Options, phase: list[str]) -> dict[str, Any]:
    """2.–4.: memory, fan-out and the storm with the 10,000, on a fresh server."""
    out: dict[str, Any] = {}
    async with _session(
        kind,
        o,
        o.users,
        phase,
        {},
        director=True,
        bureau_sizes=[o.fanout, o.users - o.fanout - 1],
    ) as (server, org, fleet, import_s):
        out["import_s"] = round(import_s, 2)
        phase[0] = "memory"
        out["memory"] = await scenario_memory(fleet, server, o)
        _log(f"[{kind}] memory: {out['memory']}")
        phase[0] = "fan-out"
        out["fanout"] = await scenario_fanout(fleet, org, o)
        _log(f"[{kind}] fan-out: {out['fanout']}")
        phase[0] = "storm"
        out["storm"] = await scenario_storm(fleet, server, org, o)
        _log(f"[{kind}] storm: { {k: v for k, v in out['storm'].items() if k != 'back_ids'} }")
        reports = await fleet.call_all("report")
        checks = _checks(fleet, reports, "s")
        checks.pop("delivery")
        back_ids = out["storm"].pop("back_ids")
        # what reached those who came back within the wait, and what the others still owe
        out["storm"]["replay"] = reconcile(
            (r["deliveries"] for r in reports), prefix="s", recipients=back_ids
        )
        out["storm"]["replay_all"] = reconcile((r["deliveries"] for r in reports), prefix="s")
        out["storm"].update(checks)
        out["fanout"]["delivery"] = reconcile((r["deliveries"] for r in reports), prefix="fan")
        out["series"] = fleet.series.to_json(SERIES)
    return out


def _start_profiler(server: Server, o: Options) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        _log("py-spy not installed: no profile")
        return None
    path = o.out / "liaison-pager.collapsed"
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(server.pid),
            "--format",
            "raw",
            "--output",
            str(path),
            "--rate",
            "200",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_profiler(proc: subprocess.Popen[bytes], o: Options) -> dict[str, Any]:
    proc.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    return profile_summary(o.out / "liaison-pager.collapsed")


def profile_summary(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    if not path.exists():
        return {}
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def pct(d: dict[str, int]) -> list[tuple[str, float]]:
        return [
            (k, round(100 * v / total, 1))
            for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]
        ]

    return {"samples": total, "self_pct": pct(own), "inclusive_pct": pct(incl), "file": str(path)}


# -- the table ---------------------------------------------------------------------------------
def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def _v(x: Any, unit: str = "") -> str:
    return (
        "–"
        if x is None
        else f"{x:,}{unit}"
        if isinstance(x, int)
        else f"{x:,.2f}{unit}"
        if isinstance(x, float)
        else str(x)
    )


def _g(d: dict[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)  # type: ignore[assignment]
    return d


def _worker_rows(
    kind: str, r: dict[str, Any], f: dict[str, Any], li: dict[str, Any]
) -> list[dict[str, Any]]:
    """The rows of Liaison with N workers: its figure beside the floor's, the ratio to the
    floor and to one worker, against the goal N x 0.8 of one worker's rate."""
    g, n = _g, workers_of(kind)
    goal = n * 0.8
    rows = []
    if "pager" in r or "error" in r:
        fr, lr, wr = (
            g(f, "pager", "best_rate"),
            g(li, "pager", "best_rate"),
            g(r, "pager", "best_rate"),
        )
        rows.append(
            {
                "scenario": f"1. Pager path, 2,000 users, {n} workers",
                "metric": "highest sustained pages/s with p99 e2e ≤ 100 ms",
                "floor": fr,
                "liaison": wr,
                "ratio": f"{_ratio(wr, fr)} floor, {_ratio(wr, lr)} 1 worker",
                "target": f"≥ {goal:.1f}× 1 worker ({n} × 0.8)",
                "met": wr is not None and lr is not None and wr >= goal * lr,
            }
        )
    if "storm" in r or ("error" in r and "pager" not in r):
        fs, ls, ws = (
            g(f, "storm", "all_back_s"),
            g(li, "storm", "all_back_s"),
            g(r, "storm", "all_back_s"),
        )
        w_all = g(r, "storm", "back") == g(r, "storm", "users")
        l_all = g(li, "storm", "back") == g(li, "storm", "users")
        f_all = g(f, "storm", "back") == g(f, "storm", "users")
        # as rates (reconnects per second): one worker's time over N workers'
        speed = _ratio(ls, ws) if w_all and l_all else "–"
        rows.append(
            {
                "scenario": f"3. Reconnect storm, 10,000 users, {n} workers",
                "metric": "all back at sync.ready (s)",
                "floor": _back(f),
                "liaison": _back(r),
                "ratio": f"{_ratio(ws, fs) if w_all and f_all else '–'} floor; rate {speed} 1 worker",
                "target": f"≤ 10 s, rate ≥ {goal:.1f}× 1 worker ({n} × 0.8)",
                "met": ws is not None
                and ws <= 10
                and w_all
                and ls is not None
                and l_all
                and ls >= goal * ws,
            }
        )
        lost = g(r, "storm", "replay", "missing")
        rows.append(
            {
                "scenario": f"3. Reconnect storm, 10,000 users, {n} workers",
                "metric": "missed pages replayed to those back / lost",
                "floor": f"{g(f, 'storm', 'replay', 'delivered')} / {g(f, 'storm', 'replay', 'missing')}",
                "liaison": f"{g(r, 'storm', 'replay', 'delivered')} / {lost}",
                "ratio": "–",
                "target": "none lost",
                "met": lost == 0 and (g(r, "storm", "stream", "gaps") or 0) == 0,
            }
        )
    if g(r, "memory", "kb_per_connection") is not None:
        fm, wm = g(f, "memory", "kb_per_connection"), g(r, "memory", "kb_per_connection")
        rows.append(
            {
                "scenario": f"2. Memory, 10,000 connections, {n} workers",
                "metric": "RSS of all workers per connection (KB)",
                "floor": fm,
                "liaison": wm,
                "ratio": _ratio(wm, fm),
                "target": "≤ 25 KB",
                "met": wm <= 25,
            }
        )
    if g(r, "fanout", "from_send_ms", "p99") is not None:
        ff, wf = g(f, "fanout", "from_send_ms", "p99"), g(r, "fanout", "from_send_ms", "p99")
        rows.append(
            {
                "scenario": f"4. Fan-out to 5,000, {n} workers",
                "metric": "p99 send → circulation.received (ms)",
                "floor": ff,
                "liaison": wf,
                "ratio": _ratio(wf, ff),
                "target": "≤ 1,000 ms",
                "met": wf <= 1000 and g(r, "fanout", "arrived") == g(r, "fanout", "recipients"),
            }
        )
    return rows


def _back(d: dict[str, Any]) -> str | None:
    """The storm's time, or how many were back when the wait ran out."""
    t, n, of = _g(d, "storm", "all_back_s"), _g(d, "storm", "back"), _g(d, "storm", "users")
    if t is None:
        return None
    wait = _g(d, "storm", "wait_s") or 60.0
    return f"{t:.1f}" if n == of else f"{n:,}/{of:,} back by {wait:.0f} s"


def table(results: dict[str, dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    f = results.get("floor", {})
    li = results.get("liaison", {})
    g = _g

    rows = []
    fr, lr = g(f, "pager", "best_rate"), g(li, "pager", "best_rate")
    rows.append(
        {
            "scenario": "1. Pager path, 2,000 users",
            "metric": "highest sustained pages/s with p99 e2e ≤ 100 ms",
            "floor": fr,
            "liaison": lr,
            "ratio": _ratio(lr, fr),
            "target": "≥ 1.0× floor",
            "met": lr is not None and fr is not None and lr >= fr,
        }
    )
    fm, lm = g(f, "memory", "kb_per_connection"), g(li, "memory", "kb_per_connection")
    rows.append(
        {
            "scenario": "2. Memory, 10,000 connections",
            "metric": "server RSS per connection (KB)",
            "floor": fm,
            "liaison": lm,
            "ratio": _ratio(lm, fm),
            "target": "≤ 25 KB",
            "met": lm is not None and lm <= 25,
        }
    )

    back = _back
    fs, ls = g(f, "storm", "all_back_s"), g(li, "storm", "all_back_s")
    l_all = g(li, "storm", "back") == g(li, "storm", "users")
    f_all = g(f, "storm", "back") == g(f, "storm", "users")
    rows.append(
        {
            "scenario": "3. Reconnect storm, 10,000 users",
            "metric": "all back at sync.ready (s)",
            "floor": back(f),
            "liaison": back(li),
            "ratio": _ratio(ls, fs) if l_all and f_all else "–",
            "target": "≤ 10 s",
            "met": ls is not None and ls <= 10 and l_all,
        }
    )
    lost = g(li, "storm", "replay", "missing")
    rows.append(
        {
            "scenario": "3. Reconnect storm, 10,000 users",
            "metric": "missed pages replayed to those back / lost",
            "floor": f"{g(f, 'storm', 'replay', 'delivered')} / {g(f, 'storm', 'replay', 'missing')}",
            "liaison": f"{g(li, 'storm', 'replay', 'delivered')} / {lost}",
            "ratio": "–",
            "target": "none lost",
            "met": lost == 0 and (g(li, "storm", "stream", "gaps") or 0) == 0,
        }
    )
    ff, lf = g(f, "fanout", "from_send_ms", "p99"), g(li, "fanout", "from_send_ms", "p99")
    rows.append(
        {
            "scenario": "4. Fan-out to 5,000",
            "metric": "p99 send → circulation.received (ms)",
            "floor": ff,
            "liaison": lf,
            "ratio": _ratio(lf, ff),
            "target": "≤ 1,000 ms",
            "met": lf is not None
            and lf <= 1000
            and g(li, "fanout", "arrived") == g(li, "fanout", "recipients"),
        }
    )
    fa, la = g(f, "fanout", "from_ack_ms", "p99"), g(li, "fanout", "from_ack_ms", "p99")
    rows.append(
        {
            "scenario": "4. Fan-out to 5,000",
            "metric": "p99 send's ack → circulation.received (ms)",
            "floor": fa,
            "liaison": la,
            "ratio": _ratio(la, fa),
            "target": "≤ 1,000 ms",
            "met": la is not None and la <= 1000,
        }
    )
    la_cps = g(li, "approvals", "commands_per_s")
    rows.append(
        {
            "scenario": "5. Approvals, start + two approvals",
            "metric": "commands/s, 32 requests at once (p99 start / approve ms)",
            "floor": "–",
            "liaison": None
            if la_cps is None
            else f"{la_cps:,.0f} ({g(li, 'approvals', 'latency_ms', 'workflow.start', 'p99')}"
            f" / {g(li, 'approvals', 'latency_ms', 'approve 1', 'p99')})",
            "ratio": "–",
            "target": "no errors",
            "met": la_cps is not None and not g(li, "approvals", "errors"),
        }
    )
    for kind, r in results.items():
        if workers_of(kind) > 1:
            rows.extend(_worker_rows(kind, r, f, li))
    rows.sort(key=lambda r: r["scenario"][0])  # N workers' rows after one worker's (stable)
    lines = [
        "| scenario | metric | floor | Liaison | Liaison / floor | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['metric']} | {_v(r['floor'])} | {_v(r['liaison'])} | {r['ratio']} | {r['target']} | {'yes' if r['met'] else '**no**'} |"
        )
    return "\n".join(lines), rows


def markdown(results: dict[str, dict[str, Any]], o: Options, started: str, took: float) -> str:
    tbl, _ = table(results)
    gen = _cpu_list(list(o.generator_cores))
    pins = []
    for kind in o.targets:
        cpus = server_cpus(kind, o)
        where = (
            f"core{'s' if len(cpus) > 1 else ''} {_cpu_list(cpus)}"
            if cpus
            else "no core (all shared)"
        )
        what = f"{workers_of(kind)} workers + Redis" if workers_of(kind) > 1 else "server"
        pins.append(f"{kind} ({what}) on {where}")
    parts = [
        "# Liaison benchmark against the framework floor",
        "",
        f"Run {started}, {took:.0f} s, on {os.cpu_count()} cores: each server with its "
        f"PostgreSQL pinned: {'; '.join(pins)}; the load generator ({o.procs} processes) on "
        f"core{'s' if len(o.generator_cores) > 1 else ''} {gen}. The floor is "
        "`loadtests/floor.py`: bare python-socketio + aiohttp with the same protocol and no "
        "persistence, auth or receipts. `liaison-wN` is `liaison serve --workers N` on a Redis "
        "of its own; its server CPU and RSS are the sum over the supervisor and its workers.",
        "",
        tbl,
        "",
    ]
    for kind, r in results.items():
        parts.append(f"## {kind}")
        parts.append("")
        if "error" in r:
            parts.append(f"failed: `{r['error']}`")
            parts.append("")
            continue
        pager = r.get("pager", {})
        parts.append("Pager steps (2,000 users; p99 of arrival − send per recipient):")
        parts.append("")
        parts.append(
            "| pages/s asked | achieved | p50 ms | p99 ms | max ms | send ack p99 ms | errors | generator lag p99 ms | server CPU | PostgreSQL CPU | Redis CPU | passed |"
        )
        parts.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for s in pager.get("steps", []):
            redis = _v(s.get("redis_cpu")) if workers_of(kind) > 1 else "–"
            parts.append(
                f"| {s['rate']:.0f} | {s['achieved']} | {_v(s['p50_ms'])} | {_v(s['p99_ms'])} | {_v(s['max_ms'])} | {_v(s['send_ack_p99_ms'])} | {s['errors']} | {_v(s['generator_lag_p99_ms'])} | {_v(s.get('server_cpu'))} | {_v(s.get('postgres_cpu'))} | {redis} | {'yes' if s['passed'] else 'no, generator stalled: repeated' if s.get('repeated') else 'no'} |"
            )
        parts.append("")
        parts.append(
            f"- pager checks: stream `{_j(pager.get('stream'))}`, deliveries `{_j(pager.get('delivery'))}`, "
            f"command errors `{_j(pager.get('errors_by_code'))}`, unexpected disconnects {pager.get('disconnects')}"
        )
        for name in ("memory", "fanout", "storm"):
            parts.append(f"- {name}: `{_j(r.get(name, {}))}`")
        if r.get("profile"):
            prof = r["profile"]
            parts.append("")
            parts.append(
                f"Where Liaison's time goes during the pager steps (py-spy, {prof['samples']} samples, share of samples):"
            )
            parts.append("")
            parts.append("| function (inclusive) | % |")
            parts.append("|---|---:|")
            for fn, p in prof["inclusive_pct"][:20]:
                parts.append(f"| `{fn}` | {p} |")
        parts.append("")
    return "\n".join(parts)


def _j(v: Any) -> str:
    return msgspec.json.encode(v).decode()


def html_report(results: dict[str, dict[str, Any]], md: str) -> str:
    import html as h

    body = [f"<h1>Liaison benchmark</h1><pre>{h.escape(md)}</pre>"]
    for kind, r in results.items():
        if "pager_series" in r:
            body.append(f"<h2>{h.escape(kind)}: pager steps over time</h2>")
            body.append(series_charts(r["pager_series"]))
        if "series" in r:
            body.append(f"<h2>{h.escape(kind)}: memory, fan-out and storm over time</h2>")
            body.append(series_charts(r["series"]))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Liaison benchmark</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )


async def run(o: Options) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for kind in o.targets:
        _log(f"=== {kind} ===")
        try:
            results[kind] = await bench_target(kind, o)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            results[kind] = {"target": kind, "error": repr(exc)}
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--pager-users", type=int, default=2_000)
    p.add_argument("--fanout", type=int, default=5_000)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--step-s", type=float, default=8.0)
    p.add_argument("--rates", default="50,100,200,400,800,1600,3200,6400")
    p.add_argument(
        "--targets",
        default="floor,liaison,liaison-wN",
        help="any of floor, liaison, liaison-wN (N workers on Redis; liaison-wN takes --workers)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="N of liaison-wN: processes of `liaison serve --workers N` (default 2); on a "
        "machine with more than two cores they are pinned to N cores, the generator to the rest",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the Liaison server during the pager steps (needs py-spy)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--only",
        choices=["pager", "big"],
        help="just the pager steps, or just memory, fan-out and storm",
    )
    a = p.parse_args(argv)
    o = Options(
        users=a.users,
        pager_users=a.pager_users,
        fanout=a.fanout,
        procs=a.procs,
        step_s=a.step_s,
        rates=tuple(int(r) for r in a.rates.split(",")),
        targets=tuple(t.replace("-wN", f"-w{a.workers}") for t in a.targets.split(",")),
        workers=a.workers,
        out=a.out,
        only=a.only,
        profile=a.profile,
        quiet=a.quiet,
    )
    o.out.mkdir(parents=True, exist_ok=True)
    raise_fd_limit()
    for kind in o.targets:
        if kind not in ("floor", "liaison") and workers_of(kind) == 1:
            p.error(f"unknown target {kind!r}: floor, liaison or liaison-wN")
    cores = os.cpu_count() or 1
    if cores > 2:
        # The generator on every core no server is pinned to (core 1 when servers use core 0).
        used = {c for kind in o.targets for c in server_cpus(kind, o)}
        o.generator_cores = tuple(c for c in range(cores) if c not in used) or (cores - 1,)
    elif cores > 1:
        o.generator_cores = (o.generator_core % cores,)
    else:
        o.server_core = o.generator_core = 0
        o.generator_cores = (0,)
    if cores > 1:
        os.sched_setaffinity(0, set(o.generator_cores))  # workers inherit it
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t = time.monotonic()
    results = asyncio.run(run(o))
    took = time.monotonic() - t
    md = markdown(results, o, started, took)
    _, rows = table(results)
    (o.out / "bench.md").write_text(md + "\n", encoding="utf-8")
    (o.out / "bench.json").write_bytes(
        msgspec.json.format(
            msgspec.json.encode(
                {"started": started, "seconds": took, "table": rows, "results": results}
            ),
            indent=1,
        )
    )
    (o.out / "bench.html").write_text(html_report(results, md), encoding="utf-8")
    print(md)
    print(f"\nwrote {o.out / 'bench.md'}, bench.json and bench.html")


if __name__ == "__main__":
    main()
