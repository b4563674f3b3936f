from __future__ import annotations

import ast
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy.stats import binomtest, chi2_contingency
from scipy.stats.contingency import relative_risk

import nudge
import nudge_tools.cli
from nudge.rules.load import load_ruleset
from nudge.rules.model import RuleSet
from nudge_tools.cli import main
from nudge_tools.report import sources
from nudge_tools.report.html import chart_svg, html_report
from nudge_tools.report.lift import (
    HOLDOUT,
    LIFT,
    NO_LIFT,
    NOT_ENOUGH_DATA,
    WORSE,
    Arm,
    RuleLift,
    analyze,
    sample_ratio,
    verdict,
)
from nudge_tools.report.sources import Events, Row, load_local, load_remote, parse_local_line, remote_credentials
from nudge_tools.report.stats import newcombe, relative_interval, wilson, z_test
from nudge_tools.report.text import text_report
from tests.core.factories import ROOT

DAY = 86_400
T0 = 1_790_000_000.0

PROMO = """
id = "promo"
description = "Sneaker deal <b>today</b> & more"
pages = ["product"]
trigger = "page_load"
holdout = 10

[action]
kind = "banner"
title = "Hi"
body = "A deal"
button = "Go"
dismiss = "No"

[[variants]]
weight = 50

[[variants]]
weight = 50
body = "Another deal"
"""

PLAIN = """
id = "plain"
description = "No holdout"
pages = ["product"]
trigger = "page_load"

[action]
kind = "banner"
title = "Hi"
body = "Hello"
button = "Go"
dismiss = "No"
"""


def rule_files() -> dict[str, str]:
    return {"pages.toml": (ROOT / "rules" / "pages.toml").read_text(), "promo.toml": PROMO, "plain.toml": PLAIN}


def ruleset() -> RuleSet:
    return load_ruleset(rule_files())


def row(kind: str, visitor: str, t: float, *, rule: str = "promo", variant: str = "0", group: str = "treatment",
        revenue: float = 0.0, weight: float = 1.0) -> Row:
    if kind == "conversion":
        rule, variant, group = "", "", ""
    return Row(t, kind, rule, variant, group, visitor, revenue, weight)


def data_point(kind: str, visitor: str, t: float, *, rule: str = "promo", variant: str = "0",
               group: str = "treatment", revenue: float = 0.0) -> str:
    """A line of the local runtime's nudge_events.jsonl, as docs/events.md lays it out."""
    if kind == "conversion":
        rule, variant, group = "", "", ""
    return json.dumps({"timestamp": int(t * 1000), "dataset": "nudge_events", "indexes": [rule],
                       "blobs": [kind, rule, variant, group, visitor, "product", "v1"], "doubles": [revenue, t]})


def events(*rows: Row) -> Events:
    return Events(tuple(rows), 0, "test")


def lift_of(rows: list[Row], rule: str = "promo", window_days: float = 7) -> RuleLift:
    return next(r for r in analyze(events(*rows), ruleset(), window_days).rules if r.rule == rule)


def arm_of(lift: RuleLift, name: str) -> Arm:
    arm = lift.arm(name)
    assert arm is not None, f"no {name} arm"
    return arm


def arms(n_holdout: int, x_holdout: int, variants: Mapping[str, tuple[int, int]], t: float = T0) -> list[Row]:
    """Exposed visitors per arm, the first x of them converting a day later."""
    out: list[Row] = []
    groups = [("holdout", "0", n_holdout, x_holdout)] + [("treatment", v, n, x) for v, (n, x) in variants.items()]
    for group, variant, n, x in groups:
        for i in range(n):
            visitor = f"{group[0]}{variant}-{i}"
            out.append(row("exposure", visitor, t, variant=variant, group=group))
            if i < x:
                out.append(row("conversion", visitor, t + DAY, revenue=50.0))
    return out


# -- statistics against known values --------------------------------------------------------------


