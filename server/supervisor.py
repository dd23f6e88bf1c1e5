"""`liaison serve --workers N`: N processes on one port (SO_REUSEPORT, the kernel spreads the
connections), sharing one PostgreSQL and fanning out through Redis.

The parent opens the database once (starting the embedded PostgreSQL when no
LIAISON_DATABASE_URL is given, migrating, creating the bootstrap admin, generating the secrets
in the data dir), then starts the workers with the database's DSN, restarts one that dies, and
stops them all on SIGTERM or SIGINT. It serves nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any

from server.config import Config

log = logging.getLogger("liaison")

STOP_GRACE_S = 20.0  # a worker drains its sockets and commands on SIGTERM; then it is killed
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)


def worker_env(config: Config, flags: dict[str, Any], dsn: str) -> dict[str, str]:
    """The environment of a worker: the parent's, plus every flag given on the command line
    (the LIAISON_* variable it mirrors), the shared database, one process, a shared port."""
    env = dict(os.environ)
    for name, value in flags.items():
        if value is None or name in ("command", "log_level", "workers"):
            continue
        text = ",".join(value) if isinstance(value, tuple | list) else str(value)
        env[f"LIAISON_{name.upper()}"] = text
    env.update(
        LIAISON_DATABASE_URL=dsn,
        LIAISON_WORKERS="1",
        LIAISON_REUSE_PORT="1",
        LIAISON_HOST=config.host,
        LIAISON_PORT=str(config.port),
        LIAISON_DATA_DIR=str(config.data_dir),
    )
    env.pop("LIAISON_BOOTSTRAP_ADMIN", None)  # done once, by the parent
    return env


async def _spawn(env: dict[str, str], log_level: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from server.cli import main; main()",
        "serve",
        "--log-level",
        log_level,
        env=env,
    )


async def supervise(config: Config, flags: dict[str, Any], log_level: str = "INFO") -> None:
    from server.app import _bootstrap_admin
    from storage.database import open_database

    async with open_database(config.data_dir, config.database_url, max_size=2) as (dsn, pool):
        if config.bootstrap_admin:
            async with pool.acquire() as conn:
                await _bootstrap_admin(conn, config.bootstrap_admin)
        config.resolved_jwt_secret()
        config.resolved_sms_secret()
        env = worker_env(config, flags, dsn)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        print(
            f"Liaison supervising {config.workers} workers on http://{config.host}:{config.port}",
            flush=True,
        )
        workers = [await _spawn(env, log_level) for _ in range(config.workers)]
        crashes: list[int] = [0] * len(workers)
        while not stopping.is_set():
            waits = {asyncio.ensure_future(w.wait()): i for i, w in enumerate(workers)}
            stop = asyncio.ensure_future(stopping.wait())
            done, _ = await asyncio.wait([*waits, stop], return_when=asyncio.FIRST_COMPLETED)
            for fut in waits:
                if fut not in done:
                    fut.cancel()
            stop.cancel()
            if stopping.is_set():
                break
            for fut in done:
                i = waits.get(fut)  # type: ignore[call-overload]
                if i is None:
                    continue
                code = workers[i].returncode
                delay = RESTART_BACKOFF_S[min(crashes[i], len(RESTART_BACKOFF_S) - 1)]
                log.warning("worker %d (pid %d) exited with %s; restarting in %.0f s",
                            i, workers[i].pid, code, delay)  # fmt: skip
                started = time.monotonic()
                await asyncio.sleep(delay)
                if stopping.is_set():
                    break
                workers[i] = await _spawn(env, log_level)
                crashes[i] = crashes[i] + 1 if time.monotonic() - started < 60 else 0
        await _stop_all(workers)


async def _stop_all(workers: list[asyncio.subprocess.Process]) -> None:
    for w in workers:
        if w.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                w.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers)), STOP_GRACE_S)
    except TimeoutError:
        for w in workers:
            if w.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.kill()
        await asyncio.gather(*(w.wait() for w in workers))
