"""`nudge report`'s text: per rule a table of arms, the lift of each variant with its verdict, and
the sample ratio check.
"""

from __future__ import annotations

import textwrap

from nudge_tools.report.lift import METHOD, Arm, Comparison, LiftReport, RuleLift, SampleRatio


def percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def signed_points(value: float) -> str:
    return f"{value * 100:+.2f} pp"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def describe_comparison(c: Comparison) -> str:
    low, high = c.interval
    text = f"{c.arm}: {signed_points(c.difference)} (95% CI {signed_points(low)} to {signed_points(high)})"
    if c.relative is not None:
        text += f", {c.relative * 100:+.1f}%"
        if c.relative_interval is not None:
            rl, rh = c.relative_interval
            text += f" ({rl * 100:+.1f}% to {rh * 100:+.1f}%)"
    return f"{text}, p = {c.p_value:.3g}"


def describe_sample_ratio(s: SampleRatio) -> str:
    split = ", ".join(f"{name} {n} ({n / max(1, sum(s.observed.values())):.1%} seen, "
                      f"{s.expected.get(name, 0):.1%} configured)" for name, n in s.observed.items())
    if s.p_value is None:
        return f"sample ratio: {s.note}: {split}"
    p = f"p = {s.p_value:.2g}"
    head = f"WARNING sample ratio mismatch ({p})" if s.mismatch else f"sample ratio ok ({p})"
    tail = f"; {s.note}" if s.note else (": check bucketing, caching, bots or events lost for one arm"
                                         if s.mismatch else "")
    return f"{head}: {split}{tail}"


def arm_cells(a: Arm, to: str = "-") -> tuple[str, str]:
    """An arm's conversion rate with its interval ("2.71% (2.09%-3.52%)") and its revenue per visitor."""
    ci = a.interval
    rate = f"{percent(a.conversion_rate)} ({percent(ci[0])}{to}{percent(ci[1])})" if ci else "-"
    return rate, "-" if a.revenue_per_visitor is None else f"{a.revenue_per_visitor:.2f}"


def rule_table(r: RuleLift, currency: str) -> list[str]:
    head = (r.rule if r.rule.isprintable() else repr(r.rule)) + (f": {r.description}" if r.description else "")
    if r.holdout_percent is not None:
        unmeasured = "  (no holdout: lift cannot be measured)"
        head += f"  (holdout {r.holdout_percent:g}%)" if r.holdout_percent else unmeasured
    lines = [head]
    if not r.arms:
        return [*lines, "  no exposures yet"]
    lines.append(f"  {'arm':<11} {'visitors':>9} {'impr.':>8} {'CTR':>7} {'conv.':>7} "
                 f"{'conv. rate (95% CI)':>27} {'RPV ' + currency:>10}")
    for a in r.arms:
        rate, rpv = arm_cells(a)
        lines.append(f"  {a.name:<11} {_count(a.visitors):>9} {_count(a.impressions):>8} {percent(a.ctr, 1):>7} "
                     f"{_count(a.conversions):>7} {rate:>27} {rpv:>10}")
    lines += [f"  lift vs holdout, {describe_comparison(c)}\n    -> {c.verdict.upper()} ({c.reason})"
              for c in r.comparisons]
    if r.sample_ratio is not None:
        lines.append(f"  {describe_sample_ratio(r.sample_ratio)}")
    if r.switched:
        lines.append(f"  note: {r.switched} visitors were later exposed in another arm (counted in their first)")
    lines += [f"  note: {n}" for n in r.notes]
    return lines


def text_report(report: LiftReport) -> str:
    skipped = f", {report.bad_rows} unreadable skipped" if report.bad_rows else ""
    lines = [f"nudge report: {report.source}, last {report.since_days} days, {report.rows:,} events{skipped}",
             f"attribution window: {report.window_days:g} days after a visitor's first exposure",
             *textwrap.wrap(f"method: {METHOD}", 100, subsequent_indent="  ")]
    lines += [f"note: {n}" for n in report.notes]
    for r in report.rules:
        lines += ["", *rule_table(r, report.currency)]
    return "\n".join(lines)
