"""The example deployment (loadtests/deploy/nginx.conf) works: three nodes on one PostgreSQL and
one Redis behind nginx, tabs spread over the nodes by nginx alone, one node killed under paging;
`liaison-load nodes` checks 0 lost, 0 duplicated, 0 gaps and identical sequences in every tab
of a person, before and after. Skipped where nginx or redis-server is not installed."""

from __future__ import annotations

import shutil

import pytest

from loadtests import nodes

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin"))
    or not shutil.which("redis-server"),
    reason="needs nginx and redis-server (make system-deps installs them)",
)


@pytest.mark.timeout(240)
async def test_three_nodes_behind_nginx_lose_nothing_when_one_dies() -> None:
    result = await nodes.run(3)
    assert nodes.verdict(result) == [], result
    assert result["tabs_moved"] > 0 and result["pages"] > 0
