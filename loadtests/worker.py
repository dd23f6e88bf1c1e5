"""One worker: a share of the simulated users in one asyncio loop, with one aiohttp session.

The parent drives it through a few calls (login, connect, mix, disconnect, …) and receives its
measurements every second. A worker runs in its own process (`process_main`) or, for tests and
small runs, inside the caller's loop (`Worker` directly)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import msgspec

from loadtests.accounting import Deliveries, StreamChecker, mark, parse_mark, sum_totals
from loadtests.client import Answer, Closed, Envelope, LeanSocket, Refused, closed_answer
from loadtests.metrics import Recorder

_encode = msgspec.json.encode

ACK_EVERY_S = 0.2  # like the web client: at most ~5 sync.ack per second per user
GAP_WAIT_S = 1.0  # a hole in the stream this old makes the client resume, like the web client
RECONNECT_BASE_S = 0.5
RECONNECT_MAX_S = 15.0
RENEW_AT = 0.75  # renew the access token at this fraction of its life


class Mix(msgspec.Struct, kw_only=True):
    """What each simulated person does, per person. The defaults model an office day of 8 hours
    compressed 60× into 8 minutes: per person and day about 10 pages, 6 whereabouts changes,
    3 notes, 1 circulation, half a meeting, 2 network drops and 4 idle spells; and half a leave
    request (its approver approves it after a think time), half a task handed out (its assignees
    report progress and complete it) and 4 looks at the to-do inbox."""

    pages_per_min: float = 1.25
    urgent_share: float = 0.1
    recipients_min: int = 1
    recipients_max: int = 3
    other_dept_share: float = 0.2
    dept_page_share: float = 0.02
    read_share: float = 0.8
    reply_share: float = 0.1
    think_min_s: float = 2.0
    think_max_s: float = 20.0
    whereabouts_per_hour: float = 45.0
    notes_per_hour: float = 22.5
    circulations_per_hour: float = 7.5
    meetings_per_hour: float = 3.75
    drops_per_hour: float = 15.0
    idle_per_hour: float = 30.0
    # the second half's office work: a leave request, a task handed out, a look at the inbox
    approvals_per_hour: float = 3.75
    tasks_per_hour: float = 3.75
    todo_reads_per_hour: float = 30.0
    board: bool = True  # each tab watches its own department's board, like the web client


class WorkerSpec(msgspec.Struct, kw_only=True):
    index: int
    base_url: str
    password: str
    t0: float
    deadline: float  # monotonic: the worker stops whatever it does by then
    seed: int = 1
    deflate: bool = False
    mix: Mix = msgspec.field(default_factory=Mix)
    # (index, account, user id, department id) of this worker's people
    people: list[tuple[int, str, int, int]] = []
    sections: dict[int, list[int]] = {}  # department id -> user ids (the whole organisation)
    all_ids: list[int] = []


class _Recipient(msgspec.Struct):
    user_id: str


class _SendData(msgspec.Struct):
    message_id: str
    recipients: list[_Recipient] = []


class _From(msgspec.Struct):
    id: str


class _PagerData(msgspec.Struct):
    message_id: str
    body: str
    from_: _From | None = msgspec.field(default=None, name="from")


class _NoteData(msgspec.Struct):
    body: str


class _SeqData(msgspec.Struct):
    seq: int


class _CirculationData(msgspec.Struct):
    circulation_id: str
    title: str = ""


class _TaskRef(msgspec.Struct):
    task_id: str


class _CirculationCreated(msgspec.Struct):
    recipients_count: int


class _MeetingData(msgspec.Struct):
    meeting_id: str


class _LoginData(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: float = 900.0


_send_dec = msgspec.json.Decoder(_SendData)
_pager_dec = msgspec.json.Decoder(_PagerData)
_note_dec = msgspec.json.Decoder(_NoteData)
_circ_count_dec = msgspec.json.Decoder(_CirculationCreated)
_seq_dec = msgspec.json.Decoder(_SeqData)
_task_dec = msgspec.json.Decoder(_TaskRef)
_circ_dec = msgspec.json.Decoder(_CirculationData)
_meeting_dec = msgspec.json.Decoder(_MeetingData)
_login_dec = msgspec.json.Decoder(_LoginData)
_answer_dec = msgspec.json.Decoder(Answer)

PAGE_TEXTS = [
    "请到三楼会议室",
    "下午三点开会，请准时参加",
    "文件已放在你桌上",
    "请回电",
    "材料今天下班前报送",
    "领导找你，请速来办公室",
    "明天出差的车已安排好",
    "请确认一下周报数据",
]
NOTE_TEXTS = ["来访未遇，请回电", "快递已代收", "明早八点集合", "报销单已签字"]
STATUSES = ["in_meeting", "out", "business_trip", "remote", "in_office", "on_leave"]
MARKED = ("pager.message", "note.received")
# Commands of features a server may not have yet: `not_found` means "skip it from now on".
OPTIONAL_FEATURES = {
    "circulation.create": "circulations",
    "meeting.create": "meetings",
    "workflow.start": "approvals",
    "task.assign": "tasks",
    "todo.list": "a to-do inbox",
}


class SimUser:
    __slots__ = (
        "account",
        "ack_handle",
        "acked",
        "attempts",
        "checker",
        "connecting",
        "dept",
        "dropping",
        "gap_handle",
        "id",
        "index",
        "last_ack_at",
        "refresh",
        "refresh_lock",
        "renew_handle",
        "sent",
        "sock",
        "token",
        "token_exp",
        "waiter",
        "want",
    )

    def __init__(self, index: int, account: str, user_id: int, dept: int) -> None:
        self.index = index
        self.account = account
        self.id = user_id
        self.dept = dept
        self.token: str | None = None
        self.refresh: str | None = None
        self.refresh_lock: asyncio.Lock | None = None  # refresh tokens rotate: one at a time
        self.token_exp = 0.0  # monotonic
        self.sock: LeanSocket | None = None
        self.checker = StreamChecker()
        self.waiter: asyncio.Future[bool] | None = None
        self.want = False  # should be connected (reconnect when dropped)
        self.connecting = False
        self.dropping = False
        self.acked = 0
        self.last_ack_at = 0.0
        self.ack_handle: asyncio.TimerHandle | None = None
        self.gap_handle: asyncio.TimerHandle | None = None
        self.renew_handle: asyncio.TimerHandle | None = None
        self.attempts = 0
        self.sent = 0

    @property
    def ready(self) -> bool:
        return self.sock is not None and self.sock.open and self.waiter is None


Tick = Callable[[dict[int, dict[str, Any]]], None]
Notice = Callable[[str], None]


class Worker:
    def __init__(self, spec: WorkerSpec, tick: Tick, notice: Notice) -> None:
        self.spec = spec
        self.mix = spec.mix
        self.rec = Recorder(spec.t0)
        self.tick_out = tick
        self.notice_out = notice
        self.rng = random.Random(spec.seed * 1000 + spec.index)
        self.users = [SimUser(i, a, uid, d) for i, a, uid, d in spec.people]
        self.by_id = {u.id: u for u in self.users}
        self.deliveries = Deliveries()
        self.arrivals: dict[str, list[float]] = {}  # key -> arrival times (fan-out pages)
        self.track_prefix = "fan"
        self.unsupported: set[str] = set()
        self.notices: list[str] = []
        self.mix_until = 0.0  # reads, replies and circulation confirmations happen until then
        self.session: aiohttp.ClientSession | None = None
        self.http_url = spec.base_url.rstrip("/")
        scheme = "wss" if self.http_url.startswith("https") else "ws"
        self.ws_url = (
            scheme
            + self.http_url[self.http_url.index(":") :]
            + "/socket.io/?EIO=4&transport=websocket"
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        self._ticker = asyncio.create_task(self._tick_loop())

    async def close(self) -> None:
        self._stopping = True
        await self.cmd_disconnect()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self.tick_out(self.rec.flush(everything=True))
        if self.session:
            await self.session.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)
            self.notice_out(text)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(0.25)
            now = time.monotonic()
            self.rec.observe("gen.loop_lag", max(0.0, loop.time() - started - 0.25), now)
            if self.rec.index(now) != self.rec.index(now - 0.25):
                self._gauges(now - 0.25)
                self.tick_out(self.rec.flush())

    def _gauges(self, at: float) -> None:
        ready = sum(1 for u in self.users if u.ready)
        errors = sum(u.checker.errors for u in self.users)
        self.rec.gauge("connected", ready, at)
        self.rec.gauge("users", len(self.users), at)
        self.rec.gauge("stream.errors", errors, at)

    async def handle(self, cmd: str, kwargs: dict[str, Any]) -> Any:
        fn = getattr(self, "cmd_" + cmd, None)
        if fn is None:
            raise ValueError(f"unknown worker command {cmd}")
        return await fn(**kwargs)

    # -- HTTP --------------------------------------------------------------------------------
    async def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Answer]:
        assert self.session is not None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.session.post(
                self.http_url + path, data=_encode(body), headers=headers
            ) as resp:
                raw = await resp.read()
                try:
                    return resp.status, _answer_dec.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    return resp.status, Answer(ok=False, error=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return 0, closed_answer(f"{path} ({type(exc).__name__})")

    async def login(self, u: SimUser) -> bool:
        t = time.monotonic()
        _, ans = await self.post(
            "/api/v1/auth/login", {"account": u.account, "password": self.spec.password}
        )
        self.rec.observe("http.login", time.monotonic() - t)
        if not ans.ok:
            self.rec.count(f"err.http.login.{ans.code}")
            return False
        self._take_tokens(u, _login_dec.decode(ans.data))
        self.rec.count("ok.http.login")
        return True

    def _take_tokens(self, u: SimUser, data: _LoginData) -> None:
        now = time.monotonic()
        u.token, u.refresh = data.access_token, data.refresh_token
        u.token_exp = now + data.expires_in
        if u.renew_handle:
            u.renew_handle.cancel()
        delay = data.expires_in * RENEW_AT * self.rng.uniform(0.9, 1.0)
        loop = asyncio.get_running_loop()
        u.renew_handle = loop.call_later(delay, lambda: self._spawn(self.renew(u)))

    async def refresh_tokens(self, u: SimUser) -> bool:
        if u.refresh_lock is None:
            u.refresh_lock = asyncio.Lock()
        spent = u.refresh
        async with u.refresh_lock:
            if u.refresh != spent:  # someone refreshed while we waited: theirs is ours
                return True
            return await self._refresh(u)

    async def _refresh(self, u: SimUser) -> bool:
        if u.refresh is None:
            return await self.login(u)
        t = time.monotonic()
        _, ans = await self.post("/api/v1/auth/refresh", {"refresh_token": u.refresh})
        self.rec.observe("http.refresh", time.monotonic() - t)
        if not ans.ok:
            self.rec.count(f"err.http.refresh.{ans.code}")
            return False
        self.rec.count("ok.http.refresh")
        self._take_tokens(u, _login_dec.decode(ans.data))
        return True

    async def renew(self, u: SimUser) -> None:
        """Refresh over HTTP, then hand the new token to the live socket (`auth.renew`)."""
        if self._stopping or not u.want:
            return
        if await self.refresh_tokens(u) and u.ready:
            await self.command(u, "auth.renew", {"token": u.token})

    # -- commands ----------------------------------------------------------------------------
    async def command(self, u: SimUser, name: str, payload: dict[str, Any]) -> Answer:
        t = time.monotonic()
        self.rec.count("sent." + name, now=t)
        sock = u.sock
        if sock is None:  # between a drop and the reconnect: the generator's timing, not an error
            self.rec.count("cancelled." + name, now=t)
            return closed_answer(name)
        ans = await sock.call(name, payload)
        done = time.monotonic()
        self.rec.observe("cmd." + name, done - t, done)
        if ans.ok:
            self.rec.count("ok." + name, now=done)
            return ans
        code = ans.code
        if code == "disconnected" and (sock.aborted or sock.closing):
            self.rec.count("cancelled." + name, now=done)  # we dropped it ourselves
            return ans
        message = ans.error.message if ans.error else ""
        if code == "not_found" and (
            name in OPTIONAL_FEATURES or message.startswith("unknown command")
        ):
            if name not in self.unsupported:
                self.unsupported.add(name)
                what = OPTIONAL_FEATURES.get(name, name)
                self.notice(f"the server has no {what} yet ({name} → not_found): skipped")
            self.rec.count("skipped." + name, now=done)
            return ans
        self.rec.count(f"err.{name}.{code}", now=done)
        self.rec.count("errors", now=done)
        return ans

    # -- the event stream --------------------------------------------------------------------
    def on_event(self, u: SimUser, env: Envelope, arrived: float) -> None:
        rec = self.rec
        if env.seq is None:
            rec.count("recv." + env.type, now=arrived)
            if env.type == "sync.ready":
                u.checker.on_ready(_seq_dec.decode(env.data).seq)
                self._ready(u)
            elif env.type == "sync.reset":
                u.checker.on_reset(_seq_dec.decode(env.data).seq)
                self._ready(u)
            return
        live = u.waiter is None  # after sync.ready; before it, these are replays
        status = u.checker.on_event(env.seq)
        rec.count("recv.durable", now=arrived)
        rec.count("recv." + env.type, now=arrived)
        if status == "dup":
            rec.count("stream.duplicates", now=arrived)
            return
        if status == "reorder":
            rec.count("stream.reorders", now=arrived)
        elif status == "ahead" and u.gap_handle is None:
            u.gap_handle = asyncio.get_running_loop().call_later(GAP_WAIT_S, self._gap_check, u)
        if env.type in MARKED:
            self._marked(u, env, arrived, live)
        elif env.type == "circulation.received":
            self._circulation(u, env, arrived, live)
        elif env.type in ("workflow.task", "task.assigned") and live and arrived < self.mix_until:
            self._spawn(self._work_on(u, env.type, _task_dec.decode(env.data).task_id))
        self._schedule_ack(u)

    def _marked(self, u: SimUser, env: Envelope, arrived: float, live: bool) -> None:
        pager = env.type == "pager.message"
        data = _pager_dec.decode(env.data) if pager else _note_dec.decode(env.data)
        if not self._arrived(u, env.type, data.body, arrived, live):
            return
        if pager and live and arrived < self.mix_until and isinstance(data, _PagerData):
            if self.rng.random() < self.mix.read_share:
                self._spawn(self._read_later(u, data))

    def _circulation(self, u: SimUser, env: Envelope, arrived: float, live: bool) -> None:
        self._arrived(u, env.type, _circ_dec.decode(env.data).title, arrived, live)
        if live and arrived < self.mix_until:
            self._spawn(self._confirm_circulation(u, env))

    def _arrived(self, u: SimUser, type_: str, text: str, arrived: float, live: bool) -> bool:
        """Account a marked event's arrival; False if unmarked or this user already had it."""
        found = parse_mark(text)
        if found is None:
            return False
        key, sent_at = found
        if not self.deliveries.got(key, u.id):
            return False
        if key.startswith(self.track_prefix):
            self.arrivals.setdefault(key, []).append(arrived)
        if live:
            self.rec.observe("push." + type_, arrived - sent_at, arrived)
        return True

    def _ready(self, u: SimUser) -> None:
        waiter, u.waiter = u.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(True)
        self._schedule_ack(u)

    def _schedule_ack(self, u: SimUser) -> None:
        if u.ack_handle is not None or u.waiter is not None or u.checker.last <= u.acked:
            return
        delay = max(0.0, u.last_ack_at + ACK_EVERY_S - time.monotonic())
        u.ack_handle = asyncio.get_running_loop().call_later(delay, self._send_ack, u)

    def _send_ack(self, u: SimUser) -> None:
        u.ack_handle = None
        seq = u.checker.last
        if not u.ready or seq <= u.acked:
            return
        now = u.last_ack_at = time.monotonic()
        # Like the web client: no acknowledgement asked for, so none to wait for or answer.
        if u.sock is not None and u.sock.signal("sync.ack", {"seq": seq}):
            u.acked = seq
            self.rec.count("sent.sync.ack", now=now)
        else:  # not written (the server is not reading): try again, as the browser's buffer would
            self._schedule_ack(u)

    def _gap_check(self, u: SimUser) -> None:
        u.gap_handle = None
        if u.checker.has_hole and u.sock is not None:
            # Like the web client: resume from the last contiguous seq to have the hole replayed.
            self.rec.count("stream.gap_recoveries")
            self._drop(u)

    def on_close(self, u: SimUser, sock: LeanSocket, reason: str) -> None:
        if u.sock is not sock:
            return
        u.sock = None
        if u.waiter is not None and not u.waiter.done():
            u.waiter.set_exception(Closed(reason))
        u.waiter = None
        for h in (u.ack_handle, u.gap_handle):
            if h is not None:
                h.cancel()
        u.ack_handle = u.gap_handle = None
        if reason == "client closed":
            return
        if u.dropping:
            u.dropping = False
            self.rec.count("conn.drops")
        else:
            self.rec.count("conn.disconnects")
            self.rec.count(f"conn.disconnects.{reason.split(':')[0].replace(' ', '_')}")
        if u.want and not self._stopping and not u.connecting:
            self._spawn(self._reconnect(u))

    def _drop(self, u: SimUser) -> None:
        if u.sock is not None:
            u.dropping = True
            u.sock.abort()

    # -- connecting --------------------------------------------------------------------------
    async def connect_user(self, u: SimUser, *, resume: bool) -> bool:
        if u.connecting or u.sock is not None:
            return u.sock is not None
        u.connecting = True
        try:
            return await self._connect(u, resume)
        finally:
            u.connecting = False

    async def _connect(self, u: SimUser, resume: bool) -> bool:
        now = time.monotonic()
        if u.token is None or u.token_exp - now < 5:
            ok = await (self.refresh_tokens(u) if u.token else self.login(u))
            if not ok:
                return False
        last_seq = u.checker.resume_from()
        sock = LeanSocket(partial(self.on_event, u), partial(self.on_close, u))
        loop = asyncio.get_running_loop()
        u.waiter = loop.create_future()
        u.sock = sock
        t = time.monotonic()
        try:
            await sock.connect(
                self.ws_url,
                {"token": u.token, "last_seq": last_seq},
                deflate=self.spec.deflate,
            )
            if u.waiter is not None:
                await asyncio.wait_for(u.waiter, 30)
        except Refused as exc:
            self.rec.count(f"conn.refused.{exc.code}")
            if exc.code == "token_expired":
                u.token_exp = 0.0
            elif exc.code == "unauthorized":
                u.want = False  # the web client goes back to its login page
            self._unhook(u, sock)
            return False
        except (TimeoutError, Closed, aiohttp.ClientError, OSError) as exc:
            self.rec.count(f"conn.failed.{type(exc).__name__}")
            self._unhook(u, sock)
            if sock.ws is not None:
                await sock.close()
            return False
        done = time.monotonic()
        self.rec.observe("conn.resume" if resume else "conn.connect", done - t, done)
        self.rec.count("conn.connects", now=done)
        u.attempts = 0
        if self.mix.board and u.ready:
            await self.command(u, "whereabouts.board", {"department_id": str(u.dept)})
        return True

    def _unhook(self, u: SimUser, sock: LeanSocket) -> None:
        if u.sock is sock:
            u.sock = None
        if u.waiter is not None and not u.waiter.done():
            u.waiter.cancel()
        u.waiter = None

    async def _reconnect(self, u: SimUser) -> None:
        while u.want and not self._stopping and time.monotonic() < self.spec.deadline:
            u.attempts += 1
            delay = min(RECONNECT_MAX_S, RECONNECT_BASE_S * 2 ** (u.attempts - 1))
            await asyncio.sleep(delay * self.rng.uniform(1.0, 2.0))
            if u.sock is not None or not u.want:
                return
            if await self.connect_user(u, resume=True):
                return

    # -- actions -----------------------------------------------------------------------------
    def _pick_recipients(self, u: SimUser) -> list[int]:
        k = self.rng.randint(self.mix.recipients_min, self.mix.recipients_max)
        colleagues = self.spec.sections.get(u.dept, [])
        out: set[int] = set()
        for _ in range(k * 4):
            if len(out) >= k:
                break
            if (
                colleagues
                and len(colleagues) > 1
                and self.rng.random() >= self.mix.other_dept_share
            ):
                v = colleagues[self.rng.randrange(len(colleagues))]
            else:
                v = self.spec.all_ids[self.rng.randrange(len(self.spec.all_ids))]
            if v != u.id:
                out.add(v)
        return sorted(out)

    async def circulate(
        self, u: SimUser, prefix: str, recipients: list[int], to: dict[str, list[str]]
    ) -> tuple[Answer, float, str]:
        """A circulation to `to` (people and/or departments, who are `recipients`), its title
        marked so each `circulation.received` can be timed and accounted."""
        u.sent += 1
        key = f"{prefix}{self.spec.index}.{u.index}.{u.sent}"
        # Expected before it is sent: the pushes may arrive before the acknowledgement.
        self.deliveries.expect(key, recipients)
        t = time.monotonic()
        ans = await self.command(
            u,
            "circulation.create",
            {
                "title": mark("关于做好节前安全检查的通知", key, t),
                "body": "<p>请各科室阅知，并于周五前确认。</p>",
                "client_msg_id": key,
            }
            | to,
        )
        if ans.code == "disconnected":
            self.deliveries.doubt(key)
        elif not ans.ok:
            self.deliveries.expected.pop(key, None)
        return ans, t, key

    async def send_page(
        self,
        u: SimUser,
        *,
        to: list[int] | None = None,
        departments: list[int] | None = None,
        urgent: bool = False,
        reply_to: str | None = None,
        prefix: str = "p",
        via_http: bool = False,
    ) -> tuple[Answer, float, str]:
        u.sent += 1
        key = f"{prefix}{self.spec.index}.{u.index}.{u.sent}"
        t = time.monotonic()
        payload: dict[str, Any] = {
            "body": mark(PAGE_TEXTS[u.sent % len(PAGE_TEXTS)], key, t),
            "client_msg_id": key,
            "priority": "urgent" if urgent else "normal",
        }
        if to:
            payload["to"] = [str(i) for i in to]
        if departments:
            payload["departments"] = [str(i) for i in departments]
        if reply_to:
            payload["reply_to"] = reply_to
        if via_http:
            self.rec.count("sent.http.pager.send", now=t)
            _, ans = await self.post("/api/v1/commands/pager.send", payload, token=u.token)
            done = time.monotonic()
            self.rec.observe("http.pager.send", done - t, done)
            if ans.ok:
                self.rec.count("ok.http.pager.send", now=done)
            else:
                self.rec.count(f"err.http.pager.send.{ans.code}", now=done)
                self.rec.count("errors", now=done)
        else:
            ans = await self.command(u, "pager.send", payload)
        if ans.ok:
            data = _send_dec.decode(ans.data)
            self.deliveries.expect(key, [int(r.user_id) for r in data.recipients])
        elif ans.code == "disconnected":
            self.deliveries.doubt(key)
        return ans, t, key

    async def _read_later(self, u: SimUser, data: _PagerData) -> None:
        await asyncio.sleep(self.rng.uniform(self.mix.think_min_s, self.mix.think_max_s))
        if not u.ready or time.monotonic() >= self.mix_until or "pager.read" in self.unsupported:
            return
        await self.command(u, "pager.read", {"message_ids": [data.message_id]})
        if data.from_ is not None and self.rng.random() < self.mix.reply_share:
            await self.send_page(u, to=[int(data.from_.id)], reply_to=data.message_id)

    async def _confirm_circulation(self, u: SimUser, env: Envelope) -> None:
        cid = _circ_dec.decode(env.data).circulation_id
        await asyncio.sleep(self.rng.uniform(self.mix.think_min_s, self.mix.think_max_s))
        if not u.ready or time.monotonic() >= self.mix_until:
            return
        ans = await self.command(u, "circulation.open", {"circulation_id": cid})
        if ans.ok:
            await asyncio.sleep(self.rng.uniform(self.mix.think_min_s, self.mix.think_max_s))
            if u.ready:
                await self.command(u, "circulation.confirm", {"circulation_id": cid})

    async def _work_on(self, u: SimUser, kind: str, task_id: str) -> None:
        """An approver approves after a think time; an assignee reports progress, then
        completes."""
        steps: list[tuple[str, dict[str, Any]]] = (
            [("workflow.act", {"task_id": task_id, "action": "approve", "comment": "同意"})]
            if kind == "workflow.task"
            else [
                ("task.progress", {"task_id": task_id, "percent": 50, "note": "进行中"}),
                ("task.complete", {"task_id": task_id, "note": "已完成"}),
            ]
        )
        for name, payload in steps:
            await asyncio.sleep(self.rng.uniform(self.mix.think_min_s, self.mix.think_max_s))
            if not u.ready or time.monotonic() >= self.mix_until:
                return
            await self.command(u, name, payload)

    def _actions(self) -> list[tuple[str, float]]:
        m = self.mix
        per_s = [
            ("page", m.pages_per_min / 60),
            ("whereabouts", m.whereabouts_per_hour / 3600),
            ("note", m.notes_per_hour / 3600),
            ("circulation", m.circulations_per_hour / 3600),
            ("meeting", m.meetings_per_hour / 3600),
            ("drop", m.drops_per_hour / 3600),
            ("idle", m.idle_per_hour / 3600),
            ("approval", m.approvals_per_hour / 3600),
            ("task", m.tasks_per_hour / 3600),
            ("todo", m.todo_reads_per_hour / 3600),
        ]
        return [(k, r) for k, r in per_s if r > 0]

    async def _actor(self, u: SimUser, until: float) -> None:
        actions = self._actions()
        total = sum(r for _, r in actions)
        if total <= 0:
            return
        kinds = [k for k, _ in actions]
        weights = [r for _, r in actions]
        while True:
            wait = self.rng.expovariate(total)
            if time.monotonic() + wait >= until:
                return
            await asyncio.sleep(wait)
            if not u.ready:
                continue
            # Actions run on their own, so one that waits (a meeting, an idle spell) neither
            # delays this person's next one nor holds the mix past its end.
            self._spawn(self._act_guarded(u, self.rng.choices(kinds, weights)[0]))

    async def _act_guarded(self, u: SimUser, kind: str) -> None:
        try:
            await self._act(u, kind)
        except Exception:  # a generator bug must show, not stop the run
            self.rec.count("gen.exceptions")
            self.notice("generator exception: " + traceback.format_exc(limit=3))

    async def _act(self, u: SimUser, kind: str) -> None:
        m, rng = self.mix, self.rng
        if kind == "page":
            if rng.random() < m.dept_page_share:
                await self.send_page(u, departments=[u.dept], urgent=rng.random() < m.urgent_share)
            else:
                to = self._pick_recipients(u)
                if to:
                    await self.send_page(u, to=to, urgent=rng.random() < m.urgent_share)
        elif kind == "whereabouts" and "whereabouts.set" not in self.unsupported:
            status = rng.choice(STATUSES)
            payload: dict[str, Any] = {"status": status, "note": "负载测试"}
            if status != "in_office" and rng.random() < 0.5:
                until = datetime.now(UTC) + timedelta(seconds=rng.uniform(10, 60))
                payload["until"] = until.isoformat().replace("+00:00", "Z")
            await self.command(u, "whereabouts.set", payload)
        elif kind == "note" and "notes.leave" not in self.unsupported:
            to = self._pick_recipients(u)[:1]
            if to:
                u.sent += 1
                key = f"n{self.spec.index}.{u.index}.{u.sent}"
                body = mark(rng.choice(NOTE_TEXTS), key, time.monotonic())
                ans = await self.command(
                    u, "notes.leave", {"to": str(to[0]), "body": body, "client_msg_id": key}
                )
                if ans.ok:
                    self.deliveries.expect(key, to)
        elif kind == "circulation" and "circulation.create" not in self.unsupported:
            to = self._pick_recipients(u)
            await self.circulate(u, "c", to, {"to": [str(i) for i in to]})
        elif kind == "meeting" and "meeting.create" not in self.unsupported:
            await self._meeting(u)
        elif kind == "approval" and "workflow.start" not in self.unsupported:
            start = datetime.now(UTC) + timedelta(days=rng.randint(1, 30))
            u.sent += 1
            form = {
                "type": "事假",
                "start": start.isoformat(),
                "end": (start + timedelta(days=1)).isoformat(),
                "days": 1,
                "reason": "负载测试",
            }
            await self.command(
                u,
                "workflow.start",
                {
                    "key": "leave",
                    "form": form,
                    "client_msg_id": f"w{self.spec.index}.{u.index}.{u.sent}",
                },
            )
        elif kind == "task" and "task.assign" not in self.unsupported:
            to = self._pick_recipients(u)
            if to:
                u.sent += 1
                due = datetime.now(UTC) + timedelta(minutes=10)
                await self.command(
                    u,
                    "task.assign",
                    {
                        "title": "负载测试交办",
                        "assignees": [str(i) for i in to],
                        "due_at": due.isoformat(),
                        "client_msg_id": f"t{self.spec.index}.{u.index}.{u.sent}",
                    },
                )
        elif kind == "todo" and "todo.list" not in self.unsupported:
            await self.command(u, "todo.list", {})
        elif kind == "drop":
            self._drop(u)
        elif kind == "idle" and "presence.idle" not in self.unsupported:
            await self.command(u, "presence.idle", {"idle": True})
            await asyncio.sleep(rng.uniform(m.think_min_s, m.think_max_s))
            if u.ready and time.monotonic() < self.mix_until:
                await self.command(u, "presence.idle", {"idle": False})

    async def _meeting(self, u: SimUser) -> None:
        to = self._pick_recipients(u)
        ans = await self.command(
            u,
            "meeting.create",
            {"title": "周例会", "participants": [str(i) for i in to], "agenda": "工作安排"},
        )
        if not ans.ok:
            return
        mid = _meeting_dec.decode(ans.data).meeting_id
        await self.command(u, "meeting.join", {"meeting_id": mid})
        for n in range(3):
            await asyncio.sleep(self.rng.uniform(1, 3))
            if not u.ready:
                return
            u.sent += 1
            await self.command(
                u,
                "meeting.say",
                {
                    "meeting_id": mid,
                    "body": f"议题{n + 1}",
                    "client_msg_id": f"m{self.spec.index}.{u.index}.{u.sent}",
                },
            )
        await self.command(u, "meeting.close", {"meeting_id": mid, "summary": "散会"})

    async def _pacer(self, rate: float, until: float) -> None:
        """Open-loop pages at `rate` per second from random connected users of this worker."""
        interval = 1.0 / rate
        next_t = time.monotonic()
        senders: list[SimUser] = []
        refreshed = 0.0
        while next_t < until:
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                self.rec.count("gen.behind")  # cannot keep up: do not burst to catch up
                next_t = time.monotonic()
            if next_t - refreshed > 1.0:
                senders = [u for u in self.users if u.ready]
                refreshed = next_t
            if senders:
                u = senders[self.rng.randrange(len(senders))]
                self._spawn(self.send_page(u, to=self._pick_recipients(u)))
            else:
                self.rec.count("gen.no_sender")
            next_t += interval

    # -- calls from the parent ---------------------------------------------------------------
    async def cmd_login(self, concurrency: int = 32) -> dict[str, Any]:
        sem = asyncio.Semaphore(concurrency)
        t = time.monotonic()

        async def one(u: SimUser) -> bool:
            async with sem:
                return u.token is not None or await self.login(u)

        results = await asyncio.gather(*(one(u) for u in self.users))
        return {
            "ok": sum(results),
            "failed": len(results) - sum(results),
            "s": time.monotonic() - t,
        }

    async def cmd_connect(
        self,
        rate: float = 0.0,
        start_at: float | None = None,
        resume: bool = False,
        wait_s: float = 120.0,
    ) -> dict[str, Any]:
        """Connect every user not connected: `rate` per second (0: all at once) from
        `start_at`, retrying with backoff like the web client. Returns once every one has
        reached sync.ready, or after `wait_s`."""
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        begun = time.monotonic()
        ready_at: dict[int, float] = {}
        tasks = []
        for n, u in enumerate(self.users):
            if u.sock is not None:
                continue
            u.want = True
            if rate > 0:
                delay = begun + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(self._spawn(self._connect_until_ready(u, resume, ready_at)))
        first_failed = 0
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, begun + wait_s - time.monotonic()))
            first_failed = sum(1 for t in done if not t.cancelled() and t.result() is False)
        return {
            "connected": sum(1 for u in self.users if u.ready),
            "wanted": len(tasks),
            "ready": len(ready_at),
            "retried": sum(1 for u in self.users if u.attempts > 0) + first_failed,
            "begun": begun,
            "last_ready": max(ready_at.values(), default=begun),
        }

    async def _connect_until_ready(
        self, u: SimUser, resume: bool, ready_at: dict[int, float]
    ) -> bool:
        first = await self.connect_user(u, resume=resume)
        if not first and u.want and not self._stopping:
            await self._reconnect(u)
        if u.ready:
            ready_at[u.id] = time.monotonic()
        return first

    async def cmd_mix(self, duration: float, rate: float | None = None) -> dict[str, Any]:
        """The office mix for `duration` seconds, or, with `rate`, only pages at that rate."""
        until = min(time.monotonic() + duration, self.spec.deadline)
        self.mix_until = until
        if rate is not None:
            if rate > 0:
                await self._pacer(rate, until)
        else:
            await asyncio.gather(*(self._actor(u, until) for u in self.users))
        return {"until": until}

    async def cmd_disconnect(self) -> dict[str, Any]:
        for u in self.users:
            u.want = False
        socks = [u.sock for u in self.users if u.sock is not None]
        await asyncio.gather(*(s.close() for s in socks), return_exceptions=True)
        return {"closed": len(socks)}

    async def cmd_disconnect_some(self, keep: int) -> dict[str, Any]:
        """Keep the first `keep` users connected, close the rest."""
        socks = []
        for u in self.users[keep:]:
            u.want = False
            if u.sock is not None:
                socks.append(u.sock)
        await asyncio.gather(*(s.close() for s in socks), return_exceptions=True)
        return {"closed": len(socks)}

    async def cmd_page_departments(
        self, jobs: list[tuple[int, int]], count: int, concurrency: int = 16
    ) -> dict[str, Any]:
        """Each (sender, department) job: `count` pages from that sender to that department,
        over HTTP (the senders are away too)."""
        sem = asyncio.Semaphore(concurrency)

        async def one(sender: int, dept: int) -> int:
            u = self.by_id[sender]
            n = 0
            for _ in range(count):
                async with sem:
                    ans, _, _ = await self.send_page(
                        u, departments=[dept], prefix="s", via_http=True
                    )
                n += ans.ok
            return n

        sent = await asyncio.gather(*(one(s, d) for s, d in jobs))
        return {"ok": sum(sent), "wanted": len(jobs) * count}

    async def cmd_fanout(self, sender: int, dept: int, recipients: list[int]) -> dict[str, Any]:
        """One circulation from `sender` to the department `dept` (whose people, below it too,
        are `recipients`), its title marked so each `circulation.received` can be timed."""
        u = self.by_id[sender]
        ans, t, key = await self.circulate(
            u,
            self.track_prefix,
            [r for r in recipients if r != sender],
            {"departments": [str(dept)]},
        )
        t_ack = time.monotonic()
        return {
            "ok": ans.ok,
            "code": ans.code,
            "t_send": t,
            "t_ack": t_ack,
            "key": key,
            "recipients": _circ_count_dec.decode(ans.data).recipients_count if ans.ok else 0,
        }

    async def cmd_arrivals(self, key: str) -> list[float]:
        return self.arrivals.get(key, [])

    async def cmd_progress(self) -> dict[str, Any]:
        return {
            "expected_pairs": self.deliveries.expected_pairs,
            "received_pairs": self.deliveries.received_pairs,
            "ready": sum(1 for u in self.users if u.ready),
            "stream_errors": sum(u.checker.errors for u in self.users),
        }

    async def cmd_report(self) -> dict[str, Any]:
        for u in self.users:
            u.checker.finish()
        return {
            "stream": sum_totals(u.checker.totals() for u in self.users),
            "deliveries": self.deliveries.export(),
            "notices": self.notices,
            "unsupported": sorted(self.unsupported),
        }

    async def cmd_ready_ids(self) -> list[int]:
        return [u.id for u in self.users if u.ready]

    async def cmd_ping(self) -> float:
        return time.monotonic()


