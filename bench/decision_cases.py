"""Rule sets and timings shared by bench/decide.py (CPython) and bench/pyodide_decide.mjs (Pyodide).

Plain nudge imports only, so the same code runs in both interpreters.
"""

from __future__ import annotations

import random
import statistics
import time

from nudge.rules.decide import decide
from nudge.rules.load import load_ruleset
from nudge.visitor.attributes import visitor_attributes
from nudge.visitor.pages import PAGE_TYPES, Page
from nudge_tools.visits import repo_rule_files, typical_visit

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
            f'[when]\n"category.{cat}.dwell_seconds" = {{ "{op}" = {threshold} }}\n'
            f'"cart.items" = {{ "$lt" = {items} }}\n'
            '[action]\nkind = "banner"\ntitle = "t"\n'
        ).replace("'", '"')
    return files, conditions


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def time_decisions(n: int, rng: random.Random) -> tuple[list[float], list[float], list[tuple[dict, str]], dict]:
    """(typical times µs, no-match times µs, conditions, attributes) for n generated rules."""
    files, conditions = make_rules(n, rng)
    ruleset = load_ruleset(files)
    session = typical_visit()
    for cat in CATEGORIES:
        session.category(cat, NOW)
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
    return times, misses, conditions, attributes


def table_row(n: int, times: list[float], misses: list[float]) -> str:
    return f"{n:>7} {pct(times, 50):>14.1f} {pct(times, 99):>8.1f} {pct(misses, 50):>13.1f} {pct(misses, 99):>8.1f}"
