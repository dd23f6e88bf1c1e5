"""The app factory: nothing happens at import time; create_app(config) builds everything and each
resource is opened and closed in one cleanup_ctx generator (aiohttp's own pattern)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any

from aiohttp import web

from handlers import (
    admin,
    archive,
    circulation,
    directory,
    documents,
    files,
    library,
    meetings,
    notify,
    pager,
    presence,
    schedule,
    tasks,
    todo,
    workflow,
)
from server import connection_commands, sms_inbound
from server.auth import SESSION_REVOKED, Auth, hash_password
from server.bus import Bus
from server.cluster import Cluster, RedisRateLimiter
from server.commands import Registry
from server.config import Config
from server.eio import settle
from server.feature import Feature
from server.http import add_routes, errors_middleware
from server.hub import Hub
from server.jobs import Jobs
from server.keys import CONFIG, DSN, FEATURES_KEY, POOL, SERVICES, SIO
from server.limits import RateLimiter
from server.mailer import Mailer
from server.metrics import Metrics
from server.outbox import SEND as OUTBOX_SEND
from server.outbox import Outbox
from server.outbox import jobs as outbox_jobs
from server.redis_bus import RedisBus
from server.services import Services
from server.sms import LogGateway, make_gateway, render_dev_page
from server.sockets import attach, build_sio
from server.stream import Stream
from storage import directory as dq
from storage.database import open_database

log = logging.getLogger(__name__)

# On shutdown: how long running commands may take to be answered, and disconnect handlers to end.
SHUTDOWN_DRAIN_S = 10.0

# The features, each declared once in its module (server/feature.py); the plumbing's first.
PLUMBING = [
    Feature("connection", commands=connection_commands.commands),
    Feature("outbox", jobs=outbox_jobs),
    Feature("sms_inbound", routes=sms_inbound.routes),
]
FEATURES = [
    *PLUMBING,
    directory.feature,
    presence.feature,
    pager.feature,
    notify.feature,
    circulation.feature,
    meetings.feature,
    files.feature,
    admin.feature,
    todo.feature,
    tasks.feature,
    schedule.feature,
    workflow.feature,
    library.feature,
    archive.feature,
    documents.feature,
]


def create_app(config: Config, features: Sequence[Feature] = tuple(FEATURES)) -> web.Application:
    # Bodies are read with their endpoint's own bound (server/http.py read_body); anything
    # read without one gets no more than a frame.
    app = web.Application(middlewares=[errors_middleware], client_max_size=config.max_frame_bytes)
    app[CONFIG] = config
    sio = build_sio(
        config.max_frame_bytes,
        config.allowed_origins,
        public_url=config.public_url,
        max_send_buffer_bytes=config.max_send_buffer_bytes,
    )
    sio.attach(app, socketio_path="socket.io")
    app[SIO] = sio
    add_routes(app, config.web_dist)
    app[FEATURES_KEY] = list(features)
    for feature in features:
        app.router.add_routes(feature.routes)
    app.router.add_get("/dev/sms", dev_sms_page)
    app.on_shutdown.append(_close_sockets)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_background)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with open_database(config.data_dir, config.database_url) as (dsn, pool):
        if config.bootstrap_admin:
            async with pool.acquire() as conn:
                await _bootstrap_admin(conn, config.bootstrap_admin)
        app[DSN] = dsn
        app[POOL] = pool
        yield


async def _bootstrap_admin(conn, spec: str) -> None:  # type: ignore[no-untyped-def]
    account, sep, password = spec.partition(":")
    if not sep or not account or not password:
        raise SystemExit("LIAISON_BOOTSTRAP_ADMIN must be account:password")
    phc = await asyncio.to_thread(hash_password, password)
    if await dq.ensure_admin(conn, account, phc):
        log.info("bootstrap administrator created: %s", account)


async def _services(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pool = app[POOL]
    sio = app[SIO]
    metrics = Metrics()
    bus: Bus
    cluster: Cluster | None = None
    if config.redis_url:
        bus = RedisBus(
            config.redis_url,
            ping_s=config.bus_ping_s,
            ping_timeout_s=3 * config.bus_ping_s,
            metrics=metrics,
        )
        cluster = Cluster(bus.redis, bus.node_id, lease_s=config.presence_lease_s)
        limiter: RateLimiter = RedisRateLimiter(
            bus.redis, config.rate_per_s, config.rate_burst, breaker=cluster.breaker
        )
    else:
        bus = Bus()
        limiter = RateLimiter(config.rate_per_s, config.rate_burst)
    await bus.start()
    stream = Stream(pool, bus, replay_limit=config.replay_limit)
    auth = Auth(
        pool,
        bus,
        secret=config.resolved_jwt_secret(),
        access_ttl_s=config.access_ttl_s,
        refresh_ttl_s=config.refresh_ttl_s,
    )
    await auth.load_revoked()
    hub = Hub(sio, stream, bus, metrics)
    if isinstance(bus, RedisBus):
        hub.cluster = cluster
        bus.on_hint = hub.hinted
        bus.recovered.append(hub.sweep)
        await hub.heartbeat()
    gateway = make_gateway(config.sms_gateway, config.resolved_sms_secret())
    features = app[FEATURES_KEY]
    outbox = Outbox(
        [f.outbox for f in features], gateway=gateway, mailer=Mailer.from_url(config.smtp_url)
    )
    jobs = Jobs(stream, [f.jobs for f in features], metrics)
    jobs.tune(
        OUTBOX_SEND, max_attempts=config.outbox_max_attempts, backoff_s=config.outbox_backoff_s
    )
    services = Services(
        config=config,
        pool=pool,
        bus=bus,
        stream=stream,
        auth=auth,
        hub=hub,
        jobs=jobs,
        registry=Registry([f.commands for f in features]),
        limiter=limiter,
        metrics=metrics,
        sio=sio,
        outbox=outbox,
        inbound_sms=[read for _, read in sorted(r for f in features for r in f.inbound_sms)],
    )
    for feature in features:
        stream.ack_hooks.extend(feature.ack_hooks)
        hub.on_disconnect.extend(functools.partial(h, services) for h in feature.on_disconnect)
    attach(sio, services)

    async def on_revoked(msg: dict[str, object]) -> None:
        for conn in [c for c in hub.by_sid.values() if c.session_id == msg["session_id"]]:
            await hub.drop(conn)

    bus.on(SESSION_REVOKED, on_revoked)
    if isinstance(bus, RedisBus):
        # A revocation published while Redis was away is in PostgreSQL: read it from there.
        bus.recovered.append(functools.partial(_drop_revoked, services))
    app[SERVICES] = services
    yield
    if cluster is not None:
        with contextlib.suppress(Exception):
            await cluster.leave()
    await bus.stop()
    await gateway.close()


async def dev_sms_page(request: web.Request) -> web.Response:
    """With the `log` gateway (development), the SMS that would have gone out."""
    gateway = request.app[SERVICES].outbox.gateway
    # SMS texts are private: the page exists for a developer at the machine, nobody else.
    if not isinstance(gateway, LogGateway) or request.remote not in ("127.0.0.1", "::1"):
        raise web.HTTPNotFound()
    return web.Response(text=render_dev_page(gateway), content_type="text/html")


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, before aiohttp waits for open requests: answer every command already read
    (new ones are refused `unavailable`), then tell every socket to go, so clients reconnect
    elsewhere at once instead of holding a dying process for the shutdown timeout, and let the
    disconnect handlers finish their database work before the pool closes."""
    if SERVICES not in app:
        return
    services = app[SERVICES]
    if not await services.registry.drain(SHUTDOWN_DRAIN_S):
        log.warning("shutting down with %d commands unanswered", services.registry.running)
    for conn in list(services.hub.by_sid.values()):
        with contextlib.suppress(Exception):
            await services.hub.drop(conn)
    await settle(SHUTDOWN_DRAIN_S)


