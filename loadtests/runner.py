"""The parent side: where the generator may point, importing the organisation, the fleet of
workers (processes, or one in-process worker), the live status line and the result."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import multiprocessing
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from loadtests.accounting import reconcile, sum_totals
from loadtests.metrics import Series
from loadtests.org import Org
from loadtests.worker import Mix, Worker, WorkerSpec, process_main

MAX_USERS = 50_000
MAX_PROCS = 64


class TargetRefused(ValueError):
    pass


def check_target(url: str, *, explicit: bool, allow_remote: bool) -> str:
    """The generator aims at loopback only unless told otherwise twice: an explicit --target
    and --i-know-this-is-not-loopback. Returns the normalised base URL."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"not an http(s) URL: {url}")
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
        addresses = {ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos}
    except (socket.gaierror, ValueError) as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}") from None
    if not addresses or not all(a.is_loopback for a in addresses):
        if not (explicit and allow_remote):
            shown = ", ".join(sorted(str(a) for a in addresses))
            raise TargetRefused(
                f"{host} ({shown}) is not a loopback address; this machine's policy is loopback "
                "only. Give it with --target and add --i-know-this-is-not-loopback if you must."
            )
    return f"{parts.scheme}://{parts.netloc}"


# -- HTTP from the parent ------------------------------------------------------------------------
async def post_json(
    session: aiohttp.ClientSession, url: str, body: Any, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(url, data=msgspec.json.encode(body), headers=headers) as resp:
        raw = await resp.read()
        try:
            return resp.status, msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return resp.status, {"ok": False, "error": {"code": "bad_answer", "message": raw[:200]}}


async def import_org(base_url: str, admin: str, org: Org, password_hash: str) -> float:
    """Sign in as the administrator and import the organisation; returns the seconds it took."""
    account, _, password = admin.partition(":")
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        status, env = await post_json(
            session, base_url + "/api/v1/auth/login", {"account": account, "password": password}
        )
        if not env.get("ok"):
            raise RuntimeError(f"admin login as {account!r} failed ({status}): {env.get('error')}")
        token = env["data"]["access_token"]
        t = time.monotonic()
        status, env = await post_json(
            session, base_url + "/api/v1/admin/import", org.import_body(password_hash), token
        )
        if not env.get("ok"):
            raise RuntimeError(f"import failed ({status}): {env.get('error')}")
        org.apply_ids(env["data"])
        return time.monotonic() - t


# -- the fleet -----------------------------------------------------------------------------------
@dataclass
class _Proc:
    process: Any
    conn: Any
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    alive: bool = True


class Fleet:
    """The workers. `procs == 0` runs one worker inside this loop (tests, small runs)."""

    def __init__(self, specs: list[WorkerSpec], *, in_process: bool, t0: float) -> None:
        self.specs = specs
        self.in_process = in_process
        self.series = Series(t0)
        self.notices: list[str] = []
        self.on_notice: Callable[[str], None] = lambda s: print(f"notice: {s}", file=sys.stderr)
        self._local: list[Worker] = []
        self._procs: list[_Proc] = []
        self._ids = 0

    def _notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)
            self.on_notice(text)

    async def start(self) -> None:
        if self.in_process:
            for i, spec in enumerate(self.specs):
                w = Worker(
                    spec,
                    tick=lambda f, i=i: self.series.add(i, f),  # type: ignore[misc]
                    notice=self._notice,
                )
                await w.start()
                self._local.append(w)
            return
        ctx = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for i, spec in enumerate(self.specs):
            parent, child = ctx.Pipe(duplex=True)
            p = ctx.Process(target=process_main, args=(child, spec), daemon=True)
            p.start()
            child.close()
            proc = _Proc(p, parent)
            self._procs.append(proc)
            threading.Thread(
                target=self._receive, args=(loop, i, proc), name=f"worker-{i}-pipe", daemon=True
            ).start()

    def _receive(self, loop: asyncio.AbstractEventLoop, i: int, proc: _Proc) -> None:
        """Blocking reads in a thread (an event loop's reader would make the pipe non-blocking
        and cut large messages), handed to the loop one message at a time."""
        while True:
            try:
                msg = proc.conn.recv()
            except (EOFError, OSError):
                msg = ("closed", 0, None)
            try:
                loop.call_soon_threadsafe(self._handle, i, proc, msg)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                return
            if msg[0] == "closed":
                return

    def _handle(self, i: int, proc: _Proc, msg: Any) -> None:
        kind = msg[0]
        if kind == "tick":
            self.series.add(i, msg[1])
        elif kind == "notice":
            self._notice(msg[1])
        elif kind == "reply":
            _, req, ok, value = msg
            fut = proc.pending.pop(req, None)
            if fut is not None and not fut.done():
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(RuntimeError(f"worker {i} failed:\n{value}"))
        elif kind == "closed":
            self._dead(i, proc)

    def _dead(self, i: int, proc: _Proc) -> None:
        if not proc.alive:
            return
        proc.alive = False
        proc.process.join(0.5)
        if proc.process.exitcode not in (0, None):
            self._notice(f"worker {i} exited with code {proc.process.exitcode}")
        for fut in proc.pending.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"worker {i} exited"))
        proc.pending.clear()

    async def call(self, i: int, cmd: str, **kwargs: Any) -> Any:
        if self.in_process:
            return await self._local[i].handle(cmd, kwargs)
        proc = self._procs[i]
        if not proc.alive:
            raise RuntimeError(f"worker {i} is gone")
        self._ids += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proc.pending[self._ids] = fut
        proc.conn.send((cmd, self._ids, kwargs))
        return await fut

    async def call_all(self, cmd: str, **kwargs: Any) -> list[Any]:
        return await asyncio.gather(*(self.call(i, cmd, **kwargs) for i in range(len(self.specs))))

    async def close(self, grace: float = 15.0) -> None:
        if self.in_process:
            for w in self._local:
                await w.close()
            return
        for proc in self._procs:
            if proc.alive:
                with contextlib.suppress(OSError, BrokenPipeError):
                    proc.conn.send(("close", 0, {}))
        deadline = time.monotonic() + grace
        for proc in self._procs:
            await _wait_exit(proc.process, deadline)
            if proc.process.is_alive():
                proc.process.terminate()
            proc.process.join(1)
        for proc in self._procs:
            proc.conn.close()

    def __len__(self) -> int:
        return len(self.specs)


