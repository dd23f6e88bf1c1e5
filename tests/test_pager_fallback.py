"""The pager's SMS and e-mail fallback, end to end: pages sent over the public API, SMS arriving at a
real HTTP SMS provider, digest e-mails at a real SMTP server, receipts in the sender's tab, inbound
SMS through the signed webhook, and pending SMS surviving a restart.

Timings are shortened per server (grace 1 s, urgent 2 s, digest windows of a few seconds) so each
story takes a few seconds; "nothing more arrives" is checked with a bounded sleep past the window
that could produce it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from handlers import pager
from server.sms import SIGNATURE_HEADER, sign
from tests.support import Client, LiveServer, Office, eventually, start_server

if TYPE_CHECKING:
    # Types only: importing the plugin module here would keep pytest from rewriting its asserts.
    from tests.servers import SmsProvider, SmtpServer

GRACE_S = 1.0  # sms_offline_grace_s
URGENT_S = 2.0  # sms_urgent_unread_s
SMS_DIGEST_S = 4.0
EMAIL_OFFLINE_S = 1.0
EMAIL_DIGEST_S = 4.0
STOP_S = 10.0
MARGIN_S = 0.8  # past a window: long enough for a timer poke, the outbox and the gateway
PHONES = {a: phone for a, _, _, _, _, _, phone in Office.USERS}

Serve = Callable[..., contextlib.AbstractAsyncContextManager[LiveServer]]


@pytest.fixture
def serve(
    database_url: str,
    tmp_path: Path,
    password_hash: str,
    sms_gateway: SmsProvider,
    smtp_server: SmtpServer,
) -> Serve:
    """Start a server on this test's database with short timings; overrides change them. Called
    twice in a test, the second server finds what the first left in the database."""

    @contextlib.asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[LiveServer]:
        config: dict[str, Any] = {
            "sms_gateway": sms_gateway.url,
            "sms_secret": sms_gateway.secret,
            "smtp_url": smtp_server.url,
            "sms_offline_grace_s": GRACE_S,
            "sms_urgent_unread_s": URGENT_S,
            "sms_digest_s": SMS_DIGEST_S,
            "email_offline_s": EMAIL_OFFLINE_S,
            "email_digest_s": EMAIL_DIGEST_S,
            "outbox_backoff_s": 0.2,
            **overrides,
        }
        stack = contextlib.AsyncExitStack()
        srv = await stack.enter_async_context(
            start_server(database_url, tmp_path, password_hash, **config)
        )
        try:
            yield srv
            assert not srv.bad_events, f"events breaking their schema: {srv.bad_events}"
        finally:
            # A clean stop is part of every story here (the restarts above all): a server that
            # hangs on the way down fails the test with that said, not by the suite's timeout.
            try:
                await asyncio.wait_for(stack.aclose(), STOP_S)
            except TimeoutError:
                pytest.fail(
                    f"the server did not stop within {STOP_S} s"
                    " (a background task outlived its cancellation)"
                )

    return run


@pytest.fixture
async def office(serve: Serve) -> AsyncIterator[Office]:
    """Overrides conftest's: the test office on a server with the short timings above."""
    async with serve() as srv:
        yield await Office.create(srv)


# --- helpers ------------------------------------------------------------------------------------


async def send_page(
    office: Office, sender: str, to: str, body: str, priority: str = "normal"
) -> str:
    """A page over HTTP, as an integration would send it; returns its message_id."""
    p = await office.person(sender)
    recipient = await office.person(to)
    env = await office.server.command(
        p.token,
        "pager.send",
        {
            "to": [recipient.id],
            "body": body,
            "priority": priority,
            "client_msg_id": uuid.uuid4().hex,
        },
    )
    assert env["ok"], env
    return str(env["data"]["message_id"])


