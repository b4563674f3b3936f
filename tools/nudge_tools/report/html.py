"""The `nudge report --html` page: one self-contained file (inline CSS and SVG, no script, nothing
fetched) with, per rule, the table of arms, the verdicts, and a chart of the conversion rate per arm
(95% intervals) beside the cumulative lift of each variant over the holdout, day by day.

Charts are drawn by matplotlib (the SVG backend, without pyplot, text as paths so no font is
needed) and embedded inline; every text of ours goes through `html.escape`.
"""

from __future__ import annotations

import html
import io
import math
import re
from typing import TYPE_CHECKING

from nudge_tools.report.lift import HOLDOUT, LIFT, METHOD, NO_LIFT, WORSE, LiftReport, RuleLift
from nudge_tools.report.text import arm_cells, describe_comparison, describe_sample_ratio, percent

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HOLDOUT_COLOR, VARIANT_COLORS = "#6b7280", ("#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777")
VERDICT_CLASS = {LIFT: "good", WORSE: "bad", NO_LIFT: "flat"}
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;
color:#111827}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin:2.2rem 0 .2rem;font-family:ui-monospace,monospace}
.meta,.method,.desc{color:#4b5563}.method{font-size:.85rem}
table{border-collapse:collapse;margin:.6rem 0;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .7rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
li{margin:.2rem 0}.good{color:#047857}.bad{color:#b91c1c}.flat{color:#374151}.wait{color:#92400e}
.warn{background:#fef2f2;border-left:4px solid #b91c1c;padding:.4rem .7rem}
figure{margin:.8rem 0}svg{max-width:100%;height:auto}
"""


def _color(name: str, variants: list[str]) -> str:
    if name == HOLDOUT:
        return HOLDOUT_COLOR
    return VARIANT_COLORS[variants.index(name) % len(VARIANT_COLORS)] if name in variants else "#9ca3af"


def _rates(ax: Axes, r: RuleLift, variants: list[str]) -> None:
    arms = [a for a in r.arms if a.interval is not None and a.conversion_rate is not None]
    for i, a in enumerate(arms):
        rate, (low, high) = a.conversion_rate or 0.0, a.interval or (0.0, 0.0)
        ax.errorbar([i], [rate * 100], yerr=[[(rate - low) * 100], [(high - rate) * 100]], fmt="o", capsize=5,
                    color=_color(a.name, variants), markersize=7)
    ax.set_xticks(range(len(arms)), [a.name for a in arms])
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("conversion rate (%)")
    ax.set_title("Conversion rate per arm, 95% interval", fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def _lift(ax: Axes, r: RuleLift, variants: list[str]) -> None:
    ax.axhline(0, color=HOLDOUT_COLOR, linewidth=1)
    for name in variants:
        points = [d for d in r.daily if d.arm == name]
        if not points:
            continue
        x = [d.day.toordinal() for d in points]
        color = _color(name, variants)
        y = [d.difference * 100 for d in points]
        low, high = [d.interval[0] * 100 for d in points], [d.interval[1] * 100 for d in points]
        if len(points) == 1:  # a band from day to day has no width on the first day: an interval bar
            ax.errorbar(x, y, yerr=[[y[0] - low[0]], [high[0] - y[0]]], fmt="o", capsize=5, color=color, label=name)
            continue
        ax.plot(x, y, marker="o" if len(points) < 3 else "", color=color, label=name)
        ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
    days = sorted({d.day for d in r.daily})
    ticks = days[::max(1, math.ceil(len(days) / 6))]
    ax.set_xticks([d.toordinal() for d in ticks], [d.strftime("%m-%d") for d in ticks])
    ax.set_ylabel("lift vs holdout (pp)")
    ax.set_title("Cumulative lift by day, 95% interval", fontsize=10)
    ax.grid(alpha=0.3)
    if len(variants) > 1:
        ax.legend(fontsize=8, frameon=False)


def _prefix_ids(svg: str, prefix: str) -> str:
    """Every id of the SVG (and every reference to one) prefixed, so several inline charts in one
    page never share an id (matplotlib numbers `figure_1`, `axes_1`, ... from 1 in each figure)."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))

    def rename(match: re.Match[str]) -> str:
        head, name, tail = match.groups()
        return f"{head}{prefix}{name}{tail}" if name in ids else match.group(0)

    return re.sub(r'(\bid="|url\(#|href="#)([^")]+)([")])', rename, svg)


def chart_svg(r: RuleLift, prefix: str) -> str:
    """The rule's chart as an inline <svg> element (no XML prolog, doctype or metadata), its ids
    starting with `prefix`."""
    import matplotlib
    from matplotlib.figure import Figure

    variants = [c.arm for c in r.comparisons]
    # A fixed salt: the same SVG for the same data.
    with matplotlib.rc_context({"svg.hashsalt": "nudge-report", "svg.fonttype": "path", "font.size": 9}):
        figure = Figure(figsize=(9, 3.1), layout="constrained")
        left, right = figure.subplots(1, 2, width_ratios=(2, 3))
        _rates(left, r, variants)
        if r.daily:
            _lift(right, r, variants)
        else:
            right.set_axis_off()
            right.text(0.5, 0.5, "no lift to chart yet", ha="center", va="center", color=HOLDOUT_COLOR)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    svg = out.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[svg.index("<svg"):], flags=re.S)
    return _prefix_ids(svg, prefix)


def _arms_table(r: RuleLift, currency: str) -> str:
    e = html.escape
    rows = []
    for a in r.arms:
        rate, rpv = arm_cells(a, " to ")
        rows.append(f"<tr><td>{e(a.name)}</td><td>{a.visitors:,.0f}</td><td>{a.impressions:,.0f}</td>"
                    f"<td>{percent(a.ctr, 1)}</td><td>{a.conversions:,.0f}</td><td>{e(rate)}</td><td>{rpv}</td></tr>")
    return ("<table><thead><tr><th>arm</th><th>visitors</th><th>impressions</th><th>CTR</th><th>conversions</th>"
            f"<th>conversion rate (95% CI)</th><th>revenue / visitor ({e(currency)})</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def rule_section(r: RuleLift, currency: str, index: int) -> str:
    e = html.escape
    parts = [f"<section><h2>{e(r.rule)}</h2>"]
    about = r.description + ("" if r.holdout_percent is None else f" (holdout {r.holdout_percent:g}%)"
                             if r.holdout_percent else " (no holdout: lift cannot be measured)")
    if about:
        parts.append(f'<p class="desc">{e(about.strip())}</p>')
    if not r.arms:
        parts.append("<p>No exposures yet.</p></section>")
        return "".join(parts)
    parts.append(_arms_table(r, currency))
    if r.comparisons:
        items = "".join(f'<li class="{VERDICT_CLASS.get(c.verdict, "wait")}"><strong>{e(c.verdict)}</strong>: '
                        f"{e(describe_comparison(c))} ({e(c.reason)})</li>" for c in r.comparisons)
        parts.append(f"<ul>{items}</ul>")
    if r.sample_ratio is not None:
        css = ' class="warn"' if r.sample_ratio.mismatch else ""
        parts.append(f"<p{css}>{e(describe_sample_ratio(r.sample_ratio))}</p>")
    notes = [*r.notes] + ([f"{r.switched} visitors were later exposed in another arm (counted in their first)"]
                          if r.switched else [])
    parts += [f'<p class="meta">{e(n)}</p>' for n in notes]
    parts.append(f"<figure>{chart_svg(r, f'chart{index}-')}</figure></section>")
    return "".join(parts)


def html_report(report: LiftReport) -> str:
    e = html.escape
    skipped = f", {report.bad_rows} unreadable skipped" if report.bad_rows else ""
    head = (f"{report.source}, last {report.since_days} days, {report.rows:,} events{skipped}; attribution "
            f"window {report.window_days:g} days after a visitor's first exposure")
    notes = "".join(f'<p class="warn">{e(n)}</p>' for n in report.notes)
    sections = "".join(rule_section(r, report.currency, i) for i, r in enumerate(report.rules))
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>nudge report</title><style>{STYLE}</style></head>\n<body><h1>nudge report</h1>"
            f'<p class="meta">{e(head)}</p><p class="method">{e(METHOD)}</p>{notes}{sections}</body></html>\n')
