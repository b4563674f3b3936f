"""The canonical story's rule, decided from the session alone."""

from __future__ import annotations

from nudge.rules.decide import decide
from nudge.visitor.attributes import visitor_attributes
from nudge.visitor.beacon import Beacon, Event
from nudge.visitor.pages import Page
from nudge.visitor.session import Session
from nudge.visitor.tracking import apply_beacon, close_rule, credit_dwell, record_page_view, record_served
from tests.core.factories import NOW, repo_ruleset, session

RULES = repo_ruleset()
RULE_ID = "sneakers-exit-intent"


def browse(products: int, dwell: int) -> tuple[Session, Page]:
    s = session()
    page = Page("category", "sneakers")
    pv = record_page_view(s, page, NOW)
    credit_dwell(s, pv, dwell, NOW)
    for i in range(products):
        page = Page("product", "sneakers", f"p{i}")
        record_page_view(s, page, NOW)
    return s, page


def nudges(s: Session, page: Page) -> dict[str, int]:
    """The story rule's decision (the other repo rules are tested with their own rule sets)."""
    decided = decide(RULES, visitor_attributes(s, page, None, NOW), page, s, NOW)
    return {n.rule.id: n.min_dwell for n in decided if n.rule.id == RULE_ID}


def test_three_products_and_five_minutes_show_now() -> None:
    assert nudges(*browse(3, 300)) == {RULE_ID: 0}


def test_three_products_and_less_time_wait_for_the_rest_on_this_page() -> None:
    assert nudges(*browse(3, 100)) == {RULE_ID: 200}
    assert nudges(*browse(4, 0)) == {RULE_ID: 300}


def test_two_products_never_match_however_long() -> None:
    assert nudges(*browse(2, 1000)) == {}


def test_cart_not_empty_never_matches() -> None:
    s, page = browse(3, 300)
    s.cart["x"] = 1
    assert nudges(s, page) == {}


def test_other_pages_and_categories_do_not_get_it() -> None:
    s, _ = browse(3, 300)
    assert nudges(s, Page("cart")) == {}
    boots = Page("category", "boots")
    record_page_view(s, boots, NOW)
    assert nudges(s, boots) == {RULE_ID: 0}  # already qualified: exit intent anywhere in the flow
    s2, _ = browse(3, 100)
    record_page_view(s2, boots, NOW)
    assert nudges(s2, boots) == {}  # time on boots does not count as time on sneakers


def test_caps_shown_or_closed_stop_it() -> None:
    s, page = browse(3, 300)
    record_served(s, RULE_ID, revealed=False)  # beacons count only for a nudge the edge served
    apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule=RULE_ID),)), NOW)
    assert nudges(s, page) == {}
    s, page = browse(3, 300)
    close_rule(s, RULE_ID)
    assert nudges(s, page) == {}