def is_receipt(message_id: str, state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (
        e["type"] == "pager.receipt"
        and e["data"]["message_id"] == message_id
        and e["data"]["state"] == state
    )


def receipts(tab: Client, message_id: str, state: str) -> list[dict[str, Any]]:
    return [e for e in tab.durable("pager.receipt") if is_receipt(message_id, state)(e)]


async def ack_page(tab: Client, message_id: str) -> None:
    """An online client: it acknowledges the pager.message it received."""
    ev = await tab.wait_for(
        lambda e: e["type"] == "pager.message" and e["data"]["message_id"] == message_id
    )
    env = await tab.call("sync.ack", {"seq": ev["seq"]})
    assert env["ok"], env


def texts_to(gateway: SmsProvider, account: str) -> list[str]:
    return [m["text"] for m in gateway.received if m["to"] == PHONES[account]]


async def post_inbound(
    srv: LiveServer, payload: dict[str, Any], secret: str
) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, raw)}
    async with srv.http.post(srv.url + "/api/v1/sms/inbound", data=raw, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def pending_sms(srv: LiveServer) -> int:
    return int(
        await srv.services.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE kind = 'sms' AND state = 'pending'"
        )
    )


# --- 1, 2: offline gets an SMS, online and acking does not ----------------------------------------


async def test_offline_recipient_gets_exactly_one_sms(
    office: Office, sms_gateway: SmsProvider
) -> None:
    wang = await office.tab("wang")
    li = await office.person("li")
    body = "下午三点到第二会议室开会"
    mid = await send_page(office, "wang", "li", body)

    [sms] = await sms_gateway.wait_for(1, timeout=GRACE_S + 4)
    assert sms["to"] == PHONES["li"]
    assert "王明" in sms["text"] and body in sms["text"]
    assert len(sms["text"]) <= 70  # Chinese: one UCS-2 SMS
    receipt = await wang.wait_for(is_receipt(mid, "sms_sent"))
    assert receipt["data"]["user_id"] == li.id

    await asyncio.sleep(2 * MARGIN_S + 0.5)  # no retry, no second timer, no stray digest
    assert len(sms_gateway.received) == 1 and len(sms_gateway.delivered) == 1
    assert len(receipts(wang, mid, "sms_sent")) == 1
    assert not receipts(wang, mid, "sms_failed")


async def test_online_acking_recipient_gets_no_sms(
    office: Office, sms_gateway: SmsProvider
) -> None:
    wang = await office.tab("wang")
    li_tab = await office.tab("li")
    li = await office.person("li")
    mid = await send_page(office, "wang", "li", "材料已放你桌上")
    await ack_page(li_tab, mid)
    delivered = await wang.wait_for(is_receipt(mid, "delivered"))
    assert delivered["data"]["user_id"] == li.id

    await asyncio.sleep(GRACE_S + MARGIN_S)
    assert sms_gateway.requests == []
    assert not receipts(wang, mid, "sms_sent")


def _cut_connection_in_ack_hook(office: Office, times: int) -> list[int]:
    """The delivery hook's database connection is killed (pg_terminate_backend) in its first
    `times` runs, as a database restart or a network cut would; returns the runs' count."""
    stream = office.server.services.stream
    runs = [0]

    async def hook(tx: Any, acks: Any) -> None:
        runs[0] += 1
        if runs[0] <= times:
            await tx.conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        await pager.delivered_on_ack(tx, acks)

    stream.ack_hooks[stream.ack_hooks.index(pager.delivered_on_ack)] = hook
    return runs


async def test_a_lost_connection_in_the_delivery_marking_is_retried(
    office: Office, sms_gateway: SmsProvider
) -> None:
    wang = await office.tab("wang")
    li_tab = await office.tab("li")
    runs = _cut_connection_in_ack_hook(office, times=2)
    mid = await send_page(office, "wang", "li", "材料已放你桌上")
    await ack_page(li_tab, mid)
    await wang.wait_for(is_receipt(mid, "delivered"))
    assert runs[0] == 3
    await asyncio.sleep(GRACE_S + MARGIN_S)
    assert sms_gateway.requests == []
    assert len(receipts(wang, mid, "delivered")) == 1


