"""Deferred work (server/jobs.py): due jobs run in batches, each once, in due order; a job that
fails neither holds back nor repeats the others, is retried with capped backoff, and is
dead-lettered after its tries with a metric and a log line; jobs another worker holds are left
to it until its lease runs out, then taken over; async handlers subscribed to an event type run
after commit, once per committed event, never for one rolled back."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from handlers.presence import NoteReceived
from server.events import UserRef
from server.jobs import CLAIM, Jobs, JobSet
from server.services import Services
from server.stream import Transaction, utcnow
from storage.jobs import Due, upsert
from tests.support import LiveServer, Office, eventually


def _worker(
    srv: LiveServer, fail_on: int | None = None, **policy: Any
) -> tuple[Jobs, list[list[int]]]:
    """A worker for kind `test.tick` (the server's own is stopped, so it cannot take them), and
    the batches of `n`s it ran, recorded only once their transaction committed."""
    srv.services.jobs.stop()
    ticks = JobSet()
    ran: list[list[int]] = []

    @ticks("test.tick", **policy)
    async def tick(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
        ns = [p["n"] for p in payloads]
        await tx.conn.execute("SELECT 1")  # some work in the job's transaction
        if fail_on in ns:
            raise RuntimeError(f"tick {fail_on} is broken")

        async def done() -> None:
            ran.append(ns)

        tx.after_commit(done)

    return Jobs(srv.services.stream, [ticks], srv.services.metrics), ran


async def _schedule(srv: LiveServer, ns: range, *, in_s: float = -1.0) -> None:
    now = utcnow()
    async with srv.services.pool.acquire() as conn:
        await upsert(
            conn,
            [
                Due("test.tick", str(n), now + timedelta(seconds=in_s + n / 1000), {"n": n})
                for n in ns
            ],
        )


async def _drain(srv: LiveServer, worker: Jobs) -> int:
    passes = 0
    while await worker.work_one(srv.services):
        passes += 1
    return passes


async def test_due_jobs_run_in_batches_once_each_in_due_order(server: LiveServer) -> None:
    worker, ran = _worker(server)
    count = 2 * CLAIM + 7
    await _schedule(server, range(count))
    await _schedule(server, range(count, count + 3), in_s=60)  # not due yet
    assert await _drain(server, worker) == 3
    assert [len(b) for b in ran] == [CLAIM, CLAIM, 7]
    assert [n for b in ran for n in b] == list(range(count))
    left = await server.services.pool.fetch("SELECT key FROM jobs ORDER BY run_at")
    assert [r["key"] for r in left] == [str(n) for n in range(count, count + 3)]


async def test_a_failing_job_neither_holds_back_nor_repeats_the_others(
    server: LiveServer,
) -> None:
    worker, ran = _worker(server, fail_on=3)
    await _schedule(server, range(6))
    await _drain(server, worker)
    # The batch failed as a whole, then each went alone: all but the broken one, once each.
    assert sorted(n for b in ran for n in b) == [0, 1, 2, 4, 5]
    row = await server.services.pool.fetchrow("SELECT key, attempts, run_at, last_error FROM jobs")
    assert row["key"] == "3" and row["attempts"] == 1
    assert row["run_at"] > utcnow()  # backed off, not spinning
    assert "tick 3 is broken" in row["last_error"]


async def test_a_job_that_keeps_failing_is_dead_lettered_with_a_metric_and_a_line(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    worker, ran = _worker(server, fail_on=0, max_attempts=3, backoff_s=0.01)
    await _schedule(server, range(1))
    waits = []
    for _ in range(3):
        await server.services.pool.execute("UPDATE jobs SET run_at = now() - interval '1 s'")
        caplog.clear()
        caplog.set_level(logging.INFO)
        await _drain(server, worker)
        row = await server.services.pool.fetchrow("SELECT * FROM jobs")
        if row["dead_at"] is None:
            waits.append(row["run_at"])
    assert ran == []
    assert row["dead_at"] is not None and row["attempts"] == 3
    dead_lines = [r for r in caplog.records if "dead after 3 tries" in r.getMessage()]
    assert len(dead_lines) == 1 and dead_lines[0].levelno == logging.ERROR
    metrics = server.services.metrics.render().decode()
    assert 'liaison_jobs_total{kind="test.tick",outcome="dead"} 1.0' in metrics
    # Buried, it runs no more, and setting it again revives it.
    await server.services.pool.execute("UPDATE jobs SET run_at = now() - interval '1 s'")
    assert await _drain(server, worker) == 0
    await _schedule(server, range(1))
    assert (await server.services.pool.fetchrow("SELECT dead_at, attempts FROM jobs")) == (None, 0)


async def test_jobs_another_worker_holds_are_left_to_it_until_its_lease_runs_out(
    server: LiveServer,
) -> None:
    worker, ran = _worker(server)
    await _schedule(server, range(4))
    pool = server.services.pool
    # Another process claimed job 1 and is working on it (its lease is good for a minute).
    await pool.execute(
        "UPDATE jobs SET leased_by = 'other', lease_until = now() + interval '1 min'"
        " WHERE key = '1'"
    )
    await _drain(server, worker)
    assert [n for b in ran for n in b] == [0, 2, 3]
    # That process died: its lease runs out and the job is taken over, once.
    await pool.execute("UPDATE jobs SET lease_until = now() - interval '1 s' WHERE key = '1'")
    await _drain(server, worker)
    assert [n for b in ran for n in b] == [0, 2, 3, 1]
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_job_whose_lease_passed_to_another_worker_is_not_run_twice(
    server: LiveServer,
) -> None:
    worker, ran = _worker(server)
    await _schedule(server, range(1))
    claimed = await worker_claim(server, worker)
    # Slow: its lease ran out and another worker took the job meanwhile.
    await server.services.pool.execute("UPDATE jobs SET leased_by = 'other'")
    await worker._run(server.services, worker.kinds["test.tick"], claimed)
    assert ran == []
    assert await server.services.pool.fetchval("SELECT leased_by FROM jobs") == "other"


async def worker_claim(server: LiveServer, worker: Jobs) -> list[Any]:
    from storage import jobs as q

    return await q.claim(server.services.pool, worker.worker_id, 10, worker.lease, ["test.tick"])


async def test_async_handlers_run_after_commit_once_per_event(office: Office) -> None:
    services = office.server.services
    services.jobs.stop()
    handlers = JobSet()
    seen: list[dict[str, Any]] = []

    @handlers.on("note.received", "test.on_note")
    async def on_note(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
        seen.extend(payloads)

    worker = Jobs(services.stream, [handlers], services.metrics)
    li, zhang = [int((await office.person(a)).id) for a in ("li", "zhang")]
    note = NoteReceived(note_id="1", from_=UserRef("1", "x"), body="rolled back", at=utcnow())
    with pytest.raises(RuntimeError):
        async with services.stream.transaction() as tx:
            await tx.emit([li], note)
            raise RuntimeError
    assert await services.pool.fetchval("SELECT count(*) FROM jobs") == 0
    async with services.stream.transaction() as tx:
        seqs = await tx.emit([li, zhang], NoteReceived(**{**_fields(note), "body": "committed"}))
    await _drain(office.server, worker)
    assert len(seen) == 1  # one event to two people: one job
    (job,) = seen
    first = min(seqs)
    assert job["event_id"] == f"{first}:{seqs[first]}"
    assert (job["type"], job["users"], job["data"]["body"]) == (
        "note.received",
        sorted([li, zhang]),
        "committed",
    )
    assert await _drain(office.server, worker) == 0


def _fields(ev: Any) -> dict[str, Any]:
    return {f: getattr(ev, f) for f in ev.__struct_fields__}


async def test_a_slow_kind_does_not_hold_up_the_others(server: LiveServer) -> None:
    """Text extraction takes seconds: its lane is its own, so a timer due meanwhile runs."""
    server.services.jobs.stop()
    kinds = JobSet()
    started, release = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    @kinds("test.slow", slow=True)
    async def slow(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
        started.set()
        await release.wait()
        ran.append("slow")

    @kinds("test.tick")
    async def tick(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
        ran.append("tick")

    worker = Jobs(server.services.stream, [kinds], server.services.metrics)
    now = utcnow()
    async with server.services.pool.acquire() as conn:
        await upsert(conn, [Due("test.slow", "1", now, {})])
    running = asyncio.create_task(worker.run(server.services))
    try:
        await asyncio.wait_for(started.wait(), 10)
        async with server.services.pool.acquire() as conn:
            await upsert(conn, [Due("test.tick", "1", utcnow(), {})])
        worker.poke()
        await eventually(lambda: ran == ["tick"], timeout=10)
        release.set()
        await eventually(lambda: ran == ["tick", "slow"], timeout=10)
    finally:
        release.set()
        worker.stop()
        await asyncio.wait_for(running, 10)
