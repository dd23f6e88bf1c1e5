"""Per-user token buckets: 20 commands/s sustained, bursts of 50 (the contract's §3)."""

from __future__ import annotations

import time


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[int, tuple[float, float]] = {}  # user -> (tokens, last refill)

    def take(self, key: int) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    async def acquire(self, key: int) -> float:
        """`take`, as the shared limiter of several nodes answers it (server/cluster.py)."""
        return self.take(key)

    def sweep(self) -> None:
        """Drop buckets that have refilled completely: they hold no information."""
        now = time.monotonic()
        full = self.burst / self.rate
        for key in [k for k, (_, last) in self._buckets.items() if now - last > full]:
            del self._buckets[key]
