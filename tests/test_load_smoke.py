"""A short real run of the load generator against a real Liaison server: 200 people for 20 s,
in this process, with every check the generator makes required to come out clean."""

from __future__ import annotations

from pathlib import Path

from loadtests.cli import RunConfig, run_office
from loadtests.worker import Mix
from tests.support import start_server

ADMIN = "loadadmin:load-admin-pw-1"


async def test_two_hundred_people_for_twenty_seconds(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    async with start_server(
        database_url,
        tmp_path,
        password_hash,
        bootstrap_admin=ADMIN,
        rate_per_s=1000,
        rate_burst=1000,
        access_ttl_s=10,  # tokens are renewed (refresh + auth.renew) during the run
        token_sweep_s=2,
    ) as srv:
        result = await run_office(
            RunConfig(
                target=srv.url,
                admin=ADMIN,
                users=200,
                ramp=200,
                duration=20,
                drain=10,
                procs=0,
                out=tmp_path / "results",
                quiet=True,
                mix=Mix(
                    pages_per_min=3,
                    drops_per_hour=30,
                    think_min_s=1,
                    think_max_s=5,
                    approvals_per_hour=60,
                    tasks_per_hour=60,
                    todo_reads_per_hour=120,
                ),
            )
        )
    s = result["summary"]
    counts = s["counts"]
    assert not result["meta"]["timed_out"]
    assert s["stream_errors"] == 0, s["stream"]
    assert s["stream"]["resets"] == 0, s["stream"]
    assert s["errors_by_code"] == {}, s["errors_by_code"]
    assert s["deliveries"]["expected"] > 100, s["deliveries"]
    assert s["deliveries"]["missing"] == 0, s["deliveries"]
    assert s["deliveries"]["unexpected"] == 0 and s["deliveries"]["unmatched"] == 0
    assert s["disconnects"] == 0, {k: v for k, v in counts.items() if k.startswith("conn.")}
    # the run exercised what it claims: resumes after drops, renewals, acks, boards
    assert counts.get("conn.drops", 0) > 0 and counts.get("conn.resume", 0) == 0
    assert s["latency_ms"]["conn.resume"]["count"] >= counts["conn.drops"]
    assert counts.get("ok.auth.renew", 0) >= 200
    assert counts.get("sent.sync.ack", 0) > 0 and counts.get("ok.whereabouts.board", 0) >= 200
    assert s["latency_ms"]["push.pager.message"]["count"] > 0
    # the second half's office work: requests filed and approved, tasks handed out and done
    for name in ("workflow.start", "workflow.act", "task.assign", "task.complete", "todo.list"):
        assert counts.get(f"ok.{name}", 0) > 0, name
    files = result["files"]
    assert Path(files["json"]).stat().st_size > 0
    html = Path(files["html"]).read_text(encoding="utf-8")
    assert "<svg" in html and "<polyline" in html
    assert "workflow.start" in html and "task.assign" in html  # per-command latency
    assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
