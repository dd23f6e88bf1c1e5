"""Adding a domain needs no edit outside its own files (issue 17): the toy feature in tests/toy/
brings a command, an event and an async handler subscribed to it, and the server serves them
once it is in the feature list it is given."""

from __future__ import annotations

from pathlib import Path

from server.app import FEATURES
from tests.support import Office, start_server
from tests.toy import handlers as toy


async def test_a_toy_feature_plugs_in_with_its_command_event_and_handler(
    database_url: str, tmp_path: Path, password_hash: str
) -> None:
    assert [cls.type for cls in toy.feature.events] == ["toy.pinged", "toy.echoed"]
    async with start_server(
        database_url, tmp_path, password_hash, features=[*FEATURES, toy.feature]
    ) as srv:
        office = await Office.create(srv)
        tab = await office.tab("li")
        answer = await tab.call("toy.ping", {"text": "hello"})
        assert answer["ok"], answer
        echoed = await tab.wait_for("toy.echoed")
        pinged = tab.durable("toy.pinged")[0]
        assert pinged["seq"] == answer["data"]["seq"]
        assert echoed["data"] == {
            "text": "HELLO",
            "event_id": f"{(await office.person('li')).id}:{pinged['seq']}",
        }
        assert echoed["seq"] == pinged["seq"] + 1
        bad = await tab.call("toy.ping", {"text": ""})
        assert bad["error"]["code"] == "bad_request"


async def test_without_the_toy_feature_its_command_is_unknown(office: Office) -> None:
    tab = await office.tab("li")
    answer = await tab.call("toy.ping", {"text": "hello"})
    assert answer["error"]["code"] == "not_found"
