"""GrowthBook-compatible targeting conditions and bucketing hash.

A condition is a MongoDB-like dict evaluated over visitor attributes (dotted paths reach into nested
dicts). Semantics follow GrowthBook's spec, checked against its cross-SDK vectors in
tests/data/growthbook-cases.json: missing attributes compare as null, numbers and numeric strings
compare as numbers, unknown operators and bad input evaluate to False. The evaluator never raises.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["OPERATORS", "bucket_hash", "compile_condition", "evaluate", "is_operator_object"]

SavedGroups = Mapping[str, list[Any]]


def evaluate(condition: Mapping[str, Any], attributes: Mapping[str, Any],
             saved_groups: SavedGroups | None = None) -> bool:
    """True when `attributes` satisfy `condition`."""
    try:
        return _eval_condition(attributes, condition, saved_groups or {})
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError, re.error):
        return False


def is_operator_object(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(str(k).startswith("$") for k in obj)


def _eval_condition(attributes: Any, condition: Mapping[str, Any], groups: SavedGroups) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for key, value in condition.items():
        if key == "$or":
            if not _eval_or(attributes, value, groups):
                return False
        elif key == "$nor":
            if _eval_or(attributes, value, groups):
                return False
        elif key == "$and":
            if not all(_eval_condition(attributes, c, groups) for c in _conditions(value)):
                return False
        elif key == "$not":
            if _eval_condition(attributes, value, groups):
                return False
        elif not _eval_value(value, _get_path(attributes, key), groups):
            return False
    return True


def _eval_or(attributes: Any, conditions: list[Any], groups: SavedGroups) -> bool:
    return not _conditions(conditions) or any(_eval_condition(attributes, c, groups) for c in conditions)


def _conditions(value: Any) -> list[Any]:
    """The list `$and`, `$or` and `$nor` take; anything else makes the whole condition false
    (`{"$or": null}` was true for the evaluator and false once compiled)."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list of conditions, got {type(value).__name__}")
    return value


def _get_path(attributes: Any, path: str) -> Any:
    current = attributes
    for segment in path.split("."):
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
        else:
            return None
    return current


def _eval_value(condition_value: Any, attribute_value: Any, groups: SavedGroups) -> bool:
    if is_operator_object(condition_value):
        return all(
            _eval_operator(op, attribute_value, arg, groups) for op, arg in condition_value.items()
        )
    return _json_equal(condition_value, attribute_value)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _compare(a: Any, b: Any) -> int:
    """GrowthBook's comparison: when one side is a number, the other is coerced (null -> 0)."""
    if _is_number(a) and not _is_number(b):
        b = 0 if b is None else float(b)
    elif _is_number(b) and not _is_number(a):
        a = 0 if a is None else float(a)
    if a > b:
        return 1
    if a < b:
        return -1
    return 0


def _padded_version(value: Any) -> str:
    if _is_number(value):
        value = str(value)
    if not value or not isinstance(value, str):
        value = "0"
    return _padded_text(value) if len(value) <= 64 else _pad(value)  # only short texts are cached


_VERSION_TRIM = re.compile(r"^v|\+.*$")
_VERSION_PARTS = re.compile(r"[-.]")


def _pad(text: str) -> str:
    """GrowthBook's padded version string: "v1.2.3+build" -> "    1-    2-    3-~" (compares as text)."""
    parts = _VERSION_PARTS.split(_VERSION_TRIM.sub("", text))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5, " ") if p.isascii() and p.isdigit() else p for p in parts)


# The same few version texts come back on every request (the app's version): padded once.
_padded_text = functools.lru_cache(maxsize=1024)(_pad)


def _is_in(candidates: Any, value: Any) -> bool:
    if not isinstance(candidates, list):
        return False
    if isinstance(value, list):
        return any(_json_equal(v, c) for v in value for c in candidates)
    return any(_json_equal(value, c) for c in candidates)


