from __future__ import annotations

import base64
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.signing import BadData, Signer
from nudge.visitor.beacon import Beacon, Event, Item
from nudge.visitor.pages import PAGE_TYPES, Page
from nudge.visitor.session import MAX_CATEGORIES, MAX_COOKIE_BYTES, VISIT_TIMEOUT, Session, SessionCodec
from nudge.visitor.tracking import apply_beacon, close_rule, credit_dwell, record_page_view
from tests.core.factories import NOW, heavy_history, session, typical_visit

CODEC = SessionCodec(Signer([b"k"], "session"))


def busy_session() -> Session:
    s = session()
    record_page_view(s, Page("home"), NOW, "utm_source=news&utm_campaign=Fall Sale", "https://www.google.com/x",
                     "shop.example")
    for i in range(3):
        pv = record_page_view(s, Page("product", "sneakers", f"runner-{i}"), NOW + i)
    credit_dwell(s, pv, 40, NOW + 5)
    record_page_view(s, Page("search"), NOW + 6, "q=Red  Shoes!")
    apply_beacon(s, Beacon(None, None, (Event("add_to_cart", (Item("sku-1", 2),), 59.9),)), NOW + 7)
    s.shown[123] = 1
    close_rule(s, "rule-b")
    return s


def test_round_trip_keeps_everything() -> None:
    s = busy_session()
    back = CODEC.decode(CODEC.encode(s))
    assert back.is_new is False
    back.is_new = True
    assert back == s
    assert s.searches == ["red shoes"] and s.source.utm_campaign == "fall-sale"
    assert s.source.referrer == "google.com" and s.cart_value == 5990


@pytest.mark.parametrize("value", ["", "garbage", "a.b", "x" * 10_000, "é" * 30])
def test_bad_cookie_gives_fresh_session(value: str) -> None:
    s = CODEC.load(value, NOW)
    assert s.is_new and s.pages == 0 and s.started == NOW


def test_tampered_truncated_and_foreign_cookies_are_ignored() -> None:
    good = CODEC.encode(busy_session())
    foreign = SessionCodec(Signer([b"other"], "session")).encode(busy_session())
    flipped = good[:5] + ("Z" if good[5] != "Z" else "Y") + good[6:]
    for value in (good[:-1], good[:20], flipped, foreign):
        assert CODEC.load(value, NOW).is_new
    assert not CODEC.load(good, NOW).is_new


@pytest.mark.parametrize(
    "wire",
    [
        [1, "v"],  # the old (v1) layout
        {"a": 1},
        [2] + [0] * 18,  # right length, wrong types
        [3] + [None] * 18,  # a future version
        "str",
    ],
)
def test_signed_but_malformed_payloads_are_bad_data(wire: object) -> None:
    signer = Signer([b"k"], "session")
    with pytest.raises(BadData):
        CODEC.decode(signer.sign(msgpack.packb(wire)))


def test_signed_random_bytes_are_bad_data() -> None:
    with pytest.raises(BadData):
        CODEC.decode(Signer([b"k"], "session").sign(b"\xc1not msgpack"))


def test_new_visit_after_idle_keeps_visitor_and_cart() -> None:
    s = busy_session()
    value = CODEC.encode(s)
    later = CODEC.load(value, s.last_seen + VISIT_TIMEOUT + 1)
    assert later.is_new and later.visitor == s.visitor and later.cart == s.cart
    assert later.pages == 0 and not later.categories
    assert later.ended is not None and later.ended.pages == s.pages  # for the profile's affinity
    same = CODEC.load(value, s.last_seen + VISIT_TIMEOUT)
    assert not same.is_new and same.pages == s.pages


def test_categories_are_bounded_by_recency() -> None:
    s = session()
    for i in range(MAX_CATEGORIES + 5):
        record_page_view(s, Page("category", f"cat-{i}"), NOW + i)
    assert len(s.categories) == MAX_CATEGORIES
    assert "cat-0" not in s.categories and f"cat-{MAX_CATEGORIES + 4}" in s.categories


