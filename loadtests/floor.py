"""The framework floor: a bare python-socketio + aiohttp server speaking Liaison's protocol for
the paths the benchmarks drive, with nothing else: no database, no real auth, no receipts.

It accepts the same import (ids assigned in memory), login with any password (the token is the
user id), socket connect with `auth.token` and `last_seq` (replayed from an in-memory ring of
the last 1,000 events per user), `pager.send` → `pager.message` and `circulation.create` →
`circulation.received` with a per-user in-memory seq to every tab of every recipient
(departments and the ones below expanded in memory), `sync.ack`, `whereabouts.set` →
`whereabouts.changed` to watchers, `whereabouts.board`, presence to watchers, and answers in the
same envelopes. The process is set up as Liaison's is (uvloop, listen backlog, garbage collector
settings). Whatever Liaison costs above this is Liaison's.

    python -m loadtests.floor --port 8090
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import socketio
from aiohttp import web

REPLAY_LIMIT = 1000


class _JSON:
    """msgspec as python-socketio's json module: the same choice Liaison makes."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(s: str | bytes, **_: Any) -> Any:
        return msgspec.json.decode(s)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def fail(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


@dataclass(slots=True)
class User:
    id: int
    account: str
    name: str
    department: int | None
    roles: list[str]
    seq: int = 0
    acked: int = 0
    # the last events as ready-made frames: strings are not tracked by the garbage collector,
    # so a full ring costs no collection time
    log: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=REPLAY_LIMIT))
    whereabouts: dict[str, Any] = field(
        default_factory=lambda: {
            "status": "in_office",
            "note": "",
            "location": "",
            "until": None,
            "set_by": None,
            "set_at": None,
        }
    )


