"""`liaison-load faults` (loadtests/faults.py) against a server of its own: a client that stops
reading is cut without slowing the others, and database connections killed under paging lose,
duplicate and wrongly text nothing (issue 16, items 1 and 2)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def test_the_fault_run_counts_nothing_lost_duplicated_or_wrongly_texted() -> None:
    liaison_load = Path(sys.executable).parent / "liaison-load"
    proc = await asyncio.create_subprocess_exec(
        str(liaison_load),
        "faults",
        "--hiccup-s",
        "6",
        "--rate",
        "30",
        "--kill-every-s",
        "1.5",
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 110)
    text = out.decode()
    assert proc.returncode == 0, text
    assert text.rstrip().endswith("all zero"), text
    counts = dict(line.split(None, 1) for line in text.splitlines() if line.startswith("  "))
    assert int(counts["connections_killed"]) > 0, text
    assert counts["connection_closed"].strip() == "True", text
