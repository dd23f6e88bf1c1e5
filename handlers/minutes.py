"""Meeting minutes (会议纪要) rendered for people: Markdown for the download and the
`meeting.minutes` answer, escaped HTML for the body of a circulated copy. Pure functions of the
minutes as handlers/meetings.py stores them."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any


def _t(value: Any) -> str:
    """A minutes time for people: local-looking, minutes precision (the stored value is UTC)."""
    if value is None:
        return "—"
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def minutes_markdown(minutes: dict[str, Any]) -> str:
    lines = [
        f"# 会议纪要：{minutes['title']}",
        "",
        f"- 主持人 Chair: {minutes['chair']['name']}",
        f"- 时间 Time: {_t(minutes['started_at'])} – {_t(minutes['ended_at'])}",
    ]
    if minutes.get("agenda"):
        lines.append(f"- 议程 Agenda: {minutes['agenda']}")
    lines += ["", "## 出席 Attendees", ""]
    lines += [
        f"- {a['name']}（{_t(a['joined_at'])} – {_t(a['left_at'])}）" for a in minutes["attendees"]
    ] or ["- 无"]
    lines += ["", "## 缺席 Absentees", ""]
    lines += [f"- {a['name']}" for a in minutes["absentees"]] or ["- 无"]
    lines += ["", "## 决定事项 Decisions", ""]
    lines += [f"{i}. {d['body']}（{d['by']}）" for i, d in enumerate(minutes["decisions"], 1)] or [
        "- 无"
    ]
    lines += ["", "## 待办事项 Actions", ""]
    lines += [
        f"{i}. {a['body']} — 负责人 {a['assignee']['name'] if a['assignee'] else '未指定'}"
        + (f"，期限 {_t(a['due'])}" if a.get("due") else "")
        for i, a in enumerate(minutes["actions"], 1)
    ] or ["- 无"]
    if minutes.get("summary"):
        lines += ["", "## 小结 Summary", "", minutes["summary"]]
    lines += ["", "## 记录 Transcript", ""]
    lines += [
        f"- [{_t(s['at'])}] **{s['from']['name']}**: {s['body']}" for s in minutes["transcript"]
    ] or ["- 无"]
    return "\n".join(lines) + "\n"


def minutes_html(minutes: dict[str, Any]) -> str:
    """The minutes as the circulation's body (escaped: transcript text is never markup)."""
    e = html.escape

    def items(rows: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{r}</li>" for r in rows) + "</ul>" if rows else "<p>无</p>"

    parts = [
        f"<p>主持人：{e(minutes['chair']['name'])}；时间：{_t(minutes['started_at'])} – {_t(minutes['ended_at'])}</p>",
        "<h3>出席</h3>" + items([e(a["name"]) for a in minutes["attendees"]]),
        "<h3>缺席</h3>" + items([e(a["name"]) for a in minutes["absentees"]]),
        "<h3>决定事项</h3>" + items([e(d["body"]) for d in minutes["decisions"]]),
        "<h3>待办事项</h3>"
        + items(
            [
                e(a["body"]) + (f"（{e(a['assignee']['name'])}）" if a["assignee"] else "")
                for a in minutes["actions"]
            ]
        ),
    ]
    if minutes.get("summary"):
        parts.append(f"<h3>小结</h3><p>{e(minutes['summary'])}</p>")
    parts.append(
        "<h3>记录</h3>"
        + items([f"<b>{e(s['from']['name'])}</b>：{e(s['body'])}" for s in minutes["transcript"]])
    )
    return "".join(parts)
