"""Lift simulation: does `nudge report` find a known lift, and claim none when there is none?

Synthetic visitors (tools/nudge_tools/traffic.py) go through nudge on workerd in front of a small
origin; the Worker buckets them (50% holdout), shows the banner or not, and writes exposures,
impressions and conversions; each visitor converts independently with a known probability.

- scenario A: 4% base, +1 point when the banner was shown (power printed below);
- scenario B: 4% base, no lift, as many visitors (so "no lift" rules out effects of that size).

Both are reported with the functions `nudge report` uses, on the events the Worker wrote. Running
the runtime dozens of times would take too long, so the repeated-run figures come from disjoint
replicates: each scenario's visitors are split by a hash of their visitor id into `--runs`
groups, each reported on its own as an experiment of that size (independent: no visitor is in
two, and bucketing and conversions are per visitor). B's replicates give the false-positive rate
("lift detected" with no true lift; nominal 2.5%, the upper half of a two-sided 5% test), A's the
coverage of the 95% interval; both with exact (Clopper-Pearson) 95% intervals. Conversions use
`--seed`; bucketing does not (visitor ids are random), so runs differ.

    .venv/bin/python bench/lift.py [--visitors 14000] [--runs 14] [--seed 1] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "tools")]  # this checkout's nudge and its tools

from scipy import stats  # noqa: E402

from nudge_tools.report.lift import ALPHA, LIFT, WORSE, RuleLift  # noqa: E402
from nudge_tools.report.sources import Events  # noqa: E402
from nudge_tools.report.text import rule_table  # noqa: E402
from nudge_tools.traffic import HOLDOUT_PERCENT, Run, Scenario, Simulation, exposure_groups, simulation  # noqa: E402

BASE, LIFT_POINTS = 0.04, 0.01


def power(p0: float, p1: float, n0: float, n1: float, alpha: float = ALPHA) -> float:
    """Chance that the report's two-sided pooled z-test finds p1 above p0 (normal approximation)."""
    z = stats.norm.ppf(1 - alpha / 2)
    pooled = (p0 * n0 + p1 * n1) / (n0 + n1)
    null_se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    se = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    return float(stats.norm.cdf((p1 - p0 - z * null_se) / se))


def visitors_for(target: float, p0: float, p1: float, holdout: float) -> int:
    """The fewest visitors for which `power` reaches `target` with this holdout share."""
    low, high = 2, 10_000_000
    while low < high:
        mid = (low + high) // 2
        if power(p0, p1, holdout * mid, (1 - holdout) * mid) >= target:
            high = mid
        else:
            low = mid + 1
    return low


def replicate(visitor: str, runs: int) -> int:
    """A visitor's replicate: a hash unrelated to the bucketing hash, so every replicate has both arms."""
    return int.from_bytes(hashlib.blake2b(visitor.encode(), digest_size=8).digest()) % runs


def rule_lift(sim: Simulation, events: Events, s: Scenario, runs: int | None = None, k: int = 0) -> RuleLift:
    keep = None if runs is None else (lambda v: replicate(v, runs) == k)
    return next(r for r in sim.report(events, keep).rules if r.rule == s.rule_id)


def exact(k: int, n: int) -> str:
    low, high = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k}/{n} = {k / n:.1%} (95% CI {low:.1%} to {high:.1%})"


def summarize(sim: Simulation, events: Events, run: Run) -> bool:
    """Prints the scenario's report and how it compares with the truth; False when the report's
    counts differ from what the generator did (a bug, not chance)."""
    s = run.scenario
    r = rule_lift(sim, events, s)
    print(f"\nscenario {s.name}: true conversion {s.base:.2%} held out, {s.base + s.lift:.2%} shown "
          f"({s.lift * 100:+.2f} pp); {len(run.visits):,} visitors, {run.requests:,} requests in "
          f"{run.seconds:.0f} s: {run.requests_per_second:.0f} requests/s, "
          f"{len(run.visits) / run.seconds:.0f} visitors/s")
    print("\n".join(rule_table(r, "USD")))
    holdout, treated = r.arm("holdout"), r.arm("variant 0")
    counted = [(a.visitors, a.conversions) if a else (0, 0) for a in (holdout, treated)]
    groups = exposure_groups(events, s.rule_id)
    agrees = counted == [run.arm(False), run.arm(True)] and all(
        groups.get(v.visitor) == ("treatment" if v.shown else "holdout") for v in run.visits)
    print(f"  report's visitors and conversions per arm = the generator's, banner seen <=> treatment: "
          f"{'yes' if agrees else 'NO'}")
    for c in r.comparisons:
        inside = c.interval[0] <= s.lift <= c.interval[1]
        print(f"  true lift {s.lift * 100:+.2f} pp inside the 95% CI: {'yes' if inside else 'no'}; "
              f"verdict: {c.verdict}")
    return agrees


