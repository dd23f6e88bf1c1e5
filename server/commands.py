"""The command registry: each command declared once (name, input model, handler) and dispatched
identically for the Socket.IO and HTTP transports; no handler knows which one called it."""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import structlog

from server.errors import AppError, bad_request, ok
from server.stream import Transaction
from storage import idempotency as idem
from storage.pool import retrying, transient

if TYPE_CHECKING:
    from server.hub import Connection
    from server.services import Services
    from storage.records import User

# Request ids: this process's random prefix and a counter, unique without a uuid4 per command
# (uuid4 reads the kernel's random source: 3% of the samples in a profile of inbound commands).
_BOOT = secrets.token_hex(4)
_REQUESTS = itertools.count(1)
log = structlog.get_logger("liaison.commands")


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every command's input: unknown fields are refused."""


# Shared field types: ids are opaque strings (ours are decimal), text is bounded.
Id = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,17}$", description="an id")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=10_000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]

Handler = Callable[["Ctx", Any], Awaitable[Any]]
# Runs of a command whose transaction PostgreSQL rolled back (deadlock, serialization failure).
COMMAND_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    model: type[Input]
    handler: Handler
    idempotent: bool  # creates keyed by the input's client_msg_id
    # The handler claims the key in the statement that creates, with its answer (a batched
    # create); otherwise the registry claims it in a transaction the handler then runs in.
    claims_key: bool


