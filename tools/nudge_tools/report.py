"""`nudge report`: the incremental lift of each rule over its holdout, from the events the Worker
writes to Workers Analytics Engine (docs/events.md).

Rows come from the local runtime's JSON lines or from the Analytics Engine SQL API (`--remote`);
both become the same `Row`s and go through the same computation.

Per rule, each exposed visitor belongs to the arm of their first exposure: `holdout`, `variant N`
(group `treatment`) or `shadow`. A visitor converts when one of their conversions falls within the
attribution window (default 7 days) after that first exposure; conversions before it, or after
the window, are not counted. Revenue per visitor sums all such conversions over exposed visitors.

Method (the text and HTML reports state it too, as `METHOD`):

- conversion rate per arm: Wilson score 95% interval;
- lift of each variant over the holdout: the difference in conversion rate with Newcombe's hybrid
  score interval (Newcombe 1998, method 10, from the two Wilson intervals), a two-sided pooled
  two-proportion z-test for the p-value, and the relative lift (risk ratio - 1) with the log risk
  ratio (Katz) interval;
- verdict: "not enough data yet" while either arm has fewer than `MIN_CONVERSIONS` conversions,
  or when nothing is significant and the interval is wider than +/-`MAX_RELATIVE_HALF_WIDTH` of
  the holdout's rate (it could not rule out a large effect); "lift detected" / "worse than holdout"
  when p < `ALPHA` and the interval lies above / below zero; else "no lift detected";
- sample ratio mismatch: chi-square goodness of fit of the visitors per arm (unweighted) against
  the rule's configured holdout percent and variant weights; a warning when p < `SRM_ALPHA`.

Each variant is compared with the holdout on its own (no correction for several variants), and
looking every day and stopping at the first "lift detected" overstates confidence: decide the
run's length up front. Analytics Engine samples busy datasets: every row stands for
`_sample_interval` events, so counts are weighted (Horvitz-Thompson, a converted visitor by both
their exposure's and their conversion's interval, since the two are sampled under different
indexes). With sampling the intervals treat the estimates as counts and come out a little narrow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import textwrap
import urllib.error
import urllib.request
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from scipy import stats

from nudge.rules.model import Rule, RuleSet

log = logging.getLogger(__name__)

DATASET = "nudge_events"
EVENTS_FILE = Path("analytics") / f"{DATASET}.jsonl"  # under the local runtime's --persist-to
SQL_API = "https://api.cloudflare.com/client/v4/accounts/{account}/analytics_engine/sql"
ACCOUNT_VAR, TOKEN_VAR = "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"
DAY = 86_400
CONFIDENCE = 0.95
ALPHA = 0.05
MIN_CONVERSIONS = 10  # per arm, before any verdict
MAX_RELATIVE_HALF_WIDTH = 0.5  # "no lift detected" needs the interval within +/-50% of the holdout's rate
SRM_ALPHA = 0.001
SRM_MIN_EXPECTED = 5  # visitors expected in every arm before the chi-square test means anything

NOT_ENOUGH_DATA = "not enough data yet"
LIFT = "lift detected"
NO_LIFT = "no lift detected"
WORSE = "worse than holdout"
HOLDOUT, SHADOW = "holdout", "shadow"

METHOD = (
    f"Conversion: an exposed visitor's purchase within the attribution window after their first "
    f"exposure to the rule. Per arm: Wilson score {CONFIDENCE:.0%} interval. Each variant vs holdout: "
    f"difference in conversion rate with Newcombe's hybrid score interval, two-sided pooled "
    f"two-proportion z-test, relative lift with the log risk ratio (Katz) interval. Verdict: "
    f"'{NOT_ENOUGH_DATA}' below {MIN_CONVERSIONS} conversions in an arm or while the interval is "
    f"wider than +/-{MAX_RELATIVE_HALF_WIDTH:.0%} of the holdout's rate; '{LIFT}' / '{WORSE}' when "
    f"p < {ALPHA} and the interval is above / below zero; else '{NO_LIFT}'. Sample ratio: chi-square "
    f"goodness of fit against the configured holdout and variant weights, warning at p < {SRM_ALPHA}."
)

Fetch = Callable[[str, Mapping[str, str], bytes], bytes]


class ReportError(Exception):
    """Events that cannot be read: no credentials, an unreachable API, a missing file."""


@dataclass(frozen=True)
class Row:
    """One event, from either source."""

    time: float  # Unix seconds
    kind: str  # exposure, impression, click, dismiss, conversion
    rule: str  # "" for a conversion
    variant: str  # "0", "1", ... ("" for a conversion)
    group: str  # treatment, holdout, shadow ("" for a conversion)
    visitor: str
    revenue: float = 0.0
    weight: float = 1.0  # events this row stands for (Analytics Engine's _sample_interval)


@dataclass(frozen=True)
class Events:
    rows: tuple[Row, ...]
    bad_rows: int  # lines or rows that could not be read (skipped)
    source: str
    note: str = ""  # e.g. the API said it returned only part of the rows


# -- loading --------------------------------------------------------------------------------------


def _row(kind: Any, rule: Any, variant: Any, group: Any, visitor: Any, revenue: Any, time: float,
         weight: Any = 1) -> Row:
    """A Row from raw column values; ValueError (or TypeError) when one is unusable."""
    kind, rule, variant, group, visitor = ("" if t is None else t for t in (kind, rule, variant, group, visitor))
    if not all(isinstance(t, str) for t in (kind, rule, variant, group, visitor)) or not kind:
        raise ValueError("blobs must be strings")  # a null blob reads as ""
    w = float(weight)
    if not (math.isfinite(time) and math.isfinite(w) and w > 0):
        raise ValueError("bad time or sample interval")
    money = float(revenue or 0)
    return Row(time, kind, rule, variant, group, visitor, money if math.isfinite(money) else 0.0, w)


def parse_local_line(line: str) -> Row:
    """One line of `<persist-to>/analytics/nudge_events.jsonl`; ValueError when it is not an event."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    blobs, doubles = data.get("blobs"), data.get("doubles") or []
    if not isinstance(blobs, list) or len(blobs) < 5 or not isinstance(doubles, list):
        raise ValueError("blobs missing")
    written = float(doubles[1]) if len(doubles) > 1 and doubles[1] else float(data["timestamp"]) / 1000
    kind, rule, variant, group, visitor = blobs[:5]
    return _row(kind, rule, variant, group, visitor, doubles[0] if doubles else 0, written)