async def test_an_acknowledged_page_is_never_texted_and_its_receipt_comes_late(
    office: Office, sms_gateway: SmsProvider
) -> None:
    """The database stays away past every retry of the delivery marking: the ack itself is
    committed, so no SMS goes to the recipient who has the page, and the sweep that runs
    periodically marks it delivered and sends the receipt."""
    wang = await office.tab("wang")
    li_tab = await office.tab("li")
    _cut_connection_in_ack_hook(office, times=100)
    mid = await send_page(office, "wang", "li", "材料已放你桌上")
    await ack_page(li_tab, mid)
    await asyncio.sleep(GRACE_S + MARGIN_S)
    assert sms_gateway.requests == []
    assert not receipts(wang, mid, "delivered")

    services = office.server.services
    services.stream.ack_hooks[0] = pager.delivered_on_ack  # the database is back
    assert await pager.deliver_acked(services) == 1
    await wang.wait_for(is_receipt(mid, "delivered"))
    assert await pager.deliver_acked(services) == 0
    await asyncio.sleep(MARGIN_S)
    assert len(receipts(wang, mid, "delivered")) == 1
    assert sms_gateway.requests == []


# --- 3, 4: urgent pages, delivered but unread -------------------------------------------------------


async def test_urgent_delivered_but_unread_gets_an_sms_and_normal_does_not(
    office: Office, sms_gateway: SmsProvider
) -> None:
    wang = await office.tab("wang")
    li_tab = await office.tab("li")
    zhang_tab = await office.tab("zhang")
    start = asyncio.get_running_loop().time()
    urgent = await send_page(office, "wang", "li", "紧急：十分钟后开会", priority="urgent")
    normal = await send_page(office, "wang", "zhang", "有空时回个电话")
    await ack_page(li_tab, urgent)
    await ack_page(zhang_tab, normal)
    await wang.wait_for(is_receipt(urgent, "delivered"))
    await wang.wait_for(is_receipt(normal, "delivered"))

    [sms] = await sms_gateway.wait_for(1, timeout=URGENT_S + 4)
    assert asyncio.get_running_loop().time() - start >= URGENT_S - 0.2  # not at the offline grace
    assert sms["to"] == PHONES["li"]
    assert "紧急：十分钟后开会" in sms["text"]
    await wang.wait_for(is_receipt(urgent, "sms_sent"))

    await asyncio.sleep(MARGIN_S)  # both windows (grace and urgent) are behind us now
    assert texts_to(sms_gateway, "zhang") == []
    assert len(sms_gateway.received) == 1
    assert not receipts(wang, normal, "sms_sent")


async def test_urgent_page_read_in_time_gets_no_sms(
    office: Office, sms_gateway: SmsProvider
) -> None:
    wang = await office.tab("wang")
    li_tab = await office.tab("li")
    mid = await send_page(office, "wang", "li", "紧急：请速回电", priority="urgent")
    await ack_page(li_tab, mid)
    env = await li_tab.call("pager.read", {"message_ids": [mid]})
    assert env["ok"], env
    await wang.wait_for(is_receipt(mid, "read"))

    await asyncio.sleep(URGENT_S + MARGIN_S)
    assert sms_gateway.requests == []
    assert not receipts(wang, mid, "sms_sent")


# --- 5: a burst of pages is one SMS, then one digest ------------------------------------------------


async def test_ten_pages_make_one_sms_then_one_digest(
    serve: Serve, sms_gateway: SmsProvider
) -> None:
    digest_s = 2.0
    async with serve(sms_digest_s=digest_s) as srv:
        office = await Office.create(srv)
        wang = await office.tab("wang")
        mids = [await send_page(office, "wang", "li", f"第{i}条通知") for i in range(1, 11)]

        first = (await sms_gateway.wait_for(1, timeout=GRACE_S + 4))[0]
        first_at = asyncio.get_running_loop().time()
        assert first["to"] == PHONES["li"]
        assert "第1条通知" in first["text"]
        await asyncio.sleep(digest_s - 0.5)  # the window is still open: nothing more yet
        assert len(sms_gateway.received) == 1

        second = (await sms_gateway.wait_for(2, timeout=4))[1]
        assert asyncio.get_running_loop().time() - first_at >= digest_s - 0.3
        assert second["to"] == PHONES["li"]
        assert "9条" in second["text"], second["text"]
        assert len(second["text"]) <= 70
        for mid in mids:
            await wang.wait_for(is_receipt(mid, "sms_sent"))

        await asyncio.sleep(digest_s + MARGIN_S)  # a further window passes: no third SMS
        assert len(sms_gateway.received) == 2 and len(sms_gateway.delivered) == 2
        for mid in mids:
            assert len(receipts(wang, mid, "sms_sent")) == 1, mid


