"""The durable stream's guarantees, each tested directly: gapless per-user sequences shared by
every tab, commit before push, resume, reset, cumulative acks, idempotent creates."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import msgspec
import pytest

from handlers.presence import NoteReceived
from server.bus import EVENTS
from server.events import UserRef, declared_events
from server.stream import Ack, Transaction
from storage.ids import IdBlocks
from storage.pool import Params
from tests.support import Client, Office


async def _note(office: Office, sender: str, to: str, body: str, **extra: object) -> dict:
    p = await office.person(sender)
    target = await office.person(to)
    env = await office.server.command(
        p.token, "notes.leave", {"to": target.id, "body": body, **extra}
    )
    assert env["ok"], env
    return env["data"]


def _seqs(client: Client, type_: str | None = None) -> list[int]:
    return [e["seq"] for e in client.durable(type_)]


async def _wait_seq(client: Client, seq: int) -> None:
    await client.wait_for(lambda e: e["seq"] == seq)


async def test_every_tab_sees_one_gapless_sequence(office: Office) -> None:
    tab1 = await office.tab("li")
    tab2 = await office.tab("li")
    senders = ["wang", "zhang", "zhao", "chen"]
    await asyncio.gather(*(_note(office, s, "li", f"{s} {i}") for s in senders for i in range(5)))
    for tab in (tab1, tab2):
        await _wait_seq(tab, 20)
    assert _seqs(tab1) == list(range(1, 21))
    assert [e["data"]["note_id"] for e in tab1.durable()] == [
        e["data"]["note_id"] for e in tab2.durable()
    ]


async def test_resume_replays_exactly_the_missed_events_in_order(office: Office) -> None:
    tab = await office.tab("li")
    for i in range(3):
        await _note(office, "wang", "li", f"before {i}")
    await _wait_seq(tab, 3)
    await tab.close()
    for i in range(4):
        await _note(office, "wang", "li", f"missed {i}")
    again = await office.tab("li", last_seq=3)
    ready = await again.wait_for("sync.ready")
    assert ready["data"] == {"seq": 7}
    assert _seqs(again) == [4, 5, 6, 7]
    assert [e["data"]["body"] for e in again.durable()] == [f"missed {i}" for i in range(4)]
    # Replay came before sync.ready, and live events follow it.
    assert again.events.index(ready) == 4
    await _note(office, "wang", "li", "live")
    await _wait_seq(again, 8)


async def test_connect_without_last_seq_gets_the_current_seq(office: Office) -> None:
    for i in range(2):
        await _note(office, "wang", "li", f"n{i}")
    tab = await office.tab("li")
    assert tab.events[0]["type"] == "sync.ready"
    assert tab.events[0]["seq"] is None
    assert tab.events[0]["data"] == {"seq": 2}
    assert tab.durable() == []


async def test_resume_past_the_replay_limit_resets(office: Office) -> None:
    li = await office.person("li")
    services = office.server.services
    ev = NoteReceived(note_id="1", from_=UserRef("1", "x"), body="b", at=services.stream and _now())
    async with services.stream.transaction() as tx:
        await tx.emit_each([(int(li.id), ev)] * 1001)
    tab = await office.tab("li", last_seq=0)
    assert tab.events[0]["type"] == "sync.reset"
    assert tab.events[0]["data"] == {"seq": 1001}
    assert tab.durable() == []
    # Exactly at the limit still replays.
    tab2 = await office.tab("li", last_seq=1)
    assert tab2.events[-1] == {**tab2.events[-1], "type": "sync.ready", "data": {"seq": 1001}}
    assert len(tab2.durable()) == 1000


async def test_resume_past_retention_resets(office: Office) -> None:
    for i in range(3):
        await _note(office, "wang", "li", f"old {i}")
    services = office.server.services
    await services.pool.execute("UPDATE events SET at = at - interval '31 days'")
    assert await services.stream.prune(timedelta(days=30)) >= 3
    tab = await office.tab("li", last_seq=1)
    assert tab.events[0]["type"] == "sync.reset"
    assert tab.events[0]["data"] == {"seq": 3}


async def test_resume_from_the_future_resets(office: Office) -> None:
    tab = await office.tab("li", last_seq=50)
    assert tab.events[0]["type"] == "sync.reset"
    assert tab.events[0]["data"] == {"seq": 0}


async def test_a_failed_transaction_pushes_nothing_and_uses_no_seq(office: Office) -> None:
    tab = await office.tab("li")
    li = await office.person("li")
    services = office.server.services
    ev = NoteReceived(note_id="1", from_=UserRef("1", "x"), body="lost", at=_now())
    with pytest.raises(RuntimeError):
        async with services.stream.transaction() as tx:
            await tx.emit([int(li.id)], ev)
            raise RuntimeError("boom")
    await _note(office, "wang", "li", "kept")
    await _wait_seq(tab, 1)
    await asyncio.sleep(0.2)
    assert [e["data"]["body"] for e in tab.durable()] == ["kept"]
    assert _seqs(tab) == [1]


async def test_events_are_committed_before_they_are_pushed(office: Office) -> None:
    services = office.server.services
    seen: list[bool] = []

    async def check_visible(msg: dict) -> None:
        for ev in msg["events"]:
            # A separate connection sees only committed rows.
            row = await services.pool.fetchval(
                "SELECT 1 FROM events WHERE user_id = $1 AND seq = $2", ev.user_id, ev.seq
            )
            seen.append(row == 1)

    services.bus.on(EVENTS, check_visible)
    tab = await office.tab("li")
    await _note(office, "wang", "li", "hello")
    await _wait_seq(tab, 1)
    assert seen and all(seen)


async def test_out_of_order_doorbells_still_arrive_in_order(office: Office) -> None:
    """Two commits can reach the bus in the opposite order; the client must not see a gap."""
    services = office.server.services
    tab = await office.tab("li")
    real = services.bus.committed
    first = asyncio.Event()

    async def slow_first(events):  # type: ignore[no-untyped-def]
        if events and events[0].seq == 1 and not first.is_set():
            first.set()
            await asyncio.sleep(0.1)
        await real(events)

    services.bus.committed = slow_first  # type: ignore[method-assign]
    await asyncio.gather(_note(office, "wang", "li", "a"), _note(office, "zhang", "li", "b"))
    await _wait_seq(tab, 2)
    await asyncio.sleep(0.3)
    assert _seqs(tab) == [1, 2]


async def test_ack_is_cumulative_and_never_moves_back(office: Office) -> None:
    tab = await office.tab("li")
    for i in range(3):
        await _note(office, "wang", "li", f"n{i}")
    await _wait_seq(tab, 3)
    services = office.server.services
    li = await office.person("li")
    hooked: list[tuple[int, int, int]] = []

    async def hook(tx: Transaction, acks: list[Ack]) -> None:
        hooked.extend(acks)

    services.stream.ack_hooks.append(hook)
    assert (await tab.call("sync.ack", {"seq": 2}))["ok"]
    assert (await tab.call("sync.ack", {"seq": 1}))["ok"]  # older: ignored
    beyond = await tab.call("sync.ack", {"seq": 99})  # beyond what exists: refused
    assert beyond["error"]["code"] == "bad_request"
    assert beyond["error"]["details"]["fields"][0]["field"] == "seq"
    acked = await services.pool.fetchval(
        "SELECT acked_seq FROM streams WHERE user_id = $1", int(li.id)
    )
    assert acked == 2
    assert hooked == [(int(li.id), 0, 2)]
    bad = await tab.call("sync.ack", {"seq": -1})
    assert bad["error"]["code"] == "bad_request"


async def test_client_msg_id_makes_a_create_idempotent(office: Office) -> None:
    tab = await office.tab("li")
    first = await _note(office, "wang", "li", "once", client_msg_id="m-1")
    again = await _note(office, "wang", "li", "once", client_msg_id="m-1")
    assert first == again
    other = await _note(office, "wang", "li", "twice", client_msg_id="m-2")
    assert other["note_id"] != first["note_id"]
    await _wait_seq(tab, 2)
    await asyncio.sleep(0.2)
    assert _seqs(tab) == [1, 2]
    # The key is per sender: another sender may use the same one.
    third = await _note(office, "zhang", "li", "same key", client_msg_id="m-1")
    assert third["note_id"] not in (first["note_id"], other["note_id"])


async def test_concurrent_retries_create_once(office: Office) -> None:
    results = await asyncio.gather(
        *(_note(office, "wang", "li", "race", client_msg_id="r-1") for _ in range(5))
    )
    assert len({r["note_id"] for r in results}) == 1
    count = await office.server.services.pool.fetchval("SELECT count(*) FROM notes")
    assert count == 1


def test_event_data_round_trips_through_json() -> None:
    ev = NoteReceived(note_id="5", from_=UserRef("1", "王明"), body="来电请回", at=_now())
    data = msgspec.json.decode(msgspec.json.encode(ev))
    assert data["from"] == {"id": "1", "name": "王明"}
    assert msgspec.convert(data, NoteReceived, strict=False) == ev
    assert len({cls.type for cls in declared_events()}) == len(declared_events()) > 15


def _now():  # type: ignore[no-untyped-def]
    from server.stream import utcnow

    return utcnow()


async def test_acks_of_several_users_survive_a_failing_hook(
    office: Office,
) -> None:
    tabs = {name: await office.tab(name) for name in ("li", "zhang", "zhao")}
    for name in tabs:
        await _note(office, "wang", name, f"for {name}")
    for tab in tabs.values():
        await _wait_seq(tab, 1)
    services = office.server.services
    batches: list[list[Ack]] = []

    async def record(tx: Transaction, acks: list[Ack]) -> None:
        batches.append(list(acks))

    async def broken(tx: Transaction, acks: list[Ack]) -> None:
        await tx.conn.execute("UPDATE streams SET acked_seq = 0")  # rolled back with it
        raise RuntimeError("hook bug")

    services.stream.ack_hooks[:0] = [broken, record]
    answers = await asyncio.gather(*(t.call("sync.ack", {"seq": 1}) for t in tabs.values()))
    assert all(a["ok"] and a["data"]["acked_seq"] == 1 for a in answers)
    ids = sorted([int((await office.person(n)).id) for n in tabs])
    assert sorted(a.user_id for b in batches for a in b) == ids
    acked = await services.pool.fetch(
        "SELECT acked_seq FROM streams WHERE user_id = ANY($1::bigint[])", ids
    )
    assert [r["acked_seq"] for r in acked] == [1, 1, 1]


async def test_emit_many_numbers_each_users_events_in_list_order(office: Office) -> None:
    """Groups overlap, repeat a user and carry different events: each user's seqs follow the
    list order with no gap, each row holds its own event (the statement finds types and data
    by event number), and the pushes go out in list order."""
    li, wang, zhang = [int((await office.person(n)).id) for n in ("li", "wang", "zhang")]
    stream = office.server.services.stream
    start = dict(
        await stream.pool.fetch(
            "SELECT user_id, seq FROM streams WHERE user_id = ANY($1)", [li, wang, zhang]
        )
    )

    def note(i: int) -> NoteReceived:
        return NoteReceived(note_id=str(i), from_=UserRef("1", "x"), body=f"b{i}", at=_now())

    groups = [([li, wang], note(0)), ([wang], note(1)), ([zhang, li, li], note(2))]
    groups += [([wang], note(i)) for i in range(3, 1503)]
    async with stream.transaction() as tx:
        got = await tx.emit_many(groups)
        pushed = [(e.user_id, e.seq) for e in tx.events]
    assert got[0] == {li: start[li] + 1, wang: start[wang] + 1}
    assert got[1] == {wang: start[wang] + 2}
    assert got[2] == {zhang: start[zhang] + 1, li: start[li] + 2}
    assert [g[wang] for g in got[3:]] == list(range(start[wang] + 3, start[wang] + 1503))
    assert pushed == [(u, seqs[u]) for seqs in got for u in sorted(seqs)]
    rows = await stream.pool.fetch(
        "SELECT e.user_id, e.seq, e.type, e.data->>'note_id' AS note FROM events e"
        " JOIN streams s USING (user_id) WHERE e.user_id = ANY($1) ORDER BY 1, 2",
        [li, wang, zhang],
    )
    written = {(r["user_id"], r["seq"]): (r["type"], r["note"]) for r in rows}
    expected = {
        (u, seq): ("note.received", str(k)) for k, seqs in enumerate(got) for u, seq in seqs.items()
    }
    assert {key: written[key] for key in expected} == expected
    for u in (li, wang, zhang):  # nothing else was appended
        assert max(seq for user, seq in written if user == u) == max(
            seq for user, seq in expected if user == u
        )


async def test_emit_many_writes_the_callers_rows_in_the_same_statement(office: Office) -> None:
    """`also` CTEs see each appended event as (user_id, seq, k) and write in the same statement:
    their rows name exactly the seqs handed out, and their failure appends nothing."""
    li, wang = [int((await office.person(n)).id) for n in ("li", "wang")]
    stream = office.server.services.stream
    await stream.pool.execute("CREATE TABLE emitted (user_id bigint, seq bigint, k int, tag text)")

    def note(i: int) -> NoteReceived:
        return NoteReceived(note_id=str(i), from_=UserRef("1", "x"), body=f"b{i}", at=_now())

    def rows(p: Params) -> str:
        return (
            ", mine AS (INSERT INTO emitted SELECT user_id, seq, k,"
            f" {p('tagged', 'text')} FROM appended)"
        )

    async with stream.transaction() as tx:
        got = await tx.emit_many([([li, wang], note(0)), ([wang], note(1))], also=rows)
    written = {
        (r["user_id"], r["seq"]): (r["k"], r["tag"])
        for r in await stream.pool.fetch("SELECT * FROM emitted")
    }
    assert written == {
        (u, seq): (k, "tagged") for k, seqs in enumerate(got) for u, seq in seqs.items()
    }

    def failing(p: Params) -> str:
        return f", bad AS (INSERT INTO emitted (user_id) SELECT {p('x', 'text')}::bigint)"

    before = await stream.pool.fetchval("SELECT seq FROM streams WHERE user_id = $1", wang)
    with pytest.raises(asyncpg.DataError):
        async with stream.transaction() as tx:
            await tx.emit_many([([wang], note(2))], also=failing)
    assert await stream.pool.fetchval("SELECT seq FROM streams WHERE user_id = $1", wang) == before
    assert await stream.pool.fetchval("SELECT count(*) FROM emitted") == len(written)


async def test_ids_handed_out_ahead_are_unique_and_rise(office: Office) -> None:
    """Ids come from the table's own sequence a block at a time: never twice, rising in this
    process."""
    pool = office.server.services.pool
    blocks = IdBlocks("pager_messages", block=3)
    got = [await blocks.take(pool, n) for n in (1, 2, 4, 1)]
    got += await asyncio.gather(*(blocks.take(pool, n) for n in (5, 1, 7)))  # at once
    flat = [i for ids in got for i in ids]
    assert [len(ids) for ids in got] == [1, 2, 4, 1, 5, 1, 7]
    assert flat == sorted(set(flat))
    other = await IdBlocks("pager_messages").take(pool, 1)  # another process's block
    assert other[0] not in flat
