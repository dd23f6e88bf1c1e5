"""Schedule (日程): invitations with to-do items, calendars seen as visibility allows, reminders
that pop up for those online and text those not, once, even across a restart; cancellation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support import Office, eventually, start_server

_keys = itertools.count()


def _at(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def _create(office: Office, who: str, **kw: Any) -> str:
    body = {"title": "处务会", "starts_at": _at(days=1), "client_msg_id": f"s-{next(_keys)}", **kw}
    return str((await office.ok(who, "schedule.create", body))["entry_id"])


def _window() -> dict[str, str]:
    return {"from": _at(hours=-1), "to": _at(days=3)}


async def test_an_invitation_reaches_the_attendee_and_their_inbox(office: Office) -> None:
    li = await office.tab("li")
    entry = await _create(office, "wang", attendees=[office.user_ids["li"]], location="302会议室")
    invited = await li.wait_for("schedule.invited")
    assert (invited["data"]["entry_id"], invited["data"]["location"]) == (entry, "302会议室")
    added = await li.wait_for("todo.added")
    assert (added["data"]["item"]["kind"], added["data"]["item"]["ref_id"]) == ("schedule", entry)
    mine = await office.ok("li", "schedule.list", _window())
    assert [e["title"] for e in mine["entries"]] == ["处务会"]


async def test_others_see_a_calendar_as_its_visibility_allows(office: Office) -> None:
    await _create(office, "wang", title="私事", visibility="private", starts_at=_at(hours=2))
    await _create(office, "wang", title="科务会", visibility="department", starts_at=_at(hours=4))
    await _create(office, "wang", title="接待来访", visibility="public", starts_at=_at(hours=6))
    wang_id = office.user_ids["wang"]

    async def seen_by(who: str) -> list[str]:
        got = await office.ok(who, "schedule.list", {**_window(), "user_id": wang_id})
        return [e["title"] if not e["busy"] else "忙" for e in got["entries"]]

    assert await seen_by("wang") == ["私事", "科务会", "接待来访"]
    assert await seen_by("li") == ["忙", "科务会", "接待来访"]  # same department
    assert await seen_by("zhao") == ["忙", "忙", "接待来访"]  # another department
    busy = (await office.ok("zhao", "schedule.list", {**_window(), "user_id": wang_id}))["entries"][
        0
    ]
    assert set(busy) == {"entry_id", "starts_at", "ends_at", "busy"}


async def test_the_reminder_pops_up_for_those_online_and_texts_those_not(office: Office) -> None:
    li = await office.tab("li")
    entry = await _create(
        office,
        "wang",
        starts_at=_at(seconds=2),
        remind_before_s=1,
        attendees=[office.user_ids["li"], office.user_ids["zhang"]],
    )
    reminder = await li.wait_for("schedule.reminder", timeout=10)
    assert reminder["data"]["entry_id"] == entry
    await li.wait_for("todo.done")

    async def texted() -> list[str]:
        rows = await office.server.services.pool.fetch(
            "SELECT address FROM outbox WHERE topic = 'schedule.sms' ORDER BY address"
        )
        return [r["address"] for r in rows]

    await eventually(lambda: _nonempty(texted), timeout=10)
    assert await texted() == ["13900000002", "13900000004"]  # wang and zhang, offline


async def _nonempty(f: Any) -> bool:
    return bool(await f())


async def test_cancelling_tells_the_attendees_and_no_reminder_comes(office: Office) -> None:
    li = await office.tab("li")
    entry = await _create(
        office,
        "wang",
        starts_at=_at(seconds=2),
        remind_before_s=1,
        attendees=[office.user_ids["li"]],
    )
    assert (await office.call("li", "schedule.cancel", {"entry_id": entry}))["error"][
        "code"
    ] == "forbidden"
    assert (await office.call("zhao", "schedule.cancel", {"entry_id": entry}))["error"][
        "code"
    ] == "not_found"
    await office.ok("wang", "schedule.cancel", {"entry_id": entry})
    await li.wait_for("schedule.cancelled")
    await li.wait_for("todo.done")
    jobs = await office.server.services.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = 'schedule.remind'"
    )
    assert jobs == 0
    assert (await office.ok("li", "schedule.list", _window()))["entries"] == []


async def test_a_restart_in_between_neither_loses_nor_repeats_a_reminder(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(database_url, tmp_path, password_hash) as srv:
        office = await Office.create(srv)
        await _create(office, "wang", starts_at=_at(seconds=3), remind_before_s=1)
    async with start_server(database_url, tmp_path, password_hash) as srv:
        office = Office(srv, office.departments, office.user_ids)

        async def texted() -> int:
            return int(
                await srv.services.pool.fetchval(
                    "SELECT count(*) FROM outbox WHERE topic = 'schedule.sms'"
                )
            )

        await eventually(lambda: _positive(texted), timeout=10)
        wang = await office.tab("wang", last_seq=0)
        reminders = [e for e in wang.durable() if e["type"] == "schedule.reminder"]
        assert len(reminders) == 1
        assert await texted() == 1


async def _positive(f: Any) -> bool:
    return await f() > 0


async def test_bad_input_changes_nothing(office: Office) -> None:
    naive = await office.call(
        "wang",
        "schedule.create",
        {"title": "x", "starts_at": "2030-01-01T09:00:00", "client_msg_id": "n"},
    )
    assert naive["error"]["code"] == "bad_request"
    backwards = await office.call(
        "wang",
        "schedule.create",
        {"title": "x", "starts_at": _at(days=1), "ends_at": _at(hours=1), "client_msg_id": "b"},
    )
    assert backwards["error"]["code"] == "bad_request"
    wide = await office.call("wang", "schedule.list", {"from": _at(days=-100), "to": _at(days=1)})
    assert wide["error"]["code"] == "bad_request"
    assert (await office.ok("wang", "schedule.list", _window()))["entries"] == []
