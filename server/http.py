"""The HTTP transport: sign-in, commands, bounded body reads, operations endpoints and the web
client. Domain endpoints (files, the admin import, minutes) are route tables of their handler
modules, and the inbound SMS webhook is server/sms_inbound.py's."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from aiohttp import web

from server.auth import user_view
from server.errors import HTTP_STATUS, AppError, ErrorCode, bad_request, ok
from server.keys import SERVICES
from storage import directory as dq
from storage.pool import ping, transient
from storage.records import User

log = logging.getLogger(__name__)

_encode = msgspec.json.encode


def envelope_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def error_response(err: AppError) -> web.Response:
    return envelope_response(err.envelope(), err.status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Any failure under /api answers in the envelope; never a stack trace."""
    try:
        return await handler(request)
    except AppError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/"):
            raise
        by_status: dict[int, ErrorCode] = {404: "not_found", 405: "bad_request", 413: "too_large"}
        code = by_status.get(exc.status, "bad_request")
        return envelope_response(AppError(code, exc.reason).envelope(), exc.status)
    except ConnectionResetError:
        # The client went away mid-request (a websocket given up before its upgrade, say):
        # nobody to answer and nothing wrong here, so no traceback either (aiohttp logs one
        # for an exception, and drops a response it cannot write without a word).
        log.info("client went away: %s %s", request.method, request.path)
        return web.Response(status=499, reason="Client Closed Request")
    except Exception as exc:
        if transient(exc) is not None:  # the database, gone for a moment (a sign-in, say)
            log.warning("database unavailable: %s %s", request.method, request.path)
            return error_response(
                AppError("unavailable", "try again in a moment", {"retry_after_s": 1})
            )
        log.exception("http handler failed: %s %s", request.method, request.path)
        return error_response(AppError("internal", "internal error"))


_READ_CHUNK = 64 * 1024


def too_large(limit: int) -> AppError:
    return AppError("too_large", f"body larger than {limit} bytes", {"max_bytes": limit})


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, but never more than `limit` bytes of it: a body that declares a
    larger length is refused before a byte is read, and one without a declared length
    (chunked) is refused as soon as it passes the limit, so no client makes the server hold
    more than it would accept."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    body = bytearray()
    while chunk := await request.content.read(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


async def _body(request: web.Request) -> bytes:
    """A JSON endpoint's body: at most one frame (LIAISON_MAX_FRAME_BYTES)."""
    return await read_body(request, request.app[SERVICES].config.max_frame_bytes)


def _decode(raw: bytes, model: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw or b"{}", type=model)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise bad_request("invalid body", [{"field": "", "message": str(exc)}]) from None


async def authenticate(request: web.Request) -> tuple[User, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AppError("unauthorized", "send Authorization: Bearer <access_token>")
    services = request.app[SERVICES]
    claims = services.auth.decode(token.strip())
    user = await dq.get_user(services.pool, claims.user_id)
    if user is None:
        raise AppError("unauthorized", "no such user")
    return user, claims.session_id


class Login(msgspec.Struct, forbid_unknown_fields=True):
    account: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Refresh(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


async def _token_answer(request: web.Request, pair: Any) -> web.Response:
    user = await dq.get_user(request.app[SERVICES].pool, pair.user_id)
    assert user is not None
    return envelope_response(
        ok(
            {
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "expires_in": pair.expires_in,
                "user": user_view(user),
            }
        )
    )


async def login(request: web.Request) -> web.Response:
    p = _decode(await _body(request), Login)
    pair = await request.app[SERVICES].auth.login(p.account, p.password, request.remote)
    return await _token_answer(request, pair)


async def refresh(request: web.Request) -> web.Response:
    p = _decode(await _body(request), Refresh)
    pair = await request.app[SERVICES].auth.refresh(p.refresh_token)
    return await _token_answer(request, pair)


async def logout(request: web.Request) -> web.Response:
    _, session_id = await authenticate(request)
    await request.app[SERVICES].auth.revoke(session_id, "logout")
    return envelope_response(ok({}))


async def command(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user, _ = await authenticate(request)
    answer = await services.registry.dispatch(
        services, user, None, request.match_info["name"], await _body(request)
    )
    status = 200 if answer["ok"] else HTTP_STATUS[answer["error"]["code"]]
    return envelope_response(answer, status)


async def healthz(request: web.Request) -> web.Response:
    return envelope_response(ok({"status": "alive"}))


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        await ping(services.pool)
        checks["database"] = "ok"
    except Exception as exc:  # reported, not raised: this is the answer
        checks["database"] = f"down: {type(exc).__name__}"
    ready_bus = await services.bus.healthy()
    checks["bus"] = "ok" if ready_bus else "down"
    if all(v == "ok" for v in checks.values()):
        return envelope_response(ok(checks))
    return envelope_response(AppError("unavailable", "not ready", checks).envelope(), 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICES].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application, web_dist: Any) -> None:
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/refresh", refresh)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_post("/api/v1/commands/{name}", command)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    index = web_dist / "index.html"

    async def web_client(request: web.Request) -> web.StreamResponse:
        if not index.exists():
            return web.Response(
                text="The web client is not built: run `make install` (npm build of web/).",
                status=503,
            )
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/", web_client)
    if (web_dist / "assets").is_dir():
        app.router.add_static("/assets", web_dist / "assets")
