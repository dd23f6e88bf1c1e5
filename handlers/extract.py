"""Text out of uploaded files (.txt, .docx, .pdf), for search.

The files are untrusted and parsing is CPU-bound, so `extract` runs the parser, and the
tokenizer after it, in a child process (`python -m handlers.extract`) with a wall-clock limit,
an address-space limit and bounded input and output: a hostile or broken file costs at most
EXTRACT_TIMEOUT_S of one process, never the server's event loop or memory, and comes back as an
error, never an exception.

- .txt: UTF-8 (a BOM allowed), else GB18030 (which covers GBK and GB2312), else UTF-16 with a
  BOM, else UTF-8 with replacement characters.
- .docx: word/document.xml read straight from the zip, streamed through expat: its uncompressed
  size is checked before reading (zip bombs), a DTD with entities is refused (entity bombs),
  paragraphs, table cells and text boxes all come out in document order.
- .pdf: pypdf, page by page, until MAX_TEXT characters.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import logging
import sys
import zipfile
from collections.abc import Iterator
from typing import Any, cast
from xml.etree import ElementTree

import msgspec

from storage import text as tq

log = logging.getLogger(__name__)

MAX_READ = 50 * 1024 * 1024  # bytes of a file read for extraction
MAX_TEXT = 1_000_000  # characters of text kept
MAX_XML = 64 * 1024 * 1024  # uncompressed bytes of word/document.xml
MAX_PAGES = 5000
EXTRACT_TIMEOUT_S = 30.0
CHILD_MEMORY = 1536 * 1024 * 1024  # address space of the child, bytes
CHUNK = 64 * 1024


class Extracted(msgspec.Struct, frozen=True):
    text: str | None  # None: nothing extracted (unsupported type or an error)
    vector: str  # tsvector literal of the title and the text
    error: str | None = None


def kind_of(name: str, content_type: str) -> str | None:
    """Which extractor reads this file, by its name first, then its declared type."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    by_ext = {"txt": "txt", "text": "txt", "docx": "docx", "pdf": "pdf"}
    if ext in by_ext:
        return by_ext[ext]
    ct = content_type.split(";")[0].strip().lower()
    return {
        "text/plain": "txt",
        "application/pdf": "pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    }.get(ct)


# --- the parsers (run in the child) -----------------------------------------------------------
class ExtractError(Exception):
    pass


def _clean(text: str) -> str:
    """What PostgreSQL text can hold: no NUL, no lone surrogates; at most MAX_TEXT."""
    text = text[:MAX_TEXT].replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


def text_of_txt(data: bytes, truncated: bool = False) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            # A file cut at MAX_READ may end inside a character.
            if truncated and exc.start >= len(data) - 4:
                try:
                    return data[: exc.start].decode(encoding)
                except UnicodeDecodeError:
                    pass
    return data.decode("utf-8", "replace")


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def text_of_docx(data: bytes) -> str:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        info = zf.getinfo("word/document.xml")
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractError(f"not a .docx: {exc}") from None
    if info.file_size > MAX_XML:
        raise ExtractError(f"document.xml is {info.file_size} bytes uncompressed, over {MAX_XML}")
    out: list[str] = []
    size = 0
    parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(events=("start", "end"))
    started = False
    tail = b""
    try:
        # zipfile never inflates past the declared file_size, checked above.
        with zf.open(info) as member:
            while size < MAX_TEXT and (chunk := member.read(CHUNK)):
                if not started and b"<!ENTITY" in (tail + chunk).upper():
                    raise ExtractError("document.xml declares entities")
                tail = chunk[-16:]
                parser.feed(chunk)
                for event, el in cast(Iterator[tuple[str, Any]], parser.read_events()):
                    started = True
                    piece = _docx_piece(event, el)
                    if piece:
                        out.append(piece)
                        size += len(piece)
    except (ElementTree.ParseError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ExtractError(f"broken .docx: {exc}") from None
    return "".join(out)


def _docx_piece(event: str, el: Any) -> str | None:
    tag = el.tag
    if event == "start":
        return None
    if tag == _W + "t":
        text = el.text
        el.clear()
        return str(text) if text else None
    if tag == _W + "p":
        el.clear()
        return "\n"
    if tag == _W + "tab":
        return "\t"
    if tag in (_W + "br", _W + "cr"):
        return "\n"
    if tag == _W + "tc":
        return "\t"
    return None


def text_of_pdf(data: bytes) -> str:
    import pypdf  # the child's only: the server never imports it
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # many "protected" PDFs open with the empty password
        out: list[str] = []
        size = 0
        for i, page in enumerate(reader.pages):
            if i >= MAX_PAGES or size >= MAX_TEXT:
                break
            piece = page.extract_text() or ""
            out.append(piece)
            out.append("\n")
            size += len(piece) + 1
        return "".join(out)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ExtractError(f"broken .pdf: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # pypdf raises more than it declares on hostile input
        raise ExtractError(f"unreadable .pdf: {type(exc).__name__}: {exc}") from None


PARSERS = {"docx": text_of_docx, "pdf": text_of_pdf}


def extract_now(kind: str | None, title: str, data: bytes, truncated: bool) -> Extracted:
    """In this process: the text and the vector, or the title's vector and why not."""
    title_only = [(title, "A")]
    if kind is None:
        return Extracted(None, tq.document_vector(title_only))
    try:
        if kind == "txt":
            raw = text_of_txt(data, truncated)
        elif truncated:
            raise ExtractError(f"over {MAX_READ} bytes: not read")
        else:
            raw = PARSERS[kind](data)
    except ExtractError as exc:
        return Extracted(None, tq.document_vector(title_only), str(exc)[:500])
    text = _clean(raw)
    return Extracted(text, tq.document_vector([(title, "A"), (text, "D")]))


# --- the parent's side -----------------------------------------------------------------------
class _Header(msgspec.Struct):
    kind: str | None
    title: str
    truncated: bool


async def extract(
    kind: str | None,
    title: str,
    data: bytes,
    truncated: bool,
    *,
    timeout: float = EXTRACT_TIMEOUT_S,
) -> Extracted:
    """The text of a file and its search vector, from a child process; never raises for what
    the file holds: a failure is the title's vector and an error."""
    if kind is None:
        return extract_now(None, title, data, truncated)
    header = msgspec.json.encode(_Header(kind, title, truncated))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "handlers.extract",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(header + b"\n" + data), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return _failed(title, f"gave up after {timeout:.0f} s")
    if proc.returncode != 0:
        log.warning(
            "extractor exited %s: %s", proc.returncode, err[-2000:].decode("utf-8", "replace")
        )
        return _failed(title, f"extractor failed (exit {proc.returncode})")
    try:
        return msgspec.json.decode(out, type=Extracted)
    except msgspec.DecodeError:
        return _failed(title, "extractor answered nonsense")


def _failed(title: str, why: str) -> Extracted:
    return Extracted(None, tq.document_vector([(title, "A")]), why)


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    except (ImportError, ValueError, OSError):
        pass


def _child(stdin: io.BufferedReader, stdout: io.BufferedWriter) -> None:
    _limit_memory()
    header = msgspec.json.decode(stdin.readline(), type=_Header)
    data = stdin.read(MAX_READ + 1)
    result = extract_now(header.kind, header.title, data[:MAX_READ], header.truncated)
    stdout.write(msgspec.json.encode(result))
    stdout.flush()


if __name__ == "__main__":
    _child(sys.stdin.buffer, sys.stdout.buffer)  # type: ignore[arg-type]
