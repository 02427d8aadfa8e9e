"""The budget as text (console), and as HTML with an inline SVG month-to-date chart (report.html).

Everything here renders the plain dicts ``book`` builds (the ``budget`` section of summary.json), so the
console, summary.json and the HTML report always say the same thing.
"""

from __future__ import annotations

import calendar
import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from verifiers.budget.allowances import Allowance

# Labels for the verifier's own costs (what reading the run back cost), in display order.
READ_COST_LABELS = {
    "query_results": "query results (Create Query Result: 10 a minute)",
    "traces_scanned": "traces scanned",
    "traces_retrieved": "traces retrieved",
    "bytes_read": "read",
    "api_calls": "API calls",
}
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def _sig(x: float) -> str:
    """Up to 3 significant digits, never an exponent."""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    text = f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt(value: float, allowance: Allowance | str) -> str:
    """A quantity in an allowance's unit, short: ``20M events``, ``11.7 kB``, ``96 traces``."""
    unit = allowance.unit if isinstance(allowance, Allowance) else allowance
    # (divisor, suffix, from): counts switch to k at 10,000; 999,700 reads "1M", never "1,000k".
    steps = (
        ((1e9, " GB", 999.5e6), (1e6, " MB", 999.5e3), (1e3, " kB", 999.5))
        if unit == "bytes"
        else ((1e9, "G", 999.5e6), (1e6, "M", 999.5e3), (1e3, "k", 1e4))
    )
    for divisor, suffix, start in steps:
        if abs(value) >= start:
            return f"{_sig(value / divisor)}{suffix}" + ("" if unit == "bytes" else f" {unit}")
    return f"{value:.0f} B" if unit == "bytes" else f"{_sig(value)} {unit}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for factor, unit in ((365 * 86400, "years"), (86400, "days"), (3600, "h"), (60, "min")):
        if seconds >= factor:
            return f"{_sig(seconds / factor)} {unit}"
    return f"{_sig(seconds)} s"


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    value = fraction * 100
    if value == 0:
        return "0%"
    return f"{value:.2g}%" if value < 1 else f"{_sig(value)}%"


def rate(per_s: float | None) -> str:
    return "-" if per_s is None else f"{_sig(per_s)} req/s"


def _unit(row: Mapping[str, Any]) -> str:
    return str(row["unit"])


def _lasts(row: Mapping[str, Any]) -> str:
    if row.get("runs_left") is not None:
        return f"{_sig(row['runs_left'])} more runs like this"
    if row.get("lasts_s") is None:
        return "-"
    # the whole monthly allowance, then what is left of it this month, at the same rate
    return f"{duration(row['lasts_s'])} whole, {duration(row['remaining_lasts_s'])} what is left"


def _sustainable(row: Mapping[str, Any]) -> str:
    safe = row.get("safe_requests_per_s")
    return rate(row.get("sustainable_requests_per_s")) + (f" ({rate(safe)} if every request counts)" if safe else "")


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def allowance_rows(allowances: Sequence[Mapping[str, Any]], at: str) -> list[list[str]]:
    header = ["allowance (a month)", "account", "this run", "month to date", "used", f"lasts {at}", "sustainable"]
    rows = [header]
    for a in allowances:
        rows.append(
            [
                f"{a['backend']} {a['label']} ({fmt(a['limit'], _unit(a))})",
                str(a["account"]),
                fmt(a["this_run"], _unit(a)),
                fmt(a["month_to_date"], _unit(a)),
                percent(a["used_fraction"]),
                _lasts(a),
                _sustainable(a),
            ]
        )
    return rows


def read_costs(usage: Mapping[str, float]) -> str:
    parts = []
    for metric, label in READ_COST_LABELS.items():
        if metric in usage:
            value = usage[metric]
            parts.append(fmt(value, "bytes") + " read" if metric == "bytes_read" else f"{_sig(value)} {label}")
    return ", ".join(parts)


