"""Coalesce many small database calls made at about the same moment into one round trip.

A reconnect storm asks for ten thousand users and their missed events; a busy office acks
hundreds of events a second. Each alone is one short query whose cost is almost all round trip
and per-statement overhead, on the same core as the server. A `Batcher` queues the callers'
items and runs one set-based statement for all of them; while that statement is in flight the
next callers queue up, so batches grow exactly as fast as load does (PostgreSQL's group commit,
applied to reads and small writes), and an idle server answers a lone caller with no delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await batcher(item)` returns `run(items)[i]` for its item, `run` being called with the
    items of every caller that arrived while the previous batch ran (at most `max_size`)."""

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_size: int = 500
    ) -> None:
        self._run = run
        self._max = max_size
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        try:
            # One turn of the loop first: callers woken by the same event join this batch.
            await asyncio.sleep(0)
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                try:
                    results = await self._run([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"batch of {len(batch)} gave {len(results)} results")
                except BaseException as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():  # the caller may have been cancelled meanwhile
                        fut.set_result(result)
        finally:
            self._flusher = None
            left, self._queue = self._queue, []
            for _, fut in left:  # only when cancelled: nobody is left to serve these
                fut.cancel()
