"""The Socket.IO transport: authenticate on connect, resume the stream, dispatch every event as a
command through the registry and answer with its envelope in the ack."""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import TYPE_CHECKING, Any

import msgspec
import socketio

from server.batch import Batcher
from server.eio import LeanSocket
from server.errors import AppError
from server.hub import Connection
from server.sio_manager import ScalableManager
from storage import directory as dq
from storage.records import User

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

# An EVENT packet: type 2, optional "/namespace,", optional ack id, then the JSON array.
_ACK_ID = re.compile(r"^2(?:/[^,]*,)?(\d{1,15})")
# The same on the default namespace, the only one we serve: the ack id, then where the array starts.
_EVENT = re.compile(r"2(\d{0,15})\[")
# An event's arguments, each left as its JSON text: the command's own decoder reads the payload.
_ARGS = msgspec.json.Decoder(list[msgspec.Raw])
_NAME = msgspec.json.Decoder(str)
_encode = msgspec.json.encode


class _JSON:
    """msgspec in the shape python-socketio expects of its json module (faster than stdlib)."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(s: str | bytes, **_: Any) -> Any:
        return msgspec.json.decode(s)


class LiaisonServer(socketio.AsyncServer):
    """python-socketio's server with its event path replaced: an inbound frame over the limit, or
    one that is not valid JSON, is answered with an error envelope instead of being parsed or
    dropped; an event is parsed once, its payload left as JSON text for the command's decoder,
    and run to its answer in the task that received it (python-socketio parsed every packet
    twice and started a task per event on top of Engine.IO's: about a quarter of what an inbound
    command cost the server); and a hook runs once the client has been told it is connected."""

    def __init__(self, *, max_frame_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_frame_bytes = max_frame_bytes
        self.on_connected: Any = None
        # (sid, event name, payload JSON or None) -> the answer envelope
        self.on_command: Any = None
        # (sid or None, the error) -> the answer to a frame refused before it became a command
        self.on_refused: Any = None

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if isinstance(data, str) and data[:1] == "2" and eio_sid not in self._binary_packet:
            if len(data) > self.max_frame_bytes // 4 and len(data.encode()) > self.max_frame_bytes:
                await self._refuse(
                    eio_sid,
                    data,
                    AppError("too_large", f"frame larger than {self.max_frame_bytes} bytes"),
                )
                return
            m = _EVENT.match(data)
            if m is None:  # another namespace, or no array at all
                await self._refuse(eio_sid, data, AppError("bad_request", "malformed packet"))
                return
            try:
                args = _ARGS.decode(data[m.end() - 1 :])
                name = _NAME.decode(args[0]) if args else None
            except msgspec.ValidationError:
                name = None
            except (msgspec.DecodeError, RecursionError):  # broken, or nested beyond reason
                await self._refuse(eio_sid, data, AppError("bad_request", "malformed packet"))
                return
            if name is None:
                await self._refuse(eio_sid, data, AppError("bad_request", "an event needs a name"))
                return
            ack_id = int(m.group(1)) if m.group(1) else None
            await self._event(eio_sid, ack_id, name, args[1] if len(args) > 1 else None)
            return
        if isinstance(data, bytes) or (isinstance(data, str) and data[:1] in "56"):
            # Binary packets carry nothing we accept; answering is impossible without parsing.
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, RecursionError):  # a packet python-socketio cannot parse: dropped
            log.debug("unparsable packet from %s", eio_sid)

    async def _event(
        self, eio_sid: str, ack_id: int | None, name: str, payload: msgspec.Raw | None
    ) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None or not self.manager.is_connected(sid, "/"):
            return  # not (or no longer) connected: dropped, as python-socketio does
        answer = await self.on_command(sid, name, payload)
        if ack_id is not None:
            await self._ack(eio_sid, ack_id, answer)

    async def _ack(self, eio_sid: str, ack_id: int, envelope: dict[str, Any]) -> None:
        """The ACK packet carrying the answer, encoded as python-socketio would."""
        await self.eio.send(eio_sid, f"3{ack_id}{_encode([envelope]).decode()}")

    async def _refuse(self, eio_sid: str, data: str, err: AppError) -> None:
        """Answer a frame that is no command: counted against the sender's rate like one (a
        flood of broken frames is a flood), never a traceback in the log."""
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        envelope = await self.on_refused(sid, err) if self.on_refused else err.envelope()
        m = _ACK_ID.match(data[:40])
        if m and m.group(1):
            await self._ack(eio_sid, int(m.group(1)), envelope)

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:
            LeanSocket.adopt(sock)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
        if sid and self.manager.is_connected(sid, namespace or "/") and self.on_connected:
            await self.on_connected(sid)


def _origin_check(public_url: str | None, allowed: tuple[str, ...]) -> Any:
    """Browsers may connect from the server's public address and the configured origins; clients
    that send no Origin (load generators, integrations) are not browsers and pass.

    The request's own Host header is no proof: a page on a hostile name that resolves to this
    server (DNS rebinding) sends a Host and an Origin that agree. Without `public_url`, the
    origin must name the address the connection actually arrived at (its IP and port, or
    `localhost` for a loopback one), which no other name can imitate."""
    extra = frozenset(o.rstrip("/") for o in (*allowed, *([public_url] if public_url else [])))

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True
        origin = origin.rstrip("/")
        if origin in extra:
            return True
        if public_url:
            return False
        request = environ.get("aiohttp.request")
        sockname = request.transport.get_extra_info("sockname") if request else None
        if not sockname or request is None:
            return False
        host, port = sockname[0], sockname[1]
        scheme = "https" if request.secure else "http"
        own = {f"{scheme}://{host}:{port}", f"{scheme}://[{host}]:{port}"}
        if ipaddress.ip_address(host.split("%")[0]).is_loopback:
            own.add(f"{scheme}://localhost:{port}")
        if port == (443 if scheme == "https" else 80):
            own |= {o.rsplit(":", 1)[0] for o in own}
        return origin in own

    return check


def build_sio(
    max_frame_bytes: int,
    allowed_origins: tuple[str, ...],
    *,
    public_url: str | None = None,
    max_send_buffer_bytes: int = 1024 * 1024,
) -> LiaisonServer:
    sio = LiaisonServer(
        max_frame_bytes=max_frame_bytes,
        async_mode="aiohttp",
        client_manager=ScalableManager(),
        cors_allowed_origins=_origin_check(public_url, allowed_origins),
        # Frames above our limit still arrive so they can be answered `too_large`; beyond this
        # hard cap the transport refuses them outright.
        max_http_buffer_size=max(1_000_000, 4 * max_frame_bytes),
        json=_JSON,
        logger=False,
        engineio_logger=False,
        transports=["websocket", "polling"],
    )
    # Read by server/eio.py's LeanSocket: past this much unsent data a socket is cut.
    sio.eio.max_send_buffer_bytes = max_send_buffer_bytes
    return sio


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    # python-socketio sends the second argument as connect_error's `data`.
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code})


def attach(sio: LiaisonServer, services: Services) -> None:
    hub = services.hub
    sio.eio.on_cut = lambda reason: services.metrics.sockets_cut.labels(reason).inc()

    # Connects and disconnects come in crowds (a reconnect storm, a network blip at the office,
    # the evening): the ones arriving together share one statement.
    async def find_users(ids: list[int]) -> list[User | None]:
        found = {u.id: u for u in await dq.users_by_ids(services.pool, sorted(set(ids)))}
        return [found.get(i) for i in ids]

    async def touch(ids: list[int]) -> list[None]:
        await dq.touch_last_seen(services.pool, ids)
        return [None] * len(ids)

    find_user = Batcher(find_users)
    # With several nodes the cap on a user's sockets counts them all (one Redis round trip
    # for the connects arriving together).
    sockets_of = Batcher(hub.connections_anywhere)
    gone = Batcher(touch)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not isinstance(auth, dict):
            raise _refused("unauthorized", "connect with auth: {token}")
        try:
            claims = services.auth.decode(auth.get("token"))
        except AppError as err:
            code = (err.details or {}).get("reason", err.code)
            raise _refused(code, err.message) from None
        last_seq = auth.get("last_seq")
        if last_seq is not None and (not isinstance(last_seq, int) or isinstance(last_seq, bool)):
            raise _refused("unauthorized", "last_seq must be an integer")
        user = await find_user(claims.user_id)
        if user is None:
            raise _refused("unauthorized", "no such user")
        count = hub.count_for(user.id) if hub.cluster is None else await sockets_of(user.id)
        if count >= services.config.max_connections_per_user:
            raise _refused("rate_limited", "too many connections for this user")
        conn = Connection(
            sid=sid,
            eio_sid=sio.manager.eio_sid_from_sid(sid, "/") or "",
            user_id=user.id,
            department_id=user.department_id,
            session_id=claims.session_id,
            token_exp=claims.exp,
        )
        conn.meta["user"] = user
        conn.meta["last_seq"] = last_seq
        await hub.add(conn)

    async def connected(sid: str) -> None:
        conn = hub.by_sid.get(sid)
        if conn is not None:
            conn.eio_sid = sio.manager.eio_sid_from_sid(sid, "/") or conn.eio_sid
            await hub.resume(conn, conn.meta.pop("last_seq", None))

    sio.on_connected = connected

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        conn = await hub.remove(sid)
        if conn is not None and conn.user_id not in hub.by_user:
            await gone(conn.user_id)

    async def command(sid: str, name: str, payload: msgspec.Raw | None) -> dict[str, Any]:
        conn = hub.by_sid.get(sid)
        if conn is None:
            return AppError("unauthorized", "not connected").envelope()
        return await services.registry.dispatch(services, conn.meta["user"], conn, name, payload)

    sio.on_command = command

    async def refused(sid: str | None, err: AppError) -> dict[str, Any]:
        conn = hub.by_sid.get(sid) if sid else None
        if conn is not None:
            return await services.registry.refuse(services, conn.user_id, err)
        return err.envelope()

    sio.on_refused = refused
