"""Rule decision time at 10, 100, 1,000 and 10,000 rules, and condition evaluation against the
PyPI `rule-engine` package on the same conditions, same run.

    .venv/bin/python bench/decide.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "tools")]

import rule_engine  # noqa: E402

from bench.decision_cases import table_row, time_decisions  # noqa: E402
from nudge.rules.conditions import evaluate  # noqa: E402


def main() -> int:
    rng = random.Random(3)
    print(f"{'rules':>7} {'decide p50 us':>14} {'p99 us':>8} {'no match p50':>13} {'p99 us':>8} "
          f"{'eval all: nudge ms':>19} {'rule-engine ms':>15} {'ratio':>6}")
    for n in (10, 100, 1_000, 10_000):
        times, misses, conditions, attributes = time_decisions(n, rng)
        compiled = [rule_engine.Rule(expr) for _, expr in conditions]
        start = time.perf_counter()
        ours = [evaluate(cond, attributes) for cond, _ in conditions]
        ours_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        theirs = [r.matches(attributes) for r in compiled]
        theirs_ms = (time.perf_counter() - start) * 1000
        assert ours == theirs, "the two engines disagree"
        print(f"{table_row(n, times, misses)} {ours_ms:>19.2f} {theirs_ms:>15.2f} {theirs_ms / ours_ms:>5.1f}x")
    print("decide: one product page against the whole rule set (index by page type, then conditions,")
    print("stopping at the page's limit of 2 nudges); no match: the full scan of every candidate;")
    print("eval all: every rule's condition once with nudge.conditions and with rule-engine (precompiled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
