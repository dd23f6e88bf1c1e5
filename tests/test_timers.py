"""The durable timer worker: due timers fire in batches, each exactly once, in due order; a timer
that fails neither holds back nor repeats the others; timers another worker holds are skipped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.services import Services
from server.stream import Transaction, utcnow
from server.timers import BATCH, Due, Timers, TimerSet, schedule_many
from tests.support import LiveServer


def _worker(srv: LiveServer, fail_on: int | None = None) -> tuple[Timers, list[list[int]]]:
    """A worker for kind `test.tick` (the server's own is stopped, so it cannot take them), and
    the batches of `n`s it fired, recorded only once their transaction committed."""
    srv.services.timers.stop()
    ticks = TimerSet()
    fired: list[list[int]] = []

    @ticks("test.tick")
    async def tick(services: Services, tx: Transaction, payloads: list[dict[str, Any]]) -> None:
        ns = [p["n"] for p in payloads]
        await tx.conn.execute("SELECT 1")  # some work in the firing transaction
        if fail_on in ns:
            raise RuntimeError(f"tick {fail_on} is broken")

        async def done() -> None:
            fired.append(ns)

        tx.after_commit(done)

    return Timers(srv.services.stream, [ticks]), fired


async def _schedule(srv: LiveServer, ns: range, *, in_s: float = -1.0) -> None:
    now = utcnow()
    async with srv.services.pool.acquire() as conn:
        await schedule_many(
            conn,
            [
                Due("test.tick", str(n), now + timedelta(seconds=in_s + n / 1000), {"n": n})
                for n in ns
            ],
        )


async def _drain(srv: LiveServer, worker: Timers) -> int:
    passes = 0
    while await worker.work_one(srv.services):
        passes += 1
    return passes


async def test_due_timers_fire_in_batches_once_each_in_due_order(server: LiveServer) -> None:
    worker, fired = _worker(server)
    count = 2 * BATCH + 7
    await _schedule(server, range(count))
    await _schedule(server, range(count, count + 3), in_s=60)  # not due yet
    assert await _drain(server, worker) == 3
    assert [len(b) for b in fired] == [BATCH, BATCH, 7]
    assert [n for b in fired for n in b] == list(range(count))
    left = await server.services.pool.fetch("SELECT key FROM timers ORDER BY due_at")
    assert [r["key"] for r in left] == [str(n) for n in range(count, count + 3)]


async def test_a_failing_timer_neither_holds_back_nor_repeats_the_others(
    server: LiveServer,
) -> None:
    worker, fired = _worker(server, fail_on=3)
    await _schedule(server, range(6))
    await _drain(server, worker)
    # The batch failed as a whole, then each went alone: all but the broken one, once each.
    assert sorted(n for b in fired for n in b) == [0, 1, 2, 4, 5]
    row = await server.services.pool.fetchrow("SELECT key, attempts, due_at FROM timers")
    assert row["key"] == "3" and row["attempts"] == 1
    assert row["due_at"] > utcnow()  # backed off, not spinning


async def test_timers_another_worker_holds_are_skipped(server: LiveServer) -> None:
    worker, fired = _worker(server)
    await _schedule(server, range(4))
    async with server.services.pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM timers WHERE key = '1' FOR UPDATE")
        await _drain(server, worker)
        assert [n for b in fired for n in b] == [0, 2, 3]
    await _drain(server, worker)
    assert [n for b in fired for n in b] == [0, 2, 3, 1]
    assert await server.services.pool.fetchval("SELECT count(*) FROM timers") == 0