def test_wilson_matches_the_published_value_and_scipy() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", example 81/263.
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    ci = binomtest(15, 148).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(15, 148) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_newcombe_matches_the_published_example() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # method 10 for 56/70 vs 48/80: 0.0524 to 0.3339.
    low, high = newcombe(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_newcombe_from_the_formula() -> None:
    """The same interval computed independently: Wilson bounds by the quadratic's roots."""
    z = 1.959963984540054

    def wilson_roots(x: int, n: int) -> tuple[float, float]:
        # Solve (p - x/n)^2 = z^2 p (1 - p) / n for p.
        a, b, c = 1 + z * z / n, -(2 * x / n + z * z / n), (x / n) ** 2
        root = math.sqrt(b * b - 4 * a * c)
        return ((-b - root) / (2 * a), (-b + root) / (2 * a))

    x1, n1, x0, n0 = 120, 2_000, 30, 600
    (l1, u1), (l0, u0) = wilson_roots(x1, n1), wilson_roots(x0, n0)
    d = x1 / n1 - x0 / n0
    expected = (d - math.sqrt((x1 / n1 - l1) ** 2 + (u0 - x0 / n0) ** 2),
                d + math.sqrt((u1 - x1 / n1) ** 2 + (x0 / n0 - l0) ** 2))
    assert newcombe(x1, n1, x0, n0) == pytest.approx(expected, abs=1e-9)


def test_z_test_by_hand_and_against_the_chi_square() -> None:
    x1, n1, x0, n0 = 56, 70, 48, 80
    pooled = (x1 + x0) / (n1 + n0)
    z = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    assert z_test(x1, n1, x0, n0) == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
    table = [[x1, n1 - x1], [x0, n0 - x0]]
    assert z_test(x1, n1, x0, n0) == pytest.approx(chi2_contingency(table, correction=False).pvalue, rel=1e-9)
    assert z_test(0, 100, 0, 50) == 1.0  # nobody converted anywhere: no evidence either way


def test_relative_lift_interval_is_katz() -> None:
    expected = relative_risk(56, 70, 48, 80).confidence_interval(0.95)
    low, high = relative_interval(56, 70, 48, 80) or (0.0, 0.0)
    assert (low + 1, high + 1) == pytest.approx((expected.low, expected.high), rel=1e-9)
    assert relative_interval(5, 100, 0, 100) is None  # no holdout conversions: no ratio


# -- verdicts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("x1", "n1", "x0", "n0", "expected"), [
    (400, 10_000, 9, 1_000, NOT_ENOUGH_DATA),  # holdout below 10 conversions
    (9, 1_000, 400, 10_000, NOT_ENOUGH_DATA),  # variant below 10 conversions
    (500, 10_000, 300, 10_000, LIFT),  # 5% vs 3%
    (300, 10_000, 500, 10_000, WORSE),
    (3_010, 100_000, 3_000, 100_000, NO_LIFT),  # 3.01% vs 3.00%, interval +/-0.15 pp
    (12, 400, 10, 400, NOT_ENOUGH_DATA),  # not significant and the interval spans +/-2.2 pp of 2.5%
])
def test_verdict_thresholds(x1: int, n1: int, x0: int, n0: int, expected: str) -> None:
    interval = newcombe(x1, n1, x0, n0)
    assert verdict(x1, n1, x0, n0, interval, z_test(x1, n1, x0, n0))[0] == expected


def test_verdict_needs_both_significance_and_an_interval_off_zero() -> None:
    assert verdict(50, 1000, 20, 1000, (-0.001, 0.05), 0.01)[0] != LIFT


def test_the_verdict_reason_counts_in_words() -> None:
    assert verdict(40, 1000, 1, 1000, None, None)[1] == "the holdout has 1 conversion; 10 needed per arm"
    assert verdict(0, 1000, 40, 1000, None, None)[1] == "the variant has 0 conversions; 10 needed per arm"


# -- sample ratio mismatch ------------------------------------------------------------------------


def test_srm_flags_a_skewed_split() -> None:
    promo = ruleset().rule("promo")
    assert promo is not None
    skewed = sample_ratio({HOLDOUT: 1_500, "variant 0": 4_250, "variant 1": 4_250}, promo)
    assert skewed is not None and skewed.mismatch and skewed.p_value is not None and skewed.p_value < 1e-6
    assert skewed.expected == pytest.approx({HOLDOUT: 0.10, "variant 0": 0.45, "variant 1": 0.45})