def notes(section: Mapping[str, Any]) -> list[str]:
    """What the table does not show: the verifier's own reads, estimates and what was not counted."""
    backends: Mapping[str, Mapping[str, Any]] = section["backends"]
    lines = ["verifier's own reads: " + "; ".join(f"{b} {read_costs(v['usage'])}" for b, v in backends.items())]
    for backend, info in backends.items():
        if info["source"] != "measured" or info["note"]:
            lines.append(f"{backend}: {info['source']}{': ' + info['note'] if info['note'] else ''}")
        other = {k: v for k, v in info["unattributed"].items() if v}
        if other:
            shown = ", ".join(f"{_sig(v)} {k}" for k, v in other.items())
            lines.append(f"{backend}: not counted, found in the run's window but not from its requests: {shown}")
    return lines


def _at(section: Mapping[str, Any]) -> str:
    per_s = section["observed"].get("requests_per_s")
    return f"at {rate(per_s)}" if per_s else "at this rate"


def run_text(section: Mapping[str, Any]) -> str:
    """The table that ends ``tracedrill run``."""
    observed = section["observed"]
    head = (
        f"free-tier budget, {section['month']} (UTC, {section['mode']} backends): {observed['requests']} requests "
        f"in {_sig(observed['load_seconds'])} s; ledger {section['ledger']}"
    )
    return "\n".join([head, table(allowance_rows(section["allowances"], _at(section))), *notes(section)])


def preflight_lines(forecast: Mapping[str, Any], allowances: Mapping[str, Allowance]) -> list[str]:
    lines = [f"budget forecast: about {forecast['requests']:,} requests ({forecast['requests_basis']})"]
    bases = dict.fromkeys(str(f.get("basis")) for f in forecast["allowances"].values() if f.get("basis"))
    lines += [f"  usage per request from {basis}" for basis in bases]
    for name, f in forecast["allowances"].items():
        a = allowances[name]
        flag = "  EXCEEDS what is left" if name in forecast["exceeds"] else ""
        lines.append(
            f"  {a.title}: ~{fmt(f['forecast'], a)} of {fmt(f['remaining'], a)} left "
            f"({f['account']}, {fmt(f['month_to_date'], a)} used this month){flag}"
        )
    return lines


