"""GrowthBook's own vectors, one test per case, plus nudge-specific guarantees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.conditions import evaluate, hash

CASES = json.loads((Path(__file__).parent.parent / "data" / "growthbook-cases.json").read_text())


@pytest.mark.parametrize("case", CASES["evalCondition"], ids=[c[0] for c in CASES["evalCondition"]])
def test_growthbook_eval_condition(case: list) -> None:
    name, condition, attributes, expected = case[:4]
    groups = case[4] if len(case) > 4 else None
    assert evaluate(condition, attributes, groups) is expected


@pytest.mark.parametrize("case", CASES["hash"], ids=[f"{c[0]}|{c[1]}|v{c[2]}" for c in CASES["hash"]])
def test_growthbook_hash(case: list) -> None:
    seed, value, version, expected = case
    assert hash(seed, value, version) == expected


@pytest.mark.parametrize(
    "condition",
    [
        {"a": {"$gt": object()}},  # not JSON at all
        {"a": {"$regex": "("}},  # invalid regex
        {"$or": 5},  # wrong shape
        {"a": {"$unknown": 1}},  # unknown operator
    ],
)
def test_bad_conditions_are_false_not_errors(condition: dict) -> None:
    assert evaluate(condition, {"a": 1}) is False


def test_dotted_paths_reach_nested_attributes() -> None:
    attrs = {"category": {"sneakers": {"dwell_seconds": 301}}}
    assert evaluate({"category.sneakers.dwell_seconds": {"$gte": 300}}, attrs)
    assert not evaluate({"category.boots.dwell_seconds": {"$gte": 300}}, attrs)