# --- 6: the provider failing ----------------------------------------------------------------------


async def test_gateway_5xx_is_retried_with_the_same_id_and_delivered_once(
    office: Office, sms_gateway: SmsProvider
) -> None:
    wang = await office.tab("wang")
    sms_gateway.script([500, 500])
    mid = await send_page(office, "wang", "li", "请回电")

    await sms_gateway.wait_for(1, timeout=GRACE_S + 5)
    await wang.wait_for(is_receipt(mid, "sms_sent"))
    await asyncio.sleep(MARGIN_S)
    assert [status for status, _, _ in sms_gateway.requests] == [500, 500, 200]
    ids = {json.loads(raw)["id"] for _, raw, _ in sms_gateway.requests}
    assert len(ids) == 1  # every retry is the same SMS
    assert len(sms_gateway.delivered) == 1
    assert len(receipts(wang, mid, "sms_sent")) == 1
    assert not receipts(wang, mid, "sms_failed")


async def test_gateway_4xx_is_final_and_the_sender_hears_sms_failed(
    office: Office, sms_gateway: SmsProvider
) -> None:
    srv = office.server
    wang = await office.tab("wang")
    li = await office.person("li")
    sms_gateway.script([400])
    mid = await send_page(office, "wang", "li", "请回电")

    failed = await wang.wait_for(is_receipt(mid, "sms_failed"), timeout=GRACE_S + 4)
    assert failed["data"]["user_id"] == li.id
    await asyncio.sleep(MARGIN_S)  # several backoffs of 0.2 s: a retry would have come
    assert [status for status, _, _ in sms_gateway.requests] == [400]
    assert sms_gateway.delivered == {}
    assert not receipts(wang, mid, "sms_sent")
    assert (
        await srv.services.pool.fetchval("SELECT state FROM outbox WHERE kind = 'sms'") == "failed"
    )


# --- 7: restarts ------------------------------------------------------------------------------------


async def test_sms_that_failed_once_is_sent_once_after_a_restart(
    serve: Serve, sms_gateway: SmsProvider
) -> None:
    async with serve(outbox_backoff_s=2) as srv:
        office = await Office.create(srv)
        sms_gateway.script([500])
        mid = await send_page(office, "wang", "li", "重启前的寻呼")
        await eventually(lambda: len(sms_gateway.requests) == 1, timeout=GRACE_S + 4)
        assert sms_gateway.requests[0][0] == 500
        # The failed attempt committed: still pending, its next try 2 s away.
        await eventually(
            lambda: srv.services.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = 'outbox.send' AND attempts = 1"
                " AND run_at > now() AND lease_until IS NULL"
            )
        )
        assert await pending_sms(srv) == 1
    assert sms_gateway.received == []

    async with serve() as srv:
        office = Office(srv, office.departments, office.user_ids)
        await sms_gateway.wait_for(1, timeout=5)
        wang = await office.tab("wang", last_seq=0)
        await wang.wait_for(is_receipt(mid, "sms_sent"))
        await asyncio.sleep(MARGIN_S)
        assert len(sms_gateway.received) == 1 and len(sms_gateway.delivered) == 1
        assert len({json.loads(raw)["id"] for _, raw, _ in sms_gateway.requests}) == 1
        assert len(receipts(wang, mid, "sms_sent")) == 1
        assert await pending_sms(srv) == 0


async def test_sms_cut_off_by_a_restart_mid_send_is_delivered_once(
    serve: Serve, sms_gateway: SmsProvider
) -> None:
    """The provider took the SMS but the server stopped before it heard the answer: after the
    restart the same SMS (same id) may be posted again, and the provider keeps one."""
    sms_gateway.delay = 5
    async with serve() as srv:
        office = await Office.create(srv)
        mid = await send_page(office, "wang", "li", "发送途中重启")
        await sms_gateway.wait_for(1, timeout=GRACE_S + 4)  # recorded; the answer is 5 s away
        assert await pending_sms(srv) == 1
    sms_gateway.delay = 0

    async with serve() as srv:
        office = Office(srv, office.departments, office.user_ids)
        wang = await office.tab("wang", last_seq=0)
        await wang.wait_for(is_receipt(mid, "sms_sent"), timeout=5)
        await asyncio.sleep(MARGIN_S)
        assert len(sms_gateway.delivered) == 1
        assert len({m["id"] for m in sms_gateway.received}) == 1
        assert len(receipts(wang, mid, "sms_sent")) == 1
        assert await pending_sms(srv) == 0


