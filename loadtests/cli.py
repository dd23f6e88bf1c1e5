"""`liaison-load`: simulate an office of N people against a Liaison server (or the floor).

It imports its own organisation, signs everyone in over HTTP, connects each over Socket.IO,
runs the office mix, checks every stream and delivery, prints a status line per second and
writes a JSON result and a self-contained HTML report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from loadtests.org import build_org, cheap_hash
from loadtests.report import render
from loadtests.runner import (
    MAX_PROCS,
    MAX_USERS,
    Fleet,
    TargetRefused,
    check_target,
    import_org,
    live_status,
    make_specs,
    summarise,
)
from loadtests.worker import Mix, raise_fd_limit

DEFAULT_TARGET = "http://127.0.0.1:8080"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class RunConfig:
    target: str = DEFAULT_TARGET
    target_explicit: bool = False
    allow_remote: bool = False
    admin: str | None = None
    users: int = 1000
    ramp: float = 100.0
    duration: float = 120.0
    drain: float = 10.0
    deadline: float | None = None
    procs: int = 4
    mix: Mix = field(default_factory=Mix)
    seed: int = 1
    prefix: str | None = None
    password: str = "load-test-1"
    out: Path | None = None
    deflate: bool = False
    quiet: bool = False


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


async def run_office(cfg: RunConfig) -> dict[str, Any]:
    """The whole run; returns the result (also written as JSON and HTML under cfg.out)."""
    if not 1 <= cfg.users <= MAX_USERS:
        raise ValueError(f"--users must be 1..{MAX_USERS}")
    if not 0 <= cfg.procs <= MAX_PROCS:
        raise ValueError(f"--procs must be 0..{MAX_PROCS}")
    admin = cfg.admin or os.environ.get("LIAISON_BOOTSTRAP_ADMIN")
    if not admin or ":" not in admin:
        raise ValueError("give --admin account:password (or set LIAISON_BOOTSTRAP_ADMIN)")
    base = check_target(cfg.target, explicit=cfg.target_explicit, allow_remote=cfg.allow_remote)
    raise_fd_limit()
    started = datetime.now(UTC)
    prefix = cfg.prefix or "lt" + started.strftime("%m%d%H%M%S")
    log = (lambda *_: None) if cfg.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    org = build_org(cfg.users, prefix, seed=cfg.seed)
    log(f"importing {cfg.users} people in {len(org.sections)} sections as {prefix}_* …")
    import_s = await import_org(base, admin, org, cheap_hash(cfg.password))
    log(f"imported in {import_s:.1f}s")

    ramp_s = cfg.users / cfg.ramp if cfg.ramp > 0 else 0.0
    hard = cfg.deadline or (ramp_s * 3 + cfg.duration + cfg.drain + 120)
    t0 = time.monotonic()
    deadline = t0 + hard
    specs = make_specs(
        org,
        base_url=base,
        password=cfg.password,
        procs=cfg.procs,
        t0=t0,
        deadline=deadline,
        mix=cfg.mix,
        seed=cfg.seed,
        deflate=cfg.deflate,
    )
    fleet = Fleet(specs, in_process=cfg.procs == 0, t0=t0)
    if cfg.quiet:
        fleet.on_notice = lambda s: None
    phase = ["start"]
    reports: list[dict[str, Any]] = []
    timed_out = False
    await fleet.start()
    try:
        async with live_status(fleet.series, cfg.users, phase, not cfg.quiet):
            try:
                async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                    phase[0] = "ramp"
                    n = len(fleet)
                    await fleet.call_all("connect", rate=cfg.ramp / n if cfg.ramp > 0 else 0.0)
                    phase[0] = "run"
                    await fleet.call_all("mix", duration=cfg.duration)
                    phase[0] = "drain"
                    await _drain(fleet, cfg.drain)
            except TimeoutError:
                timed_out = True
                log("hard deadline reached: stopping")
            phase[0] = "report"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    await fleet.call_all("disconnect")
                    reports = await fleet.call_all("report")
    finally:
        await fleet.close()

    summary = summarise(fleet.series, reports)
    meta = {
        "target": base,
        "users": cfg.users,
        "procs": cfg.procs,
        "ramp": cfg.ramp,
        "duration": cfg.duration,
        "drain": cfg.drain,
        "hard_deadline_s": hard,
        "timed_out": timed_out,
        "seed": cfg.seed,
        "prefix": prefix,
        "deflate": cfg.deflate,
        "started": started.isoformat(),
        "import_s": round(import_s, 3),
        "sections": len(org.sections),
        "mix": msgspec.to_builtins(cfg.mix),
    }
    result = {
        "meta": meta,
        "summary": summary,
        "notices": fleet.notices,
        "series": fleet.series.to_json(),
    }
    out = cfg.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    name = f"load-{_stamp()}"
    json_path = out / f"{name}.json"
    html_path = out / f"{name}.html"
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=1))
    html_path.write_text(render(result), encoding="utf-8")
    result["files"] = {"json": str(json_path), "html": str(html_path)}
    log(_final_line(summary))
    log(f"wrote {json_path} and {html_path}")
    return result


async def _drain(fleet: Fleet, limit: float) -> None:
    """Give pushes in flight time to land: until every expected delivery arrived, or `limit`."""
    until = time.monotonic() + limit
    await asyncio.sleep(min(1.0, limit))
    while time.monotonic() < until:
        progress = await fleet.call_all("progress")
        want = sum(p["expected_pairs"] for p in progress)
        got = sum(p["received_pairs"] for p in progress)
        if got >= want:
            return
        await asyncio.sleep(0.5)


def _final_line(s: dict[str, Any]) -> str:
    push = s["latency_ms"].get("push.pager.message", {})
    d = s["deliveries"]
    return (
        f"done: pages e2e p50 {push.get('p50')} ms p99 {push.get('p99')} ms; "
        f"delivered {d['delivered']}/{d['expected']}; stream errors {s['stream_errors']}; "
        f"command errors {s['command_errors']}; disconnects {s['disconnects']}"
    )


# -- command line --------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liaison-load",
        description=(
            "Load generator for Liaison. Imports its own organisation (sections of 20–50 people) "
            "through POST /api/v1/admin/import, signs every simulated person in over HTTP, "
            "connects each over Socket.IO (a lean Engine.IO v4 client, one websocket per "
            "person), runs the office mix, and checks that every durable stream goes 1, 2, 3… "
            "across reconnects and that every page reaches every recipient. "
            "Passwords are imported as a precomputed argon2id hash with deliberately cheap "
            "parameters (1 pass, 8 KiB), so that thousands of logins do not spend the server's "
            "CPU on password hashing: these accounts are for load tests only."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--target",
        help=f"server base URL (default {DEFAULT_TARGET}); loopback only unless --i-know-this-is-not-loopback",
    )
    p.add_argument(
        "--i-know-this-is-not-loopback",
        dest="allow_remote",
        action="store_true",
        help="allow a --target that is not 127.0.0.0/8 or ::1",
    )
    p.add_argument(
        "--admin", help="account:password of an administrator (default: $LIAISON_BOOTSTRAP_ADMIN)"
    )
    p.add_argument("--users", type=int, default=1000, help="simulated people (one tab each)")
    p.add_argument(
        "--ramp", type=float, default=100.0, help="people connecting per second (0: all at once)"
    )
    p.add_argument(
        "--duration", type=float, default=120.0, help="seconds of office mix after the ramp"
    )
    p.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="at most this long to wait for pushes in flight at the end",
    )
    p.add_argument(
        "--deadline",
        type=float,
        help="hard limit in seconds for the whole run (default: 3×ramp + duration + drain + 120)",
    )
    p.add_argument(
        "--procs", type=int, default=4, help="worker processes (0: one worker inside this process)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--prefix",
        help="account prefix of the imported organisation (default: lt<timestamp>, fresh each run)",
    )
    p.add_argument(
        "--password", default="load-test-1", help="the password of every simulated person"
    )
    p.add_argument("--out", type=Path, help=f"where to write the JSON and HTML (default {RESULTS})")
    p.add_argument(
        "--deflate",
        action="store_true",
        help="negotiate permessage-deflate like a browser (costs CPU and memory on both sides)",
    )
    p.add_argument("--quiet", action="store_true", help="no status lines")
    m = p.add_argument_group(
        "the office mix, per person",
        "Defaults model an office day of 8 hours compressed 60× into 8 minutes: per person and "
        "day about 10 pages, 6 whereabouts changes, 3 notes, 1 circulation, half a meeting, 2 "
        "network drops (resumed with last_seq), 4 idle spells, half a leave request, half a task "
        "and 4 looks at the to-do inbox. Features the server answers not_found are skipped with "
        "a notice.",
    )
    d = Mix()
    m.add_argument("--pages-per-min", type=float, default=d.pages_per_min)
    m.add_argument(
        "--urgent-share", type=float, default=d.urgent_share, help="share of pages sent urgent"
    )
    m.add_argument(
        "--recipients",
        default=f"{d.recipients_min}-{d.recipients_max}",
        help="people per page, min-max",
    )
    m.add_argument(
        "--other-dept-share",
        type=float,
        default=d.other_dept_share,
        help="share of recipients outside one's own section",
    )
    m.add_argument(
        "--dept-page-share",
        type=float,
        default=d.dept_page_share,
        help="share of pages to one's whole section",
    )
    m.add_argument(
        "--read-share",
        type=float,
        default=d.read_share,
        help="share of pages read (pager.read) after a think time",
    )
    m.add_argument(
        "--reply-share", type=float, default=d.reply_share, help="share of read pages answered"
    )
    m.add_argument(
        "--think",
        default=f"{d.think_min_s:g}-{d.think_max_s:g}",
        help="think time before reading / confirming, seconds min-max",
    )
    m.add_argument("--whereabouts-per-hour", type=float, default=d.whereabouts_per_hour)
    m.add_argument("--notes-per-hour", type=float, default=d.notes_per_hour)
    m.add_argument("--circulations-per-hour", type=float, default=d.circulations_per_hour)
    m.add_argument("--meetings-per-hour", type=float, default=d.meetings_per_hour)
    m.add_argument(
        "--drops-per-hour",
        type=float,
        default=d.drops_per_hour,
        help="simulated network drops; the tab resumes with last_seq",
    )
    m.add_argument("--idle-per-hour", type=float, default=d.idle_per_hour)
    m.add_argument(
        "--approvals-per-hour",
        type=float,
        default=d.approvals_per_hour,
        help="leave requests filed; each approver approves after a think time",
    )
    m.add_argument(
        "--tasks-per-hour",
        type=float,
        default=d.tasks_per_hour,
        help="tasks handed out; assignees report progress and complete them",
    )
    m.add_argument("--todo-reads-per-hour", type=float, default=d.todo_reads_per_hour)
    m.add_argument("--no-board", action="store_true", help="do not watch one's department board")
    return p


def _range(text: str, cast: type) -> tuple[Any, Any]:
    lo, _, hi = text.partition("-")
    return cast(lo), cast(hi or lo)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    rmin, rmax = _range(args.recipients, int)
    tmin, tmax = _range(args.think, float)
    mix = Mix(
        pages_per_min=args.pages_per_min,
        urgent_share=args.urgent_share,
        recipients_min=rmin,
        recipients_max=rmax,
        other_dept_share=args.other_dept_share,
        dept_page_share=args.dept_page_share,
        read_share=args.read_share,
        reply_share=args.reply_share,
        think_min_s=tmin,
        think_max_s=tmax,
        whereabouts_per_hour=args.whereabouts_per_hour,
        notes_per_hour=args.notes_per_hour,
        circulations_per_hour=args.circulations_per_hour,
        meetings_per_hour=args.meetings_per_hour,
        drops_per_hour=args.drops_per_hour,
        idle_per_hour=args.idle_per_hour,
        approvals_per_hour=args.approvals_per_hour,
        tasks_per_hour=args.tasks_per_hour,
        todo_reads_per_hour=args.todo_reads_per_hour,
        board=not args.no_board,
    )
    return RunConfig(
        target=args.target or DEFAULT_TARGET,
        target_explicit=args.target is not None,
        allow_remote=args.allow_remote,
        admin=args.admin,
        users=args.users,
        ramp=args.ramp,
        duration=args.duration,
        drain=args.drain,
        deadline=args.deadline,
        procs=args.procs,
        mix=mix,
        seed=args.seed,
        prefix=args.prefix,
        password=args.password,
        out=args.out,
        deflate=args.deflate,
        quiet=args.quiet,
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["faults"]:  # the fault-injection run (loadtests/faults.py)
        from loadtests.faults import main as faults

        faults(argv[1:])
        return
    if argv[:1] == ["nodes"]:  # several nodes behind nginx (loadtests/nodes.py)
        from loadtests.nodes import main as nodes

        nodes(argv[1:])
        return
    args = parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        sys.exit(f"liaison-load: {exc}")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    try:
        result = asyncio.run(run_office(cfg))
    except (TargetRefused, ValueError, RuntimeError) as exc:
        sys.exit(f"liaison-load: {exc}")
    except KeyboardInterrupt:
        sys.exit(130)
    s = result["summary"]
    failed = s["stream_errors"] or s["deliveries"]["missing"] or result["meta"]["timed_out"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
