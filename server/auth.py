"""Sign-in: argon2id password hashes, HS256 access tokens, rotating refresh tokens with reuse
detection, the set of revoked sessions every node keeps in memory (fed by the bus), the
throttling of password guesses, and the signed-in user: their view and the administrators-only
check."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import math
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import asyncpg
import jwt
from jwt.algorithms import HMACAlgorithm

from server.bus import Bus
from server.errors import AppError
from storage import auth as q
from storage.records import User

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


def verify_password(phc: str, password: str) -> bool:
    return _verify(phc, password)


@functools.cache
def _dummy_hash() -> str:
    # Verifying against a hash nobody has keeps a wrong account as slow as a wrong password.
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(phc: str | None, password: str) -> bool:
    try:
        return _hasher.verify(phc or _dummy_hash(), password) and phc is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


# -- sign-in throttling ----------------------------------------------------------------------
# Wrong passwords are budgeted per account and per client address, the way mature servers do
# it. A budget lets `n` failures through at once and then one more every SIGNIN_WINDOW_S / n
# seconds (a generic cell rate algorithm: one float per key). A sign-in reserves a failure in
# every budget it draws on before its password is checked, with no await in between, and gives
# it back if the password was right: so 300 concurrent guesses get `n` checks, not 300.
SIGNIN_WINDOW_S = 300.0
# Per account, from all the places it has not signed in from, together.
ACCOUNT_FAILURES = 10
# Per account at each place it has signed in from: there, the user is out of reach of what
# strangers elsewhere spend, and only their own mistakes (or a guesser at that very address)
# make them wait.
PLACE_FAILURES = 10
# Per client address over every account name (real or not), from places unknown for the
# account: one address cannot spray names, nor make the server run argon2 for each.
ADDRESS_FAILURES = 30
# A place is a client address (IPv6: its /64, what one subscriber gets); it stays known this
# long after a successful sign-in there. X-Forwarded-For is not trusted: the peer is the place.
KNOWN_PLACE_TTL_S = 30 * 24 * 3600.0
# Keys per budget table, the least recently charged forgotten first, so memory is bounded
# whatever is tried (about 250 bytes a key). Names that are no account have a table a fifth
# this size of their own, so a spray of made-up names cannot push real accounts' budgets out.
MAX_TRACKED = 20_000
# Known places (account, place) kept, the least recently used forgotten first: a few places
# for each of 10,000 users. With the budgets: at most 114,000 keys, about 25 MB.
MAX_KNOWN_PLACES = 50_000
# argon2id checks at once: each holds 64 MiB (the library's RFC 9106 defaults) and a core.
VERIFY_SLOTS = 4
# Sign-ins waiting for a check; beyond this they are answered rate_limited at once.
VERIFY_QUEUE = 256


def client_place(address: str | None) -> str:
    """The place a sign-in comes from: the peer address, an IPv6 one cut to its /64."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _rate_limited(wait_s: float, message: str) -> AppError:
    return AppError("rate_limited", message, {"retry_after_s": max(1, math.ceil(wait_s))})


class _Budget:
    """`burst` failures per key at once, then one more every `window_s / burst` seconds. The
    state of a key is the time its budget is whole again; a key whose time has passed says
    nothing and is dropped, and past `max_keys` the least recently charged key goes."""

    def __init__(self, burst: int, window_s: float, max_keys: int) -> None:
        self.interval = window_s / burst
        self.tolerance = window_s - self.interval
        self.max_keys = max_keys
        self._whole_at: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._whole_at)

    def wait(self, key: str, now: float) -> float:
        """Seconds until this key may fail once more (0: now)."""
        whole_at = self._whole_at.get(key)
        return 0.0 if whole_at is None else max(0.0, whole_at - self.tolerance - now)

    def charge(self, key: str, now: float) -> None:
        self._whole_at[key] = max(self._whole_at.get(key, now), now) + self.interval
        self._whole_at.move_to_end(key)
        self._forget(now)

    def refund(self, key: str) -> None:
        if key in self._whole_at:
            self._whole_at[key] -= self.interval

    def clear(self, key: str) -> None:
        self._whole_at.pop(key, None)

    def _forget(self, now: float) -> None:
        while self._whole_at:
            oldest, whole_at = next(iter(self._whole_at.items()))
            if whole_at > now and len(self._whole_at) <= self.max_keys:
                return
            del self._whole_at[oldest]