def test_srm_passes_a_fair_split() -> None:
    promo = ruleset().rule("promo")
    assert promo is not None
    fair = sample_ratio({HOLDOUT: 1_012, "variant 0": 4_470, "variant 1": 4_518}, promo)
    assert fair is not None and not fair.mismatch and fair.p_value is not None and fair.p_value > 0.1


def test_srm_edge_cases() -> None:
    rules = ruleset()
    promo, plain = rules.rule("promo"), rules.rule("plain")
    assert promo is not None and plain is not None
    few = sample_ratio({HOLDOUT: 3, "variant 0": 10, "variant 1": 9}, promo)
    assert few is not None and few.p_value is None and not few.mismatch  # 2.2 holdout visitors expected
    assert sample_ratio({"variant 0": 500}, plain) is None  # one arm: nothing to compare
    stray = sample_ratio({HOLDOUT: 30, "variant 0": 500}, plain)  # a holdout the rule does not configure
    assert stray is not None and stray.mismatch and "does not configure" in stray.note


# -- attribution, revenue, weighting --------------------------------------------------------------


def test_attribution_window() -> None:
    rows = [
        row("exposure", "early", T0), row("conversion", "early", T0 - 60, revenue=10),  # bought before
        row("exposure", "late", T0), row("conversion", "late", T0 + 8 * DAY, revenue=10),  # after 7 days
        row("exposure", "inside", T0), row("conversion", "inside", T0 + 7 * DAY, revenue=10),  # last second
        row("exposure", "again", T0), row("exposure", "again", T0 + 6 * DAY),  # window from the first
        row("conversion", "again", T0 + 7.5 * DAY, revenue=10),
        row("exposure", "held", T0, group="holdout"), row("conversion", "held", T0 + DAY, revenue=10),
        row("conversion", "stranger", T0 + DAY, revenue=99),  # never exposed
    ]
    promo = lift_of(rows)
    treated, held = arm_of(promo, "variant 0"), arm_of(promo, HOLDOUT)
    assert (treated.visitors, treated.conversions) == (4, 1)
    assert (held.visitors, held.conversions) == (1, 1)  # holdout visitors convert too
    assert arm_of(lift_of(rows, window_days=9), "variant 0").conversions == 3  # --window-days 9


def test_revenue_per_visitor_counts_every_attributed_purchase() -> None:
    rows = [row("exposure", v, T0) for v in ("a", "b", "c", "d")]
    rows += [row("conversion", "a", T0 + 10, revenue=30), row("conversion", "a", T0 + DAY, revenue=50),
             row("conversion", "b", T0 + 20, revenue=20), row("conversion", "c", T0 - 5, revenue=1000)]
    arm = arm_of(lift_of(rows), "variant 0")
    assert arm.conversions == 2 and arm.revenue == 100 and arm.revenue_per_visitor == 25


def test_counts_ctr_and_arms_per_event() -> None:
    rows = [row("exposure", "a", T0, variant="1"), row("impression", "a", T0 + 1, variant="1"),
            row("impression", "a", T0 + 60, variant="1"), row("click", "a", T0 + 61, variant="1"),
            row("dismiss", "a", T0 + 62, variant="1"), row("exposure", "s", T0, group="shadow")]
    promo = lift_of(rows)
    arm = arm_of(promo, "variant 1")
    assert (arm.impressions, arm.clicks, arm.dismisses, arm.ctr) == (2, 1, 1, 0.5)
    assert [a.name for a in promo.arms] == ["variant 1", "shadow"]
    assert promo.comparisons == () and "no holdout visitors yet" in promo.notes


def test_a_visitor_stays_in_the_arm_of_their_first_exposure() -> None:
    rows = [row("exposure", "a", T0 + 10, variant="1"), row("exposure", "a", T0, group="holdout")]
    promo = lift_of(rows)
    assert arm_of(promo, HOLDOUT).visitors == 1 and promo.arm("variant 1") is None and promo.switched == 1


