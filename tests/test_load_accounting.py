"""The load generator's own arithmetic: stream accounting, delivery matching, percentiles."""

from __future__ import annotations

import math
import random

import pytest

from loadtests.accounting import Deliveries, StreamChecker, mark, parse_mark, reconcile
from loadtests.hist import LogHistogram
from loadtests.metrics import Recorder, Series
from loadtests.runner import TargetRefused, check_target


def feed(checker: StreamChecker, seqs: list[int]) -> list[str]:
    return [checker.on_event(s) for s in seqs]


def test_a_clean_stream_has_no_errors() -> None:
    c = StreamChecker()
    c.on_ready(0)
    assert set(feed(c, [1, 2, 3, 4, 5])) == {"ok"}
    c.finish()
    assert c.last == 5 and c.errors == 0 and c.received == 5


def test_a_gap_a_duplicate_and_a_reorder_are_reported_as_exactly_that() -> None:
    c = StreamChecker()
    c.on_ready(0)
    # 3 twice (duplicate), 5 before 4 (reorder), 7 never arrives (gap)
    statuses = feed(c, [1, 2, 3, 3, 5, 4, 6, 8, 9])
    assert statuses == ["ok", "ok", "ok", "dup", "ahead", "reorder", "ok", "ahead", "ahead"]
    c.finish()
    assert (c.gaps, c.duplicates, c.reorders) == (1, 1, 1)
    assert c.errors == 3


def test_a_late_event_that_fills_a_hole_is_a_reorder_not_a_gap() -> None:
    c = StreamChecker()
    feed(c, [1, 3, 2])
    c.finish()
    assert (c.gaps, c.duplicates, c.reorders) == (0, 0, 1)


def test_a_resume_with_last_seq_continues_the_sequence_without_false_errors() -> None:
    c = StreamChecker()
    assert c.resume_from() == 0  # first connect: last_seq 0, everything is replayed
    c.on_ready(0)
    feed(c, [1, 2, 3])
    # the connection drops with 4 and 5 in flight; they are replayed after the resume
    assert c.resume_from() == 3
    feed(c, [4, 5, 6])  # replayed
    c.on_ready(6)
    feed(c, [7, 8])  # live again
    c.finish()
    assert c.errors == 0 and c.last == 8


def test_events_above_a_hole_are_forgotten_on_resume_and_may_come_again() -> None:
    c = StreamChecker()
    feed(c, [1, 2, 4, 5])  # 3 missing: the client resumes from 2
    assert c.resume_from() == 2
    assert c.gaps == 1  # the hole the server left is counted once
    feed(c, [3, 4, 5])  # the replay brings 4 and 5 again: not duplicates
    c.on_ready(5)
    c.finish()
    assert (c.gaps, c.duplicates, c.reorders) == (1, 0, 0)


def test_sync_ready_beyond_what_arrived_counts_the_missing_ones() -> None:
    c = StreamChecker()
    c.resume_from()
    feed(c, [1, 2])
    c.on_ready(4)  # the server says it sent up to 4: 3 and 4 were lost
    assert c.gaps == 2 and c.last == 4
    feed(c, [5])
    c.finish()
    assert c.gaps == 2 and c.duplicates == 0


def test_a_reset_is_not_an_error_and_rebases_the_sequence() -> None:
    c = StreamChecker()
    c.on_reset(1500)
    feed(c, [1501, 1502])
    c.finish()
    assert c.resets == 1 and c.errors == 0 and c.last == 1502


def test_marks_round_trip_through_a_body() -> None:
    body = mark("请到三楼会议室", "p0.12.3", 12345.678901)
    assert parse_mark(body) == ("p0.12.3", 12345.678901)
    assert parse_mark("no mark here") is None


def test_deliveries_match_across_processes() -> None:
    sender, recipient_a, recipient_b = Deliveries(), Deliveries(), Deliveries()
    sender.expect("p0.1.1", [10, 11])
    sender.expect("p0.1.2", [12])
    assert recipient_a.got("p0.1.1", 10)
    assert not recipient_a.got("p0.1.1", 10)  # a replay after a resume is not counted twice
    recipient_b.got("p0.1.1", 11)
    recipient_b.got("p9.9.9", 13)  # its send failed at the sender
    out = reconcile([sender.export(), recipient_a.export(), recipient_b.export()])
    assert (out["expected"], out["delivered"], out["missing"]) == (3, 2, 1)
    assert out["unmatched"] == 1
    assert out["missing_examples"] == ["p0.1.2 -> user 12"]
    assert reconcile([sender.export(), recipient_a.export()], prefix="p0.1.2")["expected"] == 1


