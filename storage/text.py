"""Full-text search on plain PostgreSQL, Chinese included, without extensions.

PostgreSQL cannot segment Chinese, and `pg_trgm` indexes nothing shorter than three characters
(most Chinese words are two). So text is cut here, in Python, into tokens that a `tsvector` holds
as they are (a literal cast with `::tsvector`, no dictionary):

- a run of CJK characters gives every overlapping bigram and every single character, each at the
  position of its first character (年度预算 → 年度 度预 预算 and 年 度 预 算 at 1 2 3 4), so a
  one-character query finds it and a two-character query is one index look-up;
- any other run of letters and digits is a word, lowercased (NFKC first: full-width ＡＢＣ１２
  is abc12).

A query is cut by the same function: each whitespace-separated chunk becomes a phrase of its
bigrams (or single character, or words) at the distances their positions say (`<->`, `<2>`…),
and the chunks are ANDed, so 年度预算 matches the phrase and 预算 报告 both words anywhere.

Limits PostgreSQL sets, handled here: positions stop at 16383 (later tokens share 16383, so
`document_vector` marks such a document with `LONG`, and a phrase query also accepts every
bigram present anywhere in a marked document: imprecise beyond the first ~16,000 characters,
never a miss); a lexeme keeps at most 256 positions; a tsvector is at most 1 MB (lexemes that
would pass `VECTOR_BUDGET` are left out, in text order, so the start of a huge text is indexed).

Reused by whoever searches text (the library, the archive): `document_vector(parts)` to store,
`search_query(text)` to query (`.tsquery`, `.needles` for locating the match in SQL), and
`snippet(text, query)` to show it.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Han (with extensions and compatibility ideographs), kana and Hangul: no spaces between words.
_CJK = (
    "\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")
_WORDCHAR = rf"[^\W_{_CJK}]"

MAX_POSITION = 16383  # PostgreSQL's
MAX_POSITIONS = 256  # per lexeme, PostgreSQL's
MAX_WORD = 100  # characters; a longer "word" is noise (base64, a hash), and is cut
VECTOR_BUDGET = 1_000_000  # bytes, under PostgreSQL's 1 MB tsvector limit
LONG = "long doc"  # a lexeme no text gives (tokens have no spaces): positions ran out
WEIGHTS = "ABCD"


@dataclass(frozen=True, slots=True)
class Token:
    lexeme: str
    position: int
    kind: str  # "bigram", "char" or "word"


def tokens(text: str, start: int = 1) -> Iterator[Token]:
    """The tokens of `text`, positions from `start` (a CJK character or a word takes one)."""
    pos = start
    for m in _TOKEN.finditer(unicodedata.normalize("NFKC", text)):
        run, word = m.group(1), m.group(2)
        if word is not None:
            yield Token(word.lower()[:MAX_WORD], pos, "word")
            pos += 1
            continue
        for i, ch in enumerate(run):
            if i + 1 < len(run):
                yield Token(run[i : i + 2], pos + i, "bigram")
            yield Token(ch, pos + i, "char")
        pos += len(run)


def _quote(lexeme: str) -> str:
    if "'" not in lexeme and "\\" not in lexeme:  # always, for what the tokenizer makes
        return f"'{lexeme}'"
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _cost(lexeme: str, positions: int) -> int:
    """Bytes a lexeme takes in a tsvector: its entry, its text (2-aligned), its positions."""
    n = len(lexeme.encode())
    return 4 + n + (n & 1) + 2 + 2 * positions


def _lexemes(text: str, pos: int) -> Iterator[tuple[str, int]]:
    """`tokens` without the objects (the indexing hot path): (lexeme, position)."""
    for m in _TOKEN.finditer(unicodedata.normalize("NFKC", text)):
        run = m.group(1)
        if run is None:
            yield m.group(2).lower()[:MAX_WORD], pos
            pos += 1
            continue
        last = len(run) - 1
        for i, ch in enumerate(run):
            yield ch, pos + i
            if i < last:
                yield run[i : i + 2], pos + i
        pos += last + 1


def document_vector(parts: Sequence[tuple[str, str]], budget: int = VECTOR_BUDGET) -> str:
    """A tsvector literal (cast it with `::tsvector`) for `parts`, each (text, weight A-D), in
    order: e.g. [(title, "A"), (body, "D")]. Positions run on across parts."""
    entries: dict[str, list[str]] = {}  # lexeme -> "pos" + weight, in order
    last: dict[str, int] = {}
    size = 8
    long = False
    pos = 1
    for text, weight in parts:
        assert weight in WEIGHTS, weight
        mark = "" if weight == "D" else weight
        end = pos
        for lexeme, at in _lexemes(text, pos):
            end = at + 1
            if at > MAX_POSITION:
                long = True
                at = MAX_POSITION
            have = entries.get(lexeme)
            if have is None:
                cost = _cost(lexeme, 1)
                if size + cost > budget:
                    continue
                entries[lexeme] = [f"{at}{mark}"]
                last[lexeme] = at
                size += cost
            elif last[lexeme] != at and len(have) < MAX_POSITIONS and size + 2 <= budget:
                have.append(f"{at}{mark}")
                last[lexeme] = at
                size += 2
        pos = end + 1  # no phrase across parts
    if long:
        entries[LONG] = [str(MAX_POSITION)]
    return " ".join(f"{_quote(lex)}:{','.join(ps)}" for lex, ps in entries.items())


@dataclass(frozen=True, slots=True)
class Query:
    tsquery: str  # cast with `::tsquery`
    needles: list[str]  # lowercased literal pieces, to find where a text matches (strpos)
    pattern: re.Pattern[str]  # what to highlight


def _phrase(chunk: list[Token]) -> str:
    """The chunk's bigrams (a lone character where a run has one), words, at their distances."""
    picked: list[Token] = []
    for t in chunk:
        if t.kind == "char":
            # A lone CJK character: the run is one character long (no bigram at or after it).
            alone = not any(
                u.kind == "bigram" and u.position in (t.position, t.position - 1) for u in chunk
            )
            if not alone:
                continue
        picked.append(t)
    out = _quote(picked[0].lexeme)
    for prev, t in itertools.pairwise(picked):
        gap = t.position - prev.position
        out = (
            f"({out} <{gap}> {_quote(t.lexeme)})" if gap != 1 else f"({out} <-> {_quote(t.lexeme)})"
        )
    if len(picked) == 1:
        return out
    every = " & ".join(dict.fromkeys(_quote(t.lexeme) for t in picked))
    return f"({out} | ({every} & {_quote(LONG)}))"