def _fold(value: Any) -> Any:
    """Case-folds strings (and strings in a list) for the case-insensitive operators."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value


def _elem_match(condition: Any, value: Any, groups: SavedGroups) -> bool:
    if not isinstance(value, list):
        return False
    if is_operator_object(condition):
        return any(_eval_value(condition, item, groups) for item in value)
    return any(_eval_condition(item, condition, groups) for item in value)


def _all(conditions: Any, value: Any, groups: SavedGroups) -> bool:
    if not isinstance(value, list) or not isinstance(conditions, list):
        return False
    return all(any(_eval_value(c, item, groups) for item in value) for c in conditions)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _regex(pattern: Any, value: Any, flags: int = 0) -> bool:
    if not isinstance(pattern, str) or not isinstance(value, str):
        return False
    try:
        return re.search(pattern, value, flags) is not None
    except (re.error, OverflowError):  # OverflowError: a repeat count like a{4294967296}
        return False


def _version(test: Callable[[str, str], bool]) -> Callable[[Any, Any, SavedGroups], bool]:
    return lambda attr, arg, _g: test(_padded_version(attr), _padded_version(arg))


# Version tests by operator: a compiled condition pads its own version once, when it loads.
_VERSION_TESTS: dict[str, Callable[[str, str], bool]] = {
    "$veq": operator.eq, "$vne": operator.ne, "$vgt": operator.gt,
    "$vgte": operator.ge, "$vlt": operator.lt, "$vlte": operator.le,
}


def _compiled_version(test: Callable[[str, str], bool], arg: Any) -> Callable[[Any, Any, SavedGroups], bool]:
    padded = _padded_version(arg)
    return lambda attr, _arg, _g: test(_padded_version(attr), padded)


def _cmp(test: Callable[[int], bool]) -> Callable[[Any, Any, SavedGroups], bool]:
    return lambda attr, arg, _g: test(_compare(attr, arg))


OPERATORS: dict[str, Callable[[Any, Any, SavedGroups], bool]] = {
    "$eq": _cmp(lambda c: c == 0),
    "$ne": _cmp(lambda c: c != 0),
    "$lt": _cmp(lambda c: c < 0),
    "$lte": _cmp(lambda c: c <= 0),
    "$gt": _cmp(lambda c: c > 0),
    "$gte": _cmp(lambda c: c >= 0),
    "$veq": _version(_VERSION_TESTS["$veq"]),
    "$vne": _version(_VERSION_TESTS["$vne"]),
    "$vgt": _version(_VERSION_TESTS["$vgt"]),
    "$vgte": _version(_VERSION_TESTS["$vgte"]),
    "$vlt": _version(_VERSION_TESTS["$vlt"]),
    "$vlte": _version(_VERSION_TESTS["$vlte"]),
    "$regex": lambda attr, arg, _g: _regex(arg, attr),
    "$regexi": lambda attr, arg, _g: _regex(arg, attr, re.IGNORECASE),
    "$notRegex": lambda attr, arg, _g: not _regex(arg, attr),
    "$notRegexi": lambda attr, arg, _g: not _regex(arg, attr, re.IGNORECASE),
    "$in": lambda attr, arg, _g: _is_in(arg, attr),
    "$nin": lambda attr, arg, _g: isinstance(arg, list) and not _is_in(arg, attr),
    "$ini": lambda attr, arg, _g: _is_in(_fold(arg), _fold(attr)),
    "$nini": lambda attr, arg, _g: isinstance(arg, list) and not _is_in(_fold(arg), _fold(attr)),
    "$alli": lambda attr, arg, g: _all(_fold(arg), _fold(attr), g),
    "$inGroup": lambda attr, arg, g: _is_in(g.get(arg, []) if isinstance(arg, str) else [], attr),
    "$notInGroup": lambda attr, arg, g: not _is_in(g.get(arg, []) if isinstance(arg, str) else [], attr),
    "$elemMatch": lambda attr, arg, g: _elem_match(arg, attr, g),
    "$size": lambda attr, arg, g: isinstance(attr, list) and _eval_value(arg, len(attr), g),
    "$all": lambda attr, arg, g: _all(arg, attr, g),
    "$exists": lambda attr, arg, _g: (attr is not None) if arg else (attr is None),
    "$type": lambda attr, arg, _g: _type_name(attr) == arg,
    "$not": lambda attr, arg, g: not _eval_value(arg, attr, g),
}


def _eval_operator(operator: str, attribute_value: Any, arg: Any, groups: SavedGroups) -> bool:
    fn = OPERATORS.get(operator)
    if fn is None:
        return False
    try:
        return fn(attribute_value, arg, groups)
    except (TypeError, ValueError):
        return False


Matcher = Callable[[Mapping[str, Any]], bool]
_FAST_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: bool(a == b), "$ne": lambda a, b: bool(a != b),
    "$lt": lambda a, b: bool(a < b), "$lte": lambda a, b: bool(a <= b),
    "$gt": lambda a, b: bool(a > b), "$gte": lambda a, b: bool(a >= b),
}


def compile_condition(condition: Mapping[str, Any], saved_groups: SavedGroups | None = None) -> Matcher:
    """`evaluate` with the condition's structure resolved once: paths split, operators looked up.
    Same results (checked against GrowthBook's vectors); rules are compiled when they load."""
    groups = saved_groups or {}
    try:
        check = _compile_condition(condition, groups)
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError):
        return lambda _attributes: False

    def matcher(attributes: Mapping[str, Any]) -> bool:
        try:
            return check(attributes)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError, re.error):
            return False

    return matcher