class _KnownPlaces:
    """(account, place) pairs that signed in successfully, each for KNOWN_PLACE_TTL_S; at most
    `max_keys`, the least recently used forgotten first."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def holds(self, key: str, now: float) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= now:
            del self._until[key]
            return False
        return True

    def remember(self, key: str, now: float) -> None:
        self._until[key] = now + KNOWN_PLACE_TTL_S
        self._until.move_to_end(key)
        while self._until:
            oldest, until = next(iter(self._until.items()))
            if until > now and len(self._until) <= self.max_keys:
                return
            del self._until[oldest]


@dataclass(frozen=True, slots=True)
class Attempt:
    """A sign-in that has reserved its failures: they stand unless it succeeds."""

    account: str
    place: str
    charged: tuple[tuple[_Budget, str], ...]


class SignInThrottle:
    """The budgets of wrong passwords (see the constants above). Everything here is
    synchronous: a check and its reservation happen without a chance for another sign-in to
    come in between."""

    def __init__(
        self,
        max_keys: int = MAX_TRACKED,
        max_known: int = MAX_KNOWN_PLACES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._accounts = _Budget(ACCOUNT_FAILURES, SIGNIN_WINDOW_S, max_keys)
        self._strangers = _Budget(ACCOUNT_FAILURES, SIGNIN_WINDOW_S, max(1, max_keys // 5))
        self._addresses = _Budget(ADDRESS_FAILURES, SIGNIN_WINDOW_S, max_keys)
        self._places = _Budget(PLACE_FAILURES, SIGNIN_WINDOW_S, max_keys)
        self._known = _KnownPlaces(max_known)

    def tracked(self) -> int:
        """Keys held in all the tables: bounded whatever is tried."""
        tables = (self._accounts, self._strangers, self._addresses, self._places, self._known)
        return sum(len(t) for t in tables)

    def check(self, account: str, place: str) -> None:
        """Refuse at once, reserving nothing, a sign-in whose budget is already spent (before
        the account is even looked up, so a spent name answers the same whether it exists)."""
        now = self.clock()
        self._refuse_if_spent(self._budgets(account, place, None, now), now)

    def reserve(self, account: str, place: str, *, exists: bool) -> Attempt:
        """Charge this sign-in's failure to every budget it draws on, or refuse it if one is
        spent. Names that are no account are budgeted like accounts, apart."""
        now = self.clock()
        charged = self._budgets(account, place, exists, now)
        self._refuse_if_spent(charged, now)
        for budget, key in charged:
            budget.charge(key, now)
        return Attempt(account, place, charged)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: give the failures back and remember the place."""
        for budget, key in attempt.charged:
            budget.refund(key)
        pair = _pair(attempt.account, attempt.place)
        self._places.clear(pair)
        self._known.remember(pair, self.clock())

    def _budgets(
        self, account: str, place: str, exists: bool | None, now: float
    ) -> tuple[tuple[_Budget, str], ...]:
        pair = _pair(account, place)
        if exists is not False and self._known.holds(pair, now):
            return ((self._places, pair),)
        if exists is None:
            return ((self._accounts, account), (self._strangers, account), (self._addresses, place))
        return ((self._accounts if exists else self._strangers, account), (self._addresses, place))

    @staticmethod
    def _refuse_if_spent(budgets: tuple[tuple[_Budget, str], ...], now: float) -> None:
        wait = max(budget.wait(key, now) for budget, key in budgets)
        if wait > 0:
            raise _rate_limited(wait, "too many failed sign-ins; try again later")


def _pair(account: str, place: str) -> str:
    return f"{place} {account}"  # a place has no space in it


class _Verifiers:
    """At most `slots` password checks run at once, at most `queue` more wait for a slot, and
    the rest are told to come back shortly. A slot is freed when its check's thread ends, not
    when the request that started it goes away (a thread cannot be cancelled)."""

    def __init__(self, slots: int, queue: int) -> None:
        self._free = asyncio.Semaphore(slots)
        self._queue = queue
        self._waiting = 0

    async def acquire(self) -> None:
        if self._free.locked() and self._waiting >= self._queue:
            raise _rate_limited(1, "too many sign-ins at once; try again shortly")
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1

    def release(self) -> None:
        self._free.release()

    async def run(self, check: Callable[[str | None, str], bool], phc: str | None, pw: str) -> bool:
        """Run `check` on a thread in the slot the caller acquired, and free the slot after."""
        done = asyncio.ensure_future(asyncio.to_thread(check, phc, pw))
        done.add_done_callback(lambda _: self._free.release())
        return await asyncio.shield(done)


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
        self.throttle = SignInThrottle()
        self._verifiers = _Verifiers(VERIFY_SLOTS, VERIFY_QUEUE)
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
    async def login(self, account: str, password: str, address: str | None = None) -> TokenPair:
        """Check a password from the client at `address`, within the sign-in budgets."""
        place = client_place(address)
        self.throttle.check(account, place)
        found = await q.password_hash(self.pool, account)
        await self._verifiers.acquire()
        try:
            attempt = self.throttle.reserve(account, place, exists=found is not None)
        except AppError:
            self._verifiers.release()
            raise
        ok = await self._verifiers.run(_verify, found[1] if found else None, password)
        if not ok or found is None:
            raise AppError("unauthorized", "wrong account or password")  # the failure stands
        self.throttle.succeeded(attempt)
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._issue(conn, found[0], uuid.uuid4().hex, new=True)

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

    async def revoke_users(
        self, conn: asyncpg.Connection, user_ids: list[int], reason: str
    ) -> list[str]:
        """End every session of these users (deactivation, a new password) inside the caller's
        transaction; returns the sessions to `announce_revoked` once it has committed."""
        return await q.revoke_user_sessions(conn, user_ids, reason, self.access_ttl_s + 60)

    async def announce_revoked(self, session_ids: list[str]) -> None:
        """Every node refuses these sessions' access tokens and drops their sockets (2 s)."""
        for session_id in session_ids:
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


# --- the signed-in user ------------------------------------------------------------------------
def user_view(user: User) -> dict[str, Any]:
    """The signed-in user as login returns it."""
    return {
        "id": str(user.id),
        "account": user.account,
        "name": user.name,
        "department_id": str(user.department_id) if user.department_id else None,
        "title": user.title,
        "phone": user.phone,
        "email": user.email,
        "roles": list(user.roles),
        "supervisor_id": str(user.supervisor_id) if user.supervisor_id else None,
    }


# The roles a person may hold: everyone is staff; a leader heads a department; an admin runs
# the system; the duty roles are who the built-in approvals and the archive ask for (文电科's
# document officer, the archivist, finance, the vehicle pool). A closed list, so a typo in an
# import or a definition is an error rather than a role nobody holds.
ROLES = ("staff", "leader", "admin", "document_officer", "archivist", "finance", "vehicle_admin")


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise AppError("forbidden", "administrators only")
