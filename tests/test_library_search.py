"""Search in the file library: titles at once, the text of .txt (UTF-8 and GBK), .docx and .pdf
files once the extraction job has run (`library.indexed`), Chinese by one, two or four
characters, English by word; best first, a snippet around the match, and only what the caller
may read. A file that cannot be read keeps its title searchable; the job runs twice to no
effect; bad queries are refused."""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any

import pytest

from handlers import extract as ex
from handlers import library
from storage import text as tq
from tests.support import Client, Office, eventually


# --- making files -------------------------------------------------------------------------------
def docx_file(*paragraphs: str, table: list[str] | None = None) -> bytes:
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=1, cols=len(table))
        for i, cell in enumerate(table):
            t.cell(0, i).text = cell
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def pdf_file(*lines: str) -> bytes:
    """A PDF in reportlab's built-in Chinese CID font (not embedded: the text is CID codes
    through UniGB-UCS2-H, the hard case for extraction)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("STSong-Light", 12)
    for i, line in enumerate(lines):
        c.drawString(72, 750 - 20 * i, line)
    c.showPage()
    c.save()
    return buf.getvalue()


# --- helpers ------------------------------------------------------------------------------------
async def _folder(
    office: Office,
    name: str,
    parent: str | None = None,
    readers: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> str:
    """A folder of wang's (he manages it), readable by `readers` too."""
    body: dict[str, Any] = {"name": name, **({"parent_id": parent} if parent else {})}
    folder_id = str((await office.ok("wang", "library.folder.create", body))["folder_id"])
    if readers:
        entries = [{"user_id": office.user_ids["wang"], "perms": ["manage"]}]
        entries += [{**r, "perms": ["read"]} for r in readers]
        await office.ok(
            "wang",
            "library.acl.set",
            {"folder_id": folder_id, "inherit": True, "entries": entries},
        )
    return folder_id


async def _add(
    office: Office, folder_id: str, data: bytes, name: str, title: str | None = None
) -> str:
    person = await office.person("wang")
    status, up = await office.server.upload(person.token, data, name)
    assert status == 200, up
    body = {"folder_id": folder_id, "file_id": up["data"]["file_id"]}
    if title is not None:
        body["title"] = title
    return str((await office.ok("wang", "library.add", body))["doc_id"])


async def _indexed(office: Office, *doc_ids: str) -> None:
    pool = office.server.services.pool

    async def done() -> bool:
        n = await pool.fetchval(
            "SELECT count(*) FROM library_docs WHERE id = ANY($1::bigint[])"
            " AND indexed_at IS NOT NULL",
            [int(d) for d in doc_ids],
        )
        return bool(n == len(doc_ids))

    await eventually(done, timeout=30)


async def _search(office: Office, who: str, query: str, **kw: Any) -> list[dict[str, Any]]:
    return list((await office.ok(who, "library.search", {"query": query, **kw}))["hits"])


async def _found(office: Office, who: str, query: str, **kw: Any) -> list[str]:
    return [h["doc_id"] for h in await _search(office, who, query, **kw)]


async def _wait_indexed(tab: Client, doc_ids: set[str]) -> None:
    await tab.wait_for(
        lambda _: {e["data"]["doc_id"] for e in tab.durable("library.indexed")} >= doc_ids,
        timeout=30,
    )


# --- the story ----------------------------------------------------------------------------------
async def test_the_text_of_txt_docx_and_pdf_files_is_found_once_indexed(office: Office) -> None:
    folder = await _folder(office, "科室资料")
    tab = await office.tab("wang")
    utf8 = await _add(office, folder, "关于2024年度预算报告的说明。".encode(), "a.txt", "甲")
    gbk = await _add(office, folder, "差旅费报销管理办法（试行）".encode("gbk"), "b.txt", "乙")
    word = await _add(
        office,
        folder,
        docx_file("第三季度工作会议纪要", table=["表格中的安全检查", "Quarterly review"]),
        "c.docx",
        "丙",
    )
    pdf = await _add(
        office, folder, pdf_file("关于开展消防演练的通知", "Fire drill"), "d.pdf", "丁"
    )
    await _wait_indexed(tab, {utf8, gbk, word, pdf})
    for e in tab.durable("library.indexed"):
        assert set(e["data"]) == {"doc_id"}
    # Each library.add told the adder too, and a fresh list agrees with it.
    added = {e["data"]["doc_id"]: e["data"] for e in tab.durable("library.added")}
    listed = await office.ok("wang", "library.list", {"folder_id": folder})
    assert {d["doc_id"]: d["title"] for d in listed["docs"]} == {
        k: v["title"] for k, v in added.items()
    }
    assert await _found(office, "wang", "预算") == [utf8]
    assert await _found(office, "wang", "报销") == [gbk]
    assert await _found(office, "wang", "纪要") == [word]
    assert await _found(office, "wang", "安全检查") == [word]  # a table cell
    assert await _found(office, "wang", "演练") == [pdf]
    assert await _found(office, "wang", "drill") == [pdf]
    hit = (await _search(office, "wang", "预算"))[0]
    assert hit == {
        "doc_id": utf8,
        "title": "甲",
        "folder_id": folder,
        "snippet": "关于2024年度<mark>预算</mark>报告的说明。",
    }


