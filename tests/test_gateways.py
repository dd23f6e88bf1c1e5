"""SMS gateways and the mailer against real peers: a local SMS provider over HTTP and aiosmtpd.

The story each test tells: what the provider receives, and whether a failure tells the outbox to
give up (final) or to try again."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import pytest

from server.delivery import SendFailed
from server.mailer import DEFAULT_SENDER, Mailer
from server.sms import (
    SIGNATURE_HEADER,
    HttpGateway,
    LogGateway,
    SmtpGateway,
    fit_sms,
    make_gateway,
    render_dev_page,
    sign,
    verify,
)

if TYPE_CHECKING:
    # Types only: importing the plugin module here would keep pytest from rewriting its asserts.
    from tests.servers import SmsProvider, SmtpServer


PHONE = "13900000003"
TEXT = "【联络】王明：下午三点到第二会议室开会，请准时参加。"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def http_gateway(
    sms_gateway: SmsProvider,
) -> AsyncIterator[Callable[..., HttpGateway]]:
    """Gateways aimed at the local provider with its secret unless told otherwise; all closed."""
    made: list[HttpGateway] = []

    def make(url: str | None = None, secret: str | None = None, **kw: float) -> HttpGateway:
        gw = HttpGateway(url or sms_gateway.url, secret or sms_gateway.secret, **kw)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        await gw.close()


# --- HTTP gateway -------------------------------------------------------------------------------


async def test_http_gateway_posts_signed_json(
    sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    gw = http_gateway()
    await gw.send("sms-1", PHONE, TEXT)

    assert sms_gateway.received == [{"id": "sms-1", "to": PHONE, "text": TEXT}]
    status, raw, headers = sms_gateway.requests[0]
    assert status == 200
    assert json.loads(raw) == {"id": "sms-1", "to": PHONE, "text": TEXT}
    # The signature covers exactly the bytes on the wire.
    assert headers[SIGNATURE_HEADER] == sign(sms_gateway.secret, raw)
    assert headers["Content-Type"] == "application/json"


async def test_http_gateway_reuses_one_session(
    sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    gw = http_gateway()
    await gw.send("a", PHONE, "one")
    first = gw._session
    await gw.send("b", PHONE, "two")
    assert gw._session is first
    assert list(sms_gateway.delivered) == ["a", "b"]


async def test_wrong_secret_is_refused_for_good(
    sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    gw = http_gateway(secret="not-the-providers-secret")
    with pytest.raises(SendFailed) as err:
        await gw.send("sms-1", PHONE, TEXT)
    assert err.value.final
    assert "401" in err.value.reason
    assert len(sms_gateway.rejected) == 1 and not sms_gateway.received


async def test_server_error_is_retried_and_then_delivered_once(
    sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    gw = http_gateway()
    sms_gateway.script([500, 503])
    for _ in range(2):
        with pytest.raises(SendFailed) as err:
            await gw.send("sms-1", PHONE, TEXT)
        assert not err.value.final
    await gw.send("sms-1", PHONE, TEXT)
    assert [status for status, _, _ in sms_gateway.requests] == [500, 503, 200]
    assert list(sms_gateway.delivered) == ["sms-1"]


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_error_is_final(
    status: int, sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    sms_gateway.script([status])
    with pytest.raises(SendFailed) as err:
        await http_gateway().send("sms-1", PHONE, TEXT)
    assert err.value.final
    assert str(status) in err.value.reason


async def test_too_many_requests_is_retried(
    sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    sms_gateway.script([429])
    with pytest.raises(SendFailed) as err:
        await http_gateway().send("sms-1", PHONE, TEXT)
    assert not err.value.final


async def test_timeout_is_retried_and_the_provider_drops_the_duplicate(
    sms_gateway: SmsProvider, http_gateway: Callable[..., HttpGateway]
) -> None:
    gw = http_gateway(timeout_s=0.3)
    sms_gateway.delay = 5
    with pytest.raises(SendFailed) as err:
        await gw.send("sms-1", PHONE, TEXT)
    assert not err.value.final
    assert "0.3" in err.value.reason

    # The provider had taken the first post; only its answer was late. The retry carries the
    # same id, so the person still gets one SMS.
    sms_gateway.delay = 0
    await gw.send("sms-1", PHONE, TEXT)
    await sms_gateway.wait_for(2)
    assert list(sms_gateway.delivered) == ["sms-1"]


async def test_connection_refused_is_retried(http_gateway: Callable[..., HttpGateway]) -> None:
    gw = http_gateway(url=f"http://127.0.0.1:{closed_port()}/sms")
    with pytest.raises(SendFailed) as err:
        await gw.send("sms-1", PHONE, TEXT)
    assert not err.value.final


def test_signatures() -> None:
    body = b'{"from":"13900000003","text":"Y 7K2 \xe5\xa5\xbd","id":"in-1"}'
    signature = sign("k", body)
    assert len(signature) == 64 and int(signature, 16) >= 0
    assert verify("k", body, signature)
    assert verify("k", body, signature.upper())
    assert not verify("k", body + b" ", signature)
    assert not verify("other", body, signature)
    assert not verify("k", body, None)
    assert not verify("k", body, "")
    assert not verify("k", body, "签名")


# --- SMTP gateway and mailer --------------------------------------------------------------------


async def test_smtp_gateway_mails_the_phone_at_the_domain(smtp_server: SmtpServer) -> None:
    gw = make_gateway(f"{smtp_server.url}?domain=sms.example.cn", "unused")
    assert isinstance(gw, SmtpGateway)
    await gw.send("42", "+86 139-0000-0003", TEXT)

    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["+8613900000003@sms.example.cn"]
    assert mail.mail_from == "liaison@sms.example.cn"
    assert mail.text == TEXT
    assert mail["X-Liaison-SMS-Id"] == "42"
    assert mail["Message-ID"] == "<sms-42@liaison>"
    assert mail["Subject"] == ""


async def test_smtp_gateway_from_parameter(smtp_server: SmtpServer) -> None:
    gw = make_gateway(f"{smtp_server.url}?domain=sms.example.cn&from=pager@gov.example.cn", "")
    await gw.send("sms-1", PHONE, "hello")
    [mail] = await smtp_server.wait_for(1)
    assert mail.mail_from == "pager@gov.example.cn"


async def test_smtp_gateway_refuses_what_is_not_a_phone(smtp_server: SmtpServer) -> None:
    gw = make_gateway(f"{smtp_server.url}?domain=sms.example.cn", "")
    with pytest.raises(SendFailed) as err:
        await gw.send("sms-1", "boss@elsewhere.example", "hello")
    assert err.value.final
    assert smtp_server.messages == []


@pytest.mark.parametrize("stage", ["rcpt", "data"])
@pytest.mark.parametrize(("code", "final"), [(451, False), (452, False), (550, True), (554, True)])
async def test_smtp_refusals(smtp_server: SmtpServer, stage: str, code: int, final: bool) -> None:
    gw = make_gateway(f"{smtp_server.url}?domain=sms.example.cn", "")
    smtp_server.fail_next(code, stage=stage)
    with pytest.raises(SendFailed) as err:
        await gw.send("sms-1", PHONE, TEXT)
    assert err.value.final is final
    assert str(code) in err.value.reason
    assert smtp_server.refused == [(stage, code, [f"{PHONE}@sms.example.cn"])]

    # The next attempt is accepted: a retry after a 4xx goes through.
    await gw.send("sms-1", PHONE, TEXT)
    assert len(await smtp_server.wait_for(1)) == 1


async def test_smtp_connection_refused_is_retried() -> None:
    gw = make_gateway(f"smtp://127.0.0.1:{closed_port()}?domain=sms.example.cn", "")
    with pytest.raises(SendFailed) as err:
        await gw.send("sms-1", PHONE, TEXT)
    assert not err.value.final


async def test_mailer_sends_chinese_subject_and_body(smtp_server: SmtpServer) -> None:
    mailer = Mailer.from_url(smtp_server.url)
    assert mailer is not None
    subject = "传阅提醒：《关于做好节前安全检查的通知》"
    body = "李华同志：\n请于今天下班前阅读并确认。\n—— 联络系统"
    await mailer.send("李华 <li@example.gov.cn>", subject, body, "circ-9-li")

    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["li@example.gov.cn"]
    assert mail.mail_from == "liaison@localhost"
    assert mail["From"] == DEFAULT_SENDER
    assert mail["Subject"] == subject
    assert mail["To"] == "李华 <li@example.gov.cn>"
    assert mail["Message-ID"] == "<circ-9-li@liaison>"
    assert mail.text == body
    assert mail.html is None
    # Headers went over the wire as ASCII (RFC 2047), the body as declared UTF-8.
    assert mail.message.get_content_charset() == "utf-8"


async def test_mailer_html_alternative(smtp_server: SmtpServer) -> None:
    mailer = Mailer.from_url(smtp_server.url + "?from=Office%20%3Coffice@gov.example.cn%3E")
    assert mailer is not None
    await mailer.send("li@example.gov.cn", "会议纪要", "纪要见附件", "min-1", html="<p>纪要</p>")
    [mail] = await smtp_server.wait_for(1)
    assert mail.mail_from == "office@gov.example.cn"
    assert mail.text == "纪要见附件"
    assert mail.html is not None and "<p>纪要</p>" in mail.html


async def test_mailer_refusals_share_the_classification(smtp_server: SmtpServer) -> None:
    mailer = Mailer.from_url(smtp_server.url)
    assert mailer is not None
    smtp_server.fail_next(550, stage="rcpt")
    smtp_server.fail_next(421, stage="data")
    with pytest.raises(SendFailed) as err:
        await mailer.send("nobody@example.gov.cn", "s", "t", "m-1")
    assert err.value.final
    with pytest.raises(SendFailed) as err:
        await mailer.send("li@example.gov.cn", "s", "t", "m-2")
    assert not err.value.final


async def test_mailer_refuses_an_unsafe_message_id(smtp_server: SmtpServer) -> None:
    mailer = Mailer.from_url(smtp_server.url)
    assert mailer is not None
    with pytest.raises(SendFailed) as err:
        await mailer.send("li@example.gov.cn", "s", "t", "x>\r\nBcc: everyone@example.cn")
    assert err.value.final
    assert smtp_server.messages == []


def test_mailer_from_url() -> None:
    assert Mailer.from_url(None) is None
    assert Mailer.from_url("") is None
    mailer = Mailer.from_url("smtp://bot%40gov:p%40ss@mail.gov.example:587?starttls=1")
    assert mailer is not None
    t = mailer.target
    assert (t.host, t.port, t.username, t.password) == ("mail.gov.example", 587, "bot@gov", "p@ss")
    assert t.start_tls is True and not t.use_tls
    assert "p@ss" not in repr(mailer) and "p@ss" not in repr(t)
    smtps = Mailer.from_url("smtps://mail.gov.example")
    assert smtps is not None and smtps.target.use_tls and smtps.target.start_tls is False
    for bad in (
        "http://mail",
        "smtp://",
        "smtp://h:port",
        "smtp://h?starttls=maybe",
        "smtp://h?x=1",
    ):
        with pytest.raises(ValueError):
            Mailer.from_url(bad)


# --- choosing a gateway -----------------------------------------------------------------------


async def test_make_gateway_picks_by_url() -> None:
    assert isinstance(make_gateway("log", "s"), LogGateway)
    assert isinstance(make_gateway(" log ", "s"), LogGateway)
    smtp = make_gateway("smtp://u:p@relay.example:2525?domain=sms.example.cn&starttls=1", "s")
    assert isinstance(smtp, SmtpGateway)
    assert smtp.domain == "sms.example.cn"
    assert smtp.mailer.target.port == 2525 and smtp.mailer.target.start_tls is True
    for url in ("http://sms.example/api/send", "https://sms.example:8443/send?account=7"):
        gw = make_gateway(url, "s")
        assert isinstance(gw, HttpGateway) and gw.url == url and gw.name == "http"
        await gw.close()
    assert {make_gateway("log", "s").name, smtp.name} == {"log", "smtp"}


@pytest.mark.parametrize(
    "url",
    [
        "",
        "LOG",
        "garbage",
        "ftp://sms.example/",
        "smtp://relay.example:25",  # no domain
        "smtp://relay.example:25?domain=",
        "smtp://relay.example:25?domain=a@b",
        "smtp://relay.example:25?domian=sms.example.cn",  # typo
        "smtp://:25?domain=sms.example.cn",
        "smtp://relay.example:http?domain=sms.example.cn",
        "http://",
        "https://sms.example:99999/",
    ],
)
def test_make_gateway_rejects_garbage(url: str) -> None:
    with pytest.raises(ValueError):
        make_gateway(url, "secret")


def test_http_gateway_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        make_gateway("https://sms.example/send", "")


# --- fitting a text into one SMS -----------------------------------------------------------------


def test_short_texts_are_unchanged() -> None:
    assert fit_sms("") == ""
    assert fit_sms("a" * 160) == "a" * 160
    assert fit_sms("会" * 70) == "会" * 70
    assert fit_sms(TEXT) == TEXT


def test_long_ascii_is_cut_to_70_with_the_unicode_marker() -> None:
    # "…" is not GSM-7, so the SMS becomes UCS-2 and holds 70.
    out = fit_sms("a" * 161)
    assert out == "a" * 69 + "…"


def test_long_ascii_with_a_gsm_marker_keeps_160() -> None:
    assert fit_sms("a" * 161, marker="...") == "a" * 157 + "..."
    assert fit_sms("word " * 40, marker="...") == "word " * 31 + "wo..."


def test_long_chinese_is_cut_to_70() -> None:
    out = fit_sms("会" * 71)
    assert out == "会" * 69 + "…"
    assert len(out) == 70


def test_gsm_extension_characters_count_double() -> None:
    assert fit_sms("€" * 80) == "€" * 80  # 160 septets
    assert fit_sms("{" * 81, marker=".") == "{" * 79 + "."
    assert fit_sms("[]" * 40 + "a", marker=".") == "[]" * 39 + "[" + "."
    # GSM-7 letters outside ASCII count single; a character outside both forces UCS-2.
    assert fit_sms("é" * 160) == "é" * 160
    assert fit_sms("é" * 100 + "`") == "é" * 69 + "…"


def test_emoji_are_never_split() -> None:
    # Each emoji is a surrogate pair: two of the 70 UCS-2 units.
    assert fit_sms("😀" * 35) == "😀" * 35
    out = fit_sms("😀" * 36)
    assert out == "😀" * 34 + "…"
    assert len(out.encode("utf-16-le")) // 2 <= 70
    out = fit_sms("a" + "😀" * 40)
    assert out == "a" + "😀" * 34 + "…"
    out.encode("utf-8")  # no lone surrogate
    # A cut inside a joined emoji drops the dangling joiner rather than ending on it.
    family = "👨\u200d👩\u200d👧"
    out = fit_sms("会" * 65 + family)
    assert not out.removesuffix("…").endswith("\u200d")
    assert len(out.encode("utf-16-le")) // 2 <= 70


def test_a_cut_does_not_end_in_blanks() -> None:
    assert fit_sms("会" * 68 + "   " + "议" * 10) == "会" * 68 + "…"


# --- log gateway --------------------------------------------------------------------------------


async def test_log_gateway_keeps_the_last_200() -> None:
    gw = make_gateway("log", "")
    assert isinstance(gw, LogGateway)
    for i in range(205):
        await gw.send(f"sms-{i}", PHONE, f"text {i}")
    assert len(gw.sent) == 200
    assert gw.sent[0].id == "sms-5" and gw.sent[-1].id == "sms-204"
    assert gw.sent[-1].phone == PHONE and gw.sent[-1].text == "text 204"
    assert gw.sent[-1].at.tzinfo is not None


async def test_dev_page_lists_newest_first_and_escapes() -> None:
    gw = LogGateway()
    await gw.send("old", PHONE, "first")
    await gw.send("new", "<b>138</b>", "<script>alert('x')</script> & 会议")
    page = render_dev_page(gw)
    assert "<title>SMS sent (log gateway)</title>" in page
    assert "<script>" not in page and "<b>138" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; 会议" in page
    assert page.index("&lt;script&gt;") < page.index("<td class=text>first<")


def test_dev_page_when_nothing_was_sent() -> None:
    assert "none yet" in render_dev_page(LogGateway())
