"""A small HDR-like histogram: logarithmic buckets (about 1 % relative error), mergeable across
processes and time buckets, with exact count, sum, min and max."""

from __future__ import annotations

import math
from typing import Any

# Bucket i holds values in (FLOOR * BASE**(i-1), FLOOR * BASE**i]; values at or below FLOOR go
# to bucket 0. Seconds from a microsecond up to hours fit in about 1,300 buckets, and a report
# of one of them is within 1 % of the true value.
FLOOR = 1e-6
BASE = 1.02
_LOG_BASE = math.log(BASE)


def bucket_of(value: float) -> int:
    if value <= FLOOR:
        return 0
    return max(0, math.ceil(math.log(value / FLOOR) / _LOG_BASE - 1e-9))


def bucket_top(index: int) -> float:
    return FLOOR * BASE**index


class LogHistogram:
    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        i = bucket_of(value)
        self.buckets[i] = self.buckets.get(i, 0) + 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: LogHistogram) -> None:
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """The value at or below which a fraction `q` (0..1) of the samples lie (nearest rank),
        as its bucket's upper bound, clamped to the exact min and max."""
        if self.count == 0:
            return None
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                return min(max(bucket_top(i), self.min), self.max)
        return self.max

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def summary(self, scale: float = 1000.0) -> dict[str, Any]:
        """count, mean, p50/p95/p99/max; values multiplied by `scale` (seconds → ms)."""

        def s(v: float | None) -> float | None:
            return None if v is None else round(v * scale, 3)

        return {
            "count": self.count,
            "mean": s(self.mean),
            "p50": s(self.percentile(0.50)),
            "p95": s(self.percentile(0.95)),
            "p99": s(self.percentile(0.99)),
            "max": s(self.max if self.count else None),
        }

    # -- wire form (between processes and into the JSON result) ------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "b": {str(i): n for i, n in self.buckets.items()},
            "n": self.count,
            "sum": self.total,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogHistogram:
        h = cls()
        h.buckets = {int(i): int(n) for i, n in d["b"].items()}
        h.count = int(d["n"])
        h.total = float(d["sum"])
        if h.count:
            h.min = float(d["min"])
            h.max = float(d["max"])
        return h
