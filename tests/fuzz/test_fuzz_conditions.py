"""Fuzzing the condition evaluator: over any JSON condition and any attributes it returns a bool
and never raises (GrowthBook: bad input is false), and the compiled form used for decisions agrees
with the evaluator used by /_nudge/explain."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nudge.rules.conditions import OPERATORS, compile_condition, evaluate

from .profile import fuzz
from .strategies import JSON_SCALARS

FIELDS = st.sampled_from(["x", "y", "x.z", "list", "missing.path", "page.type"]) | st.text(max_size=3)
SCALARS = JSON_SCALARS | st.sampled_from(["1", "2.0", "1.2.3", "v1.0.0-beta+x", "a{4294967296}", "(", "[a-", "a*b", ""])
ARGS = SCALARS | st.lists(SCALARS, max_size=3)
OPERATOR_NAMES = st.sampled_from([*OPERATORS, "$bogus"])
LEAVES = st.one_of(
    st.builds(lambda f, ops: {f: ops}, FIELDS, st.dictionaries(OPERATOR_NAMES, ARGS, min_size=1, max_size=2)),
    st.builds(lambda f, v: {f: v}, FIELDS, ARGS | st.dictionaries(st.text(max_size=2), SCALARS, max_size=2)),
)
CONDITIONS = st.recursive(LEAVES, lambda inner: st.one_of(
    st.builds(lambda op, items: {op: items}, st.sampled_from(["$and", "$or", "$nor"]),
              st.lists(inner, max_size=3) | SCALARS),
    st.builds(lambda c: {"$not": c}, inner | SCALARS),
    st.builds(lambda a, b: {**a, **b}, inner, inner),
    st.builds(lambda f, op, c: {f: {op: c}}, FIELDS, st.sampled_from(["$elemMatch", "$not", "$size", "$all", "$or"]),
              inner | st.lists(inner, max_size=2)),
), max_leaves=8)
ELEMENTS = SCALARS | st.dictionaries(st.sampled_from(["x", "y"]), SCALARS, max_size=2)
ATTRIBUTES = st.fixed_dictionaries({}, optional={
    "x": SCALARS | st.fixed_dictionaries({}, optional={"z": ARGS}),
    "y": ARGS,
    "list": st.lists(ELEMENTS, max_size=4),
    "page": st.fixed_dictionaries({}, optional={"type": SCALARS}),
})


@fuzz(CONDITIONS, ATTRIBUTES, st.dictionaries(st.text(max_size=3), st.lists(SCALARS, max_size=3), max_size=2))
def test_evaluator_and_compiled_conditions(condition: dict[str, Any], attributes: dict[str, Any],
                                           groups: dict[str, list[Any]]) -> None:
    result = evaluate(condition, attributes, groups)
    assert result is True or result is False
    assert compile_condition(condition, groups)(attributes) is result