async def _wait_exit(process: Any, deadline: float) -> None:
    while process.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110 - a process, not a task
        await asyncio.sleep(0.05)


def make_specs(
    org: Org,
    *,
    base_url: str,
    password: str,
    procs: int,
    t0: float,
    deadline: float,
    mix: Mix,
    seed: int,
    deflate: bool,
    people: list[int] | None = None,
) -> list[WorkerSpec]:
    """Deal the simulated people round-robin over the workers (every worker gets a slice of
    every department)."""
    chosen = people if people is not None else [p.index for p in org.people]
    sections: dict[int, list[int]] = {}
    for key, members in org.sections.items():
        sections[org.dept_ids[key]] = [org.people[i].id for i in members]
    all_ids = [org.people[i].id for i in chosen]
    n = max(1, procs)
    specs = []
    for w in range(n):
        mine = [
            (
                org.people[i].index,
                org.people[i].account,
                org.people[i].id,
                org.dept_ids[org.people[i].section],
            )
            for i in chosen[w::n]
        ]
        specs.append(
            WorkerSpec(
                index=w,
                base_url=base_url,
                password=password,
                t0=t0,
                deadline=deadline,
                seed=seed,
                deflate=deflate,
                mix=mix,
                people=mine,
                sections=sections,
                all_ids=all_ids,
            )
        )
    return specs


# -- live status ---------------------------------------------------------------------------------
def status_line(series: Series, total_users: int, phase: str) -> str:
    """One line about the last complete second."""
    now = time.monotonic()
    i = series.index(now) - 1
    w = series.window(i, i + 1)
    c = w.counts
    sent = sum(n for k, n in c.items() if k.startswith("sent.") and k != "sent.sync.ack")
    push = w.hists.get("push.pager.message")
    cmd = w.hists.get("cmd.pager.send")
    lag = w.hists.get("gen.loop_lag")

    def ms(h: Any) -> str:
        v = h.percentile(0.99) if h is not None else None
        return "-" if v is None else f"{v * 1000:.0f}ms"

    errors = sum(n for k, n in c.items() if k == "errors" or k.startswith("conn.failed"))
    return (
        f"[{now - series.t0:6.0f}s {phase:>10}] conn {series.gauge_now('connected'):>6.0f}/{total_users}"
        f"  sent/s {sent:>5}  recv/s {c.get('recv.durable', 0):>6}"
        f"  p99 page e2e {ms(push):>7}  send ack {ms(cmd):>7}"
        f"  err {errors}  stream err {series.gauge_now('stream.errors'):.0f}"
        f"  disc {c.get('conn.disconnects', 0)}  gen lag {ms(lag)}"
    )


@contextlib.asynccontextmanager
async def live_status(series: Series, total_users: int, phase: list[str], enabled: bool):  # type: ignore[no-untyped-def]
    async def loop() -> None:
        while True:
            # Half a second into each second: the workers have shipped the one before by then.
            now = time.monotonic()
            await asyncio.sleep(1.5 - ((now - series.t0) % 1.0))
            print(status_line(series, total_users, phase[0]), file=sys.stderr, flush=True)

    task = asyncio.create_task(loop()) if enabled else None
    try:
        yield
    finally:
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# -- the result ----------------------------------------------------------------------------------
LATENCY_NAMES = (
    "push.pager.message",
    "push.note.received",
    "cmd.pager.send",
    "cmd.whereabouts.set",
    "cmd.whereabouts.board",
    "cmd.notes.leave",
    "cmd.pager.read",
    "cmd.auth.renew",
    "conn.connect",
    "conn.resume",
    "http.login",
    "http.refresh",
    "gen.loop_lag",
)


def summarise(series: Series, reports: list[dict[str, Any]]) -> dict[str, Any]:
    total = series.window()
    errors_by_code = {k[4:]: n for k, n in sorted(total.counts.items()) if k.startswith("err.")}
    skipped = {k[8:]: n for k, n in sorted(total.counts.items()) if k.startswith("skipped.")}
    stream = sum_totals(r["stream"] for r in reports)
    deliveries = reconcile(r["deliveries"] for r in reports)
    seconds = max(1, len(series.span()))
    return {
        "latency_ms": {k: h.summary() for k, h in sorted(total.hists.items())},
        "counts": dict(sorted(total.counts.items())),
        "throughput_per_s": {
            k: round(n / seconds, 2)
            for k, n in sorted(total.counts.items())
            if k.startswith(("ok.", "recv."))
        },
        "errors_by_code": errors_by_code,
        "command_errors": sum(errors_by_code.values()),
        "skipped": skipped,
        "stream": stream,
        "stream_errors": stream.get("gaps", 0)
        + stream.get("duplicates", 0)
        + stream.get("reorders", 0),
        "deliveries": deliveries,
        "disconnects": total.counts.get("conn.disconnects", 0),
        "unsupported": sorted({c for r in reports for c in r.get("unsupported", [])}),
    }
