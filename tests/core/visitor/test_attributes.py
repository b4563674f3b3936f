"""Every derived attribute, from session, profile and request."""

from __future__ import annotations

import pytest

from nudge.visitor.attributes import RequestContext, device_class, engagement_score, intent_level, visitor_attributes
from nudge.visitor.beacon import Beacon, Event, Item
from nudge.visitor.pages import Page
from nudge.visitor.profile import Profile
from nudge.visitor.session import Session
from nudge.visitor.tracking import apply_beacon, credit_dwell, record_order, record_page_view
from tests.core.factories import NOW, session

DAY = 86_400
HOME = Page("home")


def attrs(s: Session | None = None, profile: Profile | None = None, page: Page = HOME,
          request: RequestContext | None = None, now: int = NOW) -> dict:
    return visitor_attributes(s or session(), page, profile, now, request)


def add(s: Session, value: float = 50.0) -> None:
    apply_beacon(s, Beacon(None, None, (Event("add_to_cart", (Item("x", 1),), value),)), NOW)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (None, (True, False, 1, None, "new")),
        (Profile(visits=1, last_seen=NOW), (True, False, 1, None, "new")),
        (Profile(visits=2, last_seen=NOW - 3 * DAY), (False, True, 2, 3, "active")),
        (Profile(visits=5, last_seen=NOW - 7 * DAY), (False, True, 5, 7, "active")),
        (Profile(visits=5, last_seen=NOW - 8 * DAY), (False, True, 5, 8, "dormant")),
        (Profile(visits=5, last_seen=NOW - 30 * DAY), (False, True, 5, 30, "dormant")),
        (Profile(visits=5, last_seen=NOW - 31 * DAY), (False, True, 5, 31, "lapsed")),
    ],
)
def test_visits_and_recency(profile: Profile | None, expected: tuple) -> None:
    s = session()
    s.is_new = False  # a later page of the visit: the profile already counts it
    v = attrs(s, profile=profile)["visitor"]
    assert (v["new"], v["returning"], v["visits"], v["days_since_last_visit"], v["recency"]) == expected


def test_the_landing_page_of_a_return_visit_already_counts_it() -> None:
    """On a visit's first page KV has not recorded the visit yet (nor the interest of the visit
    that just ended): the attributes count them, as the profile written for this page will."""
    ended = session(NOW - 2 * DAY)
    ended.categories["sneakers"] = ended.category("sneakers", NOW - 2 * DAY)
    ended.categories["sneakers"].views = 3
    s = session()
    s.ended = ended
    v = attrs(s, Profile(visits=1, last_seen=NOW - 2 * DAY))
    assert v["visitor"]["returning"] and v["visitor"]["visits"] == 2 and v["visitor"]["days_since_last_visit"] == 2
    assert v["category"]["sneakers"]["affinity"] > 0


@pytest.mark.parametrize(
    ("orders", "revenue", "redeemed", "buyer", "aov", "high", "sensitive"),
    [
        (0, 0, 0, "none", 0.0, False, False),
        (1, 99_00, 0, "first", 99.0, False, False),
        (2, 400_00, 1, "repeat", 200.0, True, True),
        (4, 400_00, 1, "repeat", 100.0, False, False),
        (3, 450_00, 2, "repeat", 150.0, True, True),
    ],
)
def test_buyer_aov_and_discount_sensitivity(orders: int, revenue: int, redeemed: int, buyer: str,
                                            aov: float, high: bool, sensitive: bool) -> None:
    v = attrs(profile=Profile(visits=2, orders=orders, revenue=revenue, offers_redeemed=redeemed))["visitor"]
    got = (v["buyer"], v["orders"], v["aov"], v["high_aov"], v["discount_sensitive"])
    assert got == (buyer, orders, aov, high, sensitive)


def test_orders_this_visit_count_too() -> None:
    s = session()
    record_order(s, 80.0, NOW)  # an order the shop confirmed (a browser's purchase beacon no longer counts)
    v = attrs(s, Profile(visits=3, orders=1, revenue=20_00))["visitor"]
    assert v["orders"] == 2 and v["revenue"] == 100.0 and v["aov"] == 50.0 and v["buyer"] == "repeat"


def test_intent_levels() -> None:
    s = session()
    assert intent_level(s, returning=False) == "low"
    record_page_view(s, Page("product", "sneakers", "a"), NOW)
    assert intent_level(s, returning=False) == "low"
    assert intent_level(s, returning=True) == "mid"  # a returning visitor looking at products
    record_page_view(s, Page("product", "sneakers", "a"), NOW)
    assert intent_level(s, returning=False) == "mid"  # the same product twice
    s2 = session()
    for p in "abc":
        record_page_view(s2, Page("product", "boots", p), NOW)
    assert intent_level(s2, returning=False) == "mid"  # three product views
    add(s2)
    assert intent_level(s2, returning=False) == "high"
    s3 = session()
    record_page_view(s3, Page("checkout"), NOW)
    assert attrs(s3)["visitor"]["intent"] == "high"


