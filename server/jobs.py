"""Deferred work, one way: jobs in PostgreSQL, run by one worker per process (two loops: one
for the kinds declared `slow`, one for the rest).

A job is (kind, key) with a payload, due at a time. Three kinds of user:
- timers: a handler module sets a job for later (`tx.schedule`): an SMS grace period, a
  whereabouts return time, a circulation deadline;
- async handlers on the bus: a job kind subscribed to a committed event type is written by the
  statement that appends the event (so it exists if and only if the event committed), keyed by
  the event's id, and runs after commit, at least once;
- the outbox: each SMS or e-mail row is sent by a job.

The worker claims due jobs with `FOR UPDATE SKIP LOCKED` under a lease (several processes share
the work; a dead one's jobs are taken over when its lease ends), then runs each kind's handler
for a batch in one transaction that also deletes the jobs: the work and its being done commit
together. A batch that fails is run again job by job, so one bad job fails alone; a failed job
is retried with capped exponential backoff, and after its kind's number of tries it is
dead-lettered (kept with its error, counted in `liaison_jobs_dead_total`, logged once).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from server.stream import Stream, Transaction
from server.worker import POLL_S, Worker
from storage import jobs as q

if TYPE_CHECKING:
    from server.metrics import Metrics
    from server.services import Services

log = logging.getLogger(__name__)

# Does what the jobs of one kind are for, given their payloads (due order); part of the
# transaction that deletes them.
JobHandler = Callable[["Services", Transaction, list[dict[str, Any]]], Awaitable[None]]
# Runs when a job of the kind is dead-lettered, in the transaction that buries it.
DeadHook = Callable[["Services", Transaction, dict[str, Any], str], Awaitable[None]]

CLAIM = 100  # jobs claimed at once
LEASE_S = 60.0  # a claimed job is another worker's to take once this has passed
MAX_BACKOFF_S = 300.0
# A job runs up to this long after its due time, so jobs falling due close together (a page's
# SMS grace a minute after each page) run together, not one by one.
GATHER_S = 0.1


class Retry(Exception):
    """Raised by a handler: this try failed for a reason worth trying again later."""


class GiveUp(Exception):
    """Raised by a handler: this job can never succeed; dead-letter it now."""


@dataclass(frozen=True, slots=True)
class JobKind:
    kind: str
    handler: JobHandler
    batch: int = 100  # jobs per transaction
    max_attempts: int = 8
    backoff_s: float = 2.0  # the first retry's wait; doubled each time, up to MAX_BACKOFF_S
    on_dead: DeadHook | None = None
    event_type: str | None = None  # an async handler of this committed event type
    # Long work (text extraction, seconds): run in a lane of its own, so it never holds up the
    # timers and sends that are due meanwhile.
    slow: bool = False


class JobSet:
    """What one handler module declares: `@jobs("kind")` for its timers and own jobs,
    `@jobs.on("event.type", "kind")` for an async handler of a committed event."""

    def __init__(self) -> None:
        self.kinds: dict[str, JobKind] = {}

    def __call__(self, kind: str, **policy: Any) -> Callable[[JobHandler], JobHandler]:
        def register(fn: JobHandler) -> JobHandler:
            assert kind not in self.kinds, f"job kind declared twice: {kind}"
            self.kinds[kind] = JobKind(kind, fn, **policy)
            return fn

        return register

    def on(self, event_type: str, kind: str, **policy: Any) -> Callable[[JobHandler], JobHandler]:
        """An async handler: a job of `kind` for every committed `event_type` event (emitted to
        any number of users: one job), payload {event_id, type, at, users, data}."""
        return self(kind, event_type=event_type, **policy)


class Jobs:
    """The process's job worker: a lane for the kinds declared `slow`, one for the rest."""

    def __init__(
        self, stream: Stream, sets: list[JobSet], metrics: Metrics, *, lease_s: float = LEASE_S
    ) -> None:
        self.stream = stream
        self.metrics = metrics
        self.worker_id = secrets.token_hex(6)
        self.lease = timedelta(seconds=lease_s)
        self.kinds: dict[str, JobKind] = {}
        for s in sets:
            for kind, spec in s.kinds.items():
                assert kind not in self.kinds, f"job kind declared twice: {kind}"
                self.kinds[kind] = spec
        # The stream writes the subscribed jobs with the events they follow.
        for spec in self.kinds.values():
            if spec.event_type is not None:
                stream.subscribers.setdefault(spec.event_type, []).append(spec.kind)
        self.lanes = [
            _Lane(self, sorted(k for k, spec in self.kinds.items() if spec.slow == slow))
            for slow in (False, True)
        ]
        self.lanes = [lane for lane in self.lanes if lane.names]
        stream.jobs_set = self.poke

    def poke(self, due: datetime | None = None) -> None:
        for lane in self.lanes:
            lane.poke(due)

    def stop(self) -> None:
        for lane in self.lanes:
            lane.stop()

    async def run(self, services: Services) -> None:
        await asyncio.gather(*(lane.run(services) for lane in self.lanes))

    async def work_one(self, services: Services) -> bool:
        """One pass of every lane (tests drive the worker with it); False when nothing was due."""
        return any([await lane.work_one(services) for lane in self.lanes])

    async def release(self) -> None:
        """On a clean stop: the jobs this worker claimed and did not finish are anyone's again
        at once (after a crash, when their lease ends)."""
        await q.release(self.stream.pool, self.worker_id)

    def tune(self, kind: str, **policy: Any) -> None:
        """Change a kind's policy from configuration (the outbox's tries and backoff)."""
        self.kinds[kind] = replace(self.kinds[kind], **policy)

    async def _run(self, services: Services, spec: JobKind, jobs: list[q.Claimed]) -> None:
        try:
            async with self.stream.transaction() as tx:
                mine = await q.take(tx.conn, self.worker_id, [j.id for j in jobs])
                payloads = [j.payload for j in jobs if j.id in mine]
                if payloads:
                    await spec.handler(services, tx, payloads)
        except Exception as exc:
            if len(jobs) > 1:
                log.warning("%d %s jobs failed together: each alone", len(jobs), spec.kind)
                for job in jobs:
                    await self._run(services, spec, [job])
                return
            await self._failed(services, spec, jobs[0], exc)
            return
        self._count(spec.kind, "done", len(jobs))

    async def _failed(
        self, services: Services, spec: JobKind, job: q.Claimed, exc: Exception
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, GiveUp) or job.attempts >= spec.max_attempts:
            log.error(
                "job %s %s/%s dead after %d tries: %s",
                job.id,
                job.kind,
                job.key,
                job.attempts,
                error,
            )
            async with self.stream.transaction() as tx:
                await q.bury(tx.conn, job.id, error)
                if spec.on_dead is not None:
                    await spec.on_dead(services, tx, job.payload, error)
            self._count(spec.kind, "dead")
            return
        delay = min(MAX_BACKOFF_S, spec.backoff_s * 2 ** (job.attempts - 1))
        if isinstance(exc, Retry):
            log.info(
                "job %s %s try %d: %s; again in %.1f s", job.id, job.kind, job.attempts, exc, delay
            )
        else:
            log.exception(
                "job %s %s try %d failed; again in %.1f s", job.id, job.kind, job.attempts, delay
            )
        await q.retry_later(self.stream.pool, job.id, timedelta(seconds=delay), error)
        self._count(spec.kind, "retried")

    def _count(self, kind: str, outcome: str, n: int = 1) -> None:
        self.metrics.jobs.labels(kind, outcome).inc(n)


class _Lane(Worker):
    """Claims what is due of some kinds and runs it, kind by kind."""

    name = "jobs"

    def __init__(self, jobs: Jobs, names: list[str]) -> None:
        super().__init__()
        self.jobs = jobs
        self.names = names

    async def until_next(self) -> float:
        wait = await q.seconds_to_next(self.jobs.stream.pool, self.names)
        return POLL_S if wait is None else max(0.0, min(POLL_S, wait + GATHER_S))

    async def work_one(self, services: Services) -> bool:
        jobs = self.jobs
        claimed = await q.claim(jobs.stream.pool, jobs.worker_id, CLAIM, jobs.lease, self.names)
        by_kind: dict[str, list[q.Claimed]] = {}
        for job in sorted(claimed, key=lambda j: (j.run_at, j.id)):
            by_kind.setdefault(job.kind, []).append(job)
        for kind, due in by_kind.items():
            spec = jobs.kinds[kind]
            for i in range(0, len(due), spec.batch):
                await jobs._run(services, spec, due[i : i + spec.batch])
        return bool(claimed)