def test_typical_twenty_page_visit_fits_in_400_bytes() -> None:
    s = typical_visit()
    assert s.pages == 20
    assert len(CODEC.encode(s)) <= 400


def test_ten_thousand_page_views_stay_under_the_hard_cap() -> None:
    # bench/cookie_size.py's history: 200 categories, 5,000 products, searches, cart churn, nudges
    s = heavy_history(random.Random(7))
    value = CODEC.encode(s)
    assert s.pages == 10_000 and len(value) <= MAX_COOKIE_BYTES
    back = CODEC.decode(value)  # what was shed to fit is the least valuable, not the shape
    assert back.pages == 10_000 and back.visitor == s.visitor and back.categories and back.recent


# -- properties: whatever the history, the cookie stays under 1 KiB and decodes ---------------------

TEXT = st.text(min_size=1, max_size=60)
PAGES = st.builds(Page, st.sampled_from(PAGE_TYPES), st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT))
ITEMS = st.lists(st.builds(Item, st.text(min_size=1, max_size=48), st.integers(1, 999)), max_size=20)
EVENTS = st.one_of(
    st.builds(Event, st.sampled_from(["add_to_cart", "remove_from_cart", "begin_checkout", "purchase"]),
              ITEMS.map(tuple), st.floats(0, 1e7)),
    st.builds(Event, st.sampled_from(["nudge_shown", "nudge_dismissed"]), st.just(()), st.just(0.0), TEXT),
)
STEP = st.one_of(
    st.tuples(st.just("page"), PAGES, st.text(max_size=200), st.one_of(st.none(), st.text(max_size=200))),
    st.tuples(st.just("dwell"), st.integers(0, 70_000), st.integers(0, 10**7)),
    st.tuples(st.just("beacon"), st.lists(EVENTS, max_size=20)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=300))
def test_cookie_is_bounded_and_round_trips_whatever_the_history(steps: list[tuple]) -> None:
    s = session()
    now = NOW
    for step in steps:
        now += 7
        if step[0] == "page":
            record_page_view(s, step[1], now, step[2], step[3], "shop.example")
        elif step[0] == "dwell":
            credit_dwell(s, step[1], step[2], now)
        else:
            apply_beacon(s, Beacon(None, None, tuple(step[1])), now)
    value = CODEC.encode(s)
    assert len(value) <= MAX_COOKIE_BYTES
    back = CODEC.decode(value)
    assert back.visitor == s.visitor and back.pages == s.pages


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_decoder_never_raises_anything_but_bad_data(payload: bytes) -> None:
    signed = Signer([b"k"], "session").sign(payload)  # even validly signed garbage
    for value in (signed, base64.urlsafe_b64encode(payload).decode(), payload.decode("latin-1")):
        try:
            CODEC.decode(value)
        except BadData:
            pass
        assert CODEC.load(value, NOW) is not None


def test_a_cart_carried_into_a_new_visit_survives_the_round_trip() -> None:
    """A shopper who comes back after 30 minutes with a cart keeps their session (the cart's
    time is from the earlier visit, before this visit's start)."""
    from nudge.signing import Signer
    from nudge.visitor.session import SessionCodec

    codec = SessionCodec(Signer([b"k"], "session"))
    first = Session.fresh(1_790_000_000, b"visitor1")
    first.cart, first.cart_value, first.cart_changed = {"SNK-1": 1}, 12900, 1_790_000_100
    first.last_seen = 1_790_000_100
    later = codec.load(codec.encode(first), 1_790_000_100 + 3600)
    assert later.is_new and later.cart == {"SNK-1": 1}
    again = codec.load(codec.encode(later), 1_790_000_100 + 3700)
    assert again.visitor == b"visitor1" and again.cart == {"SNK-1": 1} and again.cart_changed == 1_790_000_100
