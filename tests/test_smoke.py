from __future__ import annotations

from tests.support import Office


async def test_login_board_and_live_whereabouts(office: Office) -> None:
    li = await office.tab("li")
    wang = await office.person("wang")
    board = await li.call("whereabouts.board", {"department_id": office.departments["general"]})
    assert board["ok"], board
    names = [m["user"]["name"] for m in board["data"]["members"]]
    assert names[0] == "王明" and set(names) == {"王明", "李华", "张伟"}
    env = await office.server.command(
        wang.token, "whereabouts.set", {"status": "in_meeting", "note": "局务会"}
    )
    assert env["ok"], env
    ev = await li.wait_for("whereabouts.changed")
    assert ev["seq"] is None
    assert ev["data"]["user_id"] == wang.id
    assert ev["data"]["whereabouts"]["status"] == "in_meeting"
    assert ev["data"]["reason"] == "set"
