"""`liaison serve | seed --demo | migrate`: flags mirror the LIAISON_* environment variables."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from server.config import Config
from server.logs import configure

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("liaison")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison collaboration server")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="embedded state (LIAISON_DATA_DIR)")
    common.add_argument("--database-url", help="PostgreSQL DSN (LIAISON_DATABASE_URL)")
    common.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", parents=[common], help="serve HTTP and Socket.IO")
    serve.add_argument("--host", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, help="default 8080")
    serve.add_argument("--workers", type=int, help="processes (needs LIAISON_REDIS_URL above 1)")
    serve.add_argument("--redis-url", help="LIAISON_REDIS_URL")
    serve.add_argument("--jwt-secret", help="LIAISON_JWT_SECRET")
    serve.add_argument("--access-ttl-s", type=int, help="LIAISON_ACCESS_TTL_S")
    serve.add_argument("--bootstrap-admin", help="account:password (LIAISON_BOOTSTRAP_ADMIN)")
    serve.add_argument("--sms-gateway", help="LIAISON_SMS_GATEWAY")
    serve.add_argument("--smtp-url", help="LIAISON_SMTP_URL")
    serve.add_argument("--max-frame-bytes", type=int, help="LIAISON_MAX_FRAME_BYTES")
    seed = sub.add_parser("seed", parents=[common], help="load an organisation")
    seed.add_argument("--demo", action="store_true", help="the demo municipal office")
    sub.add_parser("migrate", parents=[common], help="apply database migrations")
    return parser


def _config(args: argparse.Namespace) -> Config:
    return Config.from_env(**{k: v for k, v in vars(args).items() if v is not None})


# CPython's full collection walks every tracked object. A server holding thousands of
# connections (a few hundred objects each) has millions, so one pass took up to 0.9 s, and
# while connections come and go they ran every few seconds and found nothing: 5-6 s of the
# 15 s of CPU a 10,000-user reconnect storm cost. Young collections stay frequent and cheap; a
# full one is considered after ~10 million net new objects instead of 70,000 (CPython's
# default 700, 10, 10), and what exists at start-up (modules, the app) is left out of them.
GC_THRESHOLDS = (10_000, 10, 100)


def run(
    make_app: Callable[[], web.Application],
    name: str,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
) -> None:
    """Serve an app the way Liaison is served (the benchmark's floor is served the same way, so
    the two differ only in the app): uvloop, the collector settings, a deep listen queue."""
    from aiohttp import web

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        pass
    app = make_app()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    print(f"{name} serving on http://{host}:{port}", flush=True)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=None,
        # aiohttp listens with a backlog of 128: when a whole office reconnects at once the
        # kernel drops the rest, and they come back only after TCP's 1, 3, 7, 15 s retries.
        # The kernel caps this at net.core.somaxconn.
        backlog=65535,
        # Workers of `serve --workers N` (server/supervisor.py) share the port.
        reuse_port=reuse_port or None,
    )


def serve(config: Config, flags: dict[str, object] | None = None, log_level: str = "INFO") -> None:
    from server.app import create_app

    if config.workers > 1:
        if not config.redis_url:
            sys.exit(
                "--workers above 1 needs LIAISON_REDIS_URL (or --redis-url): the processes "
                "share pushes, presence and rate limits through Redis."
            )
        from server.supervisor import supervise

        asyncio.run(supervise(config, flags or {}, log_level))
        return
    run(
        lambda: create_app(config),
        "Liaison",
        config.host,
        config.port,
        reuse_port=config.reuse_port,
    )


async def _seed_demo(config: Config) -> None:
    from handlers.admin import import_organisation
    from server.auth import hash_password
    from storage.database import open_database
    from storage.demo import DEMO_PASSWORD, demo_logins, demo_organisation

    phc = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
    payload = msgspec.json.encode(demo_organisation(phc))
    async with open_database(config.data_dir, config.database_url) as (_, pool):
        result = await import_organisation(pool, payload)
    print(
        f"Demo organisation loaded: {len(result['departments'])} departments, "
        f"{len(result['users'])} people."
    )
    from server.seed import seed_demo_content

    filed = await seed_demo_content(config, result["departments"])
    print(
        "Demo approvals, tasks, schedule, library, documents and archive: "
        f"{filed} items filed or found."
    )
    print(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for login in demo_logins():
        print(f"  {login.account:<14} {login.name}  ({login.role})")


async def _migrate(config: Config) -> None:
    from storage.database import open_database

    async with open_database(config.data_dir, config.database_url):
        print("database is up to date")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    configure(args.log_level)
    config = _config(args)
    if args.command == "serve":
        serve(config, vars(args), args.log_level)
    elif args.command == "seed":
        if not args.demo:
            sys.exit(
                "only --demo is available; import real organisations with POST /api/v1/admin/import"
            )
        asyncio.run(_seed_demo(config))
    elif args.command == "migrate":
        asyncio.run(_migrate(config))


if __name__ == "__main__":
    main()