def test_weighting_by_sample_interval_through_the_sql_api() -> None:
    answer = {"meta": [], "rows": 3, "rows_before_limit_at_least": 3, "data": [
        {"timestamp": "2026-09-21 10:00:00", "blob1": "exposure", "blob2": "promo", "blob3": "0", "blob4": "treatment",
         "blob5": "a", "double1": 0, "double2": T0, "_sample_interval": "10"},
        {"timestamp": "2026-09-21 10:00:00", "blob1": "exposure", "blob2": "promo", "blob3": "0", "blob4": "treatment",
         "blob5": "b", "double1": 0, "double2": 0, "_sample_interval": 10},  # no double2: the timestamp
        {"timestamp": "2026-09-21 11:00:00", "blob1": "conversion", "blob2": "", "blob3": "", "blob4": "",
         "blob5": "a", "double1": 40.0, "double2": T0 + 3600, "_sample_interval": 2},
    ]}
    calls: list[tuple[str, Mapping[str, str], bytes]] = []

    def fetch(url: str, headers: Mapping[str, str], body: bytes) -> bytes:
        calls.append((url, headers, body))
        return json.dumps(answer).encode()

    loaded = load_remote("acc123", "tok", 14, fetch)
    (url, headers, body), = calls
    assert url == "https://api.cloudflare.com/client/v4/accounts/acc123/analytics_engine/sql"
    assert headers["Authorization"] == "Bearer tok"
    sql = body.decode()
    assert "_sample_interval" in sql and "FROM nudge_events" in sql and "INTERVAL '14' DAY" in sql
    assert sql.endswith("FORMAT JSON")
    assert loaded.bad_rows == 0 and loaded.note == ""
    assert loaded.rows[1].time == datetime(2026, 9, 21, 10, tzinfo=UTC).timestamp()  # UTC
    arm = arm_of(next(r for r in analyze(loaded, ruleset()).rules if r.rule == "promo"), "variant 0")
    # 20 visitors stand behind the 2 exposures; visitor a's conversion stands for 10 x 2 converted visitors.
    assert (arm.visitors, arm.conversions, arm.revenue, arm.sampled_visitors) == (20, 20, 800, 2)


def test_remote_answers_that_are_not_rows() -> None:
    with pytest.raises(sources.ReportError, match="unexpected answer"):
        load_remote("a", "t", 30, lambda *_: b'{"errors": [{"message": "bad token"}]}')
    with pytest.raises(sources.ReportError, match="other than JSON"):
        load_remote("a", "t", 30, lambda *_: b"<html>")
    truncated = json.dumps({"data": [{"blob1": "exposure"}], "rows_before_limit_at_least": 5}).encode()
    loaded = load_remote("a", "t", 30, lambda *_: truncated)
    assert loaded.bad_rows == 1 and "at least 5 rows" in loaded.note


def test_remote_credentials() -> None:
    assert remote_credentials({"CLOUDFLARE_ACCOUNT_ID": "a", "CLOUDFLARE_API_TOKEN": "t"}) == ("a", "t")
    with pytest.raises(sources.ReportError, match="CLOUDFLARE_API_TOKEN") as info:
        remote_credentials({"CLOUDFLARE_ACCOUNT_ID": "a"})
    assert "CLOUDFLARE_ACCOUNT_ID" not in str(info.value)


# -- local JSON lines -----------------------------------------------------------------------------


def test_local_lines_skip_what_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "nudge_events.jsonl"
    lines = [
        data_point("exposure", "a", T0),
        "not json",
        "[1, 2]",
        json.dumps({"timestamp": 1, "blobs": ["exposure"]}),  # too few blobs
        json.dumps({"timestamp": 1, "blobs": ["exposure", "promo", 0, "treatment", "a"], "doubles": [0, T0]}),
        "",
        data_point("exposure", "old", T0 - 40 * DAY),  # before --since
        data_point("conversion", "a", T0 + 60, revenue=12.5),
        # the local runtime stores a null blob as null; Analytics Engine reads it as ""
        json.dumps({"timestamp": 1, "blobs": ["conversion", None, None, None, "b"], "doubles": [5.0, T0 + 90]}),
    ]
    path.write_text("\n".join(lines) + "\n")
    loaded = load_local(path, T0 + DAY, 30)
    assert loaded.bad_rows == 4
    assert [(r.kind, r.visitor) for r in loaded.rows] == [("exposure", "a"), ("conversion", "a"), ("conversion", "b")]
    assert loaded.rows[2].rule == ""
    assert loaded.rows[1].revenue == 12.5 and loaded.rows[1].time == T0 + 60
    with pytest.raises(sources.ReportError, match="no events yet"):
        load_local(tmp_path / "missing.jsonl", T0, 30)


