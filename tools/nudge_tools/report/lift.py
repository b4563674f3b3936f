"""`nudge report`: the incremental lift of each rule over its holdout, from the events the Worker
writes to Workers Analytics Engine (docs/events.md).

Rows come from the local runtime's JSON lines or from the Analytics Engine SQL API (`--remote`,
sources.py); both become the same `Row`s and go through the same computation.

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

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from nudge.rules.model import Rule, RuleSet
from nudge_tools.report.sources import DAY, Events, Row
from nudge_tools.report.stats import CONFIDENCE, newcombe, relative_interval, sample_ratio_p, wilson, z_test

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
        plural = "" if round(n) == 1 else "s"
        return NOT_ENOUGH_DATA, f"{which} has {n:.0f} conversion{plural}; {min_conversions} needed per arm"
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
