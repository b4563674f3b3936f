from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.rules.bucketing import bucket, choose_variant, in_holdout, in_rollout
from nudge.rules.schedule import Schedule, is_active

VISITORS = [f"{i:016x}" for i in range(4000)]


def test_buckets_are_sticky_and_independent_per_rule_and_purpose() -> None:
    assert bucket("r", "holdout", "abc") == bucket("r", "holdout", "abc")
    assert bucket("r", "holdout", "abc") != bucket("r", "variant", "abc")
    assert bucket("r", "holdout", "abc") != bucket("s", "holdout", "abc")


def test_shares_follow_the_configured_percent() -> None:
    held = sum(in_holdout("rule", v, 10) for v in VISITORS) / len(VISITORS)
    rolled = sum(in_rollout("rule", v, 25) for v in VISITORS) / len(VISITORS)
    assert 0.08 < held < 0.12 and 0.22 < rolled < 0.28
    assert not any(in_holdout("rule", v, 0) for v in VISITORS[:100])
    assert all(in_rollout("rule", v, 100) for v in VISITORS[:100])


def test_variants_follow_weights() -> None:
    counts = Counter(choose_variant("rule", v, [1, 3]) for v in VISITORS)
    assert 0.22 < counts[0] / len(VISITORS) < 0.28 and set(counts) == {0, 1}
    assert choose_variant("rule", "x", [5]) == 0 and choose_variant("rule", "x", [0, 0]) == 0


@given(st.text(), st.lists(st.floats(0.01, 100), min_size=1, max_size=6))
def test_variant_index_is_always_valid(visitor: str, weights: list[float]) -> None:
    assert 0 <= choose_variant("rule", visitor, weights) < len(weights)


NY = ZoneInfo("America/New_York")


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=NY).timestamp())


@pytest.mark.parametrize(
    ("schedule", "now", "active"),
    [
        (Schedule(), at(2026, 11, 23, 3), True),
        (Schedule(start=at(2026, 11, 27)), at(2026, 11, 26, 23), False),
        (Schedule(start=at(2026, 11, 27)), at(2026, 11, 27), True),
        (Schedule(end=at(2026, 11, 30)), at(2026, 11, 30), False),
        (Schedule(timezone="America/New_York", weekdays=frozenset({5, 6})), at(2026, 11, 28, 12), True),  # Sat
        (Schedule(timezone="America/New_York", weekdays=frozenset({5, 6})), at(2026, 11, 27, 12), False),  # Fri
        (Schedule(timezone="America/New_York", hours=(9, 17)), at(2026, 11, 23, 16), True),
        (Schedule(timezone="America/New_York", hours=(9, 17)), at(2026, 11, 23, 17), False),
        (Schedule(timezone="America/New_York", hours=(22, 6)), at(2026, 11, 23, 23), True),
        (Schedule(timezone="America/New_York", hours=(22, 6)), at(2026, 11, 23, 12), False),
    ],
)
def test_schedules(schedule: Schedule, now: int, active: bool) -> None:
    assert is_active(schedule, now) is active