# -- process mode ------------------------------------------------------------------------------
def process_main(conn: Any, spec: WorkerSpec) -> None:
    """Entry point of a worker process: serve the parent's calls over the pipe."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    raise_fd_limit()
    # Thousands of long-lived users and futures: full collections would stall the loop and
    # show up as latency that is the generator's, not the server's.
    gc.set_threshold(100_000, 50, 1000)
    asyncio.run(_serve(conn, spec))


async def _serve(conn: Any, spec: WorkerSpec) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def send(msg: Any) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(msg)

    def receive() -> None:
        # A thread with blocking reads: an event loop's reader would make the pipe non-blocking,
        # and a large message then breaks off half-sent.
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = ("close", 0, {})
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, msg)
            except RuntimeError:  # the loop has finished
                return
            if msg[0] == "close":
                return

    worker = Worker(spec, tick=lambda f: send(("tick", f)), notice=lambda s: send(("notice", s)))
    await worker.start()
    threading.Thread(target=receive, name="parent-pipe", daemon=True).start()
    watchdog = loop.call_at(
        loop.time() + max(0.0, spec.deadline - time.monotonic()) + 30, os._exit, 3
    )

    async def run(req: int, cmd: str, kwargs: dict[str, Any]) -> None:
        try:
            send(("reply", req, True, await worker.handle(cmd, kwargs)))
        except Exception:
            send(("reply", req, False, traceback.format_exc()))

    running: set[asyncio.Task[None]] = set()
    while True:
        cmd, req, kwargs = await inbox.get()
        if cmd == "close":
            break
        task = asyncio.create_task(run(req, cmd, kwargs))
        running.add(task)
        task.add_done_callback(running.discard)
    await worker.close()
    watchdog.cancel()
    send(("closed", 0, None))


def raise_fd_limit() -> int:
    """Ten thousand sockets need more descriptors than the usual 1,024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    for target in (max(want, 65536), want):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            return target
        except (ValueError, OSError):
            continue
    return soft