async def _sweep(services: Services) -> None:
    """Drop sockets whose token expired without renewal; forget stale limiter state."""
    now = time.time()
    for conn in [c for c in services.hub.by_sid.values() if c.token_exp < now]:
        log.info("disconnecting expired socket of user %s", conn.user_id)
        await services.hub.drop(conn)
    services.limiter.sweep()
    services.auth.forget_old_revocations()
    if services.hub.cluster is not None:
        await _drop_revoked(services)


async def _drop_revoked(services: Services) -> None:
    """With several nodes: sessions revoked on another node whose message did not arrive
    (Redis was away) are found in the database, and their sockets here dropped."""
    await services.auth.load_revoked()
    revoked = services.auth.revoked
    for conn in [c for c in services.hub.by_sid.values() if c.session_id in revoked]:
        log.info("disconnecting socket of revoked session, user %s", conn.user_id)
        await services.hub.drop(conn)


async def _prune(services: Services) -> None:
    days = services.config.event_retention_days
    removed = await services.stream.prune(timedelta(days=days))
    if removed:
        log.info("pruned %d events older than %s days", removed, days)


def _every(
    seconds: float, job: Callable[[], Awaitable[Any]], name: str
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed", name)

    return loop


async def _background(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    config = services.config
    loops: list[Coroutine[Any, Any, None]] = [
        services.jobs.run(services),
        _every(config.token_sweep_s, lambda: _sweep(services), "sweep")(),
        _every(3600, lambda: _prune(services), "prune")(),
    ]
    if services.hub.cluster is not None:
        hub = services.hub
        loops.append(_every(config.sweep_s, hub.sweep, "stream sweep")())
        loops.append(_every(config.presence_lease_s / 3, hub.heartbeat, "node lease")())
    for feature in app[FEATURES_KEY]:
        for seconds, chore in feature.chores:
            name = f"{feature.name}.{chore.__name__}"
            loops.append(_every(seconds, functools.partial(chore, services), name)())
    tasks = [asyncio.create_task(loop) for loop in loops]
    yield
    services.jobs.stop()
    pending = set(tasks)
    while pending:  # cancel again if a cancel was swallowed, rather than wait forever
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1)
    with contextlib.suppress(Exception):  # the database may be gone already
        await services.jobs.release()
