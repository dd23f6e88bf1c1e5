"""Measurements over time: each worker records into per-second buckets (histograms, counters,
gauges) and ships the closed ones to the parent, which merges every worker's into one series."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loadtests.hist import LogHistogram


@dataclass(slots=True)
class Bucket:
    hists: dict[str, LogHistogram] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "h": {k: h.to_dict() for k, h in self.hists.items()},
            "c": dict(self.counts),
            "g": dict(self.gauges),
        }


class Recorder:
    """One process's measurements. Bucket i covers [t0 + i*width, t0 + (i+1)*width) of the
    monotonic clock, which every process on the machine shares."""

    def __init__(self, t0: float, width: float = 1.0) -> None:
        self.t0 = t0
        self.width = width
        self.buckets: dict[int, Bucket] = {}

    def index(self, now: float | None = None) -> int:
        return int(((time.monotonic() if now is None else now) - self.t0) // self.width)

    def _bucket(self, now: float | None) -> Bucket:
        i = self.index(now)
        b = self.buckets.get(i)
        if b is None:
            b = self.buckets[i] = Bucket()
        return b

    def observe(self, name: str, seconds: float, now: float | None = None) -> None:
        b = self._bucket(now)
        h = b.hists.get(name)
        if h is None:
            h = b.hists[name] = LogHistogram()
        h.add(seconds)

    def count(self, name: str, n: int = 1, now: float | None = None) -> None:
        b = self._bucket(now)
        b.counts[name] = b.counts.get(name, 0) + n

    def gauge(self, name: str, value: float, now: float | None = None) -> None:
        self._bucket(now).gauges[name] = value

    def flush(self, everything: bool = False) -> dict[int, dict[str, Any]]:
        """The buckets that are over (all of them at the end), in wire form, and forget them."""
        current = self.index()
        done = [i for i in self.buckets if everything or i < current]
        return {i: self.buckets.pop(i).to_dict() for i in sorted(done)}


@dataclass(slots=True)
class Merged:
    hists: dict[str, LogHistogram] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    # gauges are per worker: the fleet's value is the sum of each worker's last value
    gauges: dict[int, dict[str, float]] = field(default_factory=dict)

    def add(self, worker: int, wire: dict[str, Any]) -> None:
        for k, hd in wire["h"].items():
            h = self.hists.get(k)
            if h is None:
                h = self.hists[k] = LogHistogram()
            h.merge(LogHistogram.from_dict(hd))
        for k, n in wire["c"].items():
            self.counts[k] = self.counts.get(k, 0) + n
        if wire["g"]:
            self.gauges.setdefault(worker, {}).update(wire["g"])

    def gauge(self, name: str) -> float | None:
        values = [g[name] for g in self.gauges.values() if name in g]
        return sum(values) if values else None


class Series:
    """The whole fleet's measurements, one Merged per bucket index."""

    def __init__(self, t0: float, width: float = 1.0) -> None:
        self.t0 = t0
        self.width = width
        self.buckets: dict[int, Merged] = {}
        self.last_gauges: dict[int, dict[str, float]] = {}  # worker -> latest gauges

    def add(self, worker: int, flushed: dict[int, dict[str, Any]]) -> None:
        for i, wire in flushed.items():
            self.buckets.setdefault(int(i), Merged()).add(worker, wire)
            if wire["g"]:
                self.last_gauges.setdefault(worker, {}).update(wire["g"])

    def index(self, t: float) -> int:
        return int((t - self.t0) // self.width)

    def window(self, start: int | None = None, end: int | None = None) -> Merged:
        """Everything in buckets [start, end) merged (gauges: not meaningful, left empty)."""
        out = Merged()
        for i, b in self.buckets.items():
            if (start is None or i >= start) and (end is None or i < end):
                for k, h in b.hists.items():
                    out.hists.setdefault(k, LogHistogram()).merge(h)
                for k, n in b.counts.items():
                    out.counts[k] = out.counts.get(k, 0) + n
        return out

    def gauge_now(self, name: str) -> float:
        return sum(g.get(name, 0.0) for g in self.last_gauges.values())

    def span(self) -> range:
        if not self.buckets:
            return range(0)
        return range(min(self.buckets), max(self.buckets) + 1)

    def to_json(self, hist_names: Iterable[str] | None = None) -> dict[str, Any]:
        """Per-bucket percentiles and counts, for the JSON result and the plots."""
        rows = []
        for i in self.span():
            b = self.buckets.get(i, Merged())
            hists = {
                k: h.summary()
                for k, h in b.hists.items()
                if hist_names is None or k in set(hist_names)
            }
            gauges: dict[str, float] = {}
            for g in b.gauges.values():
                for k, v in g.items():
                    gauges[k] = gauges.get(k, 0.0) + v
            rows.append(
                {
                    "t": round(i * self.width, 3),
                    "latency_ms": hists,
                    "counts": b.counts,
                    "gauges": gauges,
                }
            )
        return {"bucket_s": self.width, "buckets": rows}
