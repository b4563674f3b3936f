from __future__ import annotations

import msgpack
import pytest

from nudge.session import (
    MAX_CATEGORIES,
    VISIT_TIMEOUT,
    Session,
    SessionCodec,
)
from nudge.signing import BadData, Signer
from nudge.pages import Page
from nudge.tracking import credit_dwell, record_page_view

from .factories import NOW, session

CODEC = SessionCodec(Signer([b"k"], "session"))


def busy_session() -> Session:
    s = session()
    for i in range(3):
        record_page_view(s, Page("product", "sneakers", f"runner-{i}"), f"pv{i}", NOW + i)
    credit_dwell(s, "pv2", 40, NOW + 5)
    s.cart["sku-1"] = 2
    s.shown["rule-a"] = 1
    s.closed.append("rule-b")
    return s


def test_round_trip_keeps_everything() -> None:
    s = busy_session()
    back = CODEC.decode(CODEC.encode(s))
    assert back.is_new is False
    back.is_new = True
    assert back == s


@pytest.mark.parametrize(
    "value",
    [
        "",  # empty
        "garbage",
        "a.b",
        "x" * 5000,  # oversized
    ],
)
def test_bad_cookie_gives_fresh_session(value: str) -> None:
    s = CODEC.load(value, NOW)
    assert s.is_new and s.pages == 0 and s.started == NOW


def test_tampered_truncated_and_foreign_cookies_are_ignored() -> None:
    good = CODEC.encode(busy_session())
    foreign = SessionCodec(Signer([b"other"], "session")).encode(busy_session())
    for value in (good[:-1], good[:20], good.replace(good[5], "Z" if good[5] != "Z" else "Y", 1), foreign):
        assert CODEC.load(value, NOW).is_new
    assert not CODEC.load(good, NOW).is_new


def test_signed_but_malformed_payloads_are_bad_data() -> None:
    signer = Signer([b"k"], "session")
    for wire in ([1, "v"], {"a": 1}, [2] + [0] * 11, [1, 5, "x", 0, 0, [], [], 0, 0, [], [], []], "str"):
        with pytest.raises(BadData):
            CODEC.decode(signer.sign(msgpack.packb(wire)))
    with pytest.raises(BadData):
        CODEC.decode(signer.sign(b"\xc1not msgpack"))


def test_new_visit_after_idle_keeps_visitor_and_cart() -> None:
    s = busy_session()
    value = CODEC.encode(s)
    later = CODEC.load(value, s.last_seen + VISIT_TIMEOUT + 1)
    assert later.is_new and later.visitor == s.visitor and later.cart == s.cart
    assert later.pages == 0 and not later.categories
    same = CODEC.load(value, s.last_seen + VISIT_TIMEOUT)
    assert not same.is_new and same.pages == 3


def test_categories_are_bounded_by_recency() -> None:
    s = session()
    for i in range(MAX_CATEGORIES + 5):
        record_page_view(s, Page("category", f"cat-{i}"), f"p{i}", NOW + i)
    assert len(s.categories) == MAX_CATEGORIES
    assert "cat-0" not in s.categories and f"cat-{MAX_CATEGORIES + 4}" in s.categories


def test_cookie_stays_small_after_a_long_visit() -> None:
    s = session()
    for i in range(2000):
        page = Page("product", f"category-{i % 50}", f"product-name-{i}")
        record_page_view(s, page, f"pv{i:05d}", NOW + i)
        credit_dwell(s, f"pv{i:05d}", 30, NOW + i)
        s.cart[f"sku-{i % 40}"] = 1 if len(s.cart) < 20 else s.cart.get(f"sku-{i % 40}", 1)
    assert len(CODEC.encode(s)) <= 1024 * 2  # bounded whatever the history (issue 3 tightens)
