"""Sticky, per-rule assignment of visitors: rollout, holdout and variant, with GrowthBook's hash.

Each decision hashes the visitor id with its own seed (the rule id plus a purpose), so a visitor
keeps the same bucket on every request and device that shares the visitor id, and the buckets of
different rules (and of rollout vs holdout) are independent.
"""

from __future__ import annotations

from collections.abc import Sequence

from nudge.rules.conditions import bucket_hash


def bucket(rule_id: str, purpose: str, visitor: str) -> float:
    """The visitor's position in [0, 1) for this rule and purpose (GrowthBook hash version 2)."""
    value = bucket_hash(f"{rule_id}:{purpose}", visitor, 2)
    return 0.0 if value is None else value


def in_rollout(rule_id: str, visitor: str, percent: float) -> bool:
    return percent >= 100 or bucket(rule_id, "rollout", visitor) < percent / 100


def in_holdout(rule_id: str, visitor: str, percent: float) -> bool:
    return percent > 0 and bucket(rule_id, "holdout", visitor) < percent / 100


def choose_variant(rule_id: str, visitor: str, weights: Sequence[float]) -> int:
    """The index of the visitor's variant, proportional to `weights` (which need not sum to 1)."""
    total = sum(weights)
    if len(weights) <= 1 or total <= 0:
        return 0
    point = bucket(rule_id, "variant", visitor) * total
    edge = 0.0
    for i, weight in enumerate(weights):
        edge += weight
        if point < edge:
            return i
    return len(weights) - 1
