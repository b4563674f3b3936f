"""GrowthBook's own vectors, one test per case, plus nudge-specific guarantees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.rules.conditions import bucket_hash, compile_condition, evaluate

CASES = json.loads((Path(__file__).parents[2] / "data" / "growthbook-cases.json").read_text())


@pytest.mark.parametrize("case", CASES["evalCondition"], ids=[c[0] for c in CASES["evalCondition"]])
def test_growthbook_eval_condition(case: list) -> None:
    name, condition, attributes, expected = case[:4]
    groups = case[4] if len(case) > 4 else None
    assert evaluate(condition, attributes, groups) is expected
    assert compile_condition(condition, groups)(attributes) is expected  # the compiled form agrees


@pytest.mark.parametrize("case", CASES["hash"], ids=[f"{c[0]}|{c[1]}|v{c[2]}" for c in CASES["hash"]])
def test_growthbook_hash(case: list) -> None:
    seed, value, version, expected = case
    assert bucket_hash(seed, value, version) == expected


@pytest.mark.parametrize(
    "condition",
    [
        {"a": {"$gt": object()}},  # not JSON at all
        {"a": {"$regex": "("}},  # invalid regex
        {"$or": 5},  # wrong shape
        {"$or": None},  # wrong shape, falsy: was true for the evaluator
        {"$or": ""},
        {"$nor": {}},
        {"$and": "ab"},
        {"a": {"$elemMatch": {"$or": 0}}},
        {"a": {"$regex": "a{4294967296}"}},  # a repeat count re.compile raises OverflowError for
        {"a": {"$unknown": 1}},  # unknown operator
    ],
)
def test_bad_conditions_are_false_not_errors(condition: dict) -> None:
    for attributes in ({"a": 1}, {"a": "aaa"}, {"a": [1]}):
        assert evaluate(condition, attributes) is False
        assert compile_condition(condition)(attributes) is False


def test_a_malformed_part_counts_where_evaluation_reaches_it_in_both_forms() -> None:
    skipped = {"$not": {"$not": {"a": 1}, "$and": None}}  # the inner $not is false first: $and is never read
    reached = {"$not": {"a": 1, "$and": None}}
    for condition, expected in ((skipped, True), (reached, False)):
        assert evaluate(condition, {"a": 1}) is expected
        assert compile_condition(condition)({"a": 1}) is expected


def test_dotted_paths_reach_nested_attributes() -> None:
    attrs = {"category": {"sneakers": {"dwell_seconds": 301}}}
    assert evaluate({"category.sneakers.dwell_seconds": {"$gte": 300}}, attrs)
    assert not evaluate({"category.boots.dwell_seconds": {"$gte": 300}}, attrs)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["a", "b", "1", "2.0", ""]))
PATHS = st.sampled_from(["x", "y", "x.z", "list", "missing.path"])
OPS = st.sampled_from(["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$exists", "$type",
                       "$size", "$elemMatch", "$all", "$regex", "$not", "$veq", "$vgt"])


def op_value(op: str) -> st.SearchStrategy[object]:
    if op in ("$in", "$nin", "$all"):
        return st.lists(SCALARS, max_size=3)
    if op in ("$size", "$elemMatch", "$not"):
        return st.dictionaries(st.sampled_from(["$gt", "$eq", "$lt"]), SCALARS, min_size=1, max_size=2)
    if op == "$regex":
        return st.sampled_from(["^a", "b$", "(", "1"])
    return SCALARS


FIELD_CONDITION = PATHS.flatmap(lambda p: st.one_of(
    SCALARS.map(lambda v: {p: v}),
    OPS.flatmap(lambda op: op_value(op).map(lambda v: {p: {op: v}})),
))
CONDITIONS = st.recursive(
    FIELD_CONDITION,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda cs: {"$or": cs}),
        st.lists(inner, max_size=3).map(lambda cs: {"$and": cs}),
        inner.map(lambda c: {"$not": c}),
        st.tuples(inner, inner).map(lambda t: {**t[0], **t[1]}),
    ),
    max_leaves=6,
)
ATTRIBUTES = st.fixed_dictionaries({
    "x": st.one_of(SCALARS, st.fixed_dictionaries({"z": SCALARS})),
    "y": SCALARS,
    "list": st.lists(SCALARS, max_size=4),
})


@settings(max_examples=500, deadline=None)
@given(CONDITIONS, ATTRIBUTES)
def test_compiled_conditions_agree_with_the_evaluator(condition: dict, attributes: dict) -> None:
    assert compile_condition(condition)(attributes) is evaluate(condition, attributes)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_hash_is_deterministic_and_in_range(seed: str, value: str) -> None:
    v1, v2 = bucket_hash(seed, value, 1), bucket_hash(seed, value, 2)
    assert v1 is not None and v2 is not None and 0 <= v1 < 1 and 0 <= v2 < 1
    assert (v1, v2) == (bucket_hash(seed, value, 1), bucket_hash(seed, value, 2))
    assert abs(v1 * 1000 - round(v1 * 1000)) < 1e-9 and abs(v2 * 1e4 - round(v2 * 1e4)) < 1e-9  # resolutions
    assert bucket_hash(seed, value, 3) is None
