"""A document's pipeline (number → circulate → file) survives a server killed with -9 in the
middle: a real `liaison serve` process is killed right after the approval commits, or as soon as
the drafter sees `document.numbered`, and restarted on the same database. In the end there is
exactly one number (the next document gets the next one), one circulation with one receipt row
per recipient, one archive record, and the drafter's three events once each. The assertions are
on that end state, never on timing. And, in process, a step that fails midway (its transaction
rolled back, as in a crash) is run again without doing the earlier ones twice."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from handlers import documents
from tests.support import TEST_PASSWORD, Office, ServeProcess, eventually
from tests.test_documents import STAFF, YEAR, _act, _issue, _open_tasks


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(
        LIAISON_DATABASE_URL=database_url,
        LIAISON_DATA_DIR=str(data_dir),
        LIAISON_BOOTSTRAP_ADMIN=f"admin:{TEST_PASSWORD}",
        LIAISON_JWT_SECRET="kill-test-secret-" + "k" * 40,
        LIAISON_SMS_GATEWAY="log",
    )
    return env


@pytest.fixture
async def serve(
    database_url: str, tmp_path: Path, password_hash: str
) -> AsyncIterator[ServeProcess]:
    srv = ServeProcess("server", _env(database_url, tmp_path), tmp_path, password_hash)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _restart(srv: ServeProcess) -> None:
    """A dead worker's claimed jobs are anyone's once their lease runs out (60 s): the test
    lets that time pass at once instead of waiting for it."""
    conn = await asyncpg.connect(srv.env["LIAISON_DATABASE_URL"])
    try:
        await conn.execute(
            "UPDATE jobs SET lease_until = now() - interval '1 second'"
            " WHERE leased_by IS NOT NULL AND dead_at IS NULL"
        )
    finally:
        await conn.close()
    await srv.start()


async def _sign_all_but_last(office: Office, instance_id: str) -> str:
    """Approve up to the last step; the last open task's id."""
    for _ in range(2):
        _, open_ = await _open_tasks(office, instance_id)
        for t in open_:
            who = {v: k for k, v in office.user_ids.items()}.get(t["assignee"]["id"], "admin")
            p = await office.person(who)
            env = await office.server.command(
                p.token, "workflow.act", {"task_id": t["task_id"], "action": "approve"}
            )
            assert env["ok"], env
    _, (last,) = await _open_tasks(office, instance_id)
    assert last["assignee"]["name"] == "陈建国"
    return str(last["task_id"])


async def _end_state(conn: asyncpg.Connection, document_id: int, drafter_id: int) -> dict[str, Any]:
    doc = await conn.fetchrow(
        "SELECT state, seq, number, circulation_id, archive_id FROM documents WHERE id = $1",
        document_id,
    )
    assert doc is not None
    events = await conn.fetch(
        "SELECT type FROM events WHERE user_id = $1 AND type LIKE 'document.%'"
        " AND data ->> 'document_id' = $2 ORDER BY seq",
        drafter_id,
        str(document_id),
    )
    mine = [e["type"] for e in events]
    return {
        "state": doc["state"],
        "seq": doc["seq"],
        "number": doc["number"],
        "circulations": await conn.fetchval(
            "SELECT count(*) FROM circulations WHERE title LIKE '%' || $1 || '%'", doc["number"]
        ),
        "receipts": await conn.fetch(
            "SELECT user_id FROM circulation_recipients WHERE circulation_id = $1 ORDER BY 1",
            doc["circulation_id"],
        ),
        "archived": await conn.fetchval(
            "SELECT count(*) FROM archive_records WHERE document_id = $1", document_id
        ),
        "archive_id": doc["archive_id"],
        "events": mine,
    }


async def _filed(srv: ServeProcess, document_id: int) -> None:
    conn = await asyncpg.connect(srv.env["LIAISON_DATABASE_URL"])
    try:

        async def done() -> bool:
            state = await conn.fetchval("SELECT state FROM documents WHERE id = $1", document_id)
            return bool(state == "filed")

        await eventually(done, timeout=20)
    finally:
        await conn.close()


WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