def test_local_time_falls_back_to_the_timestamp() -> None:
    line = json.dumps({"timestamp": 1_790_000_123_000, "blobs": ["click", "promo", "0", "treatment", "a"],
                       "doubles": [0]})
    assert parse_local_line(line).time == 1_790_000_123


# -- the whole report -----------------------------------------------------------------------------


def test_report_of_an_experiment_with_a_winner() -> None:
    rows = arms(1_000, 30, {"0": (4_500, 140), "1": (4_500, 225)})
    result = analyze(events(*rows), ruleset())
    assert [r.rule for r in result.rules] == ["plain", "promo"]  # configured rules, priority then file order
    promo = next(r for r in result.rules if r.rule == "promo")
    first, second = promo.comparisons
    assert first.arm == "variant 0" and first.verdict == NO_LIFT  # 3.11% vs 3.00%
    assert second.arm == "variant 1" and second.verdict == LIFT  # 5% vs 3%
    assert second.difference == pytest.approx(0.02) and second.relative == pytest.approx(2 / 3)
    assert promo.sample_ratio is not None and not promo.sample_ratio.mismatch
    assert promo.daily and promo.daily[-1].difference == pytest.approx(0.02)  # all known by the last day
    assert arm_of(promo, HOLDOUT).revenue_per_visitor == 1.5
    plain = next(r for r in result.rules if r.rule == "plain")
    assert plain.arms == () and "no exposures yet" in text_report(result)


def test_rule_without_holdout_says_so() -> None:
    rows = [row("exposure", f"v{i}", T0, rule="plain") for i in range(5)]
    plain = lift_of(rows, "plain")
    assert plain.comparisons == () and any("set `holdout`" in n for n in plain.notes)


def test_text_report_states_the_method_and_the_verdicts() -> None:
    rows = arms(1_000, 30, {"0": (4_500, 140), "1": (4_500, 225)})
    text = text_report(analyze(events(*rows), ruleset()))
    assert "Newcombe" in text and "z-test" in text and "chi-square" in text
    assert "LIFT DETECTED" in text and "NO LIFT DETECTED" in text and "sample ratio ok" in text
    assert re.search(r"holdout\s+1,000\s+0\s+-\s+30\s+3\.00% \(2\.11%-4\.25%\)\s+1\.50", text)


# -- HTML -----------------------------------------------------------------------------------------

HOSTILE = '<img src="http://evil.example/x.png" onerror="alert(1)">'


def test_html_is_self_contained_and_escaped() -> None:
    rows = arms(200, 12, {"0": (900, 70)})
    rows += [row("exposure", "x", T0, rule=HOSTILE, group="holdout"), row("exposure", "y", T0, rule=HOSTILE)]
    rows += [row("exposure", "z", T0, variant='"><script>alert(1)</script>')]
    page = html_report(analyze(events(*rows), ruleset()))
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2 and "<figure>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "<img" not in page and "@import" not in page
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;" in page
    assert "Sneaker deal &lt;b&gt;today&lt;/b&gt; &amp; more" in page
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<metadata" not in page


def test_html_charts_have_distinct_ids() -> None:
    rows = arms(200, 12, {"0": (900, 70)}) + [
        r if r.kind == "conversion" else Row(r.time, r.kind, "other", r.variant, r.group, r.visitor)
        for r in arms(200, 12, {"0": (900, 70)})]
    page = html_report(analyze(events(*rows), ruleset()))
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids))
    for ref in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page):
        assert (ref[0] or ref[1]) in ids  # every reference still points at its own chart's element


# -- the command ----------------------------------------------------------------------------------


def write_state(tmp_path: Path, lines: list[str]) -> tuple[Path, Path]:
    state, rules = tmp_path / "state", tmp_path / "rules"
    (state / "analytics").mkdir(parents=True)
    (state / "analytics" / "nudge_events.jsonl").write_text("\n".join(lines) + "\n")
    rules.mkdir()
    for name, text in rule_files().items():
        (rules / name).write_text(text)
    return state, rules


