"""The console script and the embedded default: seed the demo office, and data that survives a
restart of a server that started its own PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from storage.embedded import embedded_postgres
from tests.support import Office, start_server


async def test_seed_demo_loads_a_believable_office(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "LIAISON_DATABASE_URL": database_url, "LIAISON_DATA_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "seed",
        "--demo",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "wangming" in text and "liaison2026" in text and "zhouwen" in text
    assert "Demo approvals, tasks, schedule, library, documents and archive: 16" in text
    conn = await asyncpg.connect(database_url)
    try:
        folders = await conn.fetch("SELECT name, parent_id FROM library_folders ORDER BY id")
        assert [f["name"] for f in folders] == ["规章制度", "财务制度", "会议纪要", "财务资料"]
        assert await conn.fetchval("SELECT count(*) FROM library_docs") == 6
        # The finance folder is for 财务科 and the leaders, not for everyone.
        roles = await conn.fetch(
            "SELECT a.kind, a.principal FROM library_acl a JOIN library_folders f"
            " ON f.id = a.folder_id WHERE f.name = '财务资料' AND a.kind = 'role'"
        )
        assert [(r["kind"], r["principal"]) for r in roles] == [("role", "leader")]
        # Two documents approved (issued, received), two records filed by the archivist; the
        # issued one's numbering, circulation and filing follow on the bus (here, or at serve).
        docs = await conn.fetch("SELECT kind, state FROM documents ORDER BY id")
        assert [d["kind"] for d in docs] == ["issue", "receive"]
        assert docs[1]["state"] in ("approving", "handling")
        assert await conn.fetchval("SELECT count(*) FROM archive_records") >= 2
        states = await conn.fetch("SELECT key, state FROM workflow_instances ORDER BY id")
        assert {r["state"] for r in states} == {"approved", "rejected", "running"}
        assert await conn.fetchval("SELECT count(*) FROM workflow_tasks WHERE state = 'open'") == 3
        own_tasks = (
            "SELECT count(*) FROM tasks WHERE id NOT IN (SELECT task_id FROM document_tasks)"
        )
        assert await conn.fetchval(own_tasks) == 2
        assert await conn.fetchval("SELECT count(*) FROM schedule_entries") == 2
        assert await conn.fetchval("SELECT count(*) FROM todos WHERE done_at IS NULL") >= 3 + 3 + 3
        assert 10 <= await conn.fetchval("SELECT count(*) FROM departments") <= 15
        assert 140 <= await conn.fetchval("SELECT count(*) FROM users") <= 160
        assert await conn.fetchval("SELECT name FROM users WHERE account = 'wangming'") == "王明"
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM users u LEFT JOIN streams s ON s.user_id = u.id WHERE s.user_id IS NULL"
            )
            == 0
        )
        counts = (
            "SELECT (SELECT count(*) FROM library_docs), (SELECT count(*) FROM workflow_instances)"
        )
        before = tuple(await conn.fetchrow(counts))
        again = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "seed", "--demo", env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _, err = await again.communicate()
        assert again.returncode == 0, err.decode()
        assert tuple(await conn.fetchrow(counts)) == before, "a second seed files nothing twice"
    finally:
        await conn.close()


async def test_embedded_postgres_keeps_data_across_restarts(
    tmp_path: Path, password_hash: str
) -> None:
    async with start_server(None, tmp_path, password_hash) as srv:  # type: ignore[arg-type]
        assert (tmp_path / "pg" / "PG_VERSION").exists()
        office = await Office.create(srv)
        li = await office.person("li")
        await srv.command(li.token, "whereabouts.set", {"status": "remote", "note": "在家办公"})
    async with start_server(None, tmp_path, password_hash) as srv:
        again = await srv.login("li")
        env = await srv.command(again["access_token"], "directory.users", {"query": "李华"})
        assert env["data"]["users"][0]["whereabouts"]["note"] == "在家办公"


async def test_a_clean_stop_after_a_kill_9_still_stops_the_embedded_postgres(
    tmp_path: Path,
) -> None:
    """A server killed with -9 leaves its embedded PostgreSQL running (nothing can stop it then);
    the next one joins it and, stopping cleanly, stops it."""
    started = (
        "import asyncio, sys, pathlib\n"
        "from storage.embedded import embedded_postgres\n"
        "async def main():\n"
        "    async with embedded_postgres(pathlib.Path(sys.argv[1])):\n"
        "        print('ready', flush=True)\n"
        "        await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", started, str(tmp_path), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 120)).strip() == b"ready"
    proc.kill()
    await proc.wait()
    postmaster = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, 0)  # still running, orphaned

    async with embedded_postgres(tmp_path) as dsn:
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
