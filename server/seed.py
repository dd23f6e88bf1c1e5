"""The demo's content, filed through the commands themselves as its people would (`liaison seed
--demo`, after the organisation is imported): approvals, tasks, schedule entries, the file
library, official documents and archive records, in an app that is set up but serves nothing.
Keyed by client_msg_id, or looked up by name or title first, so seeding again (every `make run`)
files nothing twice. What follows a command on the bus (a document's numbering, circulation
and filing; text extraction) runs here or, if the seed ends first, when the server starts."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from aiohttp import web

from server.app import create_app
from server.config import Config
from server.keys import SERVICES
from server.services import Services
from storage import directory as dq
from storage import files as fq
from storage.demo import (
    ADMIN_ACCOUNT,
    ARCHIVIST,
    DOCUMENT_PREFIX,
    DemoDocument,
    DemoFolder,
    demo_commands,
    demo_documents,
    demo_library,
    demo_records,
    demo_requests,
)
from storage.directory import User

# The steps whose approval carries the demo document's comment (the signature, the 批示).
_LAST_STEPS = ("领导签发", "领导批示")


class _Seeder:
    def __init__(self, services: Services, departments: dict[str, str]) -> None:
        self.services = services
        self.departments = departments

    async def user(self, account: str) -> User:
        ids = await dq.ids_by_account(self.services.pool, [account])
        user = await dq.get_user(self.services.pool, ids[account])
        assert user is not None
        return user

    async def call(self, who: str | User, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        user = await self.user(who) if isinstance(who, str) else who
        answer = await self.services.registry.dispatch(
            self.services, user, None, name, msgspec.json.encode(payload)
        )
        if not answer["ok"]:
            raise SystemExit(f"seeding {name} as {user.account}: {answer['error']}")
        return dict(answer["data"])

    async def text_file(self, owner: User, name: str, text: str) -> str:
        """A text file uploaded as `owner`."""
        data = text.encode()
        async with self.services.pool.acquire() as conn:
            f = await fq.store(
                conn,
                sha256=hashlib.sha256(data).digest(),
                data=data,
                name=name,
                content_type="text/plain; charset=utf-8",
                uploader_id=owner.id,
            )
        return str(f.id)

    async def approve_all(self, instance_id: str, comment: str) -> None:
        """Take an approval to its end: whoever holds each open task approves it."""
        for _ in range(10):
            inst = (await self.call(ADMIN_ACCOUNT, "workflow.get", {"instance_id": instance_id}))[
                "instance"
            ]
            open_ = [t for t in inst["tasks"] if t["state"] == "open"]
            if inst["state"] != "running" or not open_:
                return
            for t in open_:
                assignee = await dq.get_user(self.services.pool, int(t["assignee"]["id"]))
                assert assignee is not None
                said = comment if t["step"] in _LAST_STEPS else "已审核。"
                await self.call(
                    assignee,
                    "workflow.act",
                    {"task_id": t["task_id"], "action": "approve", "comment": said},
                )

    async def requests(self) -> int:
        requests = demo_requests()
        for n, r in enumerate(requests):
            started = await self.call(
                r.applicant,
                "workflow.start",
                {"key": r.key, "form": r.form, "client_msg_id": f"demo-{n}-{r.key}"},
            )
            tasks = started["tasks"]
            for actor, action, comment in r.acts:
                actor_id = str((await self.user(actor)).id)
                mine = [t for t in tasks if t["assignee"] == actor_id]
                if not mine:  # acted on already (a second seed)
                    break
                done = await self.call(
                    actor,
                    "workflow.act",
                    {"task_id": mine[0]["task_id"], "action": action, "comment": comment},
                )
                tasks = done["tasks"]
        return len(requests)

    async def commands(self) -> int:
        others = demo_commands()
        for c in others:
            payload = dict(c.payload)
            for f in c.people:
                payload[f] = [str((await self.user(a)).id) for a in payload[f]]
            await self.call(c.account, c.name, payload)
        return len(others)

    async def folder(self, folder: DemoFolder, parent_id: str | None = None) -> None:
        """A folder, its permissions, documents and subfolders; one of that name already there
        (an earlier seed) is left as it is."""
        owner = await self.user(folder.owner)
        where = {"folder_id": parent_id} if parent_id else {}
        listing = await self.call(owner, "library.list", where)
        if any(f["name"] == folder.name for f in listing["folders"]):
            return
        payload = {"name": folder.name, **({"parent_id": parent_id} if parent_id else {})}
        folder_id = (await self.call(owner, "library.folder.create", payload))["folder_id"]
        entries: list[dict[str, Any]] = [{"user_id": str(owner.id), "perms": ["manage"]}]
        if folder.everyone:
            entries.append({"role": "staff", "perms": list(folder.everyone)})
        entries += [
            {"department_id": self.departments[k], "perms": list(p)} for k, p in folder.departments
        ]
        entries += [{"role": r, "perms": list(p)} for r, p in folder.roles]
        if len(entries) > 1:
            await self.call(
                owner,
                "library.acl.set",
                {"folder_id": folder_id, "inherit": True, "entries": entries},
            )
        for name, title, text in folder.docs:
            file_id = await self.text_file(owner, name, text)
            await self.call(
                owner, "library.add", {"folder_id": folder_id, "file_id": file_id, "title": title}
            )
        for sub in folder.below:
            await self.folder(sub, folder_id)

    async def document(self, n: int, d: DemoDocument) -> None:
        """Issue or register a document and take its approval to the end; the rest follows on
        the bus."""
        who = await self.user(d.account)
        mine = await self.call(who, "document.list", {"box": "mine"})
        if any(item["title"] == d.title for item in mine["items"]):
            return
        file_id = await self.text_file(who, f"{d.title}.txt", d.text)
        body: dict[str, Any] = {
            "title": d.title,
            "file_ids": [file_id],
            "departments": [self.departments[k] for k in d.departments],
            "client_msg_id": f"demo-document-{n}",
        }
        leader = str((await self.user(d.leader)).id)
        if d.kind == "issue":
            started = await self.call(who, "document.issue", {**body, "signer": leader})
        else:
            started = await self.call(
                who, "document.receive", {**body, "from_org": d.from_org, "leader": leader}
            )
        await self.approve_all(started["instance_id"], d.comment)

    async def records(self) -> int:
        archivist = await self.user(ARCHIVIST[0])
        records = demo_records()
        for r in records:
            found = await self.call(archivist, "archive.search", {"query": r.title})
            if any(hit["title"] == r.title for hit in found["hits"]):
                continue
            file_id = await self.text_file(archivist, f"{r.title}.txt", r.text)
            await self.call(
                archivist,
                "archive.file",
                {"title": r.title, "file_ids": [file_id], "retention": r.retention, "year": r.year},
            )
        return len(records)


async def seed_demo_content(config: Config, departments: dict[str, str]) -> int:
    """File the demo's content; returns how many items were filed or found."""
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        seeder = _Seeder(runner.app[SERVICES], departments)
        filed = await seeder.requests() + await seeder.commands()
        library = demo_library()
        for folder in library:
            await seeder.folder(folder)
        await seeder.call(ADMIN_ACCOUNT, "document.prefix.set", {"prefix": DOCUMENT_PREFIX})
        documents = demo_documents()
        for n, d in enumerate(documents):
            await seeder.document(n, d)
        return filed + len(library) + len(documents) + await seeder.records()
    finally:
        await runner.cleanup()
