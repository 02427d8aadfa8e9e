"""report.html's sampling section: the verdicts as a table and an inline SVG chart per second of the
requests sent, the traces X-Ray sampled and the expected band (no scripts, no external files)."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 30


def sampling_html(section: dict[str, Any]) -> str:
    parts = ['<div class="tracedrill-sampling"><h2>Sampling</h2>']
    otel = section.get("otel")
    if otel:
        parts.append(_otel_table(otel))
    xray = section.get("xray")
    if xray:
        parts.append(_xray_table(xray))
        if xray.get("per_second"):
            parts.append(per_second_svg(xray["per_second"]))
    parts.append("</div>")
    return "".join(parts)


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{escape(c)}</{tag}>" for c in cells) + "</tr>"


def _otel_table(otel: dict[str, Any]) -> str:
    conf = otel.get("configured", {})
    name = f"{conf.get('sampler')} {conf.get('arg') if conf.get('arg') is not None else ''}".strip()
    rows = [
        _row(
            ["OTel sampler", "traces expected", "kept", "kept but should drop", "dropped but should keep", "verdict"],
            "th",
        ),
        _row(
            [
                name,
                str(otel.get("expected", "-")),
                str(otel.get("observed", "-")),
                str(otel.get("kept_but_should_have_dropped", "-")),
                str(otel.get("dropped_but_should_have_kept", "-")),
                str(otel.get("verdict", "")),
            ]
        ),
    ]
    return f"<table>{''.join(rows)}</table><p>{escape(str(otel.get('mode') or otel.get('reason') or ''))}</p>"


def _xray_table(xray: dict[str, Any]) -> str:
    if "by_rule" not in xray:
        return f"<p>X-Ray sampling: {escape(str(xray.get('verdict')))}: {escape(str(xray.get('reason', '')))}</p>"
    head = _row(["X-Ray rule", "requests", "sampled", "expected", "interval", "verdict"], "th")
    rows = [head]
    for r in xray["by_rule"]:
        rule = r["rule"]
        lo, hi = r["expected_range"]
        expected = f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f}–{hi:.1f}"
        rows.append(
            _row(
                [
                    f"{rule['name']} (reservoir {rule['reservoir']}/s, rate {rule['rate']:g})",
                    str(r["requests"]),
                    str(r["observed"]),
                    expected,
                    f"{r['interval'][0]}–{r['interval'][1]}",
                    r["verdict"],
                ]
            )
        )
    conf = xray.get("configured", {})
    note = f"{conf.get('mode')} rules from {conf.get('source') or 'the backend'}, {conf.get('processes')} app processes"
    return f"<table>{''.join(rows)}</table><p>{escape(note)}</p>"


def per_second_svg(rows: list[dict[str, Any]]) -> str:
    """Sent (grey line), sampled (blue line) and the expected band (shaded: low..high) per second."""
    t0 = rows[0]["t"]
    span = max(1, rows[-1]["t"] - t0)
    top = max(1, max(max(r["sent"], r["high"], r["sampled"]) for r in rows))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: int) -> float:
        return LEFT + (t - t0) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    def line(key: str) -> str:
        return " ".join(f"{x(r['t']):.1f},{y(r[key]):.1f}" for r in rows)

    band = [f"{x(r['t']):.1f},{y(r['high']):.1f}" for r in rows]
    band += [f"{x(r['t']):.1f},{y(r['low']):.1f}" for r in reversed(rows)]
    ticks = "".join(
        f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
        for v in sorted({0, top // 2, top})
    )
    xticks = "".join(
        f'<text x="{x(t0 + s):.1f}" y="{HEIGHT - 12}" text-anchor="middle">{s}s</text>'
        for s in range(0, span + 1, max(1, span // 10))
    )
    legend = (
        f'<text x="{LEFT + 8}" y="{TOP + 12}" fill="#888">— sent</text>'
        f'<text x="{LEFT + 70}" y="{TOP + 12}" fill="#1f5fbf">— sampled</text>'
        f'<text x="{LEFT + 150}" y="{TOP + 12}" fill="#c77c00">▮ expected band (per-second allowance)</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-size="11" '
        f'font-family="sans-serif" role="img" aria-label="X-Ray sampling per second">'
        f"{ticks}{xticks}"
        f'<polygon points="{" ".join(band)}" fill="#f5a623" fill-opacity="0.25" stroke="none"/>'
        f'<polyline points="{line("sent")}" fill="none" stroke="#888" stroke-width="1.5"/>'
        f'<polyline points="{line("sampled")}" fill="none" stroke="#1f5fbf" stroke-width="2"/>'
        f"{legend}</svg>"
    )
