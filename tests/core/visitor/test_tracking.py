from __future__ import annotations

import pytest

from nudge.keys import key32
from nudge.visitor.beacon import Beacon, Event, Item
from nudge.visitor.pages import Page
from nudge.visitor.tracking import (
    apply_beacon,
    categorize_late,
    credit_dwell,
    is_closed,
    parse_dwell_cookie,
    record_order,
    record_page_view,
    record_served,
    search_term,
    uncategorized_products,
)
from tests.core.factories import NOW, session


def test_page_views_count_categories_distinct_products_and_product_views() -> None:
    s = session()
    record_page_view(s, Page("category", "sneakers"), NOW)
    for product in ["a", "b", "a", "c"]:
        record_page_view(s, Page("product", "sneakers", product), NOW)
    stats = s.categories["sneakers"]
    assert stats.views == 1 and len(stats.products) == 3 and s.pages == 5
    assert [(p.id, p.views) for p in s.products] == [("b", 1), ("a", 2), ("c", 1)]


def test_dwell_is_credited_once_per_page_view_whatever_the_order() -> None:
    s = session()
    p1 = record_page_view(s, Page("product", "sneakers", "a"), NOW)
    p2 = record_page_view(s, Page("home"), NOW)
    assert credit_dwell(s, p1, 30, NOW)
    assert not credit_dwell(s, p1, 30, NOW)  # the same report twice (cookie and beacon)
    assert not credit_dwell(s, p1, 10, NOW)  # an older, smaller report arriving late
    assert credit_dwell(s, p1, 45, NOW)
    assert not credit_dwell(s, 999, 100, NOW)  # not a page view we served
    assert credit_dwell(s, p2, 100, NOW)  # home has no category: nothing credited
    assert s.categories["sneakers"].dwell == 45 and s.products[0].dwell == 45


def test_dwell_per_page_view_is_capped() -> None:
    s = session()
    pv = record_page_view(s, Page("category", "boots"), NOW)
    credit_dwell(s, pv, 10**6, NOW)
    assert s.categories["boots"].dwell == 1800


def test_dwell_cookie_parsing() -> None:
    assert parse_dwell_cookie("12.42") == (12, 42)
    for bad in (None, "", "abc", "12.", ".5", "12.-1", "12.1e3", "a.1", "123456.1", "1.9999999", "1.2.3"):
        assert parse_dwell_cookie(bad) is None


@pytest.mark.parametrize(
    ("query", "term"),
    [
        ("q=Red%20Shoes", "red shoes"),
        ("q=  TRAIL---running!!shoes  ", "trail running shoes"),
        ("search=x&q=", "x"),
        ("q=" + "a" * 500, "a" * 32),  # never more than 32 chars of free text
        ("q=%3Cscript%3E", "script"),
        ("page=2", None),
        ("q=!!!", None),
    ],
)
def test_search_terms_are_normalized_and_truncated(query: str, term: str | None) -> None:
    assert search_term(query) == term


def test_visit_source_comes_from_the_first_page_only() -> None:
    s = session()
    record_page_view(s, Page("home"), NOW, "utm_source=Newsletter&utm_medium=e-mail&utm_campaign=Black%20Friday!",
                     "https://www.Google.com/search?q=x", "shop.example")
    record_page_view(s, Page("home"), NOW, "utm_source=other", "https://bing.com/", "shop.example")
    assert (s.source.utm_source, s.source.utm_medium, s.source.utm_campaign) == ("newsletter", "e-mail", "black-friday")
    assert s.source.referrer == "google.com"
    s2 = session()
    record_page_view(s2, Page("home"), NOW, "", "https://shop.example/cart", "shop.example")
    assert s2.source.referrer is None  # our own site is not a referrer


@pytest.mark.parametrize("referrer", ["http://[", "https://[::1", "A://[", "http://x]/"])
def test_a_referrer_that_is_not_a_url_is_no_referrer(referrer: str) -> None:
    s = session()
    record_page_view(s, Page("home"), NOW, "utm_source=x", referrer, "shop.example")
    assert s.source.referrer is None and s.source.utm_source == "x" and s.pages == 1


def test_cart_events_value_age_and_purchase() -> None:
    s = session()
    add = Event("add_to_cart", (Item("a", 2), Item("b", 1)), 30.0)
    apply_beacon(s, Beacon(None, None, (add,)), NOW)
    assert s.cart_items == 3 and s.cart_value == 3000 and s.cart_changed == NOW
    apply_beacon(s, Beacon(None, None, (Event("remove_from_cart", (Item("a", 5),), 20.0),)), NOW + 60)
    assert s.cart == {"b": 1} and s.cart_value == 1000 and s.cart_changed == NOW + 60
    apply_beacon(s, Beacon(None, None, (Event("begin_checkout"), Event("purchase", value=10.0))), NOW + 120)
    # issue 15: the browser's purchase moves nothing; the shop's confirmed order does
    assert s.checkout_started and s.cart == {"b": 1} and s.orders == 0 and s.revenue == 0
    record_order(s, 10.0, NOW + 120)
    assert s.cart == {} and s.cart_value == 0 and s.orders == 1 and s.revenue == 1000
    assert not s.checkout_started


def test_nudge_events() -> None:
    s = session()
    record_served(s, "r", revealed=False)
    apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule="r"), Event("nudge_dismissed", rule="r"))), NOW)
    assert s.shown.get(key32("r"), 0) == 1 and is_closed(s, "r") and not is_closed(s, "other")


def test_dwell_reaches_a_product_whose_id_is_longer_than_the_session_keeps() -> None:
    s = session()
    long_id = "a-very-long-product-slug-of-forty-chars-x"
    pv = record_page_view(s, Page("product", "sneakers", long_id), NOW)
    assert credit_dwell(s, pv, 30, NOW + 30)
    assert [(p.id, p.dwell) for p in s.products] == [(long_id[:32], 30)] and s.categories["sneakers"].dwell == 30


def test_a_products_first_view_counts_once_its_category_is_known() -> None:
    """Its page declared the category in markup nudge read while the page streamed: the view and
    the dwell already credited move to that category, once."""
    s = session()
    pv = record_page_view(s, Page("product", None, "mystery-shoe"), NOW)
    credit_dwell(s, pv, 40, NOW + 40)
    assert uncategorized_products(s) == ["mystery-shoe"] and "sneakers" not in s.categories
    assert categorize_late(s, "mystery-shoe", "sneakers", NOW + 41)
    stats = s.categories["sneakers"]
    assert stats.dwell == 40 and len(stats.products) == 1 and uncategorized_products(s) == []
    assert not categorize_late(s, "mystery-shoe", "sneakers", NOW + 42)  # once
    credit_dwell(s, pv, 70, NOW + 70)  # later dwell of that page now counts for the category
    assert s.categories["sneakers"].dwell == 70
