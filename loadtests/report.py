"""A self-contained HTML report: tables and line charts drawn as inline SVG (no scripts, no CDN),
so the file opens anywhere, offline."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import msgspec

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
W, H = 860, 260
ML, MR, MT, MB = 64, 150, 28, 36  # margins: the legend sits on the right

Point = tuple[float, float | None]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.001:
        if v >= lo - step * 0.001:
            ticks.append(round(v, 10))
        v += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.4g}"
    return f"{v:.3g}"


def line_chart(
    title: str,
    series: dict[str, Sequence[Point]],
    *,
    y_label: str = "",
    log_y: bool | None = None,
) -> str:
    """An SVG line chart of named (x, y) series; y None leaves a gap."""
    pts = [(x, y) for s in series.values() for x, y in s if y is not None]
    esc = html.escape
    if not pts:
        return f'<figure><figcaption>{esc(title)}</figcaption><p class="empty">no data</p></figure>'
    xs = [x for x, _ in pts]
    ys = [y for _, y in pts if y is not None]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x1 = x0 + 1
    pos = [y for y in ys if y > 0]
    if log_y is None:
        log_y = bool(pos) and min(pos) > 0 and max(pos) / min(pos) > 100
    if log_y and pos:
        lo = 10 ** math.floor(math.log10(min(pos)))
        hi = 10 ** math.ceil(math.log10(max(pos)))
        if hi <= lo:
            hi = lo * 10

        def fy(y: float) -> float:
            y = max(y, lo)
            return MT + (H - MT - MB) * (
                1 - (math.log10(y) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
            )

        yt: list[float] = []
        v = lo
        while v <= hi * 1.0001:
            yt.append(v)
            v *= 10
    else:
        lo, hi = min(0.0, min(ys)), max(ys) * 1.08 or 1.0
        yt = _nice_ticks(lo, hi)
        hi = max(hi, yt[-1])

        def fy(y: float) -> float:
            return MT + (H - MT - MB) * (1 - (y - lo) / (hi - lo))

    def fx(x: float) -> float:
        return ML + (W - ML - MR) * (x - x0) / (x1 - x0)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">',
        f'<text x="{ML}" y="16" class="t">{esc(title)}</text>',
    ]
    for t in yt:
        y = fy(t)
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" class="g"/>')
        out.append(f'<text x="{ML - 6}" y="{y + 4:.1f}" class="yl">{_fmt(t)}</text>')
    for t in _nice_ticks(x0, x1, 8):
        x = fx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{H - MB}" class="g"/>')
        out.append(f'<text x="{x:.1f}" y="{H - MB + 16}" class="xl">{_fmt(t)}</text>')
    out.append(
        f'<text x="{(ML + W - MR) / 2:.0f}" y="{H - 4}" class="xl">seconds since start</text>'
    )
    if y_label:
        out.append(
            f'<text x="14" y="{(MT + H - MB) / 2:.0f}" class="xl" transform="rotate(-90 14 {(MT + H - MB) / 2:.0f})">{esc(y_label)}</text>'
        )
    out.append(
        f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" class="frame"/>'
    )
    for n, (name, s) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        segs: list[list[str]] = [[]]
        for x, yv in s:
            if yv is None or (log_y and yv <= 0):
                if segs[-1]:
                    segs.append([])
                continue
            segs[-1].append(f"{fx(x):.1f},{fy(yv):.1f}")
        for seg in segs:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
            elif seg:
                out.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
                )
        ly = MT + 14 + n * 18
        out.append(
            f'<line x1="{W - MR + 10}" x2="{W - MR + 28}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
        )
        out.append(f'<text x="{W - MR + 32}" y="{ly}" class="lg">{esc(name)}</text>')
    out.append("</svg>")
    return "<figure>" + "".join(out) + "</figure>"


def _table(rows: list[list[Any]], head: list[str]) -> str:
    esc = html.escape
    h = "".join(f"<th>{esc(c)}</th>" for c in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc('' if c is None else str(c))}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
figure{margin:12px 0}svg{background:#fff;border:1px solid #eee}
svg .t{font-size:13px;font-weight:600}svg .g{stroke:#eee}svg .frame{fill:none;stroke:#bbb}
svg .yl{font-size:11px;text-anchor:end;fill:#555}svg .xl{font-size:11px;text-anchor:middle;fill:#555}
svg .lg{font-size:11px;fill:#333}.ok{color:#1a7f37}.bad{color:#c62828}.empty{color:#888}
pre{background:#f7f7f7;padding:8px;overflow:auto}
"""


