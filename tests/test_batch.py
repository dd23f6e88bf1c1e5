"""The batcher that coalesces concurrent database calls (server/batch.py)."""

from __future__ import annotations

import asyncio

import pytest

from server.batch import Batcher


async def test_callers_arriving_together_share_one_run_and_get_their_own_answer() -> None:
    runs: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        runs.append(items)
        await asyncio.sleep(0.01)
        return [i * 2 for i in items]

    batch = Batcher(double)
    first = await asyncio.gather(*(batch(i) for i in range(5)))
    assert first == [0, 2, 4, 6, 8]
    assert runs == [[0, 1, 2, 3, 4]]
    # While a run is in flight, newcomers queue for the next one.
    lone = asyncio.create_task(batch(10))
    await asyncio.sleep(0.001)
    later = await asyncio.gather(*(batch(i) for i in (11, 12)))
    assert await lone == 20 and later == [22, 24]
    assert runs[1:] == [[10], [11, 12]]


async def test_batches_are_capped() -> None:
    runs: list[int] = []

    async def echo(items: list[int]) -> list[int]:
        runs.append(len(items))
        return items

    batch = Batcher(echo, max_size=3)
    assert await asyncio.gather(*(batch(i) for i in range(7))) == list(range(7))
    assert runs == [3, 3, 1]


async def test_a_failed_run_fails_its_callers_only() -> None:
    async def picky(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 13 in items:
            raise ValueError("unlucky")
        return items

    batch = Batcher(picky)
    bad = await asyncio.gather(batch(13), batch(1), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in bad)
    assert await batch(2) == 2  # the batcher still works afterwards


async def test_a_run_with_the_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    with pytest.raises(RuntimeError):
        await asyncio.gather(Batcher(short)(1), return_exceptions=False)


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    async def slow(items: list[int]) -> list[int]:
        await asyncio.sleep(0.02)
        return items

    batch = Batcher(slow)
    doomed = asyncio.create_task(batch(1))
    kept = asyncio.create_task(batch(2))
    await asyncio.sleep(0.005)
    doomed.cancel()
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await doomed