async def test_one_and_four_character_queries_and_english_words(office: Office) -> None:
    folder = await _folder(office, "文件")
    report = await _add(
        office, folder, "年度预算报告 Annual BUDGET report, 2024年".encode(), "r.txt", "报告"
    )
    other = await _add(office, folder, "预计算法说明，年度总结".encode(), "o.txt", "说明")
    await _indexed(office, report, other)
    assert sorted(await _found(office, "wang", "算")) == sorted([report, other])
    assert await _found(office, "wang", "年度预算") == [report]  # the phrase
    assert await _found(office, "wang", "预算年度") == []  # its bigrams, out of order
    assert await _found(office, "wang", "budget") == [report]
    assert await _found(office, "wang", "Budget 年度") == [report]  # both, anywhere
    assert await _found(office, "wang", "2024年") == [report]
    assert await _found(office, "wang", "budg") == []  # words are whole
    assert await _found(office, "wang", "缺席") == []  # a miss
    hit = (await _search(office, "wang", "budget"))[0]
    assert "<mark>BUDGET</mark>" in hit["snippet"]


async def test_a_title_hit_ranks_above_a_text_hit(office: Office) -> None:
    folder = await _folder(office, "文件")
    in_text = await _add(
        office, folder, "本文件说明了明年的预算安排，其余从略。".encode(), "x.txt", "工作安排"
    )
    in_title = await _add(office, folder, "与题目无关的正文。".encode(), "y.txt", "预算编制通知")
    await _indexed(office, in_text, in_title)
    hits = await _search(office, "wang", "预算")
    assert [h["doc_id"] for h in hits] == [in_title, in_text]
    assert hits[0]["snippet"] == "<mark>预算</mark>编制通知"
    assert "<mark>预算</mark>安排" in hits[1]["snippet"]