async def test_pages_sent_together_share_one_grace_timer_and_each_is_texted(
    office: Office, sms_gateway: SmsProvider
) -> None:
    """A batch's pages fall due together: one grace timer for the batch, and every page's
    unreached recipient still gets their SMS. A timer set one per page (before batches had
    one) still fires."""
    services = office.server.services
    sent = await pager._send_batch(
        services,
        [await office.page("wang", "li", "批一"), await office.page("wang", "zhang", "批二")],
    )
    ids = [int(s["message_id"]) for s in sent if isinstance(s, dict)]
    timers = await services.pool.fetch("SELECT payload FROM jobs WHERE kind = 'pager.sms_offline'")
    assert [t["payload"] for t in timers] == [{"message_ids": ids}]
    texts = {m["to"]: m["text"] for m in await sms_gateway.wait_for(2, timeout=5)}
    assert "批一" in texts[PHONES["li"]] and "批二" in texts[PHONES["zhang"]]

    # A timer in the shape of one page each, as one set before batches shared them.
    [single] = await pager._send_batch(services, [await office.page("wang", "zhao", "单个")])
    assert isinstance(single, dict)
    await services.pool.execute(
        "UPDATE jobs SET payload = jsonb_build_object('message_id', $1::bigint)"
        " WHERE kind = 'pager.sms_offline'",
        int(single["message_id"]),
    )
    sms = (await sms_gateway.wait_for(3, timeout=5))[2]
    assert sms["to"] == PHONES["zhao"] and "单个" in sms["text"]


async def test_grace_timer_survives_a_restart(serve: Serve, sms_gateway: SmsProvider) -> None:
    grace_s = 2.0
    async with serve(sms_offline_grace_s=grace_s) as srv:
        office = await Office.create(srv)
        sent = asyncio.get_running_loop().time()
        mid = await send_page(office, "wang", "li", "服务器停机期间到期")
        assert (
            await srv.services.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = 'pager.sms_offline'"
            )
            == 1
        )
    assert asyncio.get_running_loop().time() - sent < grace_s, "stopped too late for this test"
    await asyncio.sleep(max(0.0, sent + grace_s + 0.3 - asyncio.get_running_loop().time()))
    assert sms_gateway.requests == []  # the grace passed while the server was down

    async with serve(sms_offline_grace_s=grace_s) as srv:
        office = Office(srv, office.departments, office.user_ids)
        [sms] = await sms_gateway.wait_for(1, timeout=5)
        assert sms["to"] == PHONES["li"] and "服务器停机期间到期" in sms["text"]
        wang = await office.tab("wang", last_seq=0)
        await wang.wait_for(is_receipt(mid, "sms_sent"))
        await asyncio.sleep(MARGIN_S)
        assert len(sms_gateway.received) == 1 and len(sms_gateway.delivered) == 1
        assert len(receipts(wang, mid, "sms_sent")) == 1


# --- 8: inbound SMS ------------------------------------------------------------------------------


