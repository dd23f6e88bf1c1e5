"""Sign-in throttling (issue 16, item 4): wrong passwords are budgeted per account and per client
address, reserved before the password is checked so concurrent guesses cannot slip past, password
checks run a few at a time behind a bounded queue, the real user is never locked out of a place
they have signed in from, and the memory kept for all that is bounded.

The budgets checked here: 10 failures per account from places it has not signed in from, 10 per
account at each place it has, 30 per client address over all accounts; 4 password checks at once.
Clients take distinct loopback addresses (127.0.0.0/8 is all local on Linux) to be different
places."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import server.auth
from tests.support import TEST_PASSWORD, LiveServer, Office, eventually, start_server

LOGIN = "/api/v1/auth/login"
ACCOUNT_BUDGET = 10
ADDRESS_BUDGET = 30
VERIFY_SLOTS = 4


# --- helpers --------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def place(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client whose connections come from `address`, with no cap on connections."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def login(
    session: aiohttp.ClientSession, server: LiveServer, account: str, password: str
) -> tuple[int, dict[str, Any]]:
    body = {"account": account, "password": password}
    async with session.post(server.url + LOGIN, json=body) as resp:
        return resp.status, await resp.json()


class Verifications:
    """Stands in for the argon2 check: counts the checks, and the most ever running at once."""

    def __init__(self, real: Callable[[str | None, str], bool], hold_s: float = 0.0) -> None:
        self.real = real
        self.hold_s = hold_s
        self.count = 0
        self.running = 0
        self.most = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def __call__(self, phc: str | None, password: str) -> bool:
        with self._lock:
            self.count += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.gate.wait(60)
            time.sleep(self.hold_s)
            return self.real(phc, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Verifications:
    spy = Verifications(server.auth._verify)
    monkeypatch.setattr(server.auth, "_verify", spy)
    return spy


def statuses(answers: list[tuple[int, dict[str, Any]]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for status, _ in answers:
        counts[status] = counts.get(status, 0) + 1
    return counts


def assert_rate_limited(status: int, env: dict[str, Any]) -> float:
    assert status == 429, (status, env)
    assert env["ok"] is False and env["error"]["code"] == "rate_limited", env
    retry = env["error"]["details"]["retry_after_s"]
    assert isinstance(retry, int | float) and retry > 0, env
    return float(retry)


# --- concurrent guesses ---------------------------------------------------------------------
async def test_300_concurrent_wrong_guesses_get_no_more_checks_than_the_budget(
    office: Office, checks: Verifications
) -> None:
    server = office.server
    async with place("127.0.0.2") as attacker:
        answers = await asyncio.gather(
            *(login(attacker, server, "li", f"guess {i}") for i in range(300))
        )
    counts = statuses(answers)
    assert counts.get(401, 0) <= ACCOUNT_BUDGET, counts
    assert checks.count <= ACCOUNT_BUDGET, f"{checks.count} passwords checked"
    assert counts.get(401, 0) + counts.get(429, 0) == 300, counts
    for status, env in answers:
        if status == 429:
            assert_rate_limited(status, env)


# --- the real user --------------------------------------------------------------------------
async def test_strangers_guesses_do_not_lock_the_user_out_of_a_place_they_signed_in_from(
    office: Office, checks: Verifications
) -> None:
    server = office.server
    async with place("127.0.0.2") as home:
        status, env = await login(home, server, "li", TEST_PASSWORD)
        assert status == 200 and env["ok"], env
        # Guessers from three other places spend the account's budget for strangers...
        guesses = []
        for address in ("127.0.1.1", "127.0.1.2", "127.0.1.3"):
            async with place(address) as stranger:
                guesses += [await login(stranger, server, "li", "guess") for _ in range(10)]
        assert statuses(guesses).get(401, 0) <= ACCOUNT_BUDGET, statuses(guesses)
        assert_rate_limited(*guesses[-1])
        # ...and li, at home, signs in all the same.
        status, env = await login(home, server, "li", TEST_PASSWORD)
        assert status == 200 and env["ok"], env
    # From a place li never signed in from, the account waits like everyone else there.
    async with place("127.0.0.9") as cafe:
        assert_rate_limited(*await login(cafe, server, "li", TEST_PASSWORD))


async def test_mistyping_at_a_known_place_is_limited_at_that_place(
    office: Office, checks: Verifications
) -> None:
    server = office.server
    async with place("127.0.0.2") as home:
        status, env = await login(home, server, "li", TEST_PASSWORD)
        assert status == 200, env
        wrong = await asyncio.gather(*(login(home, server, "li", "typo") for _ in range(20)))
        assert statuses(wrong) == {401: ACCOUNT_BUDGET, 429: 20 - ACCOUNT_BUDGET}, statuses(wrong)
        assert_rate_limited(*await login(home, server, "li", TEST_PASSWORD))
    async with place("127.0.0.3") as office_desk:
        status, env = await login(office_desk, server, "li", TEST_PASSWORD)
        assert status == 200 and env["ok"], env


# --- one address, many names ----------------------------------------------------------------
async def test_one_address_trying_many_names_is_limited_and_nobody_else_is(
    office: Office, checks: Verifications
) -> None:
    server = office.server
    async with place("127.0.0.5") as sprayer:
        answers = await asyncio.gather(
            *(login(sprayer, server, f"ghost{i}", "guess") for i in range(100))
        )
        counts = statuses(answers)
        assert counts.get(401, 0) <= ADDRESS_BUDGET, counts
        assert checks.count <= ADDRESS_BUDGET, f"{checks.count} passwords checked"
        # A real account from that address waits too: no telling who exists.
        assert_rate_limited(*await login(sprayer, server, "zhang", "guess"))
    async with place("127.0.0.6") as neighbour:
        status, env = await login(neighbour, server, "zhang", TEST_PASSWORD)
        assert status == 200 and env["ok"], env


# --- bounded password checks ----------------------------------------------------------------
async def test_password_checks_run_a_few_at_a_time(office: Office, checks: Verifications) -> None:
    checks.hold_s = 0.2  # long enough for every request to be waiting while others check
    accounts = ["li", "wang", "zhang", "zhao", "chen", "admin"]
    async with place("127.0.0.2") as desk:
        answers = await asyncio.gather(
            *(login(desk, office.server, a, TEST_PASSWORD) for a in accounts * 4)
        )
    assert statuses(answers) == {200: 24}, answers
    assert checks.most <= VERIFY_SLOTS, f"{checks.most} password checks at once"


@pytest.fixture
async def short_queue(
    database_url: str, tmp_path: Path, password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Office]:
    """The office on a server whose password checks queue at most 8 deep."""
    monkeypatch.setattr(server.auth, "VERIFY_QUEUE", 8, raising=False)
    async with start_server(database_url, tmp_path, password_hash) as srv:
        yield await Office.create(srv)


async def test_a_long_queue_of_password_checks_is_answered_rate_limited(
    short_queue: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Verifications(lambda phc, password: password == TEST_PASSWORD)
    spy.gate.clear()  # every check hangs until released
    monkeypatch.setattr(server.auth, "_verify", spy)
    accounts = ["li", "wang", "zhang", "zhao", "chen", "admin"]
    async with place("127.0.0.2") as desk:
        tasks = [
            asyncio.ensure_future(login(desk, short_queue.server, accounts[i % 6], TEST_PASSWORD))
            for i in range(VERIFY_SLOTS + 8 + 10)
        ]
        refused = [t for t in tasks if t.done()]

        def ten_refused() -> bool:
            refused[:] = [t for t in tasks if t.done()]
            return len(refused) >= 10

        await eventually(ten_refused, timeout=30)
        assert spy.count == VERIFY_SLOTS, spy.count
        for task in refused:
            assert_rate_limited(*task.result())
        spy.gate.set()
        answers = await asyncio.gather(*tasks)
    assert statuses(answers) == {200: VERIFY_SLOTS + 8, 429: 10}, statuses(answers)
    assert spy.most <= VERIFY_SLOTS


# --- bounded memory -------------------------------------------------------------------------
def test_the_throttles_memory_is_bounded_whatever_is_tried() -> None:
    from server.auth import SignInThrottle

    throttle = SignInThrottle(max_keys=50, max_known=50)
    for i in range(5_000):
        place_ = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        with contextlib.suppress(Exception):
            throttle.reserve(f"ghost{i}", place_, exists=False)
        with contextlib.suppress(Exception):
            throttle.reserve(f"user{i}", place_, exists=True)
        if i % 2:
            with contextlib.suppress(Exception):
                throttle.succeeded(throttle.reserve(f"user{i}", place_, exists=True))
    assert 0 < throttle.tracked() <= 5 * 50, throttle.tracked()


def test_an_ipv6_client_is_one_place_per_64_prefix() -> None:
    from server.auth import client_place

    assert client_place("2001:db8:1:2::1") == client_place("2001:db8:1:2:ffff::9")
    assert client_place("2001:db8:1:2::1") != client_place("2001:db8:1:3::1")
    assert client_place("::ffff:192.0.2.7") == client_place("192.0.2.7")
    assert client_place("192.0.2.7") != client_place("192.0.2.8")
    assert client_place(None) == client_place(None)