def test_a_send_cut_off_by_its_own_disconnect_is_in_doubt_not_an_error() -> None:
    """The sender dropped its connection before the answer: the page may have gone out (it was
    committed) or not; either way no error, unlike a send that failed and still went out."""
    sender, recipient = Deliveries(), Deliveries()
    sender.expect("p0.1.1", [10])
    sender.doubt("p0.1.1")
    sender.doubt("p0.1.2")
    recipient.got("p0.1.1", 10)
    recipient.got("p0.1.3", 10)  # failed at its sender, yet it went out
    out = reconcile([sender.export(), recipient.export()])
    assert (out["expected"], out["missing"], out["unmatched"]) == (0, 0, 1)
    assert (out["in_doubt"], out["in_doubt_arrived"]) == (2, 1)


def test_percentiles_of_known_samples() -> None:
    h = LogHistogram()
    for ms in range(1, 101):  # 1 ms .. 100 ms
        h.add(ms / 1000)
    assert h.count == 100
    assert h.percentile(0) == 0.001 and h.percentile(1) == 0.100
    for q, exact in ((0.5, 0.050), (0.95, 0.095), (0.99, 0.099)):
        got = h.percentile(q)
        assert got is not None and abs(got - exact) / exact <= 0.021, (q, got)
    assert math.isclose(h.mean or 0, 0.0505)
    assert h.summary()["p99"] == round((h.percentile(0.99) or 0) * 1000, 3)


def test_histograms_merge_like_one() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(-4, 1) for _ in range(5000)]
    whole, a, b = LogHistogram(), LogHistogram(), LogHistogram()
    for i, v in enumerate(values):
        whole.add(v)
        (a if i % 2 else b).add(v)
    a.merge(LogHistogram.from_dict(b.to_dict()))
    for q in (0.5, 0.9, 0.99, 0.999):
        assert a.percentile(q) == whole.percentile(q)
    exact = sorted(values)[math.ceil(0.99 * len(values)) - 1]
    assert abs((whole.percentile(0.99) or 0) - exact) / exact <= 0.021
    assert whole.percentile(0.0) == min(values) and whole.percentile(1.0) == max(values)


def test_an_empty_histogram_has_no_percentiles() -> None:
    assert LogHistogram().percentile(0.99) is None
    assert LogHistogram().summary()["p99"] is None


def test_per_second_buckets_merge_across_workers() -> None:
    t0 = 1000.0
    series = Series(t0)
    for worker in (0, 1):
        rec = Recorder(t0)
        rec.observe("push.pager.message", 0.010, now=t0 + 0.5)
        rec.observe("push.pager.message", 0.030, now=t0 + 1.5)
        rec.count("ok.pager.send", 3, now=t0 + 0.5)
        rec.gauge("connected", 5, now=t0 + 0.5)
        series.add(worker, rec.flush(everything=True))
    first = series.window(0, 1)
    assert first.counts["ok.pager.send"] == 6
    assert first.hists["push.pager.message"].count == 2
    assert series.buckets[0].gauge("connected") == 10
    assert series.window().hists["push.pager.message"].count == 4
    rows = series.to_json()["buckets"]
    assert [r["t"] for r in rows] == [0.0, 1.0] and rows[0]["gauges"]["connected"] == 10


def test_the_generator_aims_at_loopback_unless_told_twice() -> None:
    assert check_target("http://127.0.0.1:8080", explicit=False, allow_remote=False)
    assert check_target("http://[::1]:8080", explicit=True, allow_remote=False)
    for explicit, allow in ((False, False), (True, False), (False, True)):
        with pytest.raises(TargetRefused):
            check_target("http://10.1.2.3:8080", explicit=explicit, allow_remote=allow)
    assert check_target("http://10.1.2.3:8080", explicit=True, allow_remote=True)