def replicates(sim: Simulation, events: Events, s: Scenario, runs: int) -> list[RuleLift]:
    return [rule_lift(sim, events, s, runs, k) for k in range(runs)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visitors", type=int, default=14_000, help="per scenario (default 14000)")
    ap.add_argument("--runs", type=int, default=14, help="disjoint replicates per scenario (default 14)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the conversion draws")
    ap.add_argument("--concurrency", type=int, default=16, help="visitors in flight at once")
    args = ap.parse_args()
    if args.visitors < 2 or not 1 <= args.runs <= args.visitors:
        ap.error("need --visitors >= 2 and 1 <= --runs <= --visitors")
    share = HOLDOUT_PERCENT / 100
    p0, p1 = BASE, BASE + LIFT_POINTS
    print(f"holdout {HOLDOUT_PERCENT}% (equal arms: the most power for a given number of visitors)")
    print(f"power to detect {p0:.0%} -> {p1:.0%} (two-sided {ALPHA:.0%} z-test) with {args.visitors:,} visitors: "
          f"{power(p0, p1, share * args.visitors, (1 - share) * args.visitors):.1%}; "
          f"80% needs {visitors_for(0.8, p0, p1, share):,}, 90% needs {visitors_for(0.9, p0, p1, share):,}")
    a = Scenario("a-lift", BASE, LIFT_POINTS, args.visitors)
    b = Scenario("b-null", BASE, 0.0, args.visitors)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, simulation([a, b], Path(tmp)) as sim:
        runs = []
        for s in (a, b):
            print(f"running scenario {s.name}...", file=sys.stderr, flush=True)
            runs.append(sim.run(s, args.seed, args.concurrency,
                                lambda n: print(f"  {n:,} visitors", file=sys.stderr, flush=True)))
        sim.wait_for_events(runs)
        events = sim.events()
        agree = [summarize(sim, events, run) for run in runs]
        size = args.visitors / args.runs
        print(f"\nrepeated runs: each scenario's visitors split by visitor id into {args.runs} disjoint "
              f"replicates of ~{size:,.0f} visitors, each reported on its own")
        null = replicates(sim, events, b, args.runs)
        verdicts = [c.verdict for r in null for c in r.comparisons]
        print(f"  {b.name} (no lift): 'lift detected' {exact(verdicts.count(LIFT), len(verdicts))}: the "
              f"false-positive rate (nominal {ALPHA / 2:.1%}); significant either way "
              f"{exact(verdicts.count(LIFT) + verdicts.count(WORSE), len(verdicts))} (nominal {ALPHA:.0%})")
        lifted = replicates(sim, events, a, args.runs)
        comparisons = [c for r in lifted for c in r.comparisons]
        covered = sum(c.interval[0] <= a.lift <= c.interval[1] for c in comparisons)
        detected = sum(c.verdict == LIFT for c in comparisons)
        print(f"  {a.name} (+{a.lift * 100:.0f} pp): 95% CI contains the true lift {exact(covered, len(comparisons))}: "
              f"coverage (nominal 95%); lift detected {exact(detected, len(comparisons))} (power at this "
              f"size {power(p0, p1, share * size, (1 - share) * size):.0%})")
        for name, results in (("null", null), ("lift", lifted)):
            counts: dict[str, int] = {}
            for c in (c for r in results for c in r.comparisons):
                counts[c.verdict] = counts.get(c.verdict, 0) + 1
            print(f"  {name} replicates' verdicts: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    total = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    print(f"\ntraffic: {total:,} requests in {seconds:.0f} s ({total / seconds:.0f} requests/s, "
          f"{sum(len(r.visits) for r in runs) / seconds:.0f} visitors/s, {args.concurrency} in flight); "
          f"whole bench {time.perf_counter() - started:.0f} s")
    return 0 if all(agree) else 1


if __name__ == "__main__":
    sys.exit(main())
