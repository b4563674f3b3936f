"""Measurement events (exposure, impression, click, dismiss, conversion) as Analytics Engine data
points; the column layout is documented in docs/events.md and read back by `nudge report`.

Events are decided here in plain Python and written by the edge (`writeDataPoint` in
`ctx.waitUntil`), server-side wherever possible so ad blockers cannot drop exposures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nudge.rules.bucketing import choose_variant
from nudge.rules.model import Rule


@dataclass(frozen=True)
class Event:
    kind: str  # exposure, impression, click, dismiss, conversion, conversion_unverified
    visitor: str
    rule: str = ""  # "" for a conversion (the report attributes it)
    variant: int | None = None
    group: str = ""  # treatment, holdout or shadow
    page_type: str = ""
    revenue: float = 0.0

    def data_point(self, rules_version: str, now: int) -> dict[str, Any]:
        """The Analytics Engine data point: index = rule id (the sampling key), blobs, doubles."""
        return {
            "indexes": [self.rule[:96]],
            "blobs": [self.kind, self.rule, "" if self.variant is None else str(self.variant), self.group,
                      self.visitor, self.page_type, rules_version[:64]],
            "doubles": [round(self.revenue, 2), float(now)],
        }


def variant_of(rule: Rule, visitor: str) -> int:
    """The visitor's sticky variant of a rule (0 when the rule has no variants)."""
    return choose_variant(rule.id, visitor, [w for w, _ in rule.variants]) if rule.variants else 0


def rule_event(kind: str, rule: Rule, visitor: str, page_type: str = "", group: str = "treatment") -> Event:
    return Event(kind, visitor, rule.id, variant_of(rule, visitor), group, page_type)