def test_cli_report_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time() - 3 * DAY
    lines = ["{broken"]
    for r in arms(400, 20, {"0": (1_800, 170), "1": (1_800, 30)}, t=now):
        lines.append(data_point(r.kind, r.visitor, r.time, variant=r.variant, group=r.group, revenue=r.revenue))
    state, rules = write_state(tmp_path, lines)
    out_html = tmp_path / "report.html"
    code = main(["report", "--persist-to", str(state), "--rules", str(rules), "--window-days", "3",
                 "--since", "10", "--html", str(out_html)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 unreadable skipped" in out and "attribution window: 3 days" in out
    assert "promo: Sneaker deal" in out and "(holdout 10%)" in out
    assert "variant 0" in out and "-> LIFT DETECTED" in out and "-> WORSE THAN HOLDOUT" in out
    assert "plain: No holdout" in out and "no exposures yet" in out
    assert out_html.is_file() and "<svg" in out_html.read_text()


def test_cli_report_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state, rules = write_state(tmp_path, [])
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    assert main(["report", "--remote", "--rules", str(rules)]) == 2
    assert "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN" in capsys.readouterr().err
    assert main(["report", "--persist-to", str(tmp_path / "nowhere"), "--rules", str(rules)]) == 2
    assert "no events yet" in capsys.readouterr().err
    assert main(["report", "--persist-to", str(state), "--rules", str(rules), "--window-days", "0"]) == 2


def test_cli_report_remote_uses_the_same_computation(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, rules = write_state(tmp_path, [])
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acc")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "tok")
    data = [{"timestamp": "2026-01-01 00:00:00", "blob1": r.kind, "blob2": r.rule, "blob3": r.variant,
             "blob4": r.group, "blob5": r.visitor, "double1": r.revenue, "double2": r.time, "_sample_interval": 1}
            for r in arms(300, 15, {"0": (1_350, 130), "1": (1_350, 70)})]
    original = sources.load_remote

    def offline(account: str, token: str, since: int) -> Events:
        assert (account, token, since) == ("acc", "tok", 30)
        return original(account, token, since, lambda *_: json.dumps({"data": data}).encode())

    monkeypatch.setattr(sources, "load_remote", offline)
    assert main(["report", "--remote", "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "Analytics Engine dataset nudge_events (--remote)" in out and "sample ratio ok" in out
    assert "variant 0: +4.63 pp" in out and "-> LIFT DETECTED" in out and "-> NOT ENOUGH DATA YET" in out


def test_worker_modules_never_import_the_tools() -> None:
    """The report pulls in scipy and matplotlib: nothing uploaded to Cloudflare (src/nudge) may import the
    offline tools, and the CLI imports the report only when it runs."""
    for path in Path(nudge.__path__[0]).rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        roots = {m.split(".")[0] for m in names | modules}
        assert not {"nudge_tools", "scipy", "matplotlib"} & roots, path.name
    cli = ast.parse(Path(nudge_tools.cli.__file__).read_text())
    top = {a.name for n in cli.body if isinstance(n, ast.ImportFrom) for a in n.names}
    top |= {n.module or "" for n in cli.body if isinstance(n, ast.ImportFrom)}
    assert not {"report", "sources", "stats", "lift", "text", "html"} & top
    assert not [m for m in top if m == "nudge_tools.report" or m.startswith("nudge_tools.report.")]


def test_html_lift_chart_shows_the_interval_on_the_first_day() -> None:
    # All on one day: a band from day to day has no width yet, so the interval must be drawn as a bar.
    rows = [replace(r, time=T0 + 60) if r.kind == "conversion" else r for r in arms(200, 12, {"0": (900, 70)})]
    (day,) = lift_of(rows).daily
    svg = chart_svg(lift_of(rows), "c-")
    lift_axes = svg[svg.index('id="c-axes_2"'):]
    bars = re.findall(r'<g id="c-LineCollection_\d+">\s*<path d="M ([\d.]+) ([\d.]+) \s*L ([\d.]+) ([\d.]+) ',
                      lift_axes)
    assert any(x1 == x2 and float(y1) - float(y2) > 20 for x1, y1, x2, y2 in bars), bars
    assert day.interval[0] < day.difference < day.interval[1]