async def test_inbound_sms_answers_the_page_that_last_reached_the_phone(
    serve: Serve, sms_gateway: SmsProvider
) -> None:
    async with serve(sms_digest_s=0.5) as srv:  # two SMS to li in a row, no digest wait
        office = await Office.create(srv)
        wang = await office.tab("wang")
        zhao = await office.tab("zhao")
        li = await office.person("li")
        older = await send_page(office, "wang", "li", "明天的材料准备好了吗")
        await sms_gateway.wait_for(1, timeout=GRACE_S + 4)
        await wang.wait_for(is_receipt(older, "sms_sent"))
        mid = await send_page(office, "zhao", "li", "报销单请今天签字")
        await sms_gateway.wait_for(2, timeout=GRACE_S + 4)
        await zhao.wait_for(is_receipt(mid, "sms_sent"))  # the outbox row is committed 'sent'

        inbound = {"from": PHONES["li"], "text": "好的，下午签", "id": "in-1"}
        status, env = await post_inbound(srv, inbound, sms_gateway.secret)
        assert status == 200 and env["ok"], env
        ev = await zhao.wait_for(lambda e: e["type"] == "pager.message")
        data = ev["data"]
        assert data["via"] == "sms"
        assert data["reply_to"] == mid
        assert data["from"]["id"] == li.id and data["from"]["name"] == "李华"
        assert data["body"] == "好的，下午签"
        assert data["message_id"] == env["data"]["message_id"]

        async def count() -> int:
            return int(await srv.services.pool.fetchval("SELECT count(*) FROM pager_messages"))

        before = await count()
        # The gateway delivers the same inbound SMS again: the same answer, nothing new.
        status, again = await post_inbound(srv, inbound, sms_gateway.secret)
        assert status == 200 and again["ok"], again
        assert again["data"]["message_id"] == env["data"]["message_id"]

        # A forged signature: refused, nothing changes.
        forged = {"from": PHONES["li"], "text": "伪造的回复", "id": "in-2"}
        status, bad = await post_inbound(srv, forged, "not-the-secret")
        assert status == 401 and bad["ok"] is False and bad["error"]["code"] == "unauthorized", bad

        # A phone nobody has.
        stranger = {"from": "13800000000", "text": "你好", "id": "in-3"}
        status, unknown = await post_inbound(srv, stranger, sms_gateway.secret)
        assert status == 404 and unknown["error"]["code"] == "not_found", unknown

        await asyncio.sleep(0.3)
        assert await count() == before
        assert len(zhao.durable("pager.message")) == 1
        assert wang.durable("pager.message") == []  # the older page's sender hears nothing


# --- 9: preferences --------------------------------------------------------------------------------


async def test_sms_fallback_off_sends_nothing(office: Office, sms_gateway: SmsProvider) -> None:
    srv = office.server
    li = await office.person("li")
    env = await srv.command(li.token, "prefs.set", {"sms_fallback": "off"})
    assert env["ok"] and env["data"]["sms_fallback"] == "off", env
    await send_page(office, "wang", "li", "普通寻呼")
    await send_page(office, "wang", "li", "紧急寻呼", priority="urgent")
    await asyncio.sleep(URGENT_S + MARGIN_S)
    assert sms_gateway.requests == []


async def test_sms_fallback_urgent_sends_only_for_urgent_pages(
    office: Office, sms_gateway: SmsProvider
) -> None:
    srv = office.server
    wang = await office.tab("wang")
    li = await office.person("li")
    env = await srv.command(li.token, "prefs.set", {"sms_fallback": "urgent"})
    assert env["ok"] and env["data"]["sms_fallback"] == "urgent", env
    normal = await send_page(office, "wang", "li", "普通寻呼")
    urgent = await send_page(office, "wang", "li", "紧急寻呼", priority="urgent")

    [sms] = await sms_gateway.wait_for(1, timeout=URGENT_S + 4)
    assert sms["to"] == PHONES["li"]
    assert "紧急寻呼" in sms["text"] and "普通寻呼" not in sms["text"]
    await wang.wait_for(is_receipt(urgent, "sms_sent"))
    await asyncio.sleep(MARGIN_S)
    assert len(sms_gateway.received) == 1
    assert not receipts(wang, normal, "sms_sent")


async def test_sms_fallback_urgent_keeps_the_offline_grace_for_urgent_pages(
    office: Office, sms_gateway: SmsProvider
) -> None:
    """ "urgent" chooses which pages may come by SMS, not when: an urgent page that did not reach
    an offline person goes out at the offline grace, as it would under "offline"."""
    srv = office.server
    li = await office.person("li")
    env = await srv.command(li.token, "prefs.set", {"sms_fallback": "urgent"})
    assert env["ok"], env
    start = asyncio.get_running_loop().time()
    await send_page(office, "wang", "li", "紧急：速回电", priority="urgent")
    [sms] = await sms_gateway.wait_for(1, timeout=URGENT_S + 4)
    took = asyncio.get_running_loop().time() - start
    assert sms["to"] == PHONES["li"]
    assert took < URGENT_S - 0.3, (
        f"sent after {took:.2f} s: at the urgent-unread wait, not the grace"
    )


