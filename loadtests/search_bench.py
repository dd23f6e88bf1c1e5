"""`make bench-search`: library search on 100,000 documents of Chinese office text.

Builds its own database (in LIAISON_DATABASE_URL's server, or an embedded PostgreSQL in a
temporary directory), migrated like the server's: a few hundred folders, each readable by one of
40 departments (nested: the subfolders inherit), and 100,000 documents of a few hundred
characters generated from a word list, tokenized by the same `storage.text.document_vector` the
server uses and loaded with COPY. Then, as a user whose department may read about a tenth of the
folders, it runs the queries (1-, 2- and 4-character Chinese, an English word, a miss) through
`storage.library.search`, the handler's own SQL, and the snippet the handler builds, and, in the
same run, the same queries as `ILIKE '%q%'` over title and text with the same permission join
(the baseline a plain PostgreSQL gives without an index that knows Chinese). Prints p50/p95/p99
per kind and the ratio to the baseline, and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from storage import library as lq
from storage import text as tq
from storage.embedded import embedded_postgres
from storage.migrate import migrate

WORDS = (
    "预算 决算 报告 通知 会议 纪要 安全 检查 生产 工作 计划 总结 部门 单位 财务 审计 采购 合同 "
    "项目 资金 管理 办法 制度 规定 实施 细则 考核 评估 人员 培训 档案 文件 公文 印发 转发 请示 "
    "批复 意见 方案 通报 表彰 处分 招标 投标 验收 建设 规划 发展 改革 改进 落实 推进 开展 组织 "
    "领导 小组 办公室 综合科 人事 后勤 保障 信息 系统 网络 数据 统计 分析 年度 季度 月度 上半年 "
    "下半年 第一 第二 重点 任务 目标 责任 分工 时间 节点 要求 各级 各部门 认真 贯彻 执行 严格 "
    "按照 有关 规定 及时 上报 材料 汇总 审核 签发 党委 政府 机关 事业 企业 社会 群众 服务 窗口 "
    "办理 流程 优化 营商 环境 应急 预案 演练 消防 防汛 值班 节假日 疫情 防控 卫生 健康 教育 "
    "科技 创新 人才 引进 工资 福利 保险 公积金 报销 差旅费 办公用品 车辆 维修 经费 支出 收入 "
    "绩效 目标 监督 整改 问题 清单 台账 销号 督查 督办 反馈 情况 说明 函 复函 备案 登记 审批"
).split()
ENGLISH = ["budget", "report", "meeting", "audit", "safety", "plan"]
PUNCT = "，，，。；、：！"
DOCS = 100_000
TOP_FOLDERS = 80
SUB_PER_TOP = 3  # 80 + 240 = 320 folders
DEPARTMENTS = 40
LIMIT = 20


def _zipf(rng: random.Random, n: int) -> int:
    """An index in [0, n): low ones much more often, as words are in real text."""
    return min(n - 1, int(rng.paretovariate(1.1)) - 1)


def _sentence(rng: random.Random, order: list[str]) -> str:
    words = [order[_zipf(rng, len(order))] for _ in range(rng.randint(4, 12))]
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words)), f" {rng.choice(ENGLISH)} ")
    return "".join(words) + rng.choice(PUNCT)


CHUNK = 5_000


def _make_rows(
    seed: int, n: int, folders: list[int], file_id: int, owner: int
) -> list[tuple[int, int, str, int, str, str]]:
    """n documents, generated and tokenized (in a worker process)."""
    rng = random.Random(seed)
    order = WORDS[:]
    random.Random(20).shuffle(order)  # the same word frequencies in every chunk
    rows = []
    for _ in range(n):
        title, body = make_doc(rng, order)
        vector = tq.document_vector([(title, "A"), (body, "D")])
        rows.append((rng.choice(folders), file_id, title, owner, body, vector))
    return rows


def make_doc(rng: random.Random, order: list[str]) -> tuple[str, str]:
    title = "关于" + "".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) + "的通知"
    body: list[str] = []
    size = 0
    target = rng.randint(200, 500)
    while size < target:
        s = _sentence(rng, order)
        body.append(s)
        size += len(s)
    return title, "".join(body)


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A fresh database for the run, dropped after it: in LIAISON_DATABASE_URL's server (the
    DSN's database is only used to connect), or in an embedded PostgreSQL of its own."""
    name = f"liaison_search_bench_{os.getpid()}"
    external = os.environ.get("LIAISON_DATABASE_URL")
    tmp: str | None = None
    async with contextlib.AsyncExitStack() as stack:
        if external:
            admin_dsn = external
        else:
            tmp = tempfile.mkdtemp(prefix="liaison-search-bench-")
            admin_dsn = await stack.enter_async_context(
                embedded_postgres(Path(tmp), database="postgres")
            )
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        base, _, query = admin_dsn.partition("?")
        dsn = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
        try:
            yield dsn
        finally:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