def load_local(path: Path, now: float, since_days: int) -> Events:
    """The events of the last `since_days` in the local runtime's JSON lines; unreadable lines are
    skipped and counted."""
    if not path.is_file():
        raise ReportError(f"{path}: no events yet (run the local edge and browse the shop, check "
                          f"--persist-to, or pass --remote)")
    rows: list[Row] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                row = parse_local_line(line)
            except (ValueError, TypeError, KeyError, IndexError):
                bad += 1
                continue
            if row.time >= now - since_days * DAY:
                rows.append(row)
    return Events(tuple(rows), bad, str(path))


def remote_credentials(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(account id, API token) from the environment; ReportError naming what is missing."""
    account, token = environ.get(ACCOUNT_VAR, "").strip(), environ.get(TOKEN_VAR, "").strip()
    missing = [name for name, value in ((ACCOUNT_VAR, account), (TOKEN_VAR, token)) if not value]
    if missing:
        raise ReportError(f"--remote needs {' and '.join(missing)} in the environment (an API token with "
                          f"Account Analytics: Read)")
    return account, token


def remote_query(since_days: int) -> str:
    return (f"SELECT timestamp, blob1, blob2, blob3, blob4, blob5, double1, double2, _sample_interval "
            f"FROM {DATASET} WHERE timestamp > NOW() - INTERVAL '{int(since_days)}' DAY FORMAT JSON")


def post(url: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """POST with urllib; ReportError with the API's answer on failure."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer: bytes = response.read()
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise ReportError(f"the Analytics Engine SQL API answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ReportError(f"cannot reach the Analytics Engine SQL API: {exc}") from exc


def _sql_time(row: Mapping[str, Any]) -> float:
    """When a SQL API row was written: double2 (Unix seconds), else its `timestamp` (UTC)."""
    if row.get("double2"):
        return float(row["double2"])
    stamp = datetime.fromisoformat(str(row["timestamp"]).replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def load_remote(account: str, token: str, since_days: int, fetch: Fetch = post) -> Events:
    """The events of the last `since_days` from the Analytics Engine SQL API."""
    url = SQL_API.format(account=account)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    answer = fetch(url, headers, remote_query(since_days).encode())
    try:
        data = json.loads(answer)
    except ValueError as exc:
        raise ReportError(f"the Analytics Engine SQL API answered something other than JSON: {answer[:200]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ReportError(f"unexpected answer from the Analytics Engine SQL API: {str(data)[:300]}")
    rows: list[Row] = []
    bad = 0
    for item in data["data"]:
        try:
            rows.append(_row(item["blob1"], item["blob2"], item["blob3"], item["blob4"], item["blob5"],
                             item.get("double1"), _sql_time(item), item.get("_sample_interval") or 1))
        except (ValueError, TypeError, KeyError):
            bad += 1
    total = data.get("rows_before_limit_at_least")
    note = ""
    if isinstance(total, (int, float)) and total > len(data["data"]):
        note = f"the API returned {len(data['data'])} of at least {int(total)} rows: try a shorter --since"
    return Events(tuple(rows), bad, f"Analytics Engine dataset {DATASET} (--remote)", note)


# -- statistics -----------------------------------------------------------------------------------


def z_value(confidence: float = CONFIDENCE) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(successes: float, trials: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    if trials <= 0:
        return (0.0, 1.0)
    z, p = z_value(confidence), successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: float, n1: float, x0: float, n0: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p0 (method 10 of Newcombe 1998)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, confidence)
    l0, u0 = wilson(x0, n0, confidence)
    d = p1 - p0
    return (d - math.hypot(p1 - l1, u0 - p0), d + math.hypot(u1 - p1, p0 - l0))


def z_test(x1: float, n1: float, x0: float, n0: float) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of p1 = p0."""
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(x1 / n1 - x0 / n0) / se))


def relative_interval(x1: float, n1: float, x0: float, n0: float,
                      confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The interval of p1 / p0 - 1 from the log risk ratio (Katz); None with no conversions in an arm."""
    if x1 <= 0 or x0 <= 0:
        return None
    ratio = (x1 / n1) / (x0 / n0)
    se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x0 - 1 / n0))
    z = z_value(confidence)
    return (ratio * math.exp(-z * se) - 1, ratio * math.exp(z * se) - 1)


def sample_ratio_p(observed: Sequence[float], shares: Sequence[float]) -> float:
    """Chi-square goodness-of-fit p-value of counts against expected shares (which sum to 1)."""
    total = sum(observed)
    if any(s <= 0 and o > 0 for o, s in zip(observed, shares)):
        return 0.0  # visitors in an arm that should not exist
    pairs = [(o, s * total) for o, s in zip(observed, shares) if s > 0]
    result = stats.chisquare([o for o, _ in pairs], [e for _, e in pairs])
    return float(result.pvalue)


# -- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    name: str  # "holdout", "variant 0", ..., "shadow"
    visitors: float  # exposed visitors (weighted)
    impressions: float
    clicks: float
    dismisses: float
    conversions: float  # exposed visitors who converted within the window
    revenue: float
    sampled_visitors: int  # unweighted, for the sample ratio check

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.visitors if self.visitors else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.conversions, self.visitors) if self.visitors else None

    @property
    def revenue_per_visitor(self) -> float | None:
        return self.revenue / self.visitors if self.visitors else None


@dataclass(frozen=True)
class Comparison:
    """A treatment variant against the holdout."""

    arm: str
    difference: float  # conversion rate, variant - holdout
    interval: tuple[float, float]
    relative: float | None  # variant / holdout - 1 (None when the holdout has no conversions)
    relative_interval: tuple[float, float] | None
    p_value: float
    verdict: str
    reason: str


@dataclass(frozen=True)
class SampleRatio:
    observed: dict[str, int]  # visitors per arm
    expected: dict[str, float]  # configured share per arm
    p_value: float | None  # None when there are too few visitors to test
    note: str = ""

    @property
    def mismatch(self) -> bool:
        return self.p_value is not None and self.p_value < SRM_ALPHA


@dataclass(frozen=True)
class DailyLift:
    """Cumulative difference of a variant vs the holdout, with what was known at the end of `day`."""

    day: date
    arm: str
    difference: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class RuleLift:
    rule: str
    description: str
    holdout_percent: float | None  # configured; None when the rule is not in the rules directory
    arms: tuple[Arm, ...]
    comparisons: tuple[Comparison, ...]
    sample_ratio: SampleRatio | None
    daily: tuple[DailyLift, ...] = ()
    switched: int = 0  # visitors later exposed in another arm (counted in their first)
    notes: tuple[str, ...] = ()

    def arm(self, name: str) -> Arm | None:
        return next((a for a in self.arms if a.name == name), None)


@dataclass(frozen=True)
class LiftReport:
    source: str
    since_days: int
    window_days: float
    rows: int
    bad_rows: int
    rules: tuple[RuleLift, ...]
    currency: str = "USD"
    notes: tuple[str, ...] = field(default=())


def verdict(x1: float, n1: float, x0: float, n0: float, interval: tuple[float, float], p_value: float,
            min_conversions: int = MIN_CONVERSIONS) -> tuple[str, str]:
    """(verdict, reason) for a variant with x1 of n1 converted against a holdout with x0 of n0."""
    if min(x1, x0) < min_conversions:
        which = "the holdout" if x0 < min_conversions else "the variant"
        n = min(x1, x0)
        return NOT_ENOUGH_DATA, f"{which} has {n:.0f} conversion{'' if round(n) == 1 else 's'}; {min_conversions} needed per arm"
    low, high = interval
    if p_value < ALPHA and low > 0:
        return LIFT, f"p < {ALPHA} and the interval is above zero"
    if p_value < ALPHA and high < 0:
        return WORSE, f"p < {ALPHA} and the interval is below zero"
    half, baseline = (high - low) / 2, x0 / n0
    if half > MAX_RELATIVE_HALF_WIDTH * baseline:
        return NOT_ENOUGH_DATA, (f"interval too wide: +/-{half * 100:.2f} pp around a {baseline:.2%} baseline, "
                                 f"more than {MAX_RELATIVE_HALF_WIDTH:.0%} of it")
    return NO_LIFT, (f"the interval includes zero and is within +/-{MAX_RELATIVE_HALF_WIDTH:.0%} of the "
                     f"holdout's rate")


def _arm_name(row: Row) -> str:
    if row.group == HOLDOUT:
        return HOLDOUT
    if row.group == SHADOW:
        return SHADOW
    variant = row.variant or "0"
    return f"variant {variant if variant.isascii() and variant.isdigit() else '?'}"


def _arm_order(name: str) -> tuple[int, int, str]:
    if name == HOLDOUT:
        return (0, 0, name)
    if name.startswith("variant ") and name[8:].isdigit():
        return (1, int(name[8:]), name)
    return (2, 0, name)


@dataclass
class _Visitor:
    arm: str
    first: float  # first exposure
    weight: float
    converted_at: float | None = None
    converted_weight: float = 0.0
    revenue: float = 0.0


def _attribute(visitors: dict[str, _Visitor], conversions: Mapping[str, Sequence[Row]], window: float) -> None:
    for visitor_id, v in visitors.items():
        for c in conversions.get(visitor_id, ()):  # by time
            if v.first <= c.time <= v.first + window:
                if v.converted_at is None:
                    v.converted_at, v.converted_weight = c.time, v.weight * c.weight
                v.revenue += v.weight * c.weight * c.revenue


def _expected_shares(rule: Rule) -> dict[str, float]:
    treated = 1 - rule.holdout / 100
    weights = [w for w, _ in rule.variants] or [100.0]
    shares = {f"variant {i}": treated * w / sum(weights) for i, w in enumerate(weights)}
    return {HOLDOUT: rule.holdout / 100, **shares} if rule.holdout > 0 else shares


def sample_ratio(observed: Mapping[str, int], rule: Rule) -> SampleRatio | None:
    """The configured split against the visitors seen per arm (shadow visitors are not part of it)."""
    expected = _expected_shares(rule)
    seen = {name: n for name, n in observed.items() if name != SHADOW}
    if len(expected) < 2 and set(seen) <= set(expected):
        return None  # one arm: nothing to compare
    names = sorted(set(expected) | set(seen), key=_arm_order)
    counts = {name: seen.get(name, 0) for name in names}
    total = sum(counts.values())
    if total == 0:
        return None
    unexpected = [name for name in names if name not in expected]
    if unexpected:
        return SampleRatio(counts, expected, 0.0, f"visitors in {', '.join(unexpected)}, which the rule "
                                                  f"does not configure now (changed since?)")
    if min(expected[name] * total for name in names) < SRM_MIN_EXPECTED:
        return SampleRatio(counts, expected, None, "too few visitors to check the split")
    p = sample_ratio_p([counts[n] for n in names], [expected[n] for n in names])
    return SampleRatio(counts, expected, p)


def _daily(visitors: Iterable[_Visitor], arms: Sequence[str], end: float) -> tuple[DailyLift, ...]:
    """Cumulative lift per UTC day, from the first exposure's day to the day of `end`."""
    exposed: dict[str, list[tuple[float, float]]] = defaultdict(list)
    converted: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for v in visitors:
        exposed[v.arm].append((v.first, v.weight))
        if v.converted_at is not None:
            converted[v.arm].append((v.converted_at, v.converted_weight))
    if not exposed[HOLDOUT]:
        return ()
    series: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for name in (HOLDOUT, *arms):
        for data, key in ((exposed[name], "n"), (converted[name], "x")):
            data.sort()
            series[name, key] = ([t for t, _ in data], [0.0, *accumulate(w for _, w in data)])

    def upto(name: str, key: str, boundary: float) -> float:
        times, sums = series[name, key]
        return sums[bisect_left(times, boundary)]

    start = min(t for data in exposed.values() for t, _ in data)
    day = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(max(end, start), UTC).date()
    out: list[DailyLift] = []
    while day <= last:
        boundary = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + DAY
        n0, x0 = upto(HOLDOUT, "n", boundary), upto(HOLDOUT, "x", boundary)
        for name in arms:
            n1, x1 = upto(name, "n", boundary), upto(name, "x", boundary)
            if n0 > 0 and n1 > 0:
                out.append(DailyLift(day, name, x1 / n1 - x0 / n0, newcombe(x1, n1, x0, n0)))
        day += timedelta(days=1)
    return tuple(out)


def analyze_rule(rule_id: str, rows: Sequence[Row], conversions: Mapping[str, Sequence[Row]],
                 rule: Rule | None, window_days: float, end: float) -> RuleLift:
    """The lift of one rule from its rows (any order) and every visitor's conversions (by time)."""
    visitors: dict[str, _Visitor] = {}
    tallies: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    switched: set[str] = set()
    for row in sorted(rows, key=lambda r: r.time):
        name = _arm_name(row)
        if row.kind == "exposure" and row.visitor:
            seen = visitors.get(row.visitor)
            if seen is None:
                visitors[row.visitor] = _Visitor(name, row.time, row.weight)
            elif seen.arm != name:
                switched.add(row.visitor)
        elif row.kind in ("impression", "click", "dismiss"):
            tallies[name][row.kind] += row.weight
    _attribute(visitors, conversions, window_days * DAY)
    names = sorted({v.arm for v in visitors.values()} | set(tallies), key=_arm_order)
    arms = []
    for name in names:
        members = [v for v in visitors.values() if v.arm == name]
        t = tallies[name]
        arms.append(Arm(name, sum(v.weight for v in members), t["impression"], t["click"], t["dismiss"],
                        sum(v.converted_weight for v in members), sum(v.revenue for v in members), len(members)))
    holdout = next((a for a in arms if a.name == HOLDOUT and a.visitors > 0), None)
    variants = [a for a in arms if a.name.startswith("variant ") and a.visitors > 0]
    comparisons = []
    notes = []
    if holdout is None:
        configured = rule is not None and rule.holdout > 0
        notes.append("no holdout visitors yet" if configured else
                     "no holdout: nothing to measure lift against (set `holdout` in the rule)")
    else:
        for arm in variants:
            x1, n1, x0, n0 = arm.conversions, arm.visitors, holdout.conversions, holdout.visitors
            interval = newcombe(x1, n1, x0, n0)
            p = z_test(x1, n1, x0, n0)
            relative = (x1 / n1) / (x0 / n0) - 1 if x0 > 0 else None
            comparisons.append(Comparison(arm.name, x1 / n1 - x0 / n0, interval, relative,
                                          relative_interval(x1, n1, x0, n0), p, *verdict(x1, n1, x0, n0, interval, p)))
    if rule is None:
        notes.append("not in the rules directory: no configured split to check")
    observed = {a.name: a.sampled_visitors for a in arms if a.sampled_visitors}
    srm = sample_ratio(observed, rule) if rule is not None and observed else None
    daily = _daily(visitors.values(), [a.name for a in variants], end) if holdout else ()
    return RuleLift(rule_id, rule.description if rule else "", rule.holdout if rule else None, tuple(arms),
                    tuple(comparisons), srm, daily, len(switched), tuple(notes))


def analyze(events: Events, ruleset: RuleSet | None, window_days: float = 7, since_days: int = 30) -> LiftReport:
    """The lift report of every configured rule and every rule seen in the events."""
    by_rule: dict[str, list[Row]] = defaultdict(list)
    conversions: dict[str, list[Row]] = defaultdict(list)
    for row in events.rows:
        if row.kind == "conversion":
            conversions[row.visitor].append(row)
        elif row.rule:
            by_rule[row.rule].append(row)
    for rows in conversions.values():
        rows.sort(key=lambda r: r.time)
    configured = {r.id: r for r in ruleset.rules} if ruleset else {}
    end = max((r.time for r in events.rows), default=0.0)
    ids = [*configured, *sorted(set(by_rule) - set(configured))]
    results = tuple(analyze_rule(i, by_rule.get(i, []), conversions, configured.get(i), window_days, end) for i in ids)
    notes = (events.note,) if events.note else ()
    currency = ruleset.settings.currency if ruleset else "USD"
    return LiftReport(events.source, since_days, window_days, len(events.rows), events.bad_rows, results, currency,
                      notes)


# -- text -----------------------------------------------------------------------------------------


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
    head = f"WARNING sample ratio mismatch (p = {s.p_value:.2g})" if s.mismatch else f"sample ratio ok (p = {s.p_value:.2g})"
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
        head += f"  (holdout {r.holdout_percent:g}%)" if r.holdout_percent else "  (no holdout: lift cannot be measured)"
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