def series_charts(series_json: dict[str, Any], t_offset: float = 0.0) -> str:
    rows = series_json.get("buckets", [])

    def lat(name: str, q: str) -> list[Point]:
        return [(r["t"] - t_offset, (r["latency_ms"].get(name) or {}).get(q)) for r in rows]

    def cnt(name: str) -> list[Point]:
        width = series_json.get("bucket_s", 1.0)
        return [(r["t"] - t_offset, r["counts"].get(name, 0) / width) for r in rows]

    def gauge(name: str) -> list[Point]:
        return [(r["t"] - t_offset, r["gauges"].get(name)) for r in rows]

    charts = [
        line_chart(
            "Page end-to-end latency (send → pager.message at each recipient)",
            {q: lat("push.pager.message", q) for q in ("p50", "p95", "p99", "max")},
            y_label="ms",
        ),
        line_chart(
            "Command ack latency",
            {
                "pager.send p50": lat("cmd.pager.send", "p50"),
                "pager.send p99": lat("cmd.pager.send", "p99"),
                "whereabouts.set p99": lat("cmd.whereabouts.set", "p99"),
            },
            y_label="ms",
        ),
        line_chart(
            "Throughput",
            {
                "pages sent ok/s": cnt("ok.pager.send"),
                "durable events received/s": cnt("recv.durable"),
                "sync.ack sent/s": cnt("sent.sync.ack"),
                "whereabouts.set ok/s": cnt("ok.whereabouts.set"),
            },
            y_label="per second",
            log_y=False,
        ),
        line_chart(
            "Connections",
            {
                "connected": gauge("connected"),
                "connects/s": cnt("conn.connects"),
                "disconnects/s": cnt("conn.disconnects"),
                "drops/s": cnt("conn.drops"),
            },
            log_y=False,
        ),
        line_chart(
            "Connect and resume time",
            {
                "connect p50": lat("conn.connect", "p50"),
                "connect p99": lat("conn.connect", "p99"),
                "resume p50": lat("conn.resume", "p50"),
                "resume p99": lat("conn.resume", "p99"),
            },
            y_label="ms",
        ),
        line_chart(
            "Errors",
            {
                "command errors/s": cnt("errors"),
                "stream duplicates/s": cnt("stream.duplicates"),
                "stream reorders/s": cnt("stream.reorders"),
                "gap recoveries/s": cnt("stream.gap_recoveries"),
            },
            log_y=False,
        ),
        line_chart(
            "Load generator event-loop lag (if high, the generator is the bottleneck)",
            {"p50": lat("gen.loop_lag", "p50"), "p99": lat("gen.loop_lag", "p99")},
            y_label="ms",
        ),
    ]
    return "\n".join(charts)


def summary_tables(summary: dict[str, Any]) -> str:
    lat_rows = [
        [k, v["count"], v["p50"], v["p95"], v["p99"], v["max"]]
        for k, v in summary["latency_ms"].items()
    ]
    parts = [
        "<h2>Latency (ms)</h2>",
        _table(lat_rows, ["operation", "count", "p50", "p95", "p99", "max"]),
        "<h2>Stream and delivery checks</h2>",
        _table(
            [[k, v] for k, v in summary["stream"].items()]
            + [
                ["deliveries " + k, v]
                for k, v in summary["deliveries"].items()
                if k != "missing_examples"
            ],
            ["check", "value"],
        ),
    ]
    if summary["deliveries"].get("missing_examples"):
        parts.append(
            "<pre>" + html.escape("\n".join(summary["deliveries"]["missing_examples"])) + "</pre>"
        )
    parts += [
        "<h2>Errors by command and code</h2>",
        _table(
            [[k, v] for k, v in summary["errors_by_code"].items()] or [["none", 0]],
            ["command.code", "count"],
        ),
        "<h2>Skipped (not on this server yet)</h2>",
        _table(
            [[k, v] for k, v in summary["skipped"].items()] or [["none", 0]], ["command", "count"]
        ),
        "<h2>Counts</h2>",
        _table([[k, v] for k, v in summary["counts"].items()], ["counter", "total"]),
    ]
    return "\n".join(parts)


def render(result: dict[str, Any]) -> str:
    meta = result["meta"]
    s = result["summary"]
    verdict_ok = s["stream_errors"] == 0 and s["deliveries"]["missing"] == 0
    head = (
        f"<h1>Liaison load test — {html.escape(str(meta.get('target')))}</h1>"
        f"<p>{meta.get('users')} users, {meta.get('procs')} worker process(es), ramp "
        f"{meta.get('ramp')}/s, {meta.get('duration')} s; started {html.escape(str(meta.get('started')))}. "
        f'<b class="{"ok" if verdict_ok else "bad"}">stream errors {s["stream_errors"]}, '
        f"undelivered {s['deliveries']['missing']}, command errors {s['command_errors']}, "
        f"disconnects {s['disconnects']}</b></p>"
    )
    notices = "".join(f"<li>{html.escape(n)}</li>" for n in result.get("notices", []))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Liaison load test</title><style>{CSS}</style></head><body>"
        + head
        + (f"<h2>Notices</h2><ul>{notices}</ul>" if notices else "")
        + "<h2>Over time</h2>"
        + series_charts(result["series"])
        + summary_tables(s)
        + "<h2>Scenario</h2><pre>"
        + html.escape(msgspec.json.format(msgspec.json.encode(meta), indent=2).decode())
        + "</pre></body></html>"
    )