class CommandSet:
    """What one handler module declares: `commands = CommandSet()`, then `@commands("name")`."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def __call__(
        self, name: str, *, idempotent: bool = False, claims_key: bool = False
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            hints = typing.get_type_hints(fn)
            params = [h for k, h in hints.items() if k != "return"]
            model = params[1]
            assert issubclass(model, Input), f"{name}: input must subclass Input"
            if idempotent:
                assert "client_msg_id" in model.__struct_fields__, name
            assert idempotent or not claims_key, name
            self.commands.append(Command(name, model, fn, idempotent, claims_key))
            return fn

        return register


@dataclass(slots=True)
class Ctx:
    """What a handler gets besides its input."""

    services: Services
    user: User
    conn: Connection | None  # the socket connection, when called over Socket.IO
    request_id: str
    _tx: Transaction | None = field(default=None)

    @property
    def db(self):  # type: ignore[no-untyped-def]
        """Where to read: inside the command's transaction its connection (a handler holding a
        connection must never wait for a second one: under load the pool runs dry and every
        command waits on every other), else the pool."""
        return self._tx.conn if self._tx is not None else self.services.pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """The command's transaction; committed (then pushed) when the block ends, or, for an
        idempotent command, when the handler returns."""
        if self._tx is not None:
            yield self._tx
            return
        async with self.services.stream.transaction() as tx:
            self._tx = tx
            try:
                yield tx
            finally:
                self._tx = None


class _Replayed(Exception):
    def __init__(self, answer: Any) -> None:
        self.answer = answer


_FIELD_PATTERNS = (
    re.compile(r"unknown field `([^`]+)`"),
    re.compile(r"required field `([^`]+)`"),
    re.compile(r"at `\$\.?([^`]*)`"),
)


def _validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> AppError:
    message = str(exc)
    name = ""
    for pattern in _FIELD_PATTERNS:
        m = pattern.search(message)
        if m:
            name = m.group(1)
            break
    return bad_request("invalid input", [{"field": name, "message": message}])


_encoder = msgspec.json.Encoder()


def to_builtins(data: Any) -> Any:
    return msgspec.to_builtins(data)


def _refuse_nul(value: Any, path: str = "") -> None:
    """PostgreSQL stores no NUL character in text or jsonb: refuse it here, as bad input, rather
    than fail at the write as an internal error."""
    if isinstance(value, str):
        if "\x00" in value:
            raise bad_request(
                "text may not contain NUL characters",
                [{"field": path, "message": "contains U+0000"}],
            )
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_nul(k, path)
            _refuse_nul(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_nul(v, f"{path}[{i}]")


class Registry:
    def __init__(self, sets: list[CommandSet]) -> None:
        self.commands: dict[str, Command] = {}
        # Commands running now; once draining (shutting down), new ones are refused.
        self.running = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        # Built once: resolves every model's annotations now (a bad one fails at start-up, not
        # on the first request) and decodes HTTP bodies without a second pass.
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        for s in sets:
            for cmd in s.commands:
                assert cmd.name not in self.commands, f"declared twice: {cmd.name}"
                self.commands[cmd.name] = cmd
                self._decoders[cmd.name] = msgspec.json.Decoder(cmd.model)

    async def dispatch(
        self,
        services: Services,
        user: User,
        conn: Connection | None,
        name: str,
        payload: bytes | msgspec.Raw | None,
    ) -> dict[str, Any]:
        """Run one command; always returns an envelope, never raises."""
        started = time.perf_counter()
        request_id = f"{_BOOT}{next(_REQUESTS):08x}"
        cmd = self.commands.get(name) if isinstance(name, str) else None
        label = cmd.name if cmd else "unknown"
        structlog.contextvars.bind_contextvars(
            request_id=request_id, command=label, user_id=user.id
        )
        self.running += 1
        self._idle.clear()
        try:
            if self.draining:
                raise AppError(
                    "unavailable", "the server is restarting; try again", {"retry_after_s": 1}
                )
            if cmd is None:
                raise AppError("not_found", f"unknown command: {str(name)[:100]}")
            wait = await services.limiter.acquire(user.id)
            if wait:
                raise AppError(
                    "rate_limited",
                    "too many commands",
                    {"retry_after_s": max(0.001, round(wait, 3))},
                )
            args = self._decode(cmd, self._decoders[cmd.name], payload)
            data = await self._run_retrying(cmd, services, user, conn, request_id, args)
            envelope = ok(data)
            outcome = "ok"
        except _Replayed as replay:
            envelope, outcome = ok(replay.answer), "ok"
        except AppError as err:
            envelope, outcome = err.envelope(), err.code
        except Exception:
            log.exception("command failed")
            envelope = AppError("internal", f"internal error (request {request_id})").envelope()
            outcome = "internal"
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "command", "user_id")
            self.running -= 1
            if not self.running:
                self._idle.set()
        services.metrics.command_done(label, outcome, time.perf_counter() - started)
        return envelope

    async def drain(self, timeout: float) -> bool:
        """Refuse new commands (`unavailable`) and wait, at most `timeout`, for the running ones
        to be answered; True when none is left."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @staticmethod
    async def refuse(services: Services, user_id: int, err: AppError) -> dict[str, Any]:
        """The answer to a frame refused before it became a command, taken from the sender's
        rate like a command, and counted."""
        wait = await services.limiter.acquire(user_id)
        if wait:
            err = AppError(
                "rate_limited", "too many commands", {"retry_after_s": max(0.001, round(wait, 3))}
            )
        services.metrics.command_done("refused", err.code, 0.0)
        return err.envelope()

    @staticmethod
    def _decode(
        cmd: Command, decoder: msgspec.json.Decoder[Any], payload: bytes | msgspec.Raw | None
    ) -> Input:
        """The payload as JSON text (an HTTP body, or an event's argument as sent): an object,
        or nothing or null for no arguments."""
        raw = bytes(payload).strip() if payload is not None else b""
        if raw in (b"", b"null"):
            raw = b"{}"
        elif raw[:1] != b"{":
            raise bad_request("the payload must be a JSON object")
        try:
            args: Input = decoder.decode(raw)
            if b"\\u0000" in raw:  # rare: look closer
                _refuse_nul(msgspec.to_builtins(args))
            return args
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _validation_error(exc) from None
        except RecursionError:
            raise bad_request("the payload is nested too deeply") from None

    async def _run_retrying(
        self,
        cmd: Command,
        services: Services,
        user: User,
        conn: Connection | None,
        request_id: str,
        args: Input,
    ) -> Any:
        """The command, run again from the start when PostgreSQL rolled its transaction back (a
        deadlock, a serialization failure: nothing happened), and answered `unavailable` when
        the database is unreachable: nothing happened then either, or, if the connection went
        during the commit, a retry is what idempotent creates (`client_msg_id`) are for."""
        try:
            return await retrying(
                lambda: self._run(cmd, Ctx(services, user, conn, request_id), args),
                cmd.name,
                attempts=COMMAND_ATTEMPTS,
                lost_too=False,
            )
        except Exception as exc:
            if transient(exc) is None:
                raise
            log.warning("database unavailable: %s", type(exc).__name__)
            raise AppError(
                "unavailable",
                "the database is unavailable for a moment; try again",
                {"retry_after_s": 1},
            ) from None

    @staticmethod
    async def _run(cmd: Command, ctx: Ctx, args: Input) -> Any:
        key = getattr(args, "client_msg_id", None) if cmd.idempotent else None
        if key is None:
            return to_builtins(await cmd.handler(ctx, args))
        k = idem.Key(ctx.user.id, cmd.name, key)
        if cmd.claims_key:
            try:
                return to_builtins(await cmd.handler(ctx, args))
            except AppError:
                # A retry of a create that went through, failing a check only now (its recipient
                # since removed, say): still the first answer.
                replay = await idem.answers(ctx.services.pool, [k])
                if k in replay:
                    raise _Replayed(replay[k]) from None
                raise
        async with ctx.services.stream.transaction() as tx:
            if not (await idem.claim(tx.conn, [k], [None]))[0]:
                raise _Replayed((await idem.answers(tx.conn, [k])).get(k))
            ctx._tx = tx
            data = to_builtins(await cmd.handler(ctx, args))
            await idem.store_answer(tx.conn, k, _encoder.encode(data))
        return data
