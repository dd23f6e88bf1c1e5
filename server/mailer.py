"""E-mail out, for notifications (LIAISON_SMTP_URL) and for the e-mail-to-SMS gateway.

One message per connection through aiosmtplib: notifications are rare next to pages, and a fresh
connection never inherits a half-broken session from a relay that timed us out.

Failures are classified once, here, for both users: a permanent (5xx) refusal of this message by
the relay is final; anything about the connection or our own setup (refused, timed out, 4xx,
authentication, TLS) is retried, since fixing the relay or the configuration makes the very same
message go through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from server.delivery import SendFailed

DEFAULT_SENDER = "Liaison <liaison@localhost>"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# Replies that refuse us rather than the message: 530 auth required, 534/535/538 auth failed.
_SETUP_CODES = frozenset({530, 534, 535, 538})
# The left part of <id@liaison>: RFC 5322 dot-atom text, nothing that could end the header.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}")


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect; parsed from an smtp:// or smtps:// URL."""

    host: str
    port: int | None = None  # None: aiosmtplib's default for the TLS mode (25, 465, 587)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False  # smtps://: TLS from the first byte
    # None: upgrade when the relay offers STARTTLS (aiosmtplib's default); True: required.
    start_tls: bool | None = None
    timeout_s: float = 30.0  # per SMTP step, as aiosmtplib applies it


def parse_smtp_url(
    url: str, extra_keys: frozenset[str] | set[str] = frozenset()
) -> tuple[SmtpTarget, dict[str, str]]:
    """``smtp[s]://[user:pass@]host[:port][?from=…&starttls=0|1&…]`` → the target and the query.
    Unknown query keys are refused, so a typo does not silently change where mail goes."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ValueError(f"an SMTP URL starts with smtp:// or smtps://, not {scheme!r}")
    if not parts.hostname:
        raise ValueError("no host in the SMTP URL")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("bad port in the SMTP URL") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - {"from", "starttls"} - set(extra_keys)
    if unknown:
        raise ValueError(f"unknown SMTP URL parameters: {', '.join(sorted(unknown))}")
    start_tls: bool | None = None
    if "starttls" in query:
        flag = query["starttls"].strip().lower()
        if flag not in _TRUE | _FALSE:
            raise ValueError("starttls must be 1 or 0")
        start_tls = flag in _TRUE
    if scheme == "smtps" and start_tls:
        raise ValueError("smtps:// is TLS already; starttls=1 does not apply")
    target = SmtpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=scheme == "smtps",
        # smtps:// must not try STARTTLS inside TLS; aiosmtplib refuses the combination.
        start_tls=False if scheme == "smtps" else start_tls,
    )
    return target, query


def classify(exc: Exception) -> SendFailed:
    """The one place an SMTP failure becomes final (this message is refused for good) or not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        final = bool(codes) and all(500 <= c < 600 and c not in _SETUP_CODES for c in codes)
        return SendFailed(f"recipient refused: {reason}", final=final)
    if isinstance(
        exc,
        aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError,
    ):
        final = 500 <= exc.code < 600 and exc.code not in _SETUP_CODES
        return SendFailed(f"{type(exc).__name__}: {exc.code} {exc.message}", final=final)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # Greeting, HELO or AUTH refused: the relay or our credentials, not this message.
        return SendFailed(f"{type(exc).__name__}: {exc.code} {exc.message}", final=False)
    if isinstance(exc, TimeoutError):
        return SendFailed(f"SMTP timeout: {exc}", final=False)
    return SendFailed(f"{type(exc).__name__}: {exc}", final=False)


class Mailer:
    def __init__(self, target: SmtpTarget, *, sender: str = DEFAULT_SENDER) -> None:
        self.target = target
        self.sender = sender

    @classmethod
    def from_url(cls, url: str | None) -> Mailer | None:
        """None when e-mail is not configured; ValueError when it is, wrongly."""
        if url is None or not url.strip():
            return None
        target, query = parse_smtp_url(url)
        return cls(target, sender=query.get("from") or DEFAULT_SENDER)

    def __repr__(self) -> str:
        t = self.target
        return f"Mailer({t.host}:{t.port or 'default'}, sender={self.sender!r})"

    def compose(
        self,
        to: str,
        subject: str,
        text: str,
        message_id: str,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EmailMessage:
        if not _MESSAGE_ID.fullmatch(message_id):
            raise ValueError(f"message id {message_id!r} cannot go into a Message-ID")
        # EmailMessage's default policy writes non-ASCII headers as RFC 2047 UTF-8 words and the
        # body as UTF-8, and refuses CR/LF in header values (no header injection from a subject).
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{message_id}@liaison>"
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(text, charset="utf-8")
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8")
        return msg

    async def send(
        self,
        to: str,
        subject: str,
        text: str,
        message_id: str,
        html: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Deliver one message to the relay; SendFailed (final or not) when it did not take it.
        ``message_id`` should be stable across retries so the receiver can drop duplicates."""
        try:
            msg = self.compose(to, subject, text, message_id, html, headers)
        except (ValueError, TypeError) as exc:
            # Nothing about this message will change on a retry.
            raise SendFailed(f"cannot build the message: {exc}", final=True) from None
        await self.deliver(msg)

    async def deliver(self, msg: EmailMessage) -> None:
        t = self.target
        try:
            await aiosmtplib.send(
                msg,
                hostname=t.host,
                port=t.port,
                username=t.username,
                password=t.password,
                use_tls=t.use_tls,
                start_tls=t.start_tls,
                timeout=t.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from None
