"""The department whereabouts board (人员去向): presence across tabs, whereabouts with return
times that expire on time (even across a restart), leaders setting for their people, notes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support import Office, start_server


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _board(client, department_id: str) -> dict:  # type: ignore[no-untyped-def]
    env = await client.call("whereabouts.board", {"department_id": department_id})
    assert env["ok"], env
    return {m["user"]["id"]: m for m in env["data"]["members"]}


async def test_presence_follows_tabs_and_idleness(office: Office) -> None:
    general = office.departments["general"]
    watcher = await office.tab("wang")
    li = await office.person("li")
    board = await _board(watcher, general)
    assert board[li.id]["presence"] == "offline"

    tab1 = await office.tab("li")
    ev = await watcher.wait_for(
        lambda e: e["type"] == "presence.changed" and e["data"]["presence"] == "online"
    )
    assert ev["data"]["user_id"] == li.id
    tab2 = await office.tab("li")
    assert (await tab1.call("presence.idle", {"idle": True}))["data"]["presence"] == "online"
    assert (await tab2.call("presence.idle", {"idle": True}))["data"]["presence"] == "idle"
    await watcher.wait_for(
        lambda e: e["type"] == "presence.changed" and e["data"]["presence"] == "idle"
    )
    await tab1.call("presence.idle", {"idle": False})
    await watcher.wait_for(
        lambda e: e["type"] == "presence.changed" and e["data"]["presence"] == "online", start=2
    )
    await tab1.close()
    await tab2.close()
    gone = await watcher.wait_for(
        lambda e: e["type"] == "presence.changed" and e["data"]["presence"] == "offline"
    )
    assert gone["data"]["last_seen"] is not None
    board = await _board(watcher, general)
    assert board[li.id]["presence"] == "offline"
    assert board[li.id]["last_seen"] is not None


async def test_whereabouts_reach_only_watchers_of_that_department(office: Office) -> None:
    general, finance = office.departments["general"], office.departments["finance"]
    watcher = await office.tab("zhang")
    await _board(watcher, general)
    elsewhere = await office.tab("zhao")
    await _board(elsewhere, finance)
    li_tab = await office.tab("li")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    env = await li_tab.call(
        "whereabouts.set",
        {
            "status": "business_trip",
            "note": "省厅汇报",
            "location": "省城",
            "until": _iso(tomorrow),
        },
    )
    assert env["ok"], env
    ev = await watcher.wait_for("whereabouts.changed")
    w = ev["data"]["whereabouts"]
    assert (w["status"], w["note"], w["location"]) == ("business_trip", "省厅汇报", "省城")
    assert datetime.fromisoformat(w["until"]) == tomorrow.replace(microsecond=tomorrow.microsecond)
    assert w["set_by"]["name"] == "李华"
    # What the event said is what a fresh fetch says (verify_action).
    board = await _board(watcher, general)
    assert board[ev["data"]["user_id"]]["whereabouts"] == w
    await asyncio.sleep(0.2)
    assert not [e for e in elsewhere.events if e["type"] == "whereabouts.changed"]


async def test_unwatch_stops_deltas(office: Office) -> None:
    general = office.departments["general"]
    watcher = await office.tab("zhang")
    await _board(watcher, general)
    assert (await watcher.call("whereabouts.unwatch", {"department_id": general}))["ok"]
    wang = await office.person("wang")
    await office.server.command(wang.token, "whereabouts.set", {"status": "out"})
    await asyncio.sleep(0.3)
    assert not [e for e in watcher.events if e["type"] == "whereabouts.changed"]


async def test_leader_sets_for_a_subordinate_but_staff_cannot(office: Office) -> None:
    general = office.departments["general"]
    wang = await office.tab("wang")
    li = await office.person("li")
    zhang = await office.person("zhang")
    env = await wang.call(
        "whereabouts.set", {"status": "on_leave", "note": "病假", "for_user": li.id}
    )
    assert env["ok"], env
    assert env["data"]["whereabouts"]["set_by"]["name"] == "王明"
    denied = await office.server.command(
        zhang.token, "whereabouts.set", {"status": "out", "for_user": li.id}
    )
    assert denied["error"]["code"] == "forbidden"
    board = await _board(wang, general)
    assert board[li.id]["whereabouts"]["status"] == "on_leave"


async def test_a_delegate_may_set_whereabouts_for_the_person_who_named_them(office: Office) -> None:
    wang = await office.person("wang")
    li = await office.person("li")
    denied = await office.server.command(
        li.token, "whereabouts.set", {"status": "out", "for_user": wang.id}
    )
    assert denied["error"]["code"] == "forbidden"
    env = await office.server.command(wang.token, "delegates.set", {"user_ids": [li.id]})
    assert env["ok"], env
    assert [d["id"] for d in env["data"]["delegates"]] == [li.id]
    ok = await office.server.command(
        li.token, "whereabouts.set", {"status": "in_meeting", "for_user": wang.id}
    )
    assert ok["ok"], ok


async def test_until_in_the_past_or_without_zone_is_refused(office: Office) -> None:
    li = await office.person("li")
    past = _iso(datetime.now(UTC) - timedelta(minutes=1))
    env = await office.server.command(li.token, "whereabouts.set", {"status": "out", "until": past})
    assert env["error"]["code"] == "bad_request"
    env = await office.server.command(
        li.token, "whereabouts.set", {"status": "out", "until": "2030-01-01T10:00:00"}
    )
    assert env["error"]["code"] == "bad_request"


async def test_whereabouts_expire_on_time(office: Office) -> None:
    general = office.departments["general"]
    watcher = await office.tab("wang")
    await _board(watcher, general)
    li = await office.person("li")
    until = datetime.now(UTC) + timedelta(seconds=1.5)
    env = await office.server.command(
        li.token, "whereabouts.set", {"status": "out", "until": _iso(until)}
    )
    assert env["ok"], env
    ev = await watcher.wait_for(
        lambda e: e["type"] == "whereabouts.changed" and e["data"]["reason"] == "expired", timeout=6
    )
    assert ev["data"]["user_id"] == li.id
    assert ev["data"]["whereabouts"]["status"] == "in_office"
    assert datetime.now(UTC) >= until


async def test_a_newer_whereabouts_replaces_the_pending_expiry(office: Office) -> None:
    li = await office.person("li")
    soon = _iso(datetime.now(UTC) + timedelta(seconds=1))
    await office.server.command(li.token, "whereabouts.set", {"status": "out", "until": soon})
    await office.server.command(li.token, "whereabouts.set", {"status": "remote"})
    await asyncio.sleep(2)
    board = await office.server.command(
        li.token, "whereabouts.board", {"department_id": office.departments["general"]}
    )
    me = next(m for m in board["data"]["members"] if m["user"]["id"] == li.id)
    assert me["whereabouts"]["status"] == "remote"


async def test_expiry_survives_a_restart(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(database_url, tmp_path, password_hash) as srv:
        office = await Office.create(srv)
        li = await office.person("li")
        until = datetime.now(UTC) + timedelta(seconds=2)
        env = await srv.command(
            li.token, "whereabouts.set", {"status": "business_trip", "until": _iso(until)}
        )
        assert env["ok"], env
    await asyncio.sleep(2.5)  # the server is down when `until` passes
    async with start_server(database_url, tmp_path, password_hash) as srv:
        for _ in range(50):
            status = await srv.services.pool.fetchval(
                "SELECT status FROM whereabouts WHERE user_id = $1", int(li.id)
            )
            if status == "in_office":
                break
            await asyncio.sleep(0.1)
        assert status == "in_office"
        assert await srv.services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_notes_are_durable_counted_and_read(office: Office) -> None:
    general = office.departments["general"]
    watcher = await office.tab("zhang")
    li_tab = await office.tab("li")
    li = await office.person("li")
    wang = await office.person("wang")
    env = await office.server.command(
        wang.token, "notes.leave", {"to": li.id, "body": "下午三点来我办公室"}
    )
    assert env["ok"], env
    received = await li_tab.wait_for("note.received")
    assert received["seq"] == 1
    assert received["data"]["from"] == {"id": wang.id, "name": "王明"}
    assert received["data"]["note_id"] == env["data"]["note_id"]
    board = await _board(watcher, general)
    assert board[li.id]["notes_waiting"] == 1
    listed = await li_tab.call("notes.list", {})
    assert [n["body"] for n in listed["data"]["notes"]] == ["下午三点来我办公室"]
    assert listed["data"]["notes"][0]["read_at"] is None
    # Someone else cannot mark li's note read.
    await office.server.command(wang.token, "notes.read", {"note_ids": [env["data"]["note_id"]]})
    assert (await _board(watcher, general))[li.id]["notes_waiting"] == 1
    read = await li_tab.call("notes.read", {"note_ids": [env["data"]["note_id"]]})
    assert read["data"] == {"notes_waiting": 0}
    ev = await watcher.wait_for(
        lambda e: e["type"] == "notes.waiting" and e["data"]["notes_waiting"] == 0
    )
    assert ev["data"]["user_id"] == li.id
    assert (await _board(watcher, general))[li.id]["notes_waiting"] == 0


async def test_notes_to_nobody_or_empty_are_refused(office: Office) -> None:
    wang = await office.person("wang")
    env = await office.server.command(wang.token, "notes.leave", {"to": "999999", "body": "x"})
    assert env["error"]["code"] == "not_found"
    env = await office.server.command(wang.token, "notes.leave", {"to": wang.id, "body": "   "})
    assert env["error"]["code"] == "bad_request"


async def test_board_of_an_unknown_department_is_not_found(office: Office) -> None:
    wang = await office.person("wang")
    env = await office.server.command(wang.token, "whereabouts.board", {"department_id": "424242"})
    assert env["error"]["code"] == "not_found"
