"""Files: upload (stored once by sha256, size-limited, content type kept) and download by those
allowed to see them (storage/files.py says who); and the one check every command that attaches
files elsewhere makes (`require_shareable`)."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, MultipartReader, web

from server.errors import AppError, bad_request, not_found, ok
from server.feature import Feature
from server.http import authenticate, envelope_response
from server.keys import SERVICES
from storage import files as q
from storage.pool import Executor

MAX_NAME = 200
# Room for what surrounds the file in a multipart body: boundaries, part headers, small fields.
MULTIPART_SLACK = 64 * 1024
CHUNK = 64 * 1024
routes = web.RouteTableDef()


def file_view(f: q.FileRecord) -> dict[str, Any]:
    return {"file_id": str(f.id), "name": f.name, "size": f.size, "content_type": f.content_type}


async def require_shareable(
    db: Executor, file_ids: Iterable[int | str], user_id: int
) -> list[q.FileRecord]:
    """The files, each once in the order first given, if the person may attach them elsewhere
    (a page, a circulation, an approval, a document, the library, the archive); else
    `not_found`, as for a file that is not there. A borrower of an archive record reads its
    files and does not pass them on (they would outlive the loan where attached)."""
    ids = list(dict.fromkeys(int(i) for i in file_ids))
    if not ids:
        return []
    found = {f.id: f for f in await q.shareable_many(db, ids, user_id)}
    if len(found) != len(ids):
        raise not_found("no such file")
    return [found[i] for i in ids]


@routes.post("/api/v1/files")
async def upload(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user, _ = await authenticate(request)  # nothing of the body is read for a stranger
    limit = services.config.max_file_bytes
    body_limit = limit + MULTIPART_SLACK
    if request.content_length is not None and request.content_length > body_limit:
        raise _too_large(limit)
    if not request.content_type.startswith("multipart/"):
        raise bad_request(
            "send multipart/form-data with a `file` field",
            [{"field": "file", "message": "missing"}],
        )
    reader = await request.multipart()
    part = await reader.next()
    while part is not None and (not isinstance(part, BodyPartReader) or part.name != "file"):
        await _skip(request, part, body_limit, limit)
        part = await reader.next()
    if part is None:
        raise bad_request("no `file` field", [{"field": "file", "message": "missing"}])
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > limit or request.content.total_bytes > body_limit:
            raise _too_large(limit)
        digest.update(chunk)
        chunks.append(chunk)
    # Some clients (aiohttp's own) percent-encode non-ASCII names; browsers send UTF-8 as is.
    name = unquote(part.filename or "file").replace("/", "_").replace("\\", "_")[:MAX_NAME]
    content_type = part.headers.get("Content-Type") or mimetypes.guess_type(name)[0]
    async with services.pool.acquire() as conn, conn.transaction():
        record = await q.store(
            conn,
            sha256=digest.digest(),
            data=b"".join(chunks),
            name=name,
            content_type=content_type or "application/octet-stream",
            uploader_id=user.id,
        )
    return envelope_response(ok({**file_view(record), "sha256": record.sha256.hex()}))


@routes.get("/api/v1/files/{file_id}")
async def download(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user, _ = await authenticate(request)
    raw = request.match_info["file_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise not_found("no such file")
    record = await q.readable(services.pool, int(raw), user.id)
    if record is None:  # not there, or not yours: the same answer
        raise not_found("no such file")
    etag = f'"{record.sha256.hex()}"'
    headers = {
        # Revalidated at each use (the ETag makes that cheap), so a browser stops serving a
        # file the moment its reader may no longer read it (a loan ended, a recall).
        "Cache-Control": "private, no-cache",
        "ETag": etag,
    }
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    data = await q.content(services.pool, record.sha256)
    disposition = "attachment; filename*=UTF-8''" + _quote(record.name)
    return web.Response(
        body=data,
        headers={
            **headers,
            "Content-Type": record.content_type,
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
        },
    )


def _too_large(limit: int) -> AppError:
    return AppError("too_large", f"files may be at most {limit} bytes", {"max_bytes": limit})


async def _skip(
    request: web.Request, part: BodyPartReader | MultipartReader, body_limit: int, limit: int
) -> None:
    """Read a part that is not the file to the void, counting it against the body's limit (a
    part left for the reader to skip would be read whatever its size)."""
    if not isinstance(part, BodyPartReader):
        raise bad_request("nested multipart", [{"field": "file", "message": "not accepted"}])
    while await part.read_chunk(CHUNK):
        if request.content.total_bytes > body_limit:
            raise _too_large(limit)


def _quote(name: str) -> str:
    return quote(name, safe="")


feature = Feature("files", routes=routes)
