"""The toy domain: `toy.ping {text}` tells the caller `toy.pinged`; an async handler subscribed to
that event answers with `toy.echoed` after commit, at least once and once per event."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from server.commands import CommandSet, Ctx, Input
from server.events import Event
from server.feature import Feature
from server.jobs import JobSet
from server.services import Services
from server.stream import Transaction


class ToyPinged(Event):
    type = "toy.pinged"
    text: str


class ToyEchoed(Event):
    type = "toy.echoed"
    text: str
    event_id: str


commands = CommandSet()
jobs = JobSet()


class Ping(Input):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


@commands("toy.ping")
async def ping(ctx: Ctx, p: Ping) -> dict[str, Any]:
    async with ctx.transaction() as tx:
        seqs = await tx.emit([ctx.user.id], ToyPinged(text=p.text))
    return {"seq": seqs[ctx.user.id]}


@jobs.on("toy.pinged", "toy.echo")
async def echo(services: Services, tx: Transaction, events: list[dict[str, Any]]) -> None:
    for ev in events:
        await tx.emit(
            ev["users"], ToyEchoed(text=ev["data"]["text"].upper(), event_id=ev["event_id"])
        )


feature = Feature("toy", commands=commands, jobs=jobs)
