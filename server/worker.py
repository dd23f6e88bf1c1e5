"""The database-polling worker loop of the jobs (server/jobs.py): do items while any are due,
then sleep until the next is due (at most POLL_S, so work queued by another node is noticed),
wake early when poked, and stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

POLL_S = 1.0


class Worker:
    name = "worker"

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_look = 0.0  # when the loop will look again by itself (UNIX time; 0: busy)

    def poke(self, due: datetime | None = None) -> None:
        """Work was queued here: look again now rather than at the next poll, unless it is due
        only after the look already planned (a page's SMS timer a minute away need not cost a
        pass over the timers table per page)."""
        if due is not None and due.timestamp() >= self._next_look > 0:
            return
        self._wake.set()

    def stop(self) -> None:
        """Finish the item at hand and return: a cancel alone can be lost (Python 3.11's
        wait_for may swallow it when the awaited thing completes in the same step)."""
        self._stopping = True
        self._wake.set()

    async def run(self, services: Services) -> None:
        while not self._stopping:
            try:
                while not self._stopping and await self.work_one(services):
                    pass
                timeout = await self.until_next()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("%s: database unavailable", self.name)
                timeout = POLL_S
            if self._stopping:
                return
            self._next_look = time.time() + timeout
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._next_look = 0.0
            self._wake.clear()

    async def work_one(self, services: Services) -> bool:
        """Do one due item; False when none is due."""
        raise NotImplementedError

    async def until_next(self) -> float:
        """Seconds until the next item is due (capped at POLL_S)."""
        raise NotImplementedError