def _compile_condition(condition: Any, groups: SavedGroups) -> Callable[[Any], bool]:
    if not isinstance(condition, Mapping):
        return lambda _a: False
    clauses: list[Callable[[Any], bool]] = []
    for key, value in condition.items():
        if key == "$or":
            clauses.append(_compile_or(value, groups))
        elif key == "$nor":
            clauses.append(_negate(_compile_or(value, groups)))
        elif key == "$and":
            clauses.append(_all_of([_compile_condition(c, groups) for c in value]) if isinstance(value, list)
                           else _malformed(value))
        elif key == "$not":
            clauses.append(_negate(_compile_condition(value, groups)))
        else:
            clauses.append(_compile_field(tuple(key.split(".")), value, groups))
    return clauses[0] if len(clauses) == 1 else _all_of(clauses)


def _malformed(value: Any) -> Callable[[Any], bool]:
    """A part that fails the whole condition once evaluation reaches it, as `evaluate` does (a
    part that an earlier false clause skips makes no difference in either form)."""

    def check(_attributes: Any) -> bool:
        return bool(_conditions(value))  # raises TypeError

    return check


def _negate(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda a: not check(a)


def _all_of(checks: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    return lambda a: all(c(a) for c in checks)


def _compile_or(conditions: Any, groups: SavedGroups) -> Callable[[Any], bool]:
    if not isinstance(conditions, list):
        return _malformed(conditions)
    parts = [_compile_condition(c, groups) for c in conditions]
    if not parts:
        return lambda _a: True
    return lambda a: any(p(a) for p in parts)


def _compile_field(path: tuple[str, ...], condition_value: Any, groups: SavedGroups) -> Callable[[Any], bool]:
    def get(attributes: Any) -> Any:
        current = attributes
        for segment in path:
            if isinstance(current, dict):  # attributes are plain dicts: skip the ABC check
                current = current.get(segment)
                if current is None:
                    return None
            elif isinstance(current, Mapping) and segment in current:
                current = current[segment]
            else:
                return None
        return current

    if is_operator_object(condition_value):
        ops = [(_FAST_COMPARE.get(op) if _is_number(arg) else None,
                _compiled_version(_VERSION_TESTS[op], arg) if op in _VERSION_TESTS else OPERATORS.get(op), arg)
               for op, arg in condition_value.items()]
        if any(fn is None for _, fn, _ in ops):
            return lambda _a: False

        def check_ops(attributes: Any) -> bool:
            value = get(attributes)
            numeric = _is_number(value)
            for fast, fn, arg in ops:
                try:
                    if fast is not None and numeric:
                        if not fast(value, arg):  # number against number: no coercion to do
                            return False
                    elif not fn(value, arg, groups):  # type: ignore[misc]
                        return False
                except (TypeError, ValueError):
                    return False
            return True

        return check_ops
    return lambda a: _json_equal(condition_value, get(a))


def _fnv1a32(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def bucket_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's deterministic bucketing hash in [0, 1); None for an unknown version."""
    if version == 2:
        return (_fnv1a32(str(_fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (_fnv1a32(value + seed) % 1000) / 1000
    return None