async def build_org(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """Departments, one user in each; folders each readable by one department. Returns (the
    owner's id, the reader's, the number of folders the reader may read)."""
    dept_ids = [
        await conn.fetchval(
            "INSERT INTO departments (key, name) VALUES ($1, $2) RETURNING id", f"d{i}", f"部门{i}"
        )
        for i in range(DEPARTMENTS)
    ]
    user_ids = await conn.fetch(
        "INSERT INTO users (account, name, department_id)"
        " SELECT 'u' || i, '用户' || i, d FROM unnest($1::bigint[]) WITH ORDINALITY AS t(d, i)"
        " RETURNING id",
        dept_ids,
    )
    owner = user_ids[0]["id"]
    reader = user_ids[1]["id"]
    rng = random.Random(7)
    for t in range(TOP_FOLDERS):
        top = await lq.create_folder(conn, None, f"目录{t}", owner)
        # One department in ten may read a folder on average; the reader's (dept 1) a tenth.
        dept = dept_ids[1] if t % 10 == 0 else rng.choice(dept_ids[2:])
        await lq.set_acl(
            conn,
            top.id,
            True,
            [lq.Entry("user", str(owner), ["manage"]), lq.Entry("department", str(dept), ["read"])],
        )
        await lq.recompute(conn, top.id)
        for s in range(SUB_PER_TOP):
            sub = await lq.create_folder(conn, top.id, f"子目录{t}-{s}", owner)
            await lq.set_acl(conn, sub.id, True, [lq.Entry("user", str(owner), ["manage"])])
            await lq.recompute(conn, sub.id)
    readable = await conn.fetchval(
        "SELECT count(DISTINCT e.folder_id) FROM library_effective e"
        " JOIN library_principals($1) p ON p.kind = e.kind AND p.principal = e.principal"
        " WHERE 'read' = ANY(e.perms)",
        reader,
    )
    return owner, reader, int(readable)


async def load_docs(conn: asyncpg.Connection, owner: int, n: int) -> float:
    """n documents through the server's tokenizer (in worker processes), COPYed to a staging
    table and inserted with one statement; returns the seconds taken."""
    folders = [r["id"] for r in await conn.fetch("SELECT id FROM library_folders ORDER BY id")]
    sha = b"\x00" * 32
    await conn.execute("INSERT INTO blobs (sha256, size, data) VALUES ($1, 0, '')", sha)
    file_id = await conn.fetchval(
        "INSERT INTO files (sha256, name, size, content_type, uploader_id)"
        " VALUES ($1, 'x.txt', 0, 'text/plain', $2) RETURNING id",
        sha,
        owner,
    )
    started = time.perf_counter()
    await conn.execute(
        "CREATE TEMP TABLE staged (folder_id bigint, file_id bigint, title text,"
        " added_by bigint, body text, search text)"
    )
    loop = asyncio.get_running_loop()
    chunks = [(seed, min(CHUNK, n - seed * CHUNK)) for seed in range((n + CHUNK - 1) // CHUNK)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        pending = [
            loop.run_in_executor(pool, _make_rows, seed, k, folders, file_id, owner)
            for seed, k in chunks
        ]
        for fut in pending:
            await conn.copy_records_to_table("staged", records=await fut)
    await conn.execute(
        "INSERT INTO library_docs (folder_id, file_id, title, added_by, body, search, indexed_at)"
        " SELECT folder_id, file_id, title, added_by, body, search::tsvector, now() FROM staged"
    )
    await conn.execute("DROP TABLE staged")
    await conn.execute("VACUUM ANALYZE library_docs")
    return time.perf_counter() - started


@dataclass
class Case:
    kind: str
    query: str


def queries(count: int) -> list[Case]:
    rng = random.Random(3)
    common = WORDS[:30]
    kinds: list[tuple[str, Callable[[], str]]] = [
        ("1 char", lambda: rng.choice(rng.choice(common))),
        ("2 chars", lambda: rng.choice([w for w in WORDS if len(w) == 2])),
        (
            "4 chars",
            lambda: rng.choice([a + b for a in common[:10] for b in common[:10] if a != b]),
        ),
        ("English", lambda: rng.choice(ENGLISH)),
        ("miss", lambda: rng.choice(["琵琶", "鹦鹉螺", "zeppelin", "麒麟"])),
    ]
    return [Case(kinds[i % len(kinds)][0], kinds[i % len(kinds)][1]()) for i in range(count)]


async def run_search(conn: asyncpg.Connection, reader: int, case: Case) -> int:
    """What `library.search` does after validation: the SQL and the snippets."""
    q = tq.search_query(case.query)
    assert q is not None
    hits = await lq.search(conn, reader, q.tsquery, q.needles, root_id=None, limit=LIMIT)
    for h in hits:
        tq.snippet(h.excerpt, q)
    return len(hits)


async def run_ilike(conn: asyncpg.Connection, reader: int, case: Case) -> int:
    """The baseline: a substring scan with the same permission join and limit (no ranking)."""
    pattern = "%" + case.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await conn.fetch(
        """
        WITH readable AS (
            SELECT DISTINCT e.folder_id FROM library_effective e
            JOIN library_principals($1) p ON p.kind = e.kind AND p.principal = e.principal
            WHERE 'read' = ANY(e.perms)
        )
        SELECT d.id, d.title, d.folder_id, substr(d.body, 1, 240) FROM library_docs d
        WHERE d.removed_at IS NULL AND d.folder_id IN (SELECT folder_id FROM readable)
          AND (d.title ILIKE $2 OR d.body ILIKE $2)
        ORDER BY d.id DESC LIMIT $3
        """,
        reader,
        pattern,
        LIMIT,
    )
    return len(rows)


def pct(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def measure(
    conn: asyncpg.Connection,
    reader: int,
    cases: list[Case],
    fn: Callable[[asyncpg.Connection, int, Case], object],
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for case in cases[:10]:  # warm the cache
        await fn(conn, reader, case)  # type: ignore[misc]
    for case in cases:
        t = time.perf_counter()
        await fn(conn, reader, case)  # type: ignore[misc]
        ms = (time.perf_counter() - t) * 1000
        out.setdefault(case.kind, []).append(ms)
        out.setdefault("all", []).append(ms)
    return out


def report(search: dict[str, list[float]], base: dict[str, list[float]]) -> str:
    lines = [
        "| queries | search p50 / p95 / p99 (ms) | ILIKE p50 / p95 / p99 (ms) | p50 ratio | p99 ratio |",
        "|---|---|---|---|---|",
    ]
    for kind in [*[k for k in search if k != "all"], "all"]:
        s, b = search[kind], base[kind]
        sp = [pct(s, p) for p in (50, 95, 99)]
        bp = [pct(b, p) for p in (50, 95, 99)]
        lines.append(
            f"| {kind} ({len(s)}) | {' / '.join(f'{x:.1f}' for x in sp)} |"
            f" {' / '.join(f'{x:.1f}' for x in bp)} | {sp[0] / bp[0]:.2f} | {sp[2] / bp[2]:.2f} |"
        )
    return "\n".join(lines)


async def main_async(docs: int, count: int) -> None:
    async with bench_database() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            owner, reader, readable = await build_org(conn)
            folders = await conn.fetchval("SELECT count(*) FROM library_folders")
            print(f"{folders} folders; the reader may read {readable}")
            took = await load_docs(conn, owner, docs)
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('library_docs'))"
            )
            print(f"{docs} documents tokenized and loaded in {took:.1f} s ({size} with indexes)")
            cases = queries(count)
            hits = [await run_search(conn, reader, c) for c in cases[:5]]
            print(
                "hits of the first queries:",
                dict(zip([c.query for c in cases[:5]], hits, strict=True)),
            )
            search = await measure(conn, reader, cases, run_search)
            base = await measure(conn, reader, cases, run_ilike)
            print(report(search, base))
            print(
                f"overall: search p50 {statistics.median(search['all']):.1f} ms,"
                f" ILIKE p50 {statistics.median(base['all']):.1f} ms"
            )
        finally:
            await conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadtests.search_bench", description=__doc__)
    p.add_argument("--docs", type=int, default=DOCS)
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args(argv)
    asyncio.run(main_async(args.docs, args.queries))


if __name__ == "__main__":
    main()
