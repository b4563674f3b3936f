from __future__ import annotations

from nudge.beacon import Beacon, Event, Item
from nudge.pages import Page
from nudge.tracking import apply_beacon, credit_dwell, parse_dwell_cookie, record_page_view

from .factories import NOW, session


def test_page_views_count_categories_and_distinct_products() -> None:
    s = session()
    record_page_view(s, Page("category", "sneakers"), "p1", NOW)
    for i, product in enumerate(["a", "b", "a", "c"]):
        record_page_view(s, Page("product", "sneakers", product), f"p{i + 2}", NOW)
    stats = s.categories["sneakers"]
    assert stats.views == 1 and stats.products == ["b", "a", "c"] and s.pages == 5


def test_dwell_is_credited_once_per_page_view_whatever_the_order() -> None:
    s = session()
    record_page_view(s, Page("product", "sneakers", "a"), "p1", NOW)
    record_page_view(s, Page("home"), "p2", NOW)
    assert credit_dwell(s, "p1", 30, NOW)
    assert not credit_dwell(s, "p1", 30, NOW)  # the same report twice (cookie and beacon)
    assert not credit_dwell(s, "p1", 10, NOW)  # an older, smaller report arriving late
    assert credit_dwell(s, "p1", 45, NOW)
    assert not credit_dwell(s, "unknown", 100, NOW)  # not a page view we served
    assert credit_dwell(s, "p2", 100, NOW)  # home has no category: nothing credited
    assert s.categories["sneakers"].dwell == 45


def test_dwell_per_page_view_is_capped() -> None:
    s = session()
    record_page_view(s, Page("category", "boots"), "p1", NOW)
    credit_dwell(s, "p1", 10**6, NOW)
    assert s.categories["boots"].dwell == 1800


def test_dwell_cookie_parsing() -> None:
    assert parse_dwell_cookie("abc.42") == ("abc", 42)
    for bad in (None, "", "abc", "abc.", ".5", "abc.-1", "abc.1e3", "a" * 80 + ".1", "abc.9999999"):
        assert parse_dwell_cookie(bad) is None


def test_cart_events_and_purchase() -> None:
    s = session()
    add = Event("add_to_cart", (Item("a", 2), Item("b", 1)))
    apply_beacon(s, Beacon(None, None, (add,)), NOW)
    assert s.cart_items == 3
    apply_beacon(s, Beacon(None, None, (Event("remove_from_cart", (Item("a", 5),)),)), NOW)
    assert s.cart == {"b": 1}
    apply_beacon(s, Beacon(None, None, (Event("begin_checkout"), Event("purchase", value=10))), NOW)
    assert s.cart == {} and s.orders == 1 and not s.checkout_started


def test_nudge_events() -> None:
    s = session()
    apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule="r"), Event("nudge_dismissed", rule="r"))), NOW)
    assert s.shown == {"r": 1} and s.closed == ["r"]
