"""SMS gateways behind one interface, chosen by LIAISON_SMS_GATEWAY (the contract's §1).

- ``log``: development; every SMS is logged and the last 200 are kept for a dev page.
- ``smtp://host:port?domain=D``: e-mail-to-SMS, a mail to ``<phone>@D`` (see server.mailer).
- ``http(s)://…``: a JSON POST signed with HMAC-SHA256 in ``X-Liaison-Signature``.

A gateway either returns (the provider accepted the SMS) or raises SendFailed (server/delivery.py,
shared with the mailer), whose ``final`` tells the outbox worker whether to give up (the provider
refused this SMS) or retry later (the provider or the network is having a bad moment). Every send
carries the outbox's sms id, so a provider that accepted a send whose answer we never saw can drop
the retry as a duplicate.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import msgspec
import structlog

from server.delivery import SendFailed
from server.mailer import Mailer, parse_smtp_url

log = structlog.get_logger("liaison.sms")

SIGNATURE_HEADER = "X-Liaison-Signature"


class SmsGateway(Protocol):
    name: str

    async def send(self, sms_id: str, phone: str, text: str) -> None: ...

    async def close(self) -> None: ...


# --- signatures -------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body, as sent in X-Liaison-Signature both ways."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    if not signature or not secret:
        return False
    try:
        # compare_digest refuses non-ASCII str; such a header cannot be ours anyway.
        given = signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), given)


# --- fitting a text into one SMS ------------------------------------------------------------------

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + septet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_LIMIT = 160
UCS2_LIMIT = 70
# Characters that only make sense attached to what follows: left dangling at a cut they would
# render as garbage (a lone joiner or variation selector after the last emoji).
_DANGLING = "\u200d\ufe0e\ufe0f"


@dataclass(slots=True)
class _Measure:
    """Running cost of a text in both encodings, so a cut point is found in one pass."""

    gsm: bool = True
    septets: int = 0
    # UCS-2 as phones really do it is UTF-16: a character beyond the BMP is a surrogate pair.
    units: int = 0

    def add(self, ch: str) -> None:
        if ch in GSM7_EXTENSION:
            self.septets += 2
        elif ch in GSM7_BASIC:
            self.septets += 1
        else:
            self.gsm = False
        self.units += 2 if ord(ch) > 0xFFFF else 1

    def fits_with(self, other: _Measure) -> bool:
        if self.gsm and other.gsm:
            return self.septets + other.septets <= GSM7_LIMIT
        return self.units + other.units <= UCS2_LIMIT


def _measure(text: str) -> _Measure:
    m = _Measure()
    for ch in text:
        m.add(ch)
    return m


def fit_sms(text: str, marker: str = "…") -> str:
    """The text unchanged if it fits one SMS, else its longest prefix that fits together with the
    marker. Any character outside GSM-7 (Chinese, "…", emoji) makes the whole SMS UCS-2: 70.
    Cuts fall between code points, so a surrogate pair is never split."""
    empty = _Measure()
    if _measure(text).fits_with(empty):
        return text
    tail = _measure(marker)
    if not tail.fits_with(empty):
        raise ValueError("the marker alone does not fit in an SMS")
    prefix = _Measure()
    cut = 0
    for i, ch in enumerate(text):
        prefix.add(ch)
        if not prefix.fits_with(tail):
            break
        cut = i + 1
    # Shorter only makes it fit better: a prefix of a fitting prefix fits too.
    return text[:cut].rstrip().rstrip(_DANGLING).rstrip() + marker


# --- log gateway (development) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentSms:
    id: str
    phone: str
    text: str
    at: datetime


class LogGateway:
    """Sends nothing: logs each SMS and keeps the last ones for the dev page."""

    name = "log"
    KEEP = 200

    def __init__(self) -> None:
        self.sent: collections.deque[SentSms] = collections.deque(maxlen=self.KEEP)

    async def send(self, sms_id: str, phone: str, text: str) -> None:
        self.sent.append(SentSms(sms_id, phone, text, datetime.now(UTC)))
        log.info("sms.sent", gateway=self.name, id=sms_id, to=phone, text=text)

    async def close(self) -> None:
        pass


def render_dev_page(gateway: LogGateway) -> str:
    """A self-contained HTML page of the SMS the log gateway 'sent', newest first. Every value is
    escaped: texts come from users."""
    rows = "\n".join(
        "<tr><td>{at}</td><td>{phone}</td><td>{id}</td><td class=text>{text}</td></tr>".format(
            at=html.escape(s.at.isoformat(timespec="seconds")),
            phone=html.escape(s.phone),
            id=html.escape(s.id),
            text=html.escape(s.text),
        )
        for s in reversed(gateway.sent)
    )
    if not rows:
        rows = '<tr><td colspan="4">none yet</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>SMS sent (log gateway)</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
td.text {{ white-space: pre-wrap; max-width: 40em; }}
</style></head>
<body><h1>SMS sent (log gateway)</h1>
<p>{len(gateway.sent)} kept (the last {gateway.sent.maxlen}), newest first.</p>
<table><thead><tr><th>at (UTC)</th><th>to</th><th>id</th><th>text</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""


# --- e-mail-to-SMS gateway ----------------------------------------------------------------------

_PHONE_NOISE = str.maketrans("", "", " -().\t")


def _phone_mailbox(phone: str) -> str:
    """The local part for <phone>@domain: digits with an optional leading +, nothing that could
    reach another mailbox or break the address."""
    digits = phone.translate(_PHONE_NOISE)
    bare = digits.removeprefix("+")
    if not bare.isascii() or not bare.isdigit() or len(bare) > 20:
        raise SendFailed(f"not a phone number: {phone!r}", final=True)
    return digits


class SmtpGateway:
    name = "smtp"

    def __init__(self, mailer: Mailer, domain: str) -> None:
        self.mailer = mailer
        self.domain = domain

    @classmethod
    def from_url(cls, url: str) -> SmtpGateway:
        """``smtp://[user:pass@]host:port?domain=D[&from=…][&starttls=1]``."""
        target, query = parse_smtp_url(url, extra_keys={"domain"})
        domain = query.get("domain", "").strip()
        if not domain or "@" in domain or any(c.isspace() for c in domain):
            raise ValueError("an smtp:// SMS gateway needs ?domain=D (mail goes to <phone>@D)")
        sender = query.get("from") or f"liaison@{domain}"
        return cls(Mailer(target, sender=sender), domain)

    async def send(self, sms_id: str, phone: str, text: str) -> None:
        # Subject left empty: many e-mail-to-SMS gateways prepend it to the 160 characters.
        await self.mailer.send(
            f"{_phone_mailbox(phone)}@{self.domain}",
            "",
            text,
            f"sms-{sms_id}",
            headers={"X-Liaison-SMS-Id": sms_id},
        )

    async def close(self) -> None:
        pass