@pytest.mark.parametrize("kill_at", ["approval_committed", "numbering", "circulating"])
async def test_a_server_killed_in_the_pipeline_finishes_it_once_after_a_restart(
    serve: ServeProcess, kill_at: str
) -> None:
    """`approval_committed`: killed as soon as the last approval is answered, wherever the
    pipeline is. `numbering` / `circulating`: a row the step needs is held here, so the kill
    lands for sure while that step's job is inside its transaction (the document's row for the
    numbering; a recipient's stream for the circulation, after `document.numbered` was seen)."""
    office = await Office.create(serve)
    await office.add_people(STAFF)
    li_tab = await office.tab("li")
    issued = await _issue(office)  # to 张伟 and 财务科 (赵敏)
    document_id = int(issued["document_id"])
    last = await _sign_all_but_last(office, issued["instance_id"])
    blocker = await asyncpg.connect(serve.env["LIAISON_DATABASE_URL"])
    held = blocker.transaction()
    await held.start()
    if kill_at == "numbering":
        await blocker.execute("SELECT 1 FROM documents WHERE id = $1 FOR UPDATE", document_id)
    elif kill_at == "circulating":
        await blocker.execute(
            "SELECT 1 FROM streams WHERE user_id = $1 FOR UPDATE", int(office.user_ids["zhao"])
        )
    try:
        chen = await office.person("chen")
        signed = await office.server.command(
            chen.token, "workflow.act", {"task_id": last, "action": "approve"}
        )
        assert signed["ok"] and signed["data"]["state"] == "approved", signed
        if kill_at == "circulating":
            await li_tab.wait_for("document.numbered", timeout=15)
        if kill_at != "approval_committed":
            await eventually(lambda: blocker.fetchval(WAITING), timeout=15)
        await serve.kill()
        for client in list(serve.clients):  # the dead server's sockets
            with contextlib.suppress(Exception):
                await client.close()
        serve.clients.clear()
        state = await blocker.fetchval("SELECT state FROM documents WHERE id = $1", document_id)
        expected = {"numbering": "approving", "circulating": "numbered"}
        assert state == expected.get(kill_at, state)  # the kill landed inside that step
    finally:
        await held.rollback()
        await blocker.close()

    await _restart(serve)
    await _filed(serve, document_id)
    conn = await asyncpg.connect(serve.env["LIAISON_DATABASE_URL"])
    try:
        end = await _end_state(conn, document_id, int(office.user_ids["li"]))
        assert (end["state"], end["seq"], end["number"]) == ("filed", 1, f"办发〔{YEAR}〕1号")
        assert end["circulations"] == 1
        assert sorted(r["user_id"] for r in end["receipts"]) == sorted(
            [int(office.user_ids["zhang"]), int(office.user_ids["zhao"])]
        )
        assert end["archived"] == 1 and end["archive_id"] is not None
        assert end["events"] == [
            "document.updated",
            "document.numbered",
            "document.circulated",
            "document.filed",
        ]
        assert await conn.fetchval("SELECT last FROM document_counters") == 1
    finally:
        await conn.close()

    # No number was lost either: the next document is the second.
    office._people.clear()  # sign in again on the new process
    nxt = await _issue(office)
    assert await _act(office, nxt["instance_id"]) == "approved"
    await _filed(serve, int(nxt["document_id"]))
    conn = await asyncpg.connect(serve.env["LIAISON_DATABASE_URL"])
    try:
        assert (
            await conn.fetchval(
                "SELECT number FROM documents WHERE id = $1", int(nxt["document_id"])
            )
            == f"办发〔{YEAR}〕2号"
        )
    finally:
        await conn.close()


async def test_a_step_that_fails_midway_is_done_again_and_the_earlier_ones_not_twice(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filing fails once after the archive record was written in its transaction (a crash
    there): rolled back, retried by the job worker, it files once; numbering and circulating,
    committed before, are not repeated."""
    await office.add_people(STAFF)
    real = documents.archive.file_document
    failures = [0]

    async def crashing(*args: Any, **kw: Any) -> tuple[int, str]:
        got = await real(*args, **kw)
        if not failures[0]:
            failures[0] += 1
            raise RuntimeError("killed while filing")
        return got

    monkeypatch.setattr(documents.archive, "file_document", crashing)
    li_tab = await office.tab("li")
    issued = await _issue(office)
    assert await _act(office, issued["instance_id"]) == "approved"
    await li_tab.wait_for("document.filed", timeout=20)
    assert failures[0] == 1
    pool = office.server.services.pool
    document_id = int(issued["document_id"])
    async with pool.acquire() as conn:
        end = await _end_state(conn, document_id, int(office.user_ids["li"]))
    assert end["circulations"] == 1 and end["archived"] == 1 and len(end["receipts"]) == 2
    assert end["events"][1:] == ["document.numbered", "document.circulated", "document.filed"]