def test_engagement_score() -> None:
    s = session()
    assert engagement_score(s, 1) == 0
    pv = record_page_view(s, Page("product", "sneakers", "a"), NOW)  # 2 (page) + 4 (product view)
    credit_dwell(s, pv, 130, NOW)  # 2 whole minutes: 6
    assert engagement_score(s, 3) == 2 + 4 + 6 + 10  # two earlier visits: 10
    add(s)
    assert engagement_score(s, 3) == 32
    for _ in range(100):
        record_page_view(s, Page("home"), NOW)
    assert engagement_score(s, 3) == 100


def test_category_product_and_recent_products() -> None:
    s = session()
    pv = record_page_view(s, Page("category", "sneakers"), NOW - 100)
    credit_dwell(s, pv, 40, NOW - 60)
    for p in ("a", "b", "a"):
        record_page_view(s, Page("product", "sneakers", p), NOW - 50)
    a = attrs(s, Profile(visits=2, affinity={"sneakers": 12.345}), Page("product", "sneakers", "a"))
    assert a["category"]["sneakers"] == {"views": 1, "dwell_seconds": 40, "products_viewed": 2,
                                         "last_seen_seconds_ago": 50, "affinity": 12.35}
    assert a["product"] == {"b": {"views": 1, "dwell_seconds": 0}, "a": {"views": 2, "dwell_seconds": 0}}
    assert a["products"]["recent"] == ["a", "b"]
    assert a["page"] == {"type": "product", "path": "/", "category": "sneakers", "product": "a"}


def test_cart_attributes() -> None:
    s = session()
    assert attrs(s)["cart"] == {"items": 0, "lines": 0, "value": 0.0, "age_minutes": None, "age_seconds": None,
                                "checkout_started": False, "free_shipping_left": None}
    add(s, 59.5)
    assert attrs(s, now=NOW + 17 * 60)["cart"] == {"items": 1, "lines": 1, "value": 59.5, "age_minutes": 17,
                                                   "age_seconds": 1020, "checkout_started": False,
                                                   "free_shipping_left": None}


def test_free_shipping_left_needs_the_shops_threshold() -> None:
    s = session()
    add(s, 59.5)
    cart = visitor_attributes(s, Page("home"), None, NOW, free_shipping_over=75)["cart"]
    assert cart["free_shipping_left"] == 15.5
    add(s, 20)
    assert visitor_attributes(s, Page("home"), None, NOW, free_shipping_over=75)["cart"]["free_shipping_left"] == 0


def test_source_device_geo_and_local_time() -> None:
    s = session()
    record_page_view(s, HOME, NOW, "utm_source=ig&utm_medium=social&utm_campaign=spring",
                     "https://l.instagram.com/", "shop")
    ctx = RequestContext(path="/", user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
                         country="DE", timezone="Europe/Berlin")
    a = attrs(s, request=ctx, now=1_790_000_000)  # 2026-09-21 14:13 UTC, a Monday
    assert a["utm"] == {"source": "ig", "medium": "social", "campaign": "spring"}
    assert a["referrer"] == {"host": "l.instagram.com"}
    assert a["device"] == "mobile" and a["geo"] == {"country": "DE"}
    assert a["time"] == {"hour": 16, "weekday": "mon"}  # Berlin is UTC+2 in September
    assert attrs(s, now=1_790_000_000)["time"] == {"hour": 14, "weekday": "mon"}  # no cf: UTC
    assert attrs(s, request=RequestContext(timezone="Mars/Olympus"), now=1_790_000_000)["time"]["hour"] == 14


@pytest.mark.parametrize(
    ("ua", "device"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36", "desktop"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15", "desktop"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 Chrome/131.0 Safari/537.36", "tablet"),
        ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "tablet"),
        ("", "desktop"),
    ],
)
def test_device_class(ua: str, device: str) -> None:
    assert device_class(ua) == device


def test_searches_newest_first_and_session_duration() -> None:
    s = session()
    record_page_view(s, Page("search"), NOW, "q=boots")
    record_page_view(s, Page("search"), NOW + 10, "q=red sneakers")
    a = attrs(s, now=NOW + 95)
    assert a["session"] == {"pages": 2, "new": True, "duration_seconds": 95, "searches": ["red sneakers", "boots"]}


def test_an_order_already_in_the_profile_is_not_counted_twice() -> None:
    s = session()
    s.orders, s.revenue = 1, 5000
    stale = Profile(visits=1)  # read before the purchase reached KV
    fresh = Profile(visits=1, orders=1, revenue=5000, last_order=NOW + 5)  # read after
    for p in (stale, fresh):
        v = attrs(s, p)["visitor"]
        assert (v["orders"], v["buyer"], v["revenue"]) == (1, "first", 50.0)
    earlier = Profile(visits=3, orders=1, revenue=2000, last_order=NOW - 86_400)  # an order in an earlier visit
    assert attrs(s, earlier)["visitor"]["buyer"] == "repeat"
