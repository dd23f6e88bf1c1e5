"""The approval scenario of `make bench`: requests started and approved through two steps.

Each flow is three commands over HTTP, as an integration or a busy office would send them: the
applicant's `workflow.start`, their section head's `workflow.act` (the supervisor step), and a
second head's `workflow.act` (a named-approver step). `concurrency` flows run at once, each
starting the next as soon as it ends, for `seconds`; reported: flows and commands per second and
each command's latency percentiles. Only Liaison has it: the floor has no approvals."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp

from loadtests.hist import LogHistogram
from loadtests.org import Org

DEFINITION_KEY = "bench_two_steps"


async def _login(http: aiohttp.ClientSession, url: str, account: str, password: str) -> str:
    async with http.post(
        url + "/api/v1/auth/login", json={"account": account, "password": password}
    ) as r:
        env = await r.json()
    if not env.get("ok"):
        raise RuntimeError(f"login {account}: {env}")
    return str(env["data"]["access_token"])


async def scenario_approvals(
    url: str,
    org: Org,
    admin: str,
    password: str,
    *,
    concurrency: int = 32,
    seconds: float = 15.0,
) -> dict[str, Any]:
    sections = [m for m in org.sections.values() if len(m) > 1]
    flows = min(concurrency, len(sections))
    # flow i: a staff member of section i, approved by its head, then by section i+1's head
    lanes = [
        (sections[i][1], sections[i][0], sections[(i + 1) % len(sections)][0]) for i in range(flows)
    ]
    histograms = {n: LogHistogram() for n in ("workflow.start", "approve 1", "approve 2")}
    errors: dict[str, int] = {}
    done = 0
    async with aiohttp.ClientSession() as http:
        account, _, admin_pw = admin.partition(":")
        admin_token = await _login(http, url, account, admin_pw)
        people = {p for lane in lanes for p in lane}
        tokens = {i: await _login(http, url, org.people[i].account, password) for i in people}

        async def call(token: str, name: str, payload: dict[str, Any], label: str | None) -> Any:
            started = time.perf_counter()
            async with http.post(
                f"{url}/api/v1/commands/{name}",
                json=payload,
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                env = await r.json()
            if label is not None:
                histograms[label].add(time.perf_counter() - started)
            if not env.get("ok"):
                code = env["error"]["code"]
                errors[code] = errors.get(code, 0) + 1
                return None
            return env["data"]

        second = sorted({org.people[h].id for _, _, h in lanes})
        define = {
            "definition": {
                "key": DEFINITION_KEY,
                "name": "两级审批（压测）",
                "form": [{"name": "reason", "label": "事由", "type": "text", "required": True}],
                "steps": [
                    {"name": "直接上级", "approvers": {"kind": "supervisor"}},
                    {
                        "name": "会签",
                        "approvers": {"kind": "users", "user_ids": [str(i) for i in second]},
                        "mode": "any",
                    },
                ],
            }
        }
        if await call(admin_token, "workflow.define", define, None) is None:
            raise RuntimeError(f"define failed: {errors}")
        keys = itertools.count()
        deadline = time.monotonic() + seconds
        t0 = time.monotonic()

        async def lane(applicant: int, head: int, other: int) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                started = await call(
                    tokens[applicant],
                    "workflow.start",
                    {
                        "key": DEFINITION_KEY,
                        "form": {"reason": "压测"},
                        "client_msg_id": f"bench-{next(keys)}",
                    },
                    "workflow.start",
                )
                if not started or not started["tasks"]:
                    continue
                first = await call(
                    tokens[head],
                    "workflow.act",
                    {"task_id": started["tasks"][0]["task_id"], "action": "approve"},
                    "approve 1",
                )
                if not first:
                    continue
                mine = [t for t in first["tasks"] if t["assignee"] == str(org.people[other].id)]
                if not mine:
                    continue
                if await call(
                    tokens[other],
                    "workflow.act",
                    {"task_id": mine[0]["task_id"], "action": "approve"},
                    "approve 2",
                ):
                    done += 1

        await asyncio.gather(*(lane(*x) for x in lanes))
        took = time.monotonic() - t0
    commands = sum(h.count for h in histograms.values())
    return {
        "concurrency": flows,
        "seconds": round(took, 2),
        "flows": done,
        "flows_per_s": round(done / took, 1),
        "commands_per_s": round(commands / took, 1),
        "errors": errors,
        "latency_ms": {n: h.summary() for n, h in histograms.items()},
    }
