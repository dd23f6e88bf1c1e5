"""What the generator checks about what it receives.

`StreamChecker` follows one user's durable sequence across connections: it must go 1, 2, 3, …
with nothing missing, nothing twice and nothing out of order, resumes included. `Deliveries`
matches what senders expected (the recipients each send's answer named) against what arrived,
by a key embedded in the message body together with the send time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MARK = "[lt:"


def mark(body: str, key: str, sent_at: float) -> str:
    """A body carrying its delivery key and send time (monotonic seconds; one machine)."""
    return f"{body} {MARK}{key}:{sent_at:.6f}]"


def parse_mark(body: str) -> tuple[str, float] | None:
    i = body.rfind(MARK)
    if i < 0 or not body.endswith("]"):
        return None
    key, _, at = body[i + len(MARK) : -1].rpartition(":")
    try:
        return key, float(at)
    except ValueError:
        return None


@dataclass(slots=True)
class StreamChecker:
    """One user's durable stream as this client saw it."""

    last: int = 0  # the last seq of the contiguous prefix
    max_seen: int = 0
    pending: set[int] = field(default_factory=set)  # seen, above `last`, not yet contiguous
    received: int = 0
    gaps: int = 0  # sequence numbers that never arrived
    duplicates: int = 0
    reorders: int = 0  # arrived after a later one
    resets: int = 0  # the server could not replay (sync.reset): not an error by itself
    ready_behind: int = 0  # sync.ready named a seq below what we had (informational)

    @property
    def errors(self) -> int:
        return self.gaps + self.duplicates + self.reorders

    @property
    def has_hole(self) -> bool:
        return bool(self.pending)

    def on_event(self, seq: int) -> str:
        """Account one durable event: 'ok', 'ahead' (a hole is open below it), 'dup' or
        'reorder'."""
        self.received += 1
        if seq <= self.last or seq in self.pending:
            self.duplicates += 1
            return "dup"
        status = "ok"
        if seq < self.max_seen:
            self.reorders += 1
            status = "reorder"
        else:
            self.max_seen = seq
        self.pending.add(seq)
        self._advance()
        if status == "ok" and self.pending:
            status = "ahead"
        return status

    def _advance(self) -> None:
        while self.last + 1 in self.pending:
            self.last += 1
            self.pending.discard(self.last)

    def _count_holes(self, upto: int) -> int:
        """Sequence numbers in (last, upto] that have not arrived."""
        if upto <= self.last:
            return 0
        have = sum(1 for s in self.pending if s <= upto)
        return upto - self.last - have

    def resume_from(self) -> int:
        """Called when (re)connecting: the `last_seq` to send. Anything above the contiguous
        prefix will be replayed, so it is forgotten; holes below what we saw were lost."""
        self.gaps += self._count_holes(self.max_seen)
        self.pending.clear()
        self.max_seen = self.last
        return self.last

    def on_ready(self, seq: int) -> None:
        """`sync.ready {seq}`: the server has sent everything up to `seq`."""
        if seq < self.last:
            self.ready_behind += 1
            return
        self.gaps += self._count_holes(seq)
        self.last = seq
        self.max_seen = max(self.max_seen, seq)
        self.pending = {s for s in self.pending if s > seq}
        self._advance()

    def on_reset(self, seq: int) -> None:
        """`sync.reset {seq}`: the server cannot replay; the client refetches and goes on."""
        self.resets += 1
        self.last = seq
        self.max_seen = seq
        self.pending.clear()

    def finish(self) -> None:
        """The run is over: holes still open were never filled."""
        self.gaps += self._count_holes(self.max_seen)
        self.pending.clear()
        self.max_seen = self.last

    def totals(self) -> dict[str, int]:
        return {
            "received": self.received,
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "reorders": self.reorders,
            "resets": self.resets,
            "ready_behind": self.ready_behind,
        }


def sum_totals(totals: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in totals:
        for k, v in t.items():
            out[k] = out.get(k, 0) + v
    return out


class Deliveries:
    """Expected (sender side) and received (recipient side) marked messages of one process."""

    def __init__(self) -> None:
        self.expected: dict[str, list[int]] = {}
        self.received: dict[str, set[int]] = {}
        # Sends whose connection closed before their answer came: they may or may not have
        # gone out, so an arrival is no error and an absence is none either.
        self.in_doubt: set[str] = set()

    def expect(self, key: str, recipients: Iterable[int]) -> None:
        self.expected[key] = list(recipients)

    def doubt(self, key: str) -> None:
        self.expected.pop(key, None)
        self.in_doubt.add(key)

    def got(self, key: str, user_id: int) -> bool:
        """Record an arrival; False if this user already had it (a replay after a resume)."""
        seen = self.received.setdefault(key, set())
        if user_id in seen:
            return False
        seen.add(user_id)
        return True

    @property
    def expected_pairs(self) -> int:
        return sum(len(r) for r in self.expected.values())

    @property
    def received_pairs(self) -> int:
        return sum(len(r) for r in self.received.values())

    def export(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "received": {k: sorted(v) for k, v in self.received.items()},
            "in_doubt": sorted(self.in_doubt),
        }


def reconcile(
    parts: Iterable[Mapping[str, Any]],
    examples: int = 10,
    prefix: str = "",
    recipients: set[int] | None = None,
) -> dict[str, Any]:
    """Merge the exports of every process: which expected (message, recipient) pairs arrived.
    With `prefix`, only the keys that start with it; with `recipients`, only those people."""
    expected: dict[str, list[int]] = {}
    received: dict[str, set[int]] = {}
    in_doubt: set[str] = set()
    for part in parts:
        expected.update((k, v) for k, v in part["expected"].items() if k.startswith(prefix))
        in_doubt.update(k for k in part.get("in_doubt", ()) if k.startswith(prefix))
        for key, users in part["received"].items():
            if key.startswith(prefix):
                received.setdefault(key, set()).update(users)
    want = delivered = 0
    missing: list[tuple[str, int]] = []
    for key, users in expected.items():
        got = received.get(key, set())
        for u in users:
            if recipients is not None and u not in recipients:
                continue
            want += 1
            if u in got:
                delivered += 1
            elif len(missing) < examples:
                missing.append((key, u))
    unexpected = unmatched = arrived_in_doubt = 0
    for key, users in received.items():
        if key not in expected:
            if key in in_doubt:
                arrived_in_doubt += 1  # its sender dropped the connection before the answer
            else:
                unmatched += 1  # the send failed or timed out at the sender, yet it went out
            continue
        allowed = set(expected[key])
        unexpected += sum(1 for u in users if u not in allowed)
    return {
        "messages": len(expected),
        "expected": want,
        "delivered": delivered,
        "missing": want - delivered,
        "unexpected": unexpected,
        "unmatched": unmatched,
        "in_doubt": len(in_doubt),
        "in_doubt_arrived": arrived_in_doubt,
        "missing_examples": [f"{k} -> user {u}" for k, u in missing],
    }