# --- HTTP gateway -------------------------------------------------------------------------------

# 4xx that say "not now" rather than "never": retried like a 5xx.
_RETRYABLE_4XX = frozenset({408, 425, 429})


class _SmsPost(msgspec.Struct):
    id: str
    to: str
    text: str


_encode = msgspec.json.Encoder().encode


@dataclass(eq=False)
class HttpGateway:
    url: str
    secret: str = field(repr=False)
    timeout_s: float = 10.0
    name: str = field(default="http", init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def send(self, sms_id: str, phone: str, text: str) -> None:
        body = _encode(_SmsPost(sms_id, phone, text))  # encoded once: what is signed is sent
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            "Idempotency-Key": sms_id,
        }
        try:
            # A redirect would turn the POST into a GET elsewhere: treated as an answer instead.
            async with self._client().post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return
                detail = (await resp.content.read(200)).decode("utf-8", "replace").strip()
                status = resp.status
        except TimeoutError:
            # aiohttp's own timeouts are TimeoutError subclasses too; caught first to say so.
            raise SendFailed(f"no answer within {self.timeout_s} s", final=False) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}", final=False) from None
        reason = f"HTTP {status}" + (f": {detail}" if detail else "")
        final = 300 <= status < 500 and status not in _RETRYABLE_4XX
        raise SendFailed(reason, final=final)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# --- choosing one -----------------------------------------------------------------------------


def make_gateway(url: str, secret: str) -> SmsGateway:
    """The gateway for LIAISON_SMS_GATEWAY; ValueError for anything else, at startup rather than
    at the first page."""
    url = url.strip()
    if url == "log":
        return LogGateway()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("smtp", "smtps"):
        return SmtpGateway.from_url(url)
    if scheme in ("http", "https"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError("no host in the SMS gateway URL")
        try:
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            raise ValueError("bad port in the SMS gateway URL") from None
        if not secret:
            raise ValueError("the HTTP SMS gateway needs LIAISON_SMS_SECRET to sign its posts")
        return HttpGateway(url, secret)
    # Only the scheme is echoed: the rest of a URL may hold a password.
    raise ValueError(
        "LIAISON_SMS_GATEWAY must be 'log', 'smtp://host:port?domain=D' or 'http(s)://…'"
        f" (got scheme {scheme!r})"
    )