async def test_quiet_hours_hold_normal_pages_but_not_urgent_ones(
    office: Office, sms_gateway: SmsProvider
) -> None:
    srv = office.server
    now = datetime.now(ZoneInfo(srv.services.config.timezone))
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    for account in ("li", "zhang"):
        p = await office.person(account)
        env = await srv.command(p.token, "prefs.set", {"quiet_hours": quiet})
        assert env["ok"] and env["data"]["quiet_hours"] == quiet, env
    wang = await office.tab("wang")
    normal = await send_page(office, "wang", "li", "明天上午的会改到下午")
    urgent = await send_page(office, "wang", "zhang", "机房漏水，速来", priority="urgent")

    [sms] = await sms_gateway.wait_for(1, timeout=GRACE_S + 4)
    assert sms["to"] == PHONES["zhang"] and "机房漏水，速来" in sms["text"]
    await wang.wait_for(is_receipt(urgent, "sms_sent"))
    await asyncio.sleep(URGENT_S + MARGIN_S - GRACE_S)  # past both windows of the normal page
    assert texts_to(sms_gateway, "li") == []
    assert len(sms_gateway.received) == 1
    assert not receipts(wang, normal, "sms_sent")


# --- 10: e-mail digests ---------------------------------------------------------------------------


async def test_offline_recipient_gets_one_digest_email(
    serve: Serve, smtp_server: SmtpServer
) -> None:
    digest_s = 2.5
    async with serve(email_digest_s=digest_s) as srv:
        office = await Office.create(srv)
        wang = await office.tab("wang")
        zhao = await office.tab("zhao")
        first = await send_page(office, "wang", "li", "请审阅第三季度报表")
        second = await send_page(office, "zhao", "li", "报销单已退回，请补签字")

        [mail] = await smtp_server.wait_for(1, timeout=EMAIL_OFFLINE_S + 4)
        first_at = asyncio.get_running_loop().time()
        assert mail.rcpt_tos == ["li@example.gov.cn"]
        assert mail["To"] == "li@example.gov.cn"
        subject = str(mail["Subject"])
        assert "寻呼" in subject, subject
        assert "王明" in mail.text and "请审阅第三季度报表" in mail.text
        assert "赵敏" in mail.text and "报销单已退回，请补签字" in mail.text
        await wang.wait_for(is_receipt(first, "emailed"))
        await zhao.wait_for(is_receipt(second, "emailed"))

        # Another page soon after: no second e-mail inside the digest window...
        third = await send_page(office, "wang", "li", "另有一事")
        await asyncio.sleep(max(0.0, first_at + digest_s - 0.4 - asyncio.get_running_loop().time()))
        assert len(smtp_server.messages) == 1
        # ...but once it closes the still-unread page comes in the next digest, alone.
        later = (await smtp_server.wait_for(2, timeout=4))[1]
        assert asyncio.get_running_loop().time() - first_at >= digest_s - 0.3
        assert "另有一事" in later.text
        assert "请审阅第三季度报表" not in later.text
        await wang.wait_for(is_receipt(third, "emailed"))
        assert len(receipts(wang, first, "emailed")) == 1


async def test_online_recipient_gets_no_email(office: Office, smtp_server: SmtpServer) -> None:
    wang = await office.tab("wang")
    await office.tab("zhang")  # online, reading pages in the browser
    mid = await send_page(office, "wang", "zhang", "看到请回复")
    await asyncio.sleep(EMAIL_OFFLINE_S + MARGIN_S)
    assert [m for m in smtp_server.messages if "zhang@example.gov.cn" in m.rcpt_tos] == []
    assert not receipts(wang, mid, "emailed")


# --- 11: the text fits one SMS ----------------------------------------------------------------------


async def test_a_long_chinese_page_is_cut_to_one_sms(
    office: Office, sms_gateway: SmsProvider
) -> None:
    body = ("请各科室于本周五下班前将年度工作总结和明年工作计划报送办公室。" * 12)[:300]
    assert len(body) == 300
    await send_page(office, "wang", "li", body)
    [sms] = await sms_gateway.wait_for(1, timeout=GRACE_S + 4)
    text = sms["text"]
    assert len(text) <= 70, len(text)
    assert text.endswith("…")
    assert "王明" in text and body[:20] in text
