"""The inbound SMS webhook (POST /api/v1/sms/inbound): the gateway's signed post of a text typed on
a phone. The transport side only: check the signature, read the body, find whose phone it is, and
ask the app's inbound readers (`Services.inbound_sms`, declared by the handler modules, such as
circulation's `Y <code>` confirmation and the pager's reply) in order; the first that answers
wins."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from server.errors import AppError, bad_request, not_found, ok
from server.http import envelope_response, read_body
from server.keys import SERVICES
from server.sms import SIGNATURE_HEADER, verify
from storage import directory as dq

routes = web.RouteTableDef()


class Inbound(msgspec.Struct, forbid_unknown_fields=False):
    from_: Annotated[str, msgspec.Meta(max_length=32)] = msgspec.field(name="from")
    text: Annotated[str, msgspec.Meta(max_length=2000)]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


@routes.post("/api/v1/sms/inbound")
async def sms_inbound(request: web.Request) -> web.Response:
    """A text from a phone: read by the first inbound reader that recognises it."""
    services = request.app[SERVICES]
    # Unsigned until checked: read no more than a frame, whatever the request claims.
    raw = await read_body(request, services.config.max_frame_bytes)
    if not verify(
        services.config.resolved_sms_secret(), raw, request.headers.get(SIGNATURE_HEADER)
    ):
        raise AppError("unauthorized", "bad signature")
    try:
        msg = msgspec.json.decode(raw, type=Inbound)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise bad_request("invalid inbound SMS", [{"field": "", "message": str(exc)}]) from None
    user_id = await dq.user_by_phone(services.pool, msg.from_.strip())
    if user_id is None:
        raise not_found("no user has this phone")
    for handler in services.inbound_sms:
        answer = await handler(services, user_id, msg.text.strip(), msg.id)
        if answer is not None:
            return envelope_response(ok(answer))
    raise not_found("nothing to reply to")
