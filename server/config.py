"""Configuration: environment variables (the contract's §1 table) mirrored by CLI flags."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _env(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return cast(raw)


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in raw.split(",") if o.strip())


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # Bind with SO_REUSEPORT, so several processes share the port (set for `--workers` ones).
    reuse_port: bool = False
    data_dir: Path = Path("./.liaison")
    database_url: str | None = None
    redis_url: str | None = None
    jwt_secret: str | None = None
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 24 * 3600
    bootstrap_admin: str | None = None
    sms_gateway: str = "log"
    sms_secret: str | None = None
    smtp_url: str | None = None
    sms_offline_grace_s: float = 60
    sms_urgent_unread_s: float = 300
    sms_digest_s: float = 300
    max_frame_bytes: int = 65536
    max_file_bytes: int = 50 * 1024 * 1024
    # A socket whose unsent data passes this is cut (it resumes later with last_seq): one client
    # that stops reading must never hold up the others, nor grow the server without bound.
    max_send_buffer_bytes: int = 1024 * 1024
    # The address browsers use (scheme://host[:port]): their Origin must match it or one of
    # allowed_origins. Unset: the address the server listens on.
    public_url: str | None = None
    # E-mail digests: to people offline this long with unread pages, at most one per interval.
    email_offline_s: float = 1800
    email_digest_s: float = 3600
    # Automatic circulation reminders go out this long before the deadline (and once at it).
    circulation_remind_before_s: float = 3600
    # Local time for quiet hours.
    timezone: str = "Asia/Shanghai"
    outbox_max_attempts: int = 6
    outbox_backoff_s: float = 2.0
    # Browser origins allowed to open a socket besides the server's own (comma separated).
    allowed_origins: tuple[str, ...] = ()
    event_retention_days: float = 30
    replay_limit: int = 1000
    rate_per_s: float = 20
    rate_burst: int = 50
    max_connections_per_user: int = 20
    # How often sockets are checked for an expired access token (the contract allows 60 s).
    token_sweep_s: float = 10
    # Several nodes (LIAISON_REDIS_URL): how often each node compares its users' head seqs with
    # what it pushed (bounds the delay of a lost hint), how long a node's presence lease lasts
    # (a dead node's users go offline after it), and how often the bus pings itself.
    sweep_s: float = 3
    presence_lease_s: float = 10
    bus_ping_s: float = 1
    web_dist: Path = field(
        default_factory=lambda: Path(__file__).resolve().parent.parent / "web" / "dist"
    )

    @classmethod
    def from_env(cls, **overrides: Any) -> Config:
        cfg = cls(
            host=_env("LIAISON_HOST", cls.host),
            port=_env("LIAISON_PORT", cls.port, int),
            workers=_env("LIAISON_WORKERS", cls.workers, int),
            reuse_port=_env("LIAISON_REUSE_PORT", cls.reuse_port, lambda v: v not in ("0", "")),
            data_dir=_env("LIAISON_DATA_DIR", cls.data_dir, Path),
            database_url=_env("LIAISON_DATABASE_URL", None),
            redis_url=_env("LIAISON_REDIS_URL", None),
            jwt_secret=_env("LIAISON_JWT_SECRET", None),
            access_ttl_s=_env("LIAISON_ACCESS_TTL_S", cls.access_ttl_s, int),
            bootstrap_admin=_env("LIAISON_BOOTSTRAP_ADMIN", None),
            sms_gateway=_env("LIAISON_SMS_GATEWAY", cls.sms_gateway),
            sms_secret=_env("LIAISON_SMS_SECRET", None),
            smtp_url=_env("LIAISON_SMTP_URL", None),
            sms_offline_grace_s=_env("LIAISON_SMS_OFFLINE_GRACE_S", cls.sms_offline_grace_s, float),
            sms_urgent_unread_s=_env("LIAISON_SMS_URGENT_UNREAD_S", cls.sms_urgent_unread_s, float),
            sms_digest_s=_env("LIAISON_SMS_DIGEST_S", cls.sms_digest_s, float),
            max_frame_bytes=_env("LIAISON_MAX_FRAME_BYTES", cls.max_frame_bytes, int),
            max_file_bytes=_env("LIAISON_MAX_FILE_BYTES", cls.max_file_bytes, int),
            max_send_buffer_bytes=_env(
                "LIAISON_MAX_SEND_BUFFER_BYTES", cls.max_send_buffer_bytes, int
            ),
            public_url=_env("LIAISON_PUBLIC_URL", None),
            email_offline_s=_env("LIAISON_EMAIL_OFFLINE_S", cls.email_offline_s, float),
            email_digest_s=_env("LIAISON_EMAIL_DIGEST_S", cls.email_digest_s, float),
            timezone=_env("LIAISON_TIMEZONE", cls.timezone),
            rate_per_s=_env("LIAISON_RATE_PER_S", cls.rate_per_s, float),
            rate_burst=_env("LIAISON_RATE_BURST", cls.rate_burst, int),
            max_connections_per_user=_env(
                "LIAISON_MAX_CONNECTIONS_PER_USER", cls.max_connections_per_user, int
            ),
            circulation_remind_before_s=_env(
                "LIAISON_CIRCULATION_REMIND_BEFORE_S", cls.circulation_remind_before_s, float
            ),
            allowed_origins=_env("LIAISON_ALLOWED_ORIGINS", (), _origins),
            sweep_s=_env("LIAISON_SWEEP_S", cls.sweep_s, float),
            presence_lease_s=_env("LIAISON_PRESENCE_LEASE_S", cls.presence_lease_s, float),
            bus_ping_s=_env("LIAISON_BUS_PING_S", cls.bus_ping_s, float),
            event_retention_days=_env(
                "LIAISON_EVENT_RETENTION_DAYS", cls.event_retention_days, float
            ),
        )
        known = {f.name for f in fields(cls)}
        return replace(cfg, **{k: v for k, v in overrides.items() if k in known and v is not None})

    def secret_file(self, name: str) -> str:
        """A secret generated once and kept in the data dir, so restarts keep sessions valid."""
        path = self.data_dir / name
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return value

    def resolved_jwt_secret(self) -> str:
        return self.jwt_secret or self.secret_file("jwt_secret")

    def resolved_sms_secret(self) -> str:
        return self.sms_secret or self.secret_file("sms_secret")
