"""Which nudges a page gets: rule matching, caps, and the one-modal-per-page governor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .attributes import with_extra_dwell
from .conditions import evaluate
from .pages import Page
from .rules import Rule, RuleSet
from .session import MAX_DWELL_PER_PAGE, Session
from .tracking import is_closed, times_shown


@dataclass(frozen=True)
class Nudge:
    rule: Rule
    min_dwell: int  # visible seconds on this page before the client may reveal it (0: now)


def decide(ruleset: RuleSet, attributes: dict[str, Any], page: Page, session: Session) -> list[Nudge]:
    """The nudges to render into this page, highest priority first; at most one modal."""
    chosen: list[Nudge] = []
    has_modal = False
    for rule in ruleset.rules:
        if not rule.enabled or (rule.pages and page.type not in rule.pages):
            continue
        if is_closed(session, rule.id) or times_shown(session, rule.id) >= rule.per_session:
            continue
        if rule.action.kind == "modal" and has_modal:
            continue
        wait = _seconds_until_match(rule, attributes, page)
        if wait is None:
            continue
        chosen.append(Nudge(rule, wait))
        has_modal = has_modal or rule.action.kind == "modal"
    return chosen


def _seconds_until_match(rule: Rule, attributes: dict[str, Any], page: Page) -> int | None:
    """0 when the rule matches now; for a rule revealed by a client trigger, the least number of
    further seconds on this page after which it matches (dwell grows while the page is open);
    None when staying on this page cannot make it match."""
    if evaluate(rule.when, attributes):
        return 0
    if rule.trigger == "page_load" or not page.category:
        return None

    def matches_after(seconds: int) -> bool:
        return evaluate(rule.when, with_extra_dwell(attributes, page.category or "", seconds))

    if not matches_after(MAX_DWELL_PER_PAGE):
        return None
    low, high = 1, MAX_DWELL_PER_PAGE  # matches_after(high) holds; find the least such second
    while low < high:
        mid = (low + high) // 2
        if matches_after(mid):
            high = mid
        else:
            low = mid + 1
    return high