class Floor:
    def __init__(self, admin_account: str = "admin") -> None:
        self.ids = itertools.count(1)
        self.users: dict[int, User] = {}
        self.by_account: dict[str, int] = {}
        self.dept_ids: dict[str, int] = {}
        self.dept_parent: dict[int, int | None] = {}
        self.dept_name: dict[int, str] = {}
        self.children: dict[int, set[int]] = defaultdict(set)
        self.members: dict[int, set[int]] = defaultdict(set)
        self.sids: dict[int, set[str]] = defaultdict(set)  # user -> live sockets
        self.sid_user: dict[str, int] = {}
        self.eio_sids: dict[str, str] = {}
        self.watchers: dict[int, set[str]] = defaultdict(set)  # department -> sockets
        self.watching: dict[str, set[int]] = defaultdict(set)
        self.messages = itertools.count(1)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            json=_JSON,
            cors_allowed_origins="*",
            logger=False,
            engineio_logger=False,
        )
        self._add_user(admin_account, "管理员", None, ["staff", "admin"])
        self._wire()

    # -- organisation ----------------------------------------------------------------------------
    def _add_user(self, account: str, name: str, dept: int | None, roles: list[str]) -> int:
        uid = self.by_account.get(account)
        if uid is None:
            uid = next(self.ids)
            self.by_account[account] = uid
            self.users[uid] = User(uid, account, name, dept, roles)
        else:
            old = self.users[uid]
            if old.department is not None:
                self.members[old.department].discard(uid)
            old.name, old.department, old.roles = name, dept, roles
        if dept is not None:
            self.members[dept].add(uid)
        return uid

    def import_org(self, body: dict[str, Any]) -> dict[str, Any]:
        for d in body.get("departments", []):
            did = self.dept_ids.get(d["key"]) or next(self.ids)
            self.dept_ids[d["key"]] = did
            self.dept_name[did] = d["name"]
        for d in body.get("departments", []):
            did = self.dept_ids[d["key"]]
            parent = self.dept_ids.get(d["parent_key"]) if d.get("parent_key") else None
            old = self.dept_parent.get(did)
            if old is not None:
                self.children[old].discard(did)
            self.dept_parent[did] = parent
            if parent is not None:
                self.children[parent].add(did)
        users = {}
        for u in body.get("users", []):
            dept = self.dept_ids[u["department_key"]]
            users[u["account"]] = str(
                self._add_user(u["account"], u["name"], dept, u.get("roles", ["staff"]))
            )
        return {"departments": {k: str(v) for k, v in self.dept_ids.items()}, "users": users}

    def recipients(self, uid: int, p: dict[str, Any]) -> set[int]:
        """The people named in `to` and under `departments`, without the sender."""
        out = {int(i) for i in p.get("to", [])}
        if any(i not in self.users for i in out):
            raise LookupError("no such user")
        todo = [int(d) for d in p.get("departments", [])]
        seen: set[int] = set()
        while todo:
            d = todo.pop()
            if d in seen:
                continue
            seen.add(d)
            out |= self.members.get(d, set())
            todo.extend(self.children.get(d, ()))
        out.discard(uid)
        if not out:
            raise ValueError("no recipients")
        return out

    def presence(self, uid: int) -> str:
        return "online" if self.sids.get(uid) else "offline"

    # -- pushes ----------------------------------------------------------------------------------
    @staticmethod
    def frame(env: dict[str, Any]) -> str:
        """The Socket.IO EVENT packet of one `event` push, encoded once with msgspec."""
        return (b'2["event",%b]' % msgspec.json.encode(env)).decode()

    async def emit(self, sid: str, frame: str) -> None:
        """Hand a ready frame to Engine.IO, as Liaison does (python-socketio's own emit costs
        several times more per socket)."""
        eio_sid = self.eio_sids.get(sid)
        if eio_sid is None:
            return
        try:
            await self.sio.eio.send(eio_sid, frame)
        except Exception:  # the socket went away meanwhile
            pass

    async def push_durable(self, uid: int, type_: str, data: dict[str, Any]) -> None:
        user = self.users[uid]
        user.seq += 1
        frame = self.frame({"seq": user.seq, "type": type_, "at": _now(), "data": data})
        user.log.append((user.seq, frame))
        for sid in list(self.sids.get(uid, ())):
            await self.emit(sid, frame)

    async def push_board(self, dept: int | None, type_: str, data: dict[str, Any]) -> None:
        if dept is None:
            return
        frame = self.frame({"seq": None, "type": type_, "at": _now(), "data": data})
        for sid in list(self.watchers.get(dept, ())):
            await self.emit(sid, frame)

    # -- commands --------------------------------------------------------------------------------
    async def dispatch(self, uid: int, sid: str | None, name: str, p: Any) -> dict[str, Any]:
        if not isinstance(p, dict):
            return fail("bad_request", "the payload must be a JSON object")
        handler = (
            getattr(self, "c_" + name.replace(".", "_"), None) if isinstance(name, str) else None
        )
        if handler is None:
            return fail("not_found", f"unknown command: {str(name)[:100]}")
        try:
            return ok(await handler(uid, sid, p))
        except (KeyError, ValueError, TypeError) as exc:
            return fail("bad_request", f"invalid input: {exc!r}")
        except LookupError as exc:
            return fail("not_found", str(exc))

    async def c_pager_send(self, uid: int, sid: str | None, p: dict[str, Any]) -> dict[str, Any]:
        recipients = self.recipients(uid, p)
        sender = self.users[uid]
        mid = str(next(self.messages))
        sent_at = _now()
        data = {
            "message_id": mid,
            "from": {"id": str(uid), "name": sender.name},
            "body": str(p["body"]),
            "priority": p.get("priority", "normal"),
            "attachments": [],
            "reply_to": p.get("reply_to"),
            "sent_at": sent_at,
            "via": "web",
        }
        for r in sorted(recipients):
            await self.push_durable(r, "pager.message", data)
        return {
            "message_id": mid,
            "sent_at": sent_at,
            "recipients": [
                {"user_id": str(r), "online": self.presence(r) != "offline"}
                for r in sorted(recipients)
            ],
        }

    async def c_circulation_create(
        self, uid: int, sid: str | None, p: dict[str, Any]
    ) -> dict[str, Any]:
        recipients = self.recipients(uid, p)
        cid = str(next(self.messages))
        data = {
            "circulation_id": cid,
            "title": str(p["title"]),
            "from": {"id": str(uid), "name": self.users[uid].name},
            "deadline": p.get("deadline"),
            "sent_at": _now(),
        }
        for r in sorted(recipients):
            await self.push_durable(r, "circulation.received", data)
        return {"circulation_id": cid, "recipients_count": len(recipients)}

    async def c_sync_ack(self, uid: int, sid: str | None, p: dict[str, Any]) -> dict[str, Any]:
        seq = int(p["seq"])
        user = self.users[uid]
        if user.acked < seq <= user.seq:
            user.acked = seq
        return {"acked_seq": user.acked}

    async def c_auth_renew(self, uid: int, sid: str | None, p: dict[str, Any]) -> dict[str, Any]:
        return {"expires_at": 4102444800}

    async def c_whereabouts_set(
        self, uid: int, sid: str | None, p: dict[str, Any]
    ) -> dict[str, Any]:
        target = int(p.get("for_user") or uid)
        user = self.users[target]
        w = {
            "status": p["status"],
            "note": p.get("note", ""),
            "location": p.get("location", ""),
            "until": p.get("until"),
            "set_by": {"id": str(uid), "name": self.users[uid].name},
            "set_at": _now(),
        }
        user.whereabouts = w
        await self.push_board(
            user.department,
            "whereabouts.changed",
            {"user_id": str(target), "whereabouts": w, "reason": "set"},
        )
        return {"user_id": str(target), "whereabouts": w}

    async def c_whereabouts_board(
        self, uid: int, sid: str | None, p: dict[str, Any]
    ) -> dict[str, Any]:
        dept = int(p["department_id"])
        if dept not in self.dept_name:
            raise LookupError("no such department")
        if sid is not None:
            self.watchers[dept].add(sid)
            self.watching[sid].add(dept)
        members = []
        for m in sorted(self.members.get(dept, ())):
            u = self.users[m]
            members.append(
                {
                    "user": {
                        "id": str(m),
                        "name": u.name,
                        "title": "",
                        "department_id": str(dept),
                        "phone": None,
                    },
                    "presence": self.presence(m),
                    "last_seen": None,
                    "whereabouts": u.whereabouts,
                    "notes_waiting": 0,
                }
            )
        return {"department_id": str(dept), "members": members}

    async def c_whereabouts_unwatch(
        self, uid: int, sid: str | None, p: dict[str, Any]
    ) -> dict[str, Any]:
        dept = int(p["department_id"])
        if sid is not None:
            self.watchers[dept].discard(sid)
            self.watching[sid].discard(dept)
        return {"department_id": str(dept)}

    # -- Socket.IO -------------------------------------------------------------------------------
    def _wire(self) -> None:
        sio = self.sio
        floor = self

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            if not isinstance(auth, dict):
                raise socketio.exceptions.ConnectionRefusedError("auth", {"code": "unauthorized"})
            try:
                uid = int(str(auth.get("token")))
            except (TypeError, ValueError):
                uid = 0
            if uid not in floor.users:
                raise socketio.exceptions.ConnectionRefusedError("auth", {"code": "unauthorized"})
            last = auth.get("last_seq")
            was = floor.presence(uid)
            floor.sid_user[sid] = uid
            floor.eio_sids[sid] = sio.manager.eio_sid_from_sid(sid, "/") or ""
            # After the connect answer has gone out: replay, go live, then sync.ready.
            sio.start_background_task(floor._resume, sid, uid, last)
            if was == "offline":
                await floor.push_board(
                    floor.users[uid].department,
                    "presence.changed",
                    {"user_id": str(uid), "presence": "online", "last_seen": None},
                )

        @sio.event
        async def disconnect(sid: str, reason: Any = None) -> None:
            uid = floor.sid_user.pop(sid, None)
            floor.eio_sids.pop(sid, None)
            for dept in floor.watching.pop(sid, set()):
                floor.watchers[dept].discard(sid)
            if uid is None:
                return
            floor.sids[uid].discard(sid)
            if not floor.sids[uid]:
                del floor.sids[uid]
                await floor.push_board(
                    floor.users[uid].department,
                    "presence.changed",
                    {"user_id": str(uid), "presence": "offline", "last_seen": _now()},
                )

        @sio.on("*")
        async def command(event: str, sid: str, *args: Any) -> dict[str, Any]:
            uid = floor.sid_user.get(sid)
            if uid is None:
                return fail("unauthorized", "not connected")
            return await floor.dispatch(uid, sid, event, args[0] if args else {})

    async def _resume(self, sid: str, uid: int, last: Any) -> None:
        user = self.users[uid]
        if sid not in self.sid_user:
            return
        sent = user.seq
        if isinstance(last, int) and not isinstance(last, bool) and last >= 0:
            oldest = user.log[0][0] if user.log else user.seq + 1
            if last > user.seq or (user.seq > last and oldest > last + 1):
                self.sids[uid].add(sid)
                await self._sync(sid, "sync.reset", user.seq)
                return
            sent = last
            while True:  # until caught up: pushes may land while we replay
                missed = [(seq, frame) for seq, frame in user.log if seq > sent]
                if not missed:
                    break
                for seq, frame in missed:
                    await self.emit(sid, frame)
                    sent = seq
        # No await between the last look at the log and going live: nothing falls between.
        self.sids[uid].add(sid)
        await self._sync(sid, "sync.ready", sent)

    async def _sync(self, sid: str, type_: str, seq: int) -> None:
        await self.emit(
            sid, self.frame({"seq": None, "type": type_, "at": _now(), "data": {"seq": seq}})
        )

    # -- HTTP ------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=70 * 1024 * 1024)
        self.sio.attach(app, socketio_path="socket.io")

        def answer(body: dict[str, Any], status: int = 200) -> web.Response:
            return web.Response(
                body=msgspec.json.encode(body), status=status, content_type="application/json"
            )

        def bearer(request: web.Request) -> int | None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            try:
                uid = int(token)
            except ValueError:
                return None
            return uid if scheme.lower() == "bearer" and uid in self.users else None

        def tokens(uid: int) -> dict[str, Any]:
            u = self.users[uid]
            return ok(
                {
                    "access_token": str(uid),
                    "refresh_token": str(uid),
                    "expires_in": 86400,
                    "user": {
                        "id": str(uid),
                        "account": u.account,
                        "name": u.name,
                        "department_id": str(u.department) if u.department else None,
                        "roles": u.roles,
                    },
                }
            )

        async def login(request: web.Request) -> web.Response:
            body = msgspec.json.decode(await request.read())
            uid = self.by_account.get(body.get("account"))
            if uid is None:
                return answer(fail("unauthorized", "wrong account or password"), 401)
            return answer(tokens(uid))

        async def refresh(request: web.Request) -> web.Response:
            body = msgspec.json.decode(await request.read())
            try:
                uid = int(body.get("refresh_token"))
            except (TypeError, ValueError):
                uid = 0
            if uid not in self.users:
                return answer(fail("unauthorized", "the refresh token is not valid"), 401)
            return answer(tokens(uid))

        async def import_(request: web.Request) -> web.Response:
            if bearer(request) is None:
                return answer(fail("unauthorized", "send Authorization: Bearer <token>"), 401)
            return answer(ok(self.import_org(msgspec.json.decode(await request.read()))))

        async def command(request: web.Request) -> web.Response:
            uid = bearer(request)
            if uid is None:
                return answer(fail("unauthorized", "send Authorization: Bearer <token>"), 401)
            raw = await request.read()
            result = await self.dispatch(
                uid, None, request.match_info["name"], msgspec.json.decode(raw or b"{}")
            )
            return answer(result, 200 if result["ok"] else 400)

        async def healthz(request: web.Request) -> web.Response:
            return answer(ok({"status": "alive"}))

        app.router.add_post("/api/v1/auth/login", login)
        app.router.add_post("/api/v1/auth/refresh", refresh)
        app.router.add_post("/api/v1/admin/import", import_)
        app.router.add_post("/api/v1/commands/{name}", command)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", healthz)
        return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.floor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument(
        "--admin",
        default=None,
        help="admin account (default: the account of $LIAISON_BOOTSTRAP_ADMIN, else admin)",
    )
    args = p.parse_args(argv)
    admin = args.admin or (os.environ.get("LIAISON_BOOTSTRAP_ADMIN") or "admin").partition(":")[0]
    from loadtests.worker import raise_fd_limit
    from server.cli import run

    raise_fd_limit()
    run(lambda: Floor(admin).app(), "floor", args.host, args.port)


if __name__ == "__main__":
    main()