async def test_the_snippet_is_escaped_and_cut_around_the_first_match(office: Office) -> None:
    folder = await _folder(office, "文件")
    body = "前言" * 200 + "<b>注意</b>：请核对预算表。" + "附录" * 200
    doc = await _add(office, folder, body.encode(), "s.txt", "长文")
    await _indexed(office, doc)
    snippet = (await _search(office, "wang", "预算"))[0]["snippet"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "&lt;b&gt;注意&lt;/b&gt;：请核对<mark>预算</mark>表。" in snippet
    assert len(snippet) < 200


async def test_search_finds_only_what_the_caller_may_read(office: Office) -> None:
    staff = {"role": "staff"}
    shared = await _folder(office, "共享", readers=[staff])
    below = await _folder(office, "下级", parent=shared)  # inherits staff's read
    private = await _folder(office, "私有")  # wang's alone
    a = await _add(office, shared, "共享的预算文件".encode(), "a.txt")
    b = await _add(office, below, "下级的预算文件".encode(), "b.txt")
    c = await _add(office, private, "私有的预算文件".encode(), "c.txt")
    await _indexed(office, a, b, c)
    assert sorted(await _found(office, "wang", "预算")) == sorted([a, b, c])
    assert sorted(await _found(office, "li", "预算")) == sorted([a, b])
    # Within a folder: it and those below it.
    assert sorted(await _found(office, "li", "预算", folder_id=shared)) == sorted([a, b])
    assert await _found(office, "li", "预算", folder_id=below) == [b]
    env = await office.call("li", "library.search", {"query": "预算", "folder_id": private})
    assert env["error"]["code"] == "not_found"
    # Cutting the inheritance of the subfolder takes its documents out of li's results.
    await office.ok(
        "wang",
        "library.acl.set",
        {
            "folder_id": below,
            "inherit": False,
            "entries": [{"user_id": office.user_ids["wang"], "perms": ["manage"]}],
        },
    )
    assert await _found(office, "li", "预算") == [a]
    assert await _found(office, "li", "预算", folder_id=shared) == [a]
    assert sorted(await _found(office, "wang", "预算", folder_id=shared)) == sorted([a, b])


async def test_a_department_reader_finds_and_an_outsider_does_not(office: Office) -> None:
    folder = await _folder(
        office, "综合科", readers=[{"department_id": office.departments["general"]}]
    )
    doc = await _add(office, folder, "综合科内部预算".encode(), "d.txt")
    await _indexed(office, doc)
    assert await _found(office, "li", "预算") == [doc]
    assert await _found(office, "zhao", "预算") == []  # 财务科


async def test_removed_documents_and_folders_are_never_found(office: Office) -> None:
    top = await _folder(office, "顶层")
    sub = await _folder(office, "子目录", parent=top)
    kept = await _add(office, top, "保留的预算".encode(), "k.txt")
    gone = await _add(office, top, "删除的预算".encode(), "g.txt")
    deep = await _add(office, sub, "子目录的预算".encode(), "s.txt")
    await _indexed(office, kept, gone, deep)
    assert len(await _found(office, "wang", "预算")) == 3
    await office.ok("wang", "library.remove", {"doc_id": gone})
    assert sorted(await _found(office, "wang", "预算")) == sorted([kept, deep])
    await office.ok("wang", "library.remove", {"folder_id": top})
    assert await _found(office, "wang", "预算") == []
    # What was below the removed folder is gone with it.
    env = await office.call("wang", "library.list", {"folder_id": sub})
    assert env["error"]["code"] == "not_found"


async def test_a_file_that_cannot_be_read_keeps_its_title_searchable(office: Office) -> None:
    folder = await _folder(office, "文件")
    tab = await office.tab("wang")
    good = docx_file("正常文件")
    broken_pdf = await _add(office, folder, b"%PDF-1.7\n1 0 obj <<", "x.pdf", "损坏的报表")
    broken_docx = await _add(office, folder, good[: len(good) // 2], "y.docx", "截断的纪要")
    image = await _add(office, folder, b"\x89PNG\r\n\x1a\n", "z.png", "照片存档")
    await _wait_indexed(tab, {broken_pdf, broken_docx, image})
    assert await _found(office, "wang", "报表") == [broken_pdf]
    assert await _found(office, "wang", "纪要") == [broken_docx]
    assert await _found(office, "wang", "照片") == [image]
    rows = await office.server.services.pool.fetch(
        "SELECT id, body, extract_error FROM library_docs ORDER BY id"
    )
    errors = {str(r["id"]): (r["body"], r["extract_error"]) for r in rows}
    assert errors[broken_pdf][0] is None and "pdf" in errors[broken_pdf][1]
    assert errors[broken_docx][0] is None and "docx" in errors[broken_docx][1]
    assert errors[image] == (None, None)  # not a kind with text: nothing went wrong
    # The server goes on: the next file is indexed as usual.
    fine = await _add(office, folder, "后来的通知".encode(), "ok.txt")
    await _wait_indexed(tab, {fine})
    assert await _found(office, "wang", "通知") == [fine]


@pytest.mark.parametrize(
    "payload",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "！？，。"},
        {"query": "预" * 101},
        {"query": "预算", "limit": 0},
        {"query": "预算", "limit": 51},
        {"query": "预算", "folder_id": "abc"},
        {"query": "预算", "sort": "date"},
        {"query": 42},
    ],
)
async def test_bad_queries_are_refused_and_change_nothing(
    office: Office, payload: dict[str, Any]
) -> None:
    pool = office.server.services.pool
    before = await pool.fetchval("SELECT count(*) FROM events")
    env = await office.call("wang", "library.search", payload)
    assert not env["ok"] and env["error"]["code"] == "bad_request", env
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_the_limit_caps_the_hits(office: Office) -> None:
    folder = await _folder(office, "多")
    docs = [await _add(office, folder, f"第{i}份预算".encode(), f"{i}.txt") for i in range(4)]
    await _indexed(office, *docs)
    assert len(await _found(office, "wang", "预算", limit=2)) == 2
    assert len(await _found(office, "wang", "预算")) == 4


async def test_the_extraction_job_run_twice_does_it_once(office: Office) -> None:
    """At least once on the bus: a second run (a retry, another node after a lease ran out)
    stores nothing new and tells nobody again."""
    srv = office.server
    srv.services.jobs.stop()  # we run the job ourselves
    folder = await _folder(office, "文件")
    doc = await _add(office, folder, "只索引一次的预算".encode(), "once.txt")
    payload = await srv.services.pool.fetchval(
        "SELECT payload FROM jobs WHERE kind = $1", library.EXTRACT
    )
    assert payload["data"]["doc_id"] == doc
    assert await _found(office, "wang", "预算") == []  # the text is not in yet
    assert await _found(office, "wang", "once") == [doc]  # the title is, at once
    for _ in range(2):
        async with srv.services.stream.transaction() as tx:
            await library.index_text(srv.services, tx, [payload])
    wang = int(office.user_ids["wang"])
    events = await srv.services.pool.fetch(
        "SELECT data FROM events WHERE user_id = $1 AND type = 'library.indexed'", wang
    )
    assert len(events) == 1
    assert await _found(office, "wang", "预算") == [doc]


# --- the parts, without a server ---------------------------------------------------------------
def test_a_docx_zip_bomb_and_an_entity_bomb_are_refused() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("word/document.xml", "w") as member:
            block = b" " * (1 << 20)
            for _ in range(ex.MAX_XML // len(block) + 1):
                member.write(block)
    assert len(bomb.getvalue()) < 1 << 20
    with pytest.raises(ex.ExtractError, match="uncompressed"):
        ex.text_of_docx(bomb.getvalue())
    laughs = io.BytesIO()
    with zipfile.ZipFile(laughs, "w") as zf:
        zf.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><d>&b;</d>',
        )
    with pytest.raises(ex.ExtractError, match="entities"):
        ex.text_of_docx(laughs.getvalue())


def test_text_files_in_gbk_utf8_and_utf16_decode() -> None:
    text = "关于年度预算的通知"
    assert ex.text_of_txt(text.encode("gbk")) == text
    assert ex.text_of_txt(text.encode("gb18030")) == text
    assert ex.text_of_txt(b"\xef\xbb\xbf" + text.encode()) == text
    assert ex.text_of_txt(text.encode("utf-16")) == text
    # Cut inside a character by the read limit: the whole characters before it.
    assert ex.text_of_txt(text.encode()[:-1], truncated=True) == text[:-1]


def test_the_query_is_cut_like_the_text() -> None:
    q = tq.search_query("年度预算")
    assert q is not None
    assert q.tsquery.startswith("((('年度' <-> '度预') <-> '预算')")
    assert tq.search_query("预") is not None and tq.search_query("预").tsquery == "'预'"  # type: ignore[union-attr]
    assert tq.search_query("Budget").tsquery == "'budget'"  # type: ignore[union-attr]
    assert tq.search_query("ＡＢＣ１２").tsquery == "'abc12'"  # type: ignore[union-attr]
    assert tq.search_query(" ，。！ ") is None


async def test_huge_texts_fit_a_tsvector_and_long_ones_still_match(office: Office) -> None:
    pool = office.server.services.pool
    rng = random.Random(20)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    huge = "".join(rng.choice(alphabet) for _ in range(ex.MAX_TEXT))
    vector = tq.document_vector([("标题", "A"), (huge, "D")])
    size = await pool.fetchval("SELECT pg_column_size($1::tsvector)", vector)
    assert size < 1 << 20
    # Past the 16,383rd position: a phrase still matches (every bigram, anywhere).
    long = "前" * 20_000 + "年度预算报告"
    q = tq.search_query("年度预算")
    assert q is not None
    assert await pool.fetchval(
        "SELECT $1::tsvector @@ $2::tsquery", tq.document_vector([(long, "D")]), q.tsquery
    )
    # Before it, the phrase is exact.
    short = "年度的预算" + "，" * 10
    assert not await pool.fetchval(
        "SELECT $1::tsvector @@ $2::tsquery", tq.document_vector([(short, "D")]), q.tsquery
    )
