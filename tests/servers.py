"""Real peers for the outside world: an SMTP server (aiosmtpd) and an HTTP server standing in for
the SMS provider. Loaded with ``pytest_plugins = ["tests.servers"]``.

Both can be told to misbehave for the next N messages, so a test can walk the retry story:
refuse, retry, deliver once."""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import json
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from server.sms import SIGNATURE_HEADER, verify


async def _wait_until(count: Any, n: int, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while count() < n:
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"expected {n} {what} within {timeout} s, got {count()}")
        await asyncio.sleep(0.01)


# --- SMTP -------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    """One accepted message: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def __getitem__(self, header: str) -> Any:
        return self.message[header]

    @property
    def text(self) -> str:
        """The text/plain body, decoded, without the newline set_content adds."""
        part = self.message.get_body(("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content()).removesuffix("\n")  # type: ignore[attr-defined]

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return None if part is None else str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class _Refusal:
    code: int
    message: str
    stage: str  # "rcpt" or "data"


class SmtpServer:
    """aiosmtpd in its own thread (its Controller runs a private loop), collecting messages."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        # (stage, code, envelope) of every refusal, to tell a retry from a first attempt.
        self.refused: list[tuple[str, int, list[str]]] = []
        self._refusals: collections.deque[_Refusal] = collections.deque()
        self._lock = threading.Lock()
        self._controller = _AnyPortController(self, hostname="127.0.0.1")

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def fail_next(
        self, code: int, n: int = 1, *, stage: str = "data", message: str | None = None
    ) -> None:
        """Answer the next ``n`` messages with ``code``, at RCPT TO (how a relay refuses a
        mailbox) or at the end of DATA (how it refuses content or is busy)."""
        assert stage in ("rcpt", "data"), stage
        text = message or ("Try again later" if code < 500 else "Refused")
        with self._lock:
            self._refusals.extend(_Refusal(code, text, stage) for _ in range(n))

    def _take_refusal(self, stage: str) -> _Refusal | None:
        with self._lock:
            if self._refusals and self._refusals[0].stage == stage:
                return self._refusals.popleft()
        return None

    # aiosmtpd handler hooks; they run on the controller's thread.
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._take_refusal("rcpt")
        if refusal is not None:
            self.refused.append(("rcpt", refusal.code, [address]))
            return f"{refusal.code} {refusal.message}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._take_refusal("data")
        if refusal is not None:
            self.refused.append(("data", refusal.code, list(envelope.rcpt_tos)))
            return f"{refusal.code} {refusal.message}"
        # The wire has CRLF line ends; a delivering MTA hands the mailbox LF, and so do we, or
        # every 8bit body would read back with a trailing "\r".
        raw = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        # list.append is atomic: the test's loop sees the message once the client has its 250.
        self.messages.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    async def wait_for(self, n: int, timeout: float = 5) -> list[ReceivedMail]:
        await _wait_until(lambda: len(self.messages), n, timeout, "messages")
        return self.messages

    async def start(self) -> None:
        # Controller.start blocks until its thread answers; keep the test's loop free meanwhile.
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._controller.stop)


class _AnyPortController(Controller):
    """Binds port 0 and reads back the port the kernel chose, instead of guessing a free one
    (Controller connects to ``self.port`` after binding to check it is up, so port=0 alone
    would make that check fail)."""

    def __init__(self, handler: Any, hostname: str) -> None:
        super().__init__(handler, hostname=hostname, port=0)

    def _create_server(self) -> Any:
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    srv = SmtpServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


# --- SMS provider over HTTP ---------------------------------------------------------------------


@dataclass
class SmsProvider:
    """A local SMS provider: checks our signature, accepts JSON posts, de-duplicates by id."""

    secret: str = "provider-secret-" + "s" * 24
    # Seconds to sit on a request before answering (the send is recorded first: a slow answer
    # does not mean it was not delivered, which is why the retry must be de-duplicated).
    delay: float = 0
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted posts, in order
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → first payload
    rejected: list[dict[str, Any]] = field(default_factory=list)  # bad signatures
    # Every request: (status answered, raw body, headers), for tests that look at the wire.
    requests: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    _script: collections.deque[int] = field(default_factory=collections.deque)
    _ts: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._ts is not None, "not started"
        return str(self._ts.make_url("/sms"))

    def script(self, statuses: Iterable[int]) -> None:
        """Answer the next (validly signed) requests with these statuses, then 200 again.
        A scripted 2xx counts as accepted; anything else is not recorded as received."""
        self._script.extend(statuses)

    async def wait_for(self, n: int, timeout: float = 5) -> list[dict[str, Any]]:
        await _wait_until(lambda: len(self.received), n, timeout, "accepted SMS posts")
        return self.received

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        if not verify(self.secret, raw, request.headers.get(SIGNATURE_HEADER)):
            self.requests.append((401, raw, headers))
            self.rejected.append({"body": raw, "signature": request.headers.get(SIGNATURE_HEADER)})
            return web.json_response({"error": "bad signature"}, status=401)
        if request.content_type != "application/json":
            self.requests.append((415, raw, headers))
            return web.json_response({"error": "JSON only"}, status=415)
        try:
            payload = json.loads(raw)
            ok_shape = set(payload) == {"id", "to", "text"}
        except (ValueError, TypeError):
            ok_shape = False
        if not ok_shape:
            self.requests.append((400, raw, headers))
            return web.json_response({"error": "want {id, to, text}"}, status=400)
        status = self._script.popleft() if self._script else 200
        self.requests.append((status, raw, headers))
        if 200 <= status < 300:
            self.received.append(payload)
            self.delivered.setdefault(payload["id"], payload)
        if self.delay:
            await asyncio.sleep(self.delay)
        if 200 <= status < 300:
            return web.json_response({"id": payload["id"], "status": "queued"}, status=status)
        return web.json_response({"error": f"scripted {status}"}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/sms", self._handle)
        self._ts = TestServer(app, host="127.0.0.1")
        await self._ts.start_server()

    async def stop(self) -> None:
        if self._ts is not None:
            await self._ts.close()


@pytest.fixture
async def sms_gateway() -> AsyncIterator[SmsProvider]:
    provider = SmsProvider()
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()