# ---- HTML ------------------------------------------------------------------------------------


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n that is >= value (at least 0.001%)."""
    ceiling = 0.001
    while ceiling < value:
        for step in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10
            ceiling *= step
            if ceiling >= value:
                break
    return ceiling


def _day_of_month(epoch_s: float, month: str) -> float | None:
    """Where ``epoch_s`` falls in ``month`` as a fractional day (1.0 = the 1st, 00:00 UTC); None outside it."""
    when = datetime.fromtimestamp(epoch_s, UTC)
    if when.strftime("%Y-%m") != month:
        return None
    return when.day + (when.hour * 3600 + when.minute * 60 + when.second) / 86400


def chart_svg(
    allowances: Sequence[Mapping[str, Any]], month: str, as_of: float | None = None, width: int = 640, height: int = 240
) -> str:
    """Month to date per allowance, as % of the allowance by day of the month (UTC), drawn up to ``as_of``;
    dashed: where the month ends at the pace so far."""
    year, number = (int(x) for x in month.split("-"))
    days = calendar.monthrange(year, number)[1]
    today = _day_of_month(as_of, month) if as_of is not None else None
    end = today if today is not None else days + 1.0
    series = []
    for a in allowances:
        limit = a["limit"] or 0.0
        points = [(float(d), v / limit * 100 if limit else 0.0) for d, v in a["daily"]]
        projected = a.get("projected_month_end")
        # A projection starts from "now": drawn only for the current month.
        drawn = projected is not None and limit and today is not None
        series.append((a, points, projected / limit * 100 if projected is not None and drawn else None))
    peaks = [p for _, pts, proj in series for p in [*(v for _, v in pts), proj or 0.0]]
    top = _nice_ceiling(max([*peaks, 0.0]))
    left, right, upper, lower = 56, 12, 12, 28
    plot_w, plot_h = width - left - right, height - upper - lower

    def x(day: float) -> float:
        return left + (day - 1) / days * plot_w

    def y(pct: float) -> float:
        return upper + plot_h - min(pct, top) / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 18 * len(series)}" '
        f'role="img" aria-label="month-to-date use of each free-tier allowance">',
        f'<rect x="{left}" y="{upper}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = top * fraction
        label = percent(value / 100)
        parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{label}</text>')
    for day in sorted({1, 8, 15, 22, days}):
        parts.append(f'<text x="{x(day):.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{day}</text>')
    if top >= 100:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(100):.1f}" y2="{y(100):.1f}" stroke="#c00"/>')
    if today is not None:
        parts.append(
            f'<line x1="{x(today):.1f}" x2="{x(today):.1f}" y1="{upper}" y2="{upper + plot_h}" stroke="#bbb" '
            'stroke-dasharray="2,3"/>'
        )
    for i, (a, points, projected) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        steps = [(1.0, 0.0)]
        for when, pct in points:  # a day's usage is drawn at its end (or now, for today)
            at = min(when + 1, end)
            steps += [(at, steps[-1][1]), (at, pct)]
        steps.append((end, steps[-1][1]))
        path = " ".join(f"{x(d):.1f},{y(p):.1f}" for d, p in steps)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        last_x, last_y = x(steps[-1][0]), y(steps[-1][1])
        parts.append(f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="3" fill="{colour}"/>')
        if projected is not None:
            parts.append(
                f'<line x1="{last_x:.1f}" y1="{last_y:.1f}" x2="{x(days + 1):.1f}" y2="{y(projected):.1f}" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="5,4"/>'
            )
        legend_y = height + 14 + 18 * i
        label = html.escape(f"{a['backend']} {a['label']} ({a['account']}): {percent(a['used_fraction'])}")
        parts.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + 16}" y="{legend_y}" font-size="12">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_section(section: Mapping[str, Any]) -> str:
    """The report.html section: the chart, the table and the notes."""
    observed = section["observed"]
    rows = allowance_rows(section["allowances"], _at(section))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    sources = "".join(f"<li>{html.escape(a['name'])}: {html.escape(a['source'])}</li>" for a in section["allowances"])
    return (
        '<div class="budget"><h2>Free-tier budget</h2>'
        f"<p>{html.escape(section['month'])} (UTC), {html.escape(section['mode'])} accounts: "
        f"{observed['requests']} requests in {_sig(observed['load_seconds'])} s. Ledger: "
        f"<code>{html.escape(section['ledger'])}</code></p>"
        f"{chart_svg(section['allowances'], section['month'], section.get('as_of'))}"
        f'<table class="budget-table" cellpadding="4"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        + "".join(f"<p>{html.escape(n)}</p>" for n in notes(section))
        + f"<details><summary>where the allowances come from</summary><ul>{sources}</ul></details></div>"
    )


def month_text(view: Mapping[str, Any]) -> str:
    """`tracedrill budget`: month to date, the runs, and the outlook at the newest run's rate."""
    lines = [f"free-tier budget, {view['month']} (UTC); ledger {view['ledger']}"]
    if not view["accounts"]:
        lines.append(f"no runs recorded in {view['month']}")
    for acc in view["accounts"]:
        lines += ["", f"{acc['backend']}, account {acc['account']}"]
        rows = [["allowance (a month)", "month to date", "used", "month end at this pace", "lasts", "sustainable"]]
        for a in acc["allowances"]:
            f = a["forecast"] or {}
            at = f" at {rate(f['at_requests_per_s'])}" if f.get("at_requests_per_s") else ""
            lasts = _lasts(f) + (at if f.get("lasts_s") is not None else "") if f else "-"
            projected = a["projected_month_end"]
            rows.append(
                [
                    f"{a['label']} ({fmt(a['limit'], _unit(a))})",
                    fmt(a["month_to_date"], _unit(a)),
                    percent(a["used_fraction"]),
                    "-" if projected is None else fmt(projected, _unit(a)),
                    lasts,
                    _sustainable(f),
                ]
            )
        lines.append(table(rows))
        metrics = sorted({m for r in acc["runs"] for m in r["usage"]})
        shown = len(acc["runs"])
        lines.append(
            f"runs ({acc['runs_total']} this month{', newest ' + str(shown) if shown < acc['runs_total'] else ''}):"
        )
        run_rows = [["run", "started (UTC)", "requests", "seconds", "source", *metrics]]
        for r in acc["runs"]:
            run_rows.append(
                [
                    r["run_id"], r["started_at"].replace("+00:00", ""), str(r["requests"]), _sig(r["load_seconds"]),
                    r["source"], *(_sig(r["usage"].get(m, 0.0)) for m in metrics),
                ]
            )  # fmt: skip
        lines.append(table(run_rows))
    return "\n".join(lines)
