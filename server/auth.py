"""Sign-in: argon2id password hashes, HS256 access tokens, rotating refresh tokens with reuse
detection, and the set of revoked sessions every node keeps in memory (fed by the bus)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import argon2
import asyncpg
import jwt
from jwt.algorithms import HMACAlgorithm

from server.bus import Bus
from server.errors import AppError
from storage import auth as q

ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "jti"]
SESSION_REVOKED = "session.revoked"  # bus message kind
TOKEN_EXPIRED = "token_expired"


class _HS256(HMACAlgorithm):  # type: ignore[misc]
    """HS256 that checks each key once. PyJWT re-checks the HMAC key on every call (is it a
    PEM, SSH or DER key, or JSON?), a JSON parse that raises each time: 7% of the server's
    time in a reconnect storm. The check depends on the key alone, so its answer is kept."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one instance for the process
    def prepare_key(self, key: str | bytes) -> bytes:
        return super().prepare_key(key)  # type: ignore[no-any-return]


jwt.unregister_algorithm("HS256")
jwt.register_algorithm("HS256", _HS256())

_hasher = argon2.PasswordHasher()  # argon2id with the library's RFC 9106 defaults


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def is_phc_argon2(value: str) -> bool:
    try:
        argon2.extract_parameters(value)
    except (argon2.exceptions.InvalidHashError, ValueError):
        return False
    return True


@functools.cache
def _dummy_hash() -> str:
    # Verifying against a hash nobody has keeps a wrong account as slow as a wrong password.
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(phc: str | None, password: str) -> bool:
    try:
        return _hasher.verify(phc or _dummy_hash(), password) and phc is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    session_id: str
    exp: float


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: int


def _token_hash(refresh_token: str) -> bytes:
    return hashlib.sha256(refresh_token.encode()).digest()


class Auth:
    def __init__(
        self, pool: asyncpg.Pool, bus: Bus, *, secret: str, access_ttl_s: int, refresh_ttl_s: int
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.secret = secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.revoked: dict[str, float] = {}  # session id -> when it was learnt
        self._failures: dict[str, list[float]] = {}
        bus.on(SESSION_REVOKED, self._on_revoked)

    # -- tokens ----------------------------------------------------------------------------
    def access_token(self, user_id: int, session_id: str) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.access_ttl_s,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def decode(self, token: object) -> Claims:
        if not isinstance(token, str) or not token:
            raise AppError("unauthorized", "an access token is required")
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=ALGORITHMS, options={"require": REQUIRED_CLAIMS}
            )
            user_id = int(claims["sub"])
            session_id = str(claims["sid"])
        except jwt.ExpiredSignatureError:
            raise AppError(
                "unauthorized", "the access token has expired", {"reason": TOKEN_EXPIRED}
            ) from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise AppError("unauthorized", "the access token is not valid") from None
        if session_id in self.revoked:
            raise AppError("unauthorized", "the session has ended")
        return Claims(user_id, session_id, float(claims["exp"]))

    async def _issue(
        self, conn: asyncpg.Connection, user_id: int, session_id: str, new: bool
    ) -> TokenPair:
        refresh = f"{session_id}.{secrets.token_urlsafe(32)}"
        expires = datetime.now(UTC) + timedelta(seconds=self.refresh_ttl_s)
        if new:
            await q.create_session(conn, session_id, user_id, _token_hash(refresh), expires)
        else:
            await q.add_refresh_token(conn, session_id, _token_hash(refresh), expires)
        return TokenPair(
            self.access_token(user_id, session_id), refresh, self.access_ttl_s, user_id
        )

    # -- flows -----------------------------------------------------------------------------
    async def login(self, account: str, password: str) -> TokenPair:
        self._check_failures(account)
        found = await q.password_hash(self.pool, account)
        phc = found[1] if found else None
        ok = await asyncio.to_thread(_verify, phc, password)
        if not ok or found is None:
            self._failures.setdefault(account, []).append(time.monotonic())
            raise AppError("unauthorized", "wrong account or password")
        self._failures.pop(account, None)
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._issue(conn, found[0], uuid.uuid4().hex, new=True)

    def _check_failures(self, account: str) -> None:
        """At most 10 wrong passwords per account per 5 minutes: guessing gets slow."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(account, []) if now - t < 300]
        self._failures[account] = recent
        if len(recent) >= 10:
            raise AppError(
                "rate_limited",
                "too many failed sign-ins; try again later",
                {"retry_after_s": int(300 - (now - recent[0])) + 1},
            )

    async def refresh(self, refresh_token: str) -> TokenPair:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                spent = await q.spend_refresh_token(conn, _token_hash(refresh_token))
                if spent and not (spent.reused or spent.revoked or spent.expired):
                    return await self._issue(conn, spent.user_id, spent.session_id, new=False)
            if spent and spent.reused and not spent.revoked:
                # A spent token came back: someone holds a copy. End the whole session.
                await self.revoke(spent.session_id, "refresh token reused")
        raise AppError("unauthorized", "the refresh token is not valid")

    async def revoke(self, session_id: str, reason: str) -> None:
        await q.revoke_session(self.pool, session_id, reason)
        await self.bus.publish(SESSION_REVOKED, {"session_id": session_id})

    async def load_revoked(self) -> None:
        """Sessions revoked recently enough that their access tokens may still be unexpired."""
        since = datetime.now(UTC) - timedelta(seconds=self.access_ttl_s + 60)
        now = time.monotonic()
        for sid in await q.revoked_since(self.pool, since):
            self.revoked[sid] = now

    def forget_old_revocations(self) -> None:
        horizon = time.monotonic() - self.access_ttl_s - 60
        for sid in [s for s, t in self.revoked.items() if t < horizon]:
            del self.revoked[sid]

    async def _on_revoked(self, msg: dict[str, object]) -> None:
        self.revoked[str(msg["session_id"])] = time.monotonic()
