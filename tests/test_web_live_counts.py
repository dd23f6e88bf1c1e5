"""Live counts in headless Chromium, with the races behind them forced: a count follows the event
sequence whichever way an answer and a push happen to cross, and what is typed into a dialog the
moment it opens is what is sent.

The server runs in the test's own event loop, so a test holds one of its steps (a resume, a
command's answer, a board read) to make the race happen every time instead of now and then."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from playwright.async_api import Page, expect

import storage.presence
from tests.support import Office
from tests.test_web_board import sign_in

NewPage = Callable[[], Awaitable[Page]]


@contextlib.asynccontextmanager
async def answers_held(
    office: Office, account: str, name: str, wanted: Callable[[dict[str, Any]], bool]
) -> AsyncIterator[tuple[asyncio.Event, asyncio.Event, asyncio.Event]]:
    """Hold the answer to `account`'s first `name` command whose payload is `wanted`: it is
    computed at once (`read` is set), and sent once `release` is set (then `sent` is)."""
    registry = office.server.services.registry
    dispatch = registry.dispatch
    read, release, sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def holding(services: Any, user: Any, conn: Any, cmd: str, payload: Any) -> Any:
        answer = await dispatch(services, user, conn, cmd, payload)
        body = msgspec.json.decode(payload) if payload else {}
        if user.account == account and cmd == name and wanted(body) and not read.is_set():
            read.set()
            await release.wait()
            sent.set()
        return answer

    registry.dispatch = holding  # type: ignore[method-assign]
    try:
        yield read, release, sent
    finally:
        release.set()
        registry.dispatch = dispatch  # type: ignore[method-assign]


async def test_a_note_typed_the_moment_the_dialog_opens_is_sent(
    office: Office, new_page: NewPage, artifacts: Path
) -> None:
    """The dialog used to empty itself in an effect that runs after paint: a note typed before
    then was wiped and refused as empty, and never left."""
    li = await office.person("li")
    wang_page, li_page = await sign_in(new_page, office.server.url, "wang", "li")
    await wang_page.get_by_test_id(f"note-to-{li.id}").wait_for()
    # Open the dialog and type in one go, before the browser paints it.
    await wang_page.evaluate(
        """async (id) => {
            document.querySelector(`[data-testid="note-to-${id}"]`).click();
            let box = null;
            while (!(box = document.querySelector('[data-testid="note-body"]'))) {
                await new Promise((resolve) => queueMicrotask(resolve));
            }
            box.value = '下午三点来我办公室';
            box.dispatchEvent(new Event('input', { bubbles: true }));
        }""",
        li.id,
    )
    await wang_page.wait_for_timeout(200)  # past the paint and its effects
    await expect(wang_page.get_by_test_id("note-body")).to_have_value("下午三点来我办公室")
    await wang_page.get_by_test_id("note-submit").click()
    await expect(li_page.get_by_test_id("header-notes")).to_have_attribute(
        "data-count", "1", timeout=5000
    )
    await expect(wang_page.get_by_test_id(f"notes-waiting-{li.id}")).to_have_attribute(
        "data-count", "1"
    )
    await wang_page.screenshot(path=str(artifacts / "notes-waiting-board.png"), full_page=True)


async def test_a_note_left_while_the_readers_stream_resumes_is_counted(
    office: Office, new_page: NewPage
) -> None:
    """A snapshot read at the connect can predate an event the server then never pushes: it
    pushes only what follows the seq of its sync.ready, fixed by the resume. The client takes
    its snapshots once the stream is in step."""
    wang, li = await office.person("wang"), await office.person("li")
    stream = office.server.services.stream
    replay = stream.replay
    resuming, release = asyncio.Event(), asyncio.Event()

    async def slow_replay(user_id: int, last_seq: int | None) -> Any:
        if user_id == int(li.id) and not release.is_set():
            resuming.set()
            await release.wait()
        return await replay(user_id, last_seq)

    async with answers_held(office, "li", "notes.list", lambda _: True) as (read, go, _):
        go.set()  # not held: only watched, to know when the client has read its notes
        stream.replay = slow_replay  # type: ignore[method-assign]
        try:
            (wang_page,) = await sign_in(new_page, office.server.url, "wang")
            (li_page,) = await sign_in(new_page, office.server.url, "li")
            await asyncio.wait_for(resuming.wait(), 5)
            # A client that reads at the connect has read by now; one that waits for the
            # stream does not read before the resume is let go.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(read.wait(), 1.5)
            env = await office.server.command(
                wang.token, "notes.leave", {"to": li.id, "body": "下午三点来我办公室"}
            )
            assert env["ok"], env
        finally:
            release.set()
            stream.replay = replay  # type: ignore[method-assign]
    await expect(li_page.get_by_test_id("header-notes")).to_have_attribute(
        "data-count", "1", timeout=5000
    )
    await expect(wang_page.get_by_test_id(f"notes-waiting-{li.id}")).to_have_attribute(
        "data-count", "1"
    )


async def test_a_circulation_pushed_while_the_unread_count_is_on_its_way_stays_counted(
    office: Office, new_page: NewPage
) -> None:
    """The count of unopened circulations was replaced by whatever answer came last: one read
    before a circulation arrived, delivered after its push, took the push back."""
    wang, li = await office.person("wang"), await office.person("li")

    async def circulate(title: str) -> None:
        env = await office.server.command(
            wang.token,
            "circulation.create",
            {"title": title, "body": "请阅", "to": [li.id], "client_msg_id": title},
        )
        assert env["ok"], env

    def unread_count(payload: dict[str, Any]) -> bool:
        return payload.get("box") == "inbox" and payload.get("state") == "unopened"

    async with answers_held(office, "li", "circulation.list", unread_count) as (read, go, sent):
        (li_page,) = await sign_in(new_page, office.server.url, "li")
        await asyncio.wait_for(read.wait(), 5)
        await circulate("关于节假日值班安排的通知")
        nav = li_page.get_by_test_id("nav-circulation")
        await expect(nav).to_have_attribute("data-unread", "1", timeout=5000)  # the push
        go.set()
        await asyncio.wait_for(sent.wait(), 5)
    # The stale answer has gone out before this second push: the count must show both.
    await circulate("关于报送年度总结的通知")
    await expect(nav).to_have_attribute("data-unread", "2", timeout=5000)


async def test_a_note_left_while_the_board_is_being_read_shows_on_it(
    office: Office, new_page: NewPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A board read, then a note left for someone on it, then the answer: the delta came before
    the answer it is newer than (the server now subscribes before it reads, so the delta is
    sent at all), and the client lays it over the answer again."""
    li, zhang = await office.person("li"), await office.person("zhang")
    (li_page,) = await sign_in(new_page, office.server.url, "li")
    read_board = storage.presence.board
    armed = asyncio.Event()
    left = asyncio.Event()

    async def board_then_note(conn: Any, department_id: int) -> Any:
        members = await read_board(conn, department_id)
        if armed.is_set() and not left.is_set():
            left.set()
            env = await office.server.command(
                zhang.token, "notes.leave", {"to": li.id, "body": "材料放你桌上了"}
            )
            assert env["ok"], env
        return members

    monkeypatch.setattr(storage.presence, "board", board_then_note)
    armed.set()
    (wang_page,) = await sign_in(new_page, office.server.url, "wang")
    await asyncio.wait_for(left.wait(), 5)
    await expect(wang_page.get_by_test_id(f"notes-waiting-{li.id}")).to_have_attribute(
        "data-count", "1", timeout=5000
    )
    await expect(li_page.get_by_test_id("header-notes")).to_have_attribute("data-count", "1")
