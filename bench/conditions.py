"""Condition evaluation beside GrowthBook's own Python SDK (PyPI `growthbook`), same conditions,
same attributes, same run: version operators, and a typical nudge condition. Prints microseconds
per evaluation (best of 5 rounds) and the ratio; results are checked equal first.

    .venv/bin/python bench/conditions.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from growthbook.core import evalCondition  # noqa: E402

from nudge.rules.conditions import compile_condition, evaluate  # noqa: E402

ATTRIBUTES: dict[str, Any] = {
    "app": {"version": "2.10.3"},
    "page": {"type": "product", "category": "sneakers"},
    "category": {"sneakers": {"products_viewed": 4, "dwell_seconds": 310}},
    "cart": {"items": 0, "value": 0.0},
    "device": "desktop",
    "country": "US",
}
CASES: dict[str, dict[str, Any]] = {
    "$vgt": {"app.version": {"$vgt": "2.9.12"}},
    "$veq (pre-release)": {"app.version": {"$veq": "2.10.3"}},
    "$vlt + $vgte": {"app.version": {"$vgte": "2.0.0", "$vlt": "3.0.0-rc.1"}},
    "typical story": {"page.category": "sneakers", "category.sneakers.products_viewed": {"$gte": 3},
                      "category.sneakers.dwell_seconds": {"$gte": 300}, "cart.items": 0,
                      "device": {"$in": ["desktop", "tablet"]}},
}
ROUNDS, N = 5, 20_000


def per_call_us(fn: Callable[[], bool]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(N):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / N * 1e6


def main() -> int:
    print(f"{'condition':<20} {'nudge compiled us':>18} {'nudge evaluate us':>18} {'growthbook us':>14} "
          f"{'compiled / growthbook':>22}")
    for name, condition in CASES.items():
        matcher = compile_condition(condition)
        expected = evalCondition(ATTRIBUTES, condition)
        assert matcher(ATTRIBUTES) == evaluate(condition, ATTRIBUTES) == expected, name
        # each lambda is timed before the next iteration rebinds the loop variables; bind them anyway
        ours = per_call_us(lambda m=matcher: m(ATTRIBUTES))
        interpreted = per_call_us(lambda c=condition: evaluate(c, ATTRIBUTES))
        theirs = per_call_us(lambda c=condition: evalCondition(ATTRIBUTES, c))
        print(f"{name:<20} {ours:>18.2f} {interpreted:>18.2f} {theirs:>14.2f} {ours / theirs:>21.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