def _highlight(chunk: str) -> str | None:
    """A regex for where `chunk` appears in a text: its runs in order, anything but letters,
    digits and CJK between them; words whole."""
    pieces = []
    for m in _TOKEN.finditer(unicodedata.normalize("NFKC", chunk)):
        if m.group(1) is not None:
            pieces.append(re.escape(m.group(1)))
        else:
            pieces.append(rf"(?<!{_WORDCHAR}){re.escape(m.group(2))}(?!{_WORDCHAR})")
    return r"[\W_]*?".join(pieces) if pieces else None


def search_query(text: str) -> Query | None:
    """The query for what a user typed; None when it holds nothing to search for."""
    phrases: list[str] = []
    needles: list[str] = []
    patterns: list[str] = []
    for chunk in text.split():
        toks = list(tokens(chunk))
        if not toks:
            continue
        phrase = _phrase(toks)
        if phrase in phrases:
            continue
        phrases.append(phrase)
        first = _TOKEN.search(unicodedata.normalize("NFKC", chunk))
        assert first is not None
        needles.append(first.group(0).lower())
        pattern = _highlight(chunk)
        if pattern:
            patterns.append(pattern)
    if not phrases:
        return None
    return Query(
        tsquery=" & ".join(phrases),
        needles=needles,
        pattern=re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE),
    )


SNIPPET_BEFORE = 30
SNIPPET_CHARS = 120


def snippet(text: str, query: Query, *, at_start: bool = False) -> str:
    """HTML: up to SNIPPET_CHARS of `text` around its first match, escaped, each match in
    `<mark>`; the start of the text when nothing in it matches (None: "")."""
    flat = " ".join(text.split())
    first = query.pattern.search(flat)
    begin = 0 if first is None or at_start else max(0, first.start() - SNIPPET_BEFORE)
    end = min(len(flat), begin + SNIPPET_CHARS)
    piece = flat[begin:end]
    out: list[str] = ["…"] if begin > 0 else []
    cursor = 0
    for m in query.pattern.finditer(piece):
        if m.end() == m.start():
            continue
        out.append(html.escape(piece[cursor : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        cursor = m.end()
    out.append(html.escape(piece[cursor:]))
    if end < len(flat):
        out.append("…")
    return "".join(out)


def matches(text: str, query: Query) -> bool:
    return query.pattern.search(" ".join(text.split())) is not None
