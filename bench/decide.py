"""Rule decision time at 10, 100, 1,000 and 10,000 rules, and condition evaluation against the
PyPI `rule-engine` package on the same conditions, same run.

    .venv/bin/python bench/decide.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import rule_engine  # noqa: E402

from nudge.attributes import visitor_attributes  # noqa: E402
from nudge.conditions import evaluate  # noqa: E402
from nudge.decide import decide  # noqa: E402
from nudge.pages import PAGE_TYPES, Page  # noqa: E402
from nudge.rules import load_ruleset  # noqa: E402
from tests.core.factories import repo_rule_files, typical_visit  # noqa: E402

NOW = 1_790_000_000
CATEGORIES = ("sneakers", "boots", "accessories")
OPS = {"$gte": ">=", "$lt": "<", "$eq": "=="}


def make_rules(n: int, rng: random.Random) -> tuple[dict[str, str], list[tuple[dict, str]]]:
    """n rule files with two-clause conditions, spread over page types, and the same conditions
    as rule-engine expressions."""
    files = {"pages.toml": repo_rule_files()["pages.toml"]}
    conditions = []
    for i in range(n):
        cat, op = rng.choice(CATEGORIES), rng.choice(list(OPS))
        threshold, items = rng.randint(0, 600), rng.randint(0, 3)
        cond = {f"category.{cat}.dwell_seconds": {op: threshold}, "cart.items": {"$lt": items}}
        expr = f"category.{cat}.dwell_seconds {OPS[op]} {threshold} and cart.items < {items}"
        conditions.append((cond, expr))
        pages = rng.sample(PAGE_TYPES, 2)
        files[f"r{i:05d}.toml"] = (
            f'id = "r{i}"\npages = {pages!r}\ntrigger = "exit_intent"\npriority = {rng.randint(0, 9)}\n'
            f'[when]\n"category.{cat}.dwell_seconds" = {{ "{op}" = {threshold} }}\n"cart.items" = {{ "$lt" = {items} }}\n'
            '[action]\nkind = "banner"\ntitle = "t"\n'
        ).replace("'", '"')
    return files, conditions


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> int:
    rng = random.Random(3)
    session = typical_visit()
    for cat in CATEGORIES:
        session.category(cat, NOW)
    print(f"{'rules':>7} {'decide p50 us':>14} {'p99 us':>8} {'no match p50':>13} {'p99 us':>8} "
          f"{'eval all: nudge ms':>19} {'rule-engine ms':>15} {'ratio':>6}")
    for n in (10, 100, 1_000, 10_000):
        files, conditions = make_rules(n, rng)
        ruleset = load_ruleset(files)
        page = Page("product", "sneakers", "aero-runner")
        attributes = visitor_attributes(session, page, None, NOW)
        runs = 2000 if n <= 1000 else 200
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            decide(ruleset, attributes, page, session, NOW)
            times.append((time.perf_counter() - start) * 1e6)
        # The worst case: nothing matches, so every candidate rule is evaluated.
        full = {**attributes, "cart": {**attributes["cart"], "items": 99}}
        misses = []
        for _ in range(runs):
            start = time.perf_counter()
            decided = decide(ruleset, full, page, session, NOW)
            misses.append((time.perf_counter() - start) * 1e6)
        assert decided == []
        compiled = [rule_engine.Rule(expr) for _, expr in conditions]
        start = time.perf_counter()
        ours = [evaluate(cond, attributes) for cond, _ in conditions]
        ours_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        theirs = [r.matches(attributes) for r in compiled]
        theirs_ms = (time.perf_counter() - start) * 1000
        assert ours == theirs, "the two engines disagree"
        print(f"{n:>7} {pct(times, 50):>14.1f} {pct(times, 99):>8.1f} {pct(misses, 50):>13.1f} {pct(misses, 99):>8.1f} "
              f"{ours_ms:>19.2f} {theirs_ms:>15.2f} {theirs_ms / ours_ms:>5.1f}x")
    print("decide: one product page against the whole rule set (index by page type, then conditions,")
    print("stopping at the page's limit of 2 nudges); no match: the full scan of every candidate;")
    print("eval all: every rule's condition once with nudge.conditions and with rule-engine (precompiled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
